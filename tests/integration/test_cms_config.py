# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""_cms.config against real Directus 10.0.0 (CairnCMS's fork point), on SQLite and PostgreSQL. A dev instance gets,
over its HTTP API and with ids fixed here, a role with permissions on a collection (with a filter, a validation and
presets), a public permission, a flow whose first operation leads to a second, an inactive webhook, a role's
bookmark, a dashboard with a panel and settings. Its config read from its database equals the one read over HTTP,
and on PostgreSQL the one read from the SQLite instance; it goes through a directory of files and comes back equal.
A staging instance with content and a role of its own: the diff creates the role and its permissions and keeps
staging's role; applied through the API, staging's database then holds dev's config (a second diff is empty),
staging's content is unchanged, and a user of the new role reads and creates items as its permissions say. With
prune, staging's own role goes, its permission first."""

from __future__ import annotations

import contextlib
import os
import uuid

import pytest

import _directus
from ansible_collections.cairncms.ops.plugins.module_utils._cms import config
from ansible_collections.cairncms.ops.plugins.module_utils._common import CairnError
from ansible_collections.cairncms.ops.plugins.module_utils._env import InstanceConfig

EDITORS = '0e0e0e0e-0000-4000-8000-00000000ed17'
STAFF = '0e0e0e0e-0000-4000-8000-0000000057af'
FLOW = '0e0e0e0e-0000-4000-8000-0000000f10a0'
FIRST = '0e0e0e0e-0000-4000-8000-0000000f10a1'
SECOND = '0e0e0e0e-0000-4000-8000-0000000f10a2'
BOARD = '0e0e0e0e-0000-4000-8000-0000000b0a2d'
PANEL = '0e0e0e0e-0000-4000-8000-0000000ba7e1'
KINDS = list(config.KINDS)
COUNTS = {'roles': 1, 'permissions': 3, 'flows': 1, 'operations': 2, 'webhooks': 1, 'presets': 1, 'dashboards': 1,
          'panels': 1, 'translations': 0, 'settings': 1}


def call(url, token, method, path, body=None, **params):
    return _directus.request_json(method, url + path, token, json_body=body, params=params or None)


def seed_dev(url, token):
    """The config the tests move, made over the CMS's API."""
    _directus.create_collection(url, token, 'articles')
    call(url, token, 'POST', '/roles', {'id': EDITORS, 'name': 'Editors', 'icon': 'edit', 'app_access': False,
                                        'ip_access': ['127.0.0.1', '::ffff:127.0.0.1', '::1']})
    call(url, token, 'POST', '/permissions', {'role': EDITORS, 'collection': 'articles', 'action': 'read',
                                              'fields': ['id', 'title'], 'permissions': {'title': {'_nnull': True}}})
    call(url, token, 'POST', '/permissions', {'role': EDITORS, 'collection': 'articles', 'action': 'create',
                                              'fields': ['title'], 'validation': {'title': {'_contains': 'draft'}},
                                              'presets': {'title': 'a draft'}})
    call(url, token, 'POST', '/permissions', {'role': None, 'collection': 'directus_files', 'action': 'read',
                                              'fields': ['id']})
    call(url, token, 'POST', '/flows', {'id': FLOW, 'name': 'Notify editors', 'trigger': 'manual', 'status': 'active',
                                        'options': {'collections': ['articles'], 'location': 'item'}})
    call(url, token, 'POST', '/operations', {'id': SECOND, 'flow': FLOW, 'key': 'then', 'type': 'log',
                                             'position_x': 37, 'position_y': 1, 'options': {'message': 'then'}})
    call(url, token, 'POST', '/operations', {'id': FIRST, 'flow': FLOW, 'key': 'first', 'type': 'log',
                                             'position_x': 19, 'position_y': 1, 'options': {'message': 'first'},
                                             'resolve': SECOND})
    call(url, token, 'PATCH', '/flows/%s' % FLOW, {'operation': FIRST})
    call(url, token, 'POST', '/webhooks', {'name': 'search index', 'url': 'http://127.0.0.1:9/hook',
                                           'status': 'inactive', 'actions': ['create', 'update'],
                                           'collections': ['articles'],
                                           'headers': [{'header': 'X-Index', 'value': 'articles'}]})
    call(url, token, 'POST', '/presets', {'role': EDITORS, 'collection': 'articles', 'bookmark': 'Recent',
                                          'layout': 'tabular', 'layout_query': {'tabular': {'sort': ['-id']}}})
    call(url, token, 'POST', '/dashboards', {'id': BOARD, 'name': 'Editorial', 'icon': 'space_dashboard'})
    call(url, token, 'POST', '/panels', {'id': PANEL, 'dashboard': BOARD, 'type': 'label', 'show_header': False,
                                         'position_x': 1, 'position_y': 1, 'width': 12, 'height': 6,
                                         'options': {'text': 'Articles'}})
    call(url, token, 'PATCH', '/settings', {'project_name': 'Cairn dev', 'project_url': 'http://dev.example',
                                            'custom_css': '.x {}',
                                            'storage_asset_presets': [{'key': 'thumb', 'fit': 'cover', 'width': 64,
                                                                       'height': 64}]})


def seed_staging(url, token):
    """Staging's own: the collection with an item, a role with a permission, settings of its own."""
    _directus.create_collection(url, token, 'articles')
    _directus.create_item(url, token, 'articles', {'title': 'staging article'})
    call(url, token, 'POST', '/roles', {'id': STAFF, 'name': 'Staff'})
    call(url, token, 'POST', '/permissions', {'role': STAFF, 'collection': 'articles', 'action': 'read',
                                              'fields': ['*']})
    call(url, token, 'PATCH', '/settings', {'project_name': 'Cairn staging', 'project_url': 'http://staging.example'})


def from_database(workdir):
    return config.read_live(config=InstanceConfig.load(os.path.join(str(workdir), '.env')), kinds=KINDS)


def read_dev(workdir, env):
    """dev seeded: its config read from its database and over HTTP."""
    with _directus.running(workdir) as url:
        token = _directus.login(url, env['ADMIN_EMAIL'], env['ADMIN_PASSWORD'])
        seed_dev(url, token)
        over_http = config.read_live(url=url, token=token, kinds=KINDS)
        return from_database(workdir), over_http


@pytest.fixture(scope='module')
def lite_dev(tmp_path_factory):
    """A SQLite dev instance, seeded: its config from its database and over HTTP."""
    workdir = tmp_path_factory.mktemp('config-dev')
    env = _directus.bootstrap(workdir)
    database, over_http = read_dev(workdir, env)
    return {'database': database, 'http': over_http}


def assert_dev_config(document):
    assert config.counts(document) == COUNTS
    [role] = document['roles']
    assert role == {'id': EDITORS, 'name': 'Editors', 'icon': 'edit', 'description': None, 'enforce_tfa': False,
                    'admin_access': False, 'app_access': False, 'ip_access': ['127.0.0.1', '::ffff:127.0.0.1', '::1']}
    assert document['permissions'][1:] == [
        {'role': EDITORS, 'collection': 'articles', 'action': 'create', 'fields': ['title'], 'permissions': None,
         'validation': {'title': {'_contains': 'draft'}}, 'presets': {'title': 'a draft'}},
        {'role': EDITORS, 'collection': 'articles', 'action': 'read', 'fields': ['id', 'title'],
         'permissions': {'title': {'_nnull': True}}, 'validation': None, 'presets': None}]
    assert document['permissions'][0]['role'] is None
    assert [(item['id'], item['resolve']) for item in document['operations']] == [(FIRST, SECOND), (SECOND, None)]
    assert document['flows'][0]['operation'] == FIRST and 'date_created' not in document['flows'][0]
    assert document['webhooks'][0]['actions'] == ['create', 'update'] and document['webhooks'][0]['data'] is True
    assert document['panels'][0]['show_header'] is False and document['panels'][0]['options'] == {'text': 'Articles'}
    settings = document['settings'][0]
    assert settings['project_name'] == 'Cairn dev' and 'project_url' not in settings and 'id' not in settings


@contextlib.contextmanager
def promote_to_staging(workdir, env, source):
    """Staging seeded, then ``source`` diffed against it (read over HTTP), applied, and checked from its database;
    yields staging's URL and admin token, valid while the ``with`` runs."""
    with _directus.running(workdir) as url:
        token = _directus.login(url, env['ADMIN_EMAIL'], env['ADMIN_PASSWORD'])
        seed_staging(url, token)
        content = call(url, token, 'GET', '/items/articles')
        target = config.read_live(url=url, token=token, kinds=KINDS)
        assert target == from_database(workdir)
        planned = config.diff(source, target)
        changes = config.lines(planned)
        assert changes[:4] == ['create role Editors', 'create permission Editors articles create',
                               'create permission Editors articles read',
                               'create permission public directus_files read']
        assert 'create operation Notify editors/first' in changes and 'create panel Editorial/label' in changes
        assert 'update settings (custom_css, project_name, storage_asset_presets)' in changes
        assert changes[-2:] == ['keep permission Staff articles read (not in the source; prune is off)',
                                'keep role Staff (not in the source; prune is off)']
        assert config.summarise(planned)['roles'] == {'added': ['Editors'], 'changed': [], 'deleted': []}

        assert config.apply(url, token, planned['changes']) == len(planned['changes']) == 12
        after = from_database(workdir)
        again = config.diff(source, after)
        assert (again['changes'], again['kept']) == ([], ['permission Staff articles read', 'role Staff'])
        assert config.read_live(url=url, token=token, kinds=KINDS) == after
        assert call(url, token, 'GET', '/items/articles') == content
        assert call(url, token, 'GET', '/operations/%s' % FIRST)['resolve'] == SECOND

        # a user of the new role reads and creates as its permissions say
        call(url, token, 'POST', '/users', {'email': 'editor@example.com', 'password': 'editor-pw-1', 'role': EDITORS,
                                            'status': 'active'})
        editor = _directus.login(url, 'editor@example.com', 'editor-pw-1')
        assert call(url, editor, 'GET', '/items/articles') == [{'id': 1, 'title': 'staging article'}]
        created = call(url, editor, 'POST', '/items/articles', {'title': 'a draft of mine'})
        assert created == {'id': 2, 'title': 'a draft of mine'}
        with pytest.raises(_directus.DirectusError) as refused:
            call(url, editor, 'POST', '/items/articles', {'title': 'published'})
        assert refused.value.status == 400
        with pytest.raises(_directus.DirectusError) as refused:
            call(url, editor, 'GET', '/roles')
        assert refused.value.status == 403
        yield url, token


def test_a_sqlite_config_through_files_and_promoted_to_staging(lite_dev, tmp_path):
    source = lite_dev['database']
    assert_dev_config(source)
    assert lite_dev['http'] == source  # the database and the API say the same

    folder = tmp_path / 'config'
    written = config.write_directory(str(folder), source)
    assert written['changed'] is True and 'permissions/editors/articles.json' in written['written']
    assert sorted(written['written']) == sorted(
        ['config.json', 'dashboards/editorial.json', 'flows/notify-editors.json', 'permissions/editors/articles.json',
         'permissions/public/directus_files.json', 'presets/editors/articles.json', 'roles/editors.json',
         'settings.json', 'webhooks/search-index.json'])
    assert config.read_directory(str(folder)) == source
    assert config.write_directory(str(folder), config.loads(config.dumps(source)))['changed'] is False

    staging = tmp_path / 'staging'
    env = _directus.bootstrap(staging)
    with promote_to_staging(staging, env, config.read_directory(str(folder))) as (url, token):
        pruned = config.diff(source, config.read_live(url=url, token=token, kinds=KINDS), prune=True)
        assert config.lines(pruned) == ['delete permission Staff articles read', 'delete role Staff']
        assert config.apply(url, token, pruned['changes']) == 2
        after = from_database(staging)
        assert config.diff(source, after, prune=True) == {'kinds': KINDS, 'prune': True, 'changes': [], 'kept': []}
        assert STAFF not in [item['id'] for item in call(url, token, 'GET', '/roles')]

        # a change the CMS refuses: named, with what was applied before it and what was not
        reviewers = dict(source['roles'][0], id=str(uuid.uuid4()), name='Reviewers')
        broken_panel = dict(source['panels'][0], id=str(uuid.uuid4()), name='broken', position_x=None)
        broken = config.check(dict(source, roles=source['roles'] + [reviewers],
                                   panels=source['panels'] + [broken_panel]))
        with pytest.raises(CairnError) as caught:
            config.apply(url, token, config.diff(broken, after)['changes'])
        message = caught.value.message
        assert message.startswith('cannot create panel Editorial/broken: POST %s/panels failed: HTTP ' % url), message
        assert message.endswith('Applied before it (1): role Reviewers. Not applied (1): panel Editorial/broken'), (
            message)
        assert caught.value.details['applied'] == ['role Reviewers'] and token not in message


def test_a_postgresql_config_equals_sqlite_s_and_promotes(lite_dev, pg_pair, tmp_path):
    dev, staging = tmp_path / 'dev', tmp_path / 'staging'
    dev_env = _directus.bootstrap(dev, pg_pair[0])
    staging_env = _directus.bootstrap(staging, pg_pair[1])
    database, over_http = read_dev(dev, dev_env)
    assert database == over_http
    assert config.dumps(database) == config.dumps(lite_dev['database'])  # one config, whichever vendor
    assert config.render_files(database) == config.render_files(lite_dev['database'])
    with promote_to_staging(staging, staging_env, database):
        pass


@pytest.fixture
def maria_dev(mariadb_server):
    name = 'cairn_config_dev_%d' % os.getpid()
    mariadb_server.create_database(name)
    yield mariadb_server.env(database=name)
    mariadb_server.drop_database(name)


def test_a_mariadb_config_equals_sqlite_s(lite_dev, maria_dev, tmp_path):
    env = _directus.bootstrap(tmp_path / 'dev', maria_dev)
    database, over_http = read_dev(tmp_path / 'dev', env)
    assert database == over_http
    assert config.dumps(database) == config.dumps(lite_dev['database'])
