# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The pure part of _cms.config: the rows of one config as SQLite, PostgreSQL, MariaDB and the CMS's API give them
are one document (administrator roles, users' presets, timestamps and instance-specific settings left out); the
document is the same bytes whatever order rows and keys come in; its files have safe, stable, unique names and read
back as the same config; a config directory is untrusted (symlinks, traversal, foreign JSON, bad JSON named); the
diff creates, updates, deletes only with prune, keeps otherwise, in an order that applies; the apply calls the CMS
in that order and says what was applied when a change fails."""

from __future__ import annotations

import copy
import json
import os
import random

import pytest

from ansible_collections.cairncms.ops.plugins.module_utils._cms import config
from ansible_collections.cairncms.ops.plugins.module_utils._common import CairnError

ADMIN = 'd9fb0cb1-087f-4c0a-872f-0dcead86c5bd'
EDITORS = '11111111-1111-4111-8111-111111111111'
FLOW = '22222222-2222-4222-8222-222222222222'
OP1 = '33333333-3333-4333-8333-333333333333'
OP2 = '33333333-3333-4333-8333-333333333334'
BOARD = '44444444-4444-4444-8444-444444444444'
PANEL = '55555555-5555-4555-8555-555555555555'
USER = '3b4ebb5a-5a42-4bff-81bf-3ad6dc039b43'


def canonical_rows():
    """The config as the CMS's API serves it (JSON values, lists, booleans), with what the document leaves out."""
    return {
        'directus_roles': [
            {'id': ADMIN, 'name': 'Administrator', 'icon': 'verified', 'description': '$t:admin_description',
             'ip_access': None, 'enforce_tfa': False, 'admin_access': True, 'app_access': True},
            {'id': EDITORS, 'name': 'Editors', 'icon': 'supervised_user_circle', 'description': None,
             'ip_access': ['10.0.0.1', '10.0.0.2'], 'enforce_tfa': False, 'admin_access': False, 'app_access': False}],
        'directus_permissions': [
            {'id': 1, 'role': EDITORS, 'collection': 'articles', 'action': 'read',
             'permissions': {'title': {'_nnull': True}}, 'validation': None, 'presets': None,
             'fields': ['id', 'title']},
            {'id': 2, 'role': None, 'collection': 'articles', 'action': 'read', 'permissions': None,
             'validation': None, 'presets': None, 'fields': ['*']},
            {'id': 3, 'role': EDITORS, 'collection': 'articles', 'action': 'create', 'permissions': None,
             'validation': {'title': {'_nnull': True}}, 'presets': {'status': 'draft'}, 'fields': []},
            {'id': 4, 'role': ADMIN, 'collection': 'articles', 'action': 'read', 'permissions': None,
             'validation': None, 'presets': None, 'fields': None}],
        'directus_flows': [
            {'id': FLOW, 'name': 'Notify', 'icon': None, 'color': None, 'description': None, 'status': 'active',
             'trigger': 'manual', 'accountability': 'all', 'options': {'collections': ['articles']},
             'operation': OP1, 'date_created': '2026-11-28T22:13:05', 'user_created': USER}],
        'directus_operations': [
            {'id': OP1, 'name': None, 'key': 'log', 'type': 'log', 'position_x': 19, 'position_y': 1,
             'options': {'message': 'hi'}, 'resolve': OP2, 'reject': None, 'flow': FLOW,
             'date_created': '2026-11-28T22:13:05', 'user_created': USER},
            {'id': OP2, 'name': 'Then', 'key': 'then', 'type': 'log', 'position_x': 37, 'position_y': 1,
             'options': {}, 'resolve': None, 'reject': None, 'flow': FLOW,
             'date_created': '2026-11-28T22:13:06', 'user_created': USER}],
        'directus_webhooks': [
            {'id': 1, 'name': 'hook', 'method': 'POST', 'url': 'http://127.0.0.1:9/x', 'status': 'active',
             'data': True, 'actions': ['create', 'update'], 'collections': ['articles'],
             'headers': [{'header': 'X-A', 'value': 'b'}]}],
        'directus_presets': [
            {'id': 1, 'bookmark': 'Mine', 'user': None, 'role': EDITORS, 'collection': 'articles', 'search': None,
             'layout': 'tabular', 'layout_query': {'tabular': {'sort': ['title']}}, 'layout_options': None,
             'refresh_interval': None, 'filter': None, 'icon': 'bookmark', 'color': None},
            {'id': 2, 'bookmark': None, 'user': USER, 'role': None, 'collection': 'articles', 'search': None,
             'layout': 'tabular', 'layout_query': None, 'layout_options': None, 'refresh_interval': None,
             'filter': None, 'icon': 'bookmark', 'color': None}],
        'directus_dashboards': [
            {'id': BOARD, 'name': 'Board', 'icon': 'dashboard', 'note': None,
             'date_created': '2026-11-28T22:13:05.944Z', 'user_created': USER, 'color': None}],
        'directus_panels': [
            {'id': PANEL, 'dashboard': BOARD, 'name': None, 'icon': None, 'color': None, 'show_header': True,
             'note': None, 'type': 'label', 'position_x': 1, 'position_y': 1, 'width': 10, 'height': 5,
             'options': {'text': 'x'}, 'date_created': '2026-11-28T22:13:05.968Z', 'user_created': USER}],
        'directus_settings': [
            {'id': 1, 'project_name': 'Dev', 'project_url': 'http://dev', 'project_color': None,
             'project_logo': 'a0a0a0a0-0000-4000-8000-000000000000', 'public_foreground': None,
             'public_background': None, 'public_note': None, 'auth_login_attempts': 25,
             'auth_password_policy': None, 'storage_asset_transform': 'all',
             'storage_asset_presets': [{'key': 'thumb', 'fit': 'cover', 'width': 100, 'height': 100}],
             'custom_css': None, 'storage_default_folder': None, 'basemaps': None, 'mapbox_key': 'pk.secret',
             'module_bar': None, 'project_descriptor': None, 'translation_strings': None,
             'default_language': 'en-US', 'custom_aspect_ratios': None}],
    }


JSON_COLUMNS = {spec.table: spec.json for spec in config.SPECS}
CSV_COLUMNS = {spec.table: spec.csv for spec in config.SPECS}
BOOLEAN_COLUMNS = {spec.table: spec.booleans for spec in config.SPECS}


def as_vendor(rows, vendor):
    """``rows`` as ``vendor`` gives them: SQLite 0/1, JSON and CSV as text, timestamps as epoch milliseconds;
    MariaDB the same with timestamp text; PostgreSQL JSON values, CSV as text, booleans as booleans."""
    result = {}
    for table, items in rows.items():
        result[table] = []
        for row in items:
            row = dict(row)
            for column, value in row.items():
                if column in JSON_COLUMNS[table] and vendor in ('sqlite', 'mysql') and value is not None:
                    row[column] = json.dumps(value, separators=(',', ':'))
                elif column in CSV_COLUMNS[table] and vendor != 'api' and value is not None:
                    row[column] = ','.join(value)
                elif column in BOOLEAN_COLUMNS[table] and vendor in ('sqlite', 'mysql'):
                    row[column] = int(value)
                elif column == 'date_created' and vendor == 'sqlite':
                    row[column] = 1795903985668
            result[table].append(row)
    return result


def expected_document():
    return {
        'format': 'cairncms.ops/config', 'version': 1, 'kinds': list(config.KINDS),
        'roles': [{'id': EDITORS, 'name': 'Editors', 'icon': 'supervised_user_circle', 'description': None,
                   'ip_access': ['10.0.0.1', '10.0.0.2'], 'enforce_tfa': False, 'admin_access': False,
                   'app_access': False}],
        'permissions': [
            {'role': None, 'collection': 'articles', 'action': 'read', 'permissions': None, 'validation': None,
             'presets': None, 'fields': ['*']},
            {'role': EDITORS, 'collection': 'articles', 'action': 'create', 'permissions': None,
             'validation': {'title': {'_nnull': True}}, 'presets': {'status': 'draft'}, 'fields': []},
            {'role': EDITORS, 'collection': 'articles', 'action': 'read', 'permissions': {'title': {'_nnull': True}},
             'validation': None, 'presets': None, 'fields': ['id', 'title']}],
        'flows': [{'id': FLOW, 'name': 'Notify', 'icon': None, 'color': None, 'description': None,
                   'status': 'active', 'trigger': 'manual', 'accountability': 'all',
                   'options': {'collections': ['articles']}, 'operation': OP1}],
        'operations': [
            {'id': OP1, 'name': None, 'key': 'log', 'type': 'log', 'position_x': 19, 'position_y': 1,
             'options': {'message': 'hi'}, 'resolve': OP2, 'reject': None, 'flow': FLOW},
            {'id': OP2, 'name': 'Then', 'key': 'then', 'type': 'log', 'position_x': 37, 'position_y': 1,
             'options': {}, 'resolve': None, 'reject': None, 'flow': FLOW}],
        'webhooks': [{'name': 'hook', 'method': 'POST', 'url': 'http://127.0.0.1:9/x', 'status': 'active',
                      'data': True, 'actions': ['create', 'update'], 'collections': ['articles'],
                      'headers': [{'header': 'X-A', 'value': 'b'}]}],
        'presets': [{'bookmark': 'Mine', 'role': EDITORS, 'collection': 'articles', 'search': None,
                     'layout': 'tabular', 'layout_query': {'tabular': {'sort': ['title']}}, 'layout_options': None,
                     'refresh_interval': None, 'filter': None, 'icon': 'bookmark', 'color': None}],
        'dashboards': [{'id': BOARD, 'name': 'Board', 'icon': 'dashboard', 'note': None, 'color': None}],
        'panels': [{'id': PANEL, 'dashboard': BOARD, 'name': None, 'icon': None, 'color': None, 'show_header': True,
                    'note': None, 'type': 'label', 'position_x': 1, 'position_y': 1, 'width': 10, 'height': 5,
                    'options': {'text': 'x'}}],
        'translations': [],
        'settings': [{'project_name': 'Dev', 'project_color': None, 'public_note': None, 'auth_login_attempts': 25,
                      'auth_password_policy': None, 'storage_asset_transform': 'all',
                      'storage_asset_presets': [{'key': 'thumb', 'fit': 'cover', 'width': 100, 'height': 100}],
                      'custom_css': None, 'basemaps': None, 'module_bar': None, 'project_descriptor': None,
                      'translation_strings': None, 'default_language': 'en-US', 'custom_aspect_ratios': None}],
    }


def full_config():
    return config.from_rows(canonical_rows(), config.KINDS, 'api')


def shuffled(rows, seed):
    """``rows`` with the rows of each table and the keys of each row in another order."""
    rng = random.Random(seed)
    result = {}
    for table, items in rows.items():
        items = [dict(rng.sample(list(row.items()), len(row))) for row in items]
        rng.shuffle(items)
        result[table] = items
    return result


# ---------------------------------------------------------------------------------------------------------------
# Rows to the document
# ---------------------------------------------------------------------------------------------------------------

def test_the_tables_of_the_kinds():
    assert config.tables(None) == ['directus_roles', 'directus_permissions']
    assert config.tables(['flows', 'dashboards']) == [
        'directus_flows', 'directus_operations', 'directus_dashboards', 'directus_panels']
    assert config.tables(['presets']) == ['directus_roles', 'directus_presets']
    assert config.tables(config.KINDS)[-2:] == ['directus_translations', 'directus_settings']
    with pytest.raises(CairnError, match='^users is no config kind; the kinds are roles, permissions, flows'):
        config.tables(['roles', 'users'])


@pytest.mark.parametrize('vendor', ['sqlite', 'postgres', 'mysql', 'api'])
def test_each_vendor_s_rows_are_the_same_document(vendor):
    rows = as_vendor(canonical_rows(), vendor)
    if vendor != 'api':
        assert rows['directus_roles'][1]['ip_access'] == '10.0.0.1,10.0.0.2'
    if vendor in ('sqlite', 'mysql'):
        assert rows['directus_permissions'][0]['permissions'] == '{"title":{"_nnull":true}}'
        assert rows['directus_roles'][0]['admin_access'] == 1
    assert config.from_rows(rows, config.KINDS, vendor) == expected_document()


def test_the_default_kinds_are_roles_and_permissions():
    document = config.from_rows(as_vendor(canonical_rows(), 'sqlite'), None, 'sqlite')
    assert document['kinds'] == ['roles', 'permissions']
    assert sorted(document) == ['format', 'kinds', 'permissions', 'roles', 'version']


def test_administrator_roles_their_rows_and_users_presets_are_left_out():
    document = full_config()
    assert [role['id'] for role in document['roles']] == [EDITORS]
    assert ADMIN not in [item['role'] for item in document['permissions']]
    assert [preset['bookmark'] for preset in document['presets']] == ['Mine']
    settings = document['settings'][0]
    for key in ('id', 'project_url', 'project_logo', 'mapbox_key', 'storage_default_folder'):
        assert key not in settings
    assert all('date_created' not in item and 'user_created' not in item
               for plural in ('flows', 'operations', 'dashboards', 'panels') for item in document[plural])


def test_a_table_the_database_lacks_is_an_empty_kind():
    rows = canonical_rows()
    del rows['directus_settings']
    document = config.from_rows(rows, ['settings', 'translations'], 'api')
    assert (document['settings'], document['translations']) == ([], [])


def test_rows_and_keys_in_any_order_are_the_same_bytes():
    first = config.dumps(config.from_rows(as_vendor(canonical_rows(), 'sqlite'), config.KINDS, 'sqlite'))
    for seed in range(5):
        again = config.from_rows(shuffled(as_vendor(canonical_rows(), 'sqlite'), seed), config.KINDS, 'sqlite')
        assert config.dumps(again) == first
        assert config.render_files(again) == config.render_files(full_config())
    assert first.endswith(b'}\n') and first.startswith(b'{\n  "dashboards": [')


def test_two_permissions_for_one_role_collection_and_action_are_refused():
    rows = canonical_rows()
    rows['directus_permissions'].append(dict(rows['directus_permissions'][0], id=9, fields=['id']))
    with pytest.raises(CairnError) as caught:
        config.from_rows(rows, None, 'api')
    assert caught.value.message == (
        'the table directus_permissions has two permissions with role "%s", collection "articles", action "read"; '
        'one is matched by role, collection, action, so each must be there once' % EDITORS)


def test_an_unknown_vendor_and_a_value_that_is_no_boolean_are_refused():
    with pytest.raises(CairnError, match="^rows of vendor 'oracle' cannot be read as a config"):
        config.from_rows({}, None, 'oracle')
    rows = canonical_rows()
    rows['directus_roles'][1]['app_access'] = 'maybe'
    with pytest.raises(CairnError, match="^the table directus_roles: app_access is 'maybe', not a boolean$"):
        config.from_rows(rows, None, 'api')


def test_loads_reads_what_dumps_writes_and_refuses_other_documents():
    document = full_config()
    assert config.loads(config.dumps(document)) == document
    assert config.loads(config.dumps(document).decode()) == document
    with pytest.raises(ValueError, match='^the config document is not JSON'):
        config.loads(b'{nope')
    with pytest.raises(CairnError, match='^x is config format version 2; this version of cairncms.ops reads version 1'):
        config.loads(json.dumps(dict(document, version=2)), 'x')
    with pytest.raises(CairnError, match='^the config document is not a config: its format is "other"'):
        config.loads(json.dumps(dict(document, format='other')))


# ---------------------------------------------------------------------------------------------------------------
# Files
# ---------------------------------------------------------------------------------------------------------------

def test_one_file_per_role_per_role_s_collection_and_per_item():
    files = dict(config.render_files(full_config()))
    assert sorted(files) == [
        'config.json', 'dashboards/board.json', 'flows/notify.json', 'permissions/editors/articles.json',
        'permissions/public/articles.json', 'presets/editors/articles.json', 'roles/editors.json', 'settings.json',
        'webhooks/hook.json']
    assert json.loads(files['config.json']) == {'format': 'cairncms.ops/config', 'version': 1,
                                                'kinds': list(config.KINDS)}
    assert [item['action'] for item in json.loads(files['permissions/editors/articles.json'])] == ['create', 'read']
    flow = json.loads(files['flows/notify.json'])
    assert flow['flow']['id'] == FLOW and [item['key'] for item in flow['operations']] == ['log', 'then']
    assert files['roles/editors.json'] == (json.dumps(full_config()['roles'][0], indent=2, sort_keys=True)
                                           + '\n').encode()
    assert '  "name": "Editors"\n}\n' in files['roles/editors.json'].decode()


def role(role_id, name):
    return {'id': role_id, 'name': name, 'icon': 'x', 'description': None, 'ip_access': None, 'enforce_tfa': False,
            'admin_access': False, 'app_access': True}


def permission(role_id, collection, action='read', **more):
    return dict({'role': role_id, 'collection': collection, 'action': action, 'permissions': None,
                 'validation': None, 'presets': None, 'fields': ['*']}, **more)


def small(roles, permissions):
    return {'format': 'cairncms.ops/config', 'version': 1, 'kinds': ['roles', 'permissions'], 'roles': roles,
            'permissions': permissions}


def test_file_names_are_safe_and_unique_whatever_the_names():
    ids = ['aaaaaaaa-0000-4000-8000-00000000000%d' % number for number in range(7)]
    names = ['Editors', 'editors', '../../etc/passwd', 'Public', 'Rédacteurs', '', '.hidden\x00\n/x']
    document = small([role(role_id, name) for role_id, name in zip(ids, names)],
                     [permission(role_id, collection) for role_id in ids + [None]
                      for collection in ('articles', 'Articles', '../up')])
    files = dict(config.render_files(document))
    paths = sorted(files)
    assert len(paths) == 1 + 7 + 8 * 3
    assert 'roles/editors-%s.json' % ids[0] in paths and 'roles/editors-%s.json' % ids[1] in paths
    assert 'roles/etc-passwd.json' in paths and 'roles/public-%s.json' % ids[3] in paths
    assert 'roles/redacteurs.json' in paths and 'roles/role.json' in paths and 'roles/hidden-x.json' in paths
    assert 'permissions/public/up.json' in paths
    assert len({path.lower() for path in paths}) == len(paths)
    for path in paths:
        config._check_path(path)  # pylint: disable=protected-access
        assert '..' not in path and not path.startswith('/') and path.isascii()
    assert config.load_files(files) == config.check(document)
    # the same names for the same config, whatever order it came in
    assert config.render_files(dict(document, roles=document['roles'][::-1],
                                    permissions=document['permissions'][::-1])) == sorted(files.items())


def test_load_files_reads_what_render_files_writes():
    document = full_config()
    assert config.load_files(dict(config.render_files(document))) == document
    plain = small([role(EDITORS, 'Editors')], [])
    assert config.load_files(dict(config.render_files(plain))) == config.check(plain)


@pytest.mark.parametrize('name, said', [
    ('../roles/x.json', "is not a safe relative path"),
    ('/etc/roles.json', 'is not a relative path'),
    ('roles/../../x.json', 'is not a safe relative path'),
    ('roles\\x.json', 'is not a relative path'),
    ('roles/sub/x.json', 'is not a file of the config layout'),
    ('users/x.json', 'is not a file of the config layout'),
    ('roles/ x.json', 'is not a safe relative path'),
])
def test_load_files_refuses_unsafe_and_foreign_names(name, said):
    files = dict(config.render_files(full_config()))
    files[name] = b'{}'
    with pytest.raises(CairnError, match=said):
        config.load_files(files)


def test_load_files_names_the_file_that_is_wrong():
    files = dict(config.render_files(full_config()))
    broken = dict(files, **{'roles/editors.json': b'{"id": '})
    with pytest.raises(CairnError, match='^the config file roles/editors.json is not JSON: '):
        config.load_files(broken)
    with pytest.raises(CairnError, match='^the config file permissions/public/articles.json is not a JSON list'):
        config.load_files(dict(files, **{'permissions/public/articles.json': b'{}'}))
    with pytest.raises(CairnError, match='^the config files roles/editors.json and roles/more.json both have the '
                                         'role with id "%s"' % EDITORS):
        config.load_files(dict(files, **{'roles/more.json': files['roles/editors.json']}))
    with pytest.raises(CairnError, match='^the config files have no config.json'):
        config.load_files({key: value for key, value in files.items() if key != 'config.json'})
    index = json.dumps({'format': 'cairncms.ops/config', 'version': 1, 'kinds': ['roles', 'permissions']})
    with pytest.raises(CairnError, match=r'^the config files have flows \(flows/notify.json\), and '
                                         'config.json does not list flows among its kinds'):
        config.load_files(dict(files, **{'config.json': index.encode()}))
    with pytest.raises(CairnError, match='^the config file roles/x.json has a role without id'):
        config.load_files(dict(files, **{'roles/x.json': b'{"name": "no id"}'}))


def make_tree(path, document):
    written = config.write_directory(str(path), document)
    assert written['changed'] is True
    return written


def test_a_directory_is_written_once_and_read_back(tmp_path):
    document = full_config()
    target = tmp_path / 'config'
    planned = config.write_directory(str(target), document, check_mode=True)
    assert planned['changed'] is True and not target.exists()
    written = make_tree(target, document)
    assert written['written'] == planned['written'] == [path for path, _data in config.render_files(document)]
    assert written['removed'] == [] and written['unchanged'] == 0
    assert written['counts']['permissions'] == 3
    assert oct((target / 'roles' / 'editors.json').stat().st_mode & 0o777) == '0o644'
    assert config.read_directory(str(target)) == document
    again = config.write_directory(str(target), document)
    assert (again['changed'], again['written'], again['removed'], again['diff']) == (False, [], [], [])

    # one role renamed, the public permissions gone: that role's file and that directory, nothing else
    (target / 'README.md').write_text('kept')
    changed = copy.deepcopy(document)
    changed['roles'][0]['name'] = 'Writers'
    changed['permissions'] = [item for item in changed['permissions'] if item['role'] is not None]
    stamp = (target / 'flows' / 'notify.json').stat().st_mtime_ns
    result = config.write_directory(str(target), changed)
    assert result['written'] == ['permissions/writers/articles.json', 'presets/writers/articles.json',
                                 'roles/writers.json']
    assert result['removed'] == ['permissions/editors/articles.json', 'permissions/public/articles.json',
                                 'presets/editors/articles.json', 'roles/editors.json']
    assert not (target / 'permissions' / 'public').exists() and (target / 'README.md').read_text() == 'kept'
    assert (target / 'flows' / 'notify.json').stat().st_mtime_ns == stamp
    shown = {item['before_header']: item for item in result['diff']}
    assert shown['roles/editors.json']['after'] == '' and '"name": "Editors"' in shown['roles/editors.json']['before']
    assert config.read_directory(str(target)) == config.check(changed)


def test_a_directory_with_symlinks_or_odd_files_is_refused(tmp_path):
    target = tmp_path / 'config'
    make_tree(target, full_config())
    outside = tmp_path / 'outside.json'
    outside.write_text('[]')
    (target / 'permissions' / 'public' / 'other.json').symlink_to(outside)
    with pytest.raises(CairnError, match='has a symlink, permissions/public/other.json; a config directory holds '
                                         'plain files only'):
        config.read_directory(str(target))
    with pytest.raises(CairnError, match='has a symlink'):
        config.write_directory(str(target), full_config())
    os.unlink(target / 'permissions' / 'public' / 'other.json')
    (target / 'webhooks2').symlink_to(tmp_path, target_is_directory=True)
    with pytest.raises(CairnError, match='has a symlink, webhooks2'):
        config.read_directory(str(target))
    os.unlink(target / 'webhooks2')
    link = tmp_path / 'link'
    link.symlink_to(target, target_is_directory=True)
    with pytest.raises(CairnError, match='is a symlink; give the directory itself'):
        config.read_directory(str(link))
    with pytest.raises(CairnError, match='does not exist'):
        config.read_directory(str(tmp_path / 'nothing'))
    os.mkfifo(target / 'roles' / 'pipe.json')
    with pytest.raises(CairnError, match='has roles/pipe.json, which is not a plain file'):
        config.read_directory(str(target))
    os.unlink(target / 'roles' / 'pipe.json')
    (target / 'roles' / 'big.json').write_bytes(b' ' * (config.MAX_FILE_BYTES + 1))
    with pytest.raises(CairnError, match='^the config file roles/big.json is larger than 8 MiB'):
        config.read_directory(str(target))
    os.unlink(target / 'roles' / 'big.json')
    (target / 'roles' / 'bad.json').write_text('{"id": 1,}')
    with pytest.raises(CairnError, match='^the config directory %s: the config file roles/bad.json is not JSON'
                       % target):
        config.read_directory(str(target))
    os.unlink(target / 'roles' / 'bad.json')
    (target / '.git').mkdir()
    (target / '.git' / 'x.json').write_text('nothing of ours')
    (target / 'notes.txt').write_text('nothing of ours')
    assert config.read_directory(str(target)) == full_config()


# ---------------------------------------------------------------------------------------------------------------
# Diff
# ---------------------------------------------------------------------------------------------------------------

STAFF = '66666666-6666-4666-8666-666666666666'


def dev_and_staging():
    dev = small([role(EDITORS, 'Editors')],
                [permission(EDITORS, 'articles', 'read'), permission(EDITORS, 'articles', 'create'),
                 permission(None, 'articles', 'read')])
    staging = small([role(EDITORS, 'Editors old'), role(STAFF, 'Staff')],
                    [permission(EDITORS, 'articles', 'read', fields=['id']), permission(STAFF, 'pages', 'read')])
    return dev, staging


def test_the_diff_creates_updates_and_keeps_without_prune():
    dev, staging = dev_and_staging()
    planned = config.diff(dev, staging)
    assert [(change['action'], change['key']) for change in planned['changes']] == [
        ('update', 'role Editors'),
        ('create', 'permission Editors articles create'), ('create', 'permission public articles read'),
        ('update', 'permission Editors articles read')]
    assert planned['kept'] == ['permission Staff pages read', 'role Staff']
    update = planned['changes'][3]
    assert (update['fields'], update['before']['fields'], update['after']['fields']) == (['fields'], ['id'], ['*'])
    assert update['id'] == [EDITORS, 'articles', 'read'] and planned['changes'][0]['id'] == EDITORS
    assert config.lines(planned) == [
        'update role Editors (name)', 'create permission Editors articles create',
        'create permission public articles read', 'update permission Editors articles read (fields)',
        'keep permission Staff pages read (not in the source; prune is off)',
        'keep role Staff (not in the source; prune is off)']
    assert config.summarise(planned) == {
        'roles': {'added': [], 'changed': ['Editors'], 'deleted': []},
        'permissions': {'added': ['Editors articles create', 'public articles read'],
                        'changed': ['Editors articles read'], 'deleted': []}}
    shown = config.item_diffs(planned)
    assert shown[1]['before'] == '' and shown[1]['after_header'] == 'permission Editors articles create (source)'
    assert json.loads(shown[0]['before'])['name'] == 'Editors old'


def test_with_prune_permissions_go_before_their_roles():
    dev, staging = dev_and_staging()
    planned = config.diff(dev, staging, prune=True)
    assert [(change['action'], change['key']) for change in planned['changes']][-2:] == [
        ('delete', 'permission Staff pages read'), ('delete', 'role Staff')]
    assert planned['kept'] == []
    assert config.summarise(planned)['roles']['deleted'] == ['Staff']


def test_a_new_role_comes_before_its_permissions_and_equal_configs_have_no_diff():
    dev, _staging = dev_and_staging()
    empty = small([], [])
    planned = config.diff(dev, empty, prune=True)
    assert [change['key'] for change in planned['changes']] == [
        'role Editors', 'permission Editors articles create', 'permission Editors articles read',
        'permission public articles read']
    assert config.diff(dev, copy.deepcopy(dev), prune=True) == {
        'kinds': ['roles', 'permissions'], 'prune': True, 'changes': [], 'kept': []}
    assert config.is_empty(config.diff(dev, dev))
    reverse = config.diff(empty, dev, prune=True)
    assert [change['key'] for change in reverse['changes']] == [
        'permission Editors articles create', 'permission Editors articles read', 'permission public articles read',
        'role Editors']


def test_flows_before_operations_dashboards_before_panels_deleted_in_reverse():
    full = full_config()
    empty = config.check({'format': 'cairncms.ops/config', 'version': 1, 'kinds': list(config.KINDS)})
    kinds = [change['kind'] for change in config.diff(full, empty)['changes']]
    assert kinds == ['role', 'permission', 'permission', 'permission', 'flow', 'operation', 'operation', 'webhook',
                     'preset', 'dashboard', 'panel', 'settings']
    removed = config.diff(empty, full, prune=True)
    assert [change['kind'] for change in removed['changes']] == [
        'panel', 'dashboard', 'preset', 'webhook', 'operation', 'operation', 'flow', 'permission', 'permission',
        'permission', 'role']  # settings are never deleted
    assert [change['key'] for change in removed['changes']][:5] == [
        'panel Board/label', 'dashboard Board', 'preset Editors articles bookmark Mine', 'webhook hook',
        'operation Notify/log']


def test_two_items_named_alike_are_told_apart():
    other = '77777777-7777-4777-8777-777777777777'
    dev = small([role(EDITORS, 'Editors'), role(other, 'Editors')], [])
    keys = [change['key'] for change in config.diff(dev, small([], []))['changes']]
    assert keys == ['role Editors [%s]' % EDITORS, 'role Editors [%s]' % other]


def test_the_target_must_be_read_with_the_source_s_kinds():
    with pytest.raises(CairnError, match=r'^the target config was read without flows, webhooks, presets, '
                                         'dashboards, translations, settings; read it with the kinds of the source'):
        config.diff(full_config(), small([], []))


# ---------------------------------------------------------------------------------------------------------------
# Apply and read over HTTP (the CMS faked)
# ---------------------------------------------------------------------------------------------------------------

class FakeCms:
    """Records calls; answers GETs from ``answers`` (path -> data); fails the call ``fail`` (method, path)."""

    def __init__(self, answers=None, fail=None):
        self.calls, self.answers, self.fail = [], answers or {}, fail

    def __call__(self, method, url, path, token, body=None, query='', timeout=300, validate_certs=True):
        self.calls.append((method, path, body, query))
        if self.fail == (method, path):
            raise CairnError('%s %s%s failed: HTTP 400: Invalid payload.' % (method, url, path))
        return self.answers.get(path) if method == 'GET' else None


def test_apply_calls_the_cms_in_order_and_counts(monkeypatch):
    dev, staging = dev_and_staging()
    cms = FakeCms({'/permissions': [{'id': 7, 'role': EDITORS, 'collection': 'articles', 'action': 'read'},
                                    {'id': 8, 'role': STAFF, 'collection': 'pages', 'action': 'read'},
                                    {'role': EDITORS, 'collection': 'x', 'action': 'read', 'system': True}]})
    monkeypatch.setattr(config, '_call', cms)
    planned = config.diff(dev, staging, prune=True)
    assert config.apply('http://cms', 'token', planned['changes']) == 6
    assert [(method, path, body) for method, path, body, _query in cms.calls] == [
        ('PATCH', '/roles/%s' % EDITORS, {'name': 'Editors'}),
        ('POST', '/permissions', permission(EDITORS, 'articles', 'create')),
        ('POST', '/permissions', permission(None, 'articles', 'read')),
        ('GET', '/permissions', None),
        ('PATCH', '/permissions/7', {'fields': ['*']}),
        ('DELETE', '/permissions/8', None),
        ('DELETE', '/roles/%s' % STAFF, None)]
    assert cms.calls[3][3] == '?limit=-1&fields=id%2Crole%2Ccollection%2Caction'


def test_a_flow_s_links_are_set_once_its_operations_exist(monkeypatch):
    full = full_config()
    empty = config.check({'format': 'cairncms.ops/config', 'version': 1, 'kinds': ['flows']})
    cms = FakeCms()
    monkeypatch.setattr(config, '_call', cms)
    flows_only = dict(full, kinds=['flows'])
    changes = config.diff(config.check(flows_only), empty)['changes']
    assert config.apply('http://cms', 'token', changes) == 3
    calls = [(method, path, body) for method, path, body, _query in cms.calls]
    assert calls[0][:2] == ('POST', '/flows') and 'operation' not in calls[0][2]
    assert calls[1][:2] == ('POST', '/operations') and 'resolve' not in calls[1][2] and calls[1][2]['id'] == OP1
    assert calls[3:] == [('PATCH', '/flows/%s' % FLOW, {'operation': OP1}),
                         ('PATCH', '/operations/%s' % OP1, {'resolve': OP2})]
    # deleted: the operations point nowhere first, then go, then the flow
    cms.calls.clear()
    config.apply('http://cms', 'token', config.diff(empty, config.check(flows_only), prune=True)['changes'])
    assert [(method, path, body) for method, path, body, _query in cms.calls] == [
        ('PATCH', '/operations/%s' % OP1, {'resolve': None, 'reject': None}),
        ('DELETE', '/operations/%s' % OP1, None), ('DELETE', '/operations/%s' % OP2, None),
        ('DELETE', '/flows/%s' % FLOW, None)]


def test_a_failed_change_says_what_was_applied_and_what_was_not(monkeypatch):
    dev, staging = dev_and_staging()
    monkeypatch.setattr(config, '_call', FakeCms(fail=('POST', '/permissions')))
    with pytest.raises(CairnError) as caught:
        config.apply('http://cms', 'secret-token', config.diff(dev, staging)['changes'])
    assert caught.value.message == (
        'cannot create permission Editors articles create: POST http://cms/permissions failed: HTTP 400: Invalid '
        'payload.. Applied before it (1): role Editors. Not applied (3): permission Editors articles create; '
        'permission public articles read; permission Editors articles read')
    assert caught.value.details == {'applied': ['role Editors'], 'failed': 'permission Editors articles create',
                                    'not_applied': ['permission Editors articles create',
                                                    'permission public articles read',
                                                    'permission Editors articles read']}


def test_settings_are_patched_as_one_object(monkeypatch):
    full = full_config()
    only = config.check(dict(full, kinds=['settings']))
    cms = FakeCms()
    monkeypatch.setattr(config, '_call', cms)
    changed = copy.deepcopy(only)
    changed['settings'][0]['project_name'] = 'Staging'
    config.apply('http://cms', 't', config.diff(only, changed)['changes'])
    config.apply('http://cms', 't', config.diff(only, dict(only, settings=[]))['changes'])
    assert [(method, path, body) for method, path, body, _query in cms.calls] == [
        ('PATCH', '/settings', {'project_name': 'Dev'}), ('PATCH', '/settings', only['settings'][0])]
    assert config.diff(dict(only, settings=[]), only, prune=True)['changes'] == []


def test_read_http_gives_the_rows_the_database_has(monkeypatch):
    rows = canonical_rows()
    fields = [{'collection': table, 'field': column, 'type': 'integer' if column == 'id' and isinstance(
        items[0]['id'], int) else 'string', 'schema': {}} for table, items in rows.items() for column in items[0]]
    fields += [{'collection': 'directus_roles', 'field': 'users', 'type': 'alias', 'schema': None}]
    answers = {spec.path: rows[spec.table] for spec in config.SPECS if spec.table in rows}
    answers['/permissions'] = rows['directus_permissions'] + [
        {'role': ADMIN, 'collection': 'directus_users', 'action': 'read', 'permissions': {}, 'validation': None,
         'presets': None, 'fields': ['*'], 'system': True}]
    answers['/settings'] = rows['directus_settings'][0]
    answers['/fields'] = fields
    cms = FakeCms(answers)
    monkeypatch.setattr(config, '_call', cms)
    read = config.read_live(url='http://cms', token='t', kinds=config.KINDS)
    assert read == expected_document()
    roles_query = next(query for _method, path, _body, query in cms.calls if path == '/roles')
    assert 'users' not in roles_query and 'fields=id%2Cname%2Cicon' in roles_query and '&filter=' in roles_query
    cms.calls.clear()
    config.read_http('http://cms', 't', ['roles'])
    again = next(query for _method, path, _body, query in cms.calls if path == '/roles')
    assert again != roles_query  # never answered from the CMS's cache
    assert again.split('&filter=')[0] == roles_query.split('&filter=')[0]
    answers['/settings'] = {'id': None, 'project_name': 'Directus'}
    assert config.read_live(url='http://cms', token='t', kinds=['settings'])['settings'] == []
    with pytest.raises(CairnError, match='^the config of an instance is read from its database'):
        config.read_live(kinds=None)
