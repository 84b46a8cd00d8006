# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Structure promotion (the promote role and cairn_promote) through ansible-playbook against real Directus 10.0.0
(CairnCMS's fork point), on SQLite and on PostgreSQL.

A dev instance gets a collection with fields and an M2O relation (books.author -> authors), a role (Editors) and its
permissions, over its HTTP API; a staging instance has content of its own and runs under a service of the test's
(cairn_cms_service of kind ``command``, tests/integration/_cmsctl.py), so that the way back can stop it. Promoting
dev to staging: check mode with --diff shows the diff per collection, field, relation, role and permission and
changes nothing (schema, config, content, activity); the apply takes a restore point first, leaves staging's content,
users and files as they were, and the new collection works over HTTP for a user of the new role (an item created and
read back); a second run changes nothing. The snapshot mode writes dev's structure to a directory (a second run
writes nothing); a promotion from that directory brings dev's next changes, keeping what staging has and the source
lacks until prune removes it. An apply the CMS rejects halfway (the schema in, then a permission it refuses) puts
staging back from the restore point: its schema, config and content are as before. On PostgreSQL the source is a
restore point of dev (its schema and config parts), and a PostgreSQL snapshot is refused by a SQLite target without
force, naming both sides."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time

import pytest

import _directus
import _site
from conftest import SHOW_STATS, custom_stats, digest_tree, recap, run_playbook

CMSCTL = os.path.join(os.path.dirname(os.path.abspath(__file__)), '_cmsctl.py')
EDITOR_PASSWORD = 'editor-pass-1234'


def _cli():
    return [_directus._node(), str(_directus.ensure_installed())]


_health = _site.health


class Instance:
    """A bootstrapped Directus in ``workdir``, run by the test's service manager, with a static admin token."""

    def __init__(self, name, workdir, env=None):
        self.name = name
        self.workdir = workdir
        self.settings = _directus.bootstrap(workdir, env)
        self.url = self.settings['PUBLIC_URL']
        self.token = 'admin-token-of-%s' % name

    def _ctl(self, action):
        return subprocess.run([sys.executable, CMSCTL, action, str(self.workdir)], check=False).returncode

    def start(self):
        assert self._ctl('start') == 0
        deadline = time.monotonic() + 120
        while _health(self.url) not in ('ok', 'warn'):
            assert time.monotonic() < deadline, 'the CMS on %s did not become healthy' % self.url
            time.sleep(0.25)
        return self

    def stop(self):
        self._ctl('stop')

    def static_token(self):
        session = _directus.login(self.url, self.settings['ADMIN_EMAIL'], self.settings['ADMIN_PASSWORD'])
        _directus.request_json('PATCH', self.url + '/users/me', session, json_body={'token': self.token})
        return self

    def service(self):
        command = [sys.executable, CMSCTL]
        return {'kind': 'command', 'url': self.url, 'start': command + ['start', str(self.workdir)],
                'stop': command + ['stop', str(self.workdir)], 'status': command + ['status', str(self.workdir)],
                'pid_file': str(self.workdir / 'cms.pid'), 'stop_timeout': 60, 'start_timeout': 120}

    def get(self, path, **params):
        return _directus.request_json('GET', self.url + path, self.token, params=params or None)

    def snapshot(self):
        return self.get('/schema/snapshot')

    def config(self):
        """Roles and permissions as the CMS serves them (its permissions of app access, made up, left out)."""
        roles = sorted(self.get('/roles', limit=-1, fields='id,name,icon,description,admin_access,app_access'),
                       key=lambda role: role['id'])
        permissions = sorted((item for item in self.get('/permissions', limit=-1) if item.get('id') is not None),
                             key=lambda item: (str(item['role']), item['collection'], item['action']))
        return {'roles': roles, 'permissions': [dict(item, id=None) for item in permissions]}

    def content(self, collections=None):
        """What promotion never touches: content rows (of ``collections``, default all), users, files."""
        if collections is None:
            collections = sorted(item['collection'] for item in self.get('/collections')
                                 if not item['collection'].startswith('directus_') and item.get('schema'))
        return {'items': {name: self.get('/items/%s' % name, limit=-1, sort='id') for name in collections},
                'users': self.get('/users', fields='id,email,role,status,token', sort='email'),
                'files': self.get('/files', fields='id,filename_disk,filesize', sort='id')}

    def state(self):
        return {'schema': canonical(self.snapshot()), 'config': self.config(), 'content': self.content()}


def canonical(snapshot):
    """A snapshot's content, independent of the order of its lists."""
    return json.dumps({key: sorted(json.dumps(item, sort_keys=True) for item in value) if isinstance(value, list)
                       else value for key, value in snapshot.items()}, sort_keys=True)


def without(snapshot, collections):
    return dict(snapshot, **{kind: [item for item in snapshot[kind] if item['collection'] not in collections]
                             for kind in ('collections', 'fields', 'relations')})


def seed_dev(dev):
    """authors and books (books.author -> authors, M2O), and the role Editors allowed to create and read both."""
    url, token = dev.url, dev.token
    _directus.create_collection(url, token, 'authors', [{'field': 'name', 'type': 'string', 'schema': {}}])
    _directus.create_collection(url, token, 'books', [
        {'field': 'pages', 'type': 'integer', 'schema': {'default_value': 1}, 'meta': {'note': 'printed pages'}},
        {'field': 'author', 'type': 'integer', 'schema': {},
         'meta': {'interface': 'select-dropdown-m2o', 'special': ['m2o']}}])
    _directus.request_json('POST', url + '/relations', token, json_body={
        'collection': 'books', 'field': 'author', 'related_collection': 'authors',
        'schema': {'on_delete': 'SET NULL'}})
    role = _directus.request_json('POST', url + '/roles', token, json_body={
        'name': 'Editors', 'icon': 'edit', 'admin_access': False, 'app_access': True})
    for collection in ('authors', 'books'):
        for action in ('create', 'read'):
            _directus.request_json('POST', url + '/permissions', token, json_body={
                'role': role['id'], 'collection': collection, 'action': action, 'fields': ['*']})
    return role['id']


def seed_staging(staging):
    """Content of staging's own: a collection pages with an item, an uploaded file and a user."""
    _directus.create_collection(staging.url, staging.token, 'pages')
    _directus.create_item(staging.url, staging.token, 'pages', {'title': 'Home'})
    _directus.upload_file(staging.url, staging.token, 'notes.txt', b'staging notes\n', 'text/plain')
    _directus.request_json('POST', staging.url + '/users', staging.token, json_body={
        'email': 'writer@example.com', 'password': 'writer-pass-1234', 'status': 'active'})


def works_for_an_editor(target, role_id):
    """A user of the promoted role creates an author and a book (M2O) and reads the book back."""
    email = 'editor-%d@example.com' % time.monotonic_ns()
    _directus.request_json('POST', target.url + '/users', target.token, json_body={
        'email': email, 'password': EDITOR_PASSWORD, 'role': role_id, 'status': 'active'})
    session = _directus.login(target.url, email, EDITOR_PASSWORD)
    author = _directus.create_item(target.url, session, 'authors', {'name': 'Ada'})
    book = _directus.create_item(target.url, session, 'books', {'title': 'Notes', 'author': author['id']})
    return _directus.request_json('GET', '%s/items/books/%s' % (target.url, book['id']), session,
                                  params={'fields': 'title,pages,author.name'})


class World:
    """Inventories and playbook runs for one test (all instances on this host, each its own inventory host)."""

    def __init__(self, base):
        self.base = base
        self.repository = {'type': 'local', 'path': str(base / 'repository')}
        self.started = []

    def instance(self, name, env=None):
        made = Instance(name, self.base / name, env).start()
        self.started.append(made)
        return made.static_token()

    def inventory(self, host, **variables):
        path = self.base / ('inventory-%d.json' % time.monotonic_ns())
        hostvars = {'ansible_connection': 'local', 'ansible_python_interpreter': sys.executable,
                    'cairn_repository': self.repository, 'cairn_instance': host.name,
                    'cairn_env_file': str(host.workdir / '.env'), 'cairn_cms_url': host.url,
                    'cairn_cms_token': host.token, 'cairn_cms_command': _cli(), 'cairn_cms_service': host.service()}
        hostvars.update(variables)
        path.write_text(json.dumps({'all': {'hosts': {host.name: hostvars}}}))
        return str(path)

    def play(self, host, check=False, diff=False, playbook='promote.yml', **variables):
        """Run ``playbook`` on ``host``'s instance; (the run, the promote_result it published)."""
        run = run_playbook(playbook, self.inventory(host, **variables), check=check,
                           extra=['--diff'] if diff else [], environ=SHOW_STATS)
        return run, custom_stats(run.stdout).get('cairn_promote', {}).get(host.name)

    def points(self, name):
        where = os.path.join(self.repository['path'], name, 'points')
        return sorted(os.listdir(where)) if os.path.isdir(where) else []


@pytest.fixture
def world(tmp_path):
    made = World(tmp_path)
    try:
        yield made
    finally:
        for instance in made.started:
            instance.stop()


def _lines(result, prefix):
    return [line for line in result['changes'] if line.startswith(prefix)]


def broken_copy(structure, where):
    """``structure`` with a collection more (reviews, a copy of authors) and a permission the CMS rejects (its role
    is nowhere): the schema applies, then the config fails."""
    shutil.copytree(structure, where)
    schema = json.loads((where / 'schema.json').read_text())
    for kind in ('collections', 'fields'):
        schema[kind] += [json.loads(json.dumps(item).replace('"authors"', '"reviews"'))
                         for item in schema[kind] if item['collection'] == 'authors']
    (where / 'schema.json').write_text(json.dumps(schema))
    (where / 'config' / 'permissions' / 'ghosts').mkdir()
    (where / 'config' / 'permissions' / 'ghosts' / 'reviews.json').write_text(json.dumps([{
        'role': '00000000-0000-4000-8000-00000000dead', 'collection': 'reviews', 'action': 'read', 'fields': ['*'],
        'permissions': None, 'validation': None, 'presets': None}]))
    return where


def test_dev_promoted_to_staging_on_sqlite(world, tmp_path):
    dev, staging = world.instance('dev'), world.instance('staging')
    editors = seed_dev(dev)
    seed_staging(staging)
    source = {'name': 'dev', 'env_file': str(dev.workdir / '.env'), 'command': _cli()}
    before = staging.state()
    activity = staging.get('/activity', limit=1, sort='-id', fields='id')

    # Check mode with --diff: the diff per collection, field, relation, role and permission; nothing changes.
    run, result = world.play(staging, check=True, diff=True, cairn_promote_from=source)
    assert run.returncode == 0, run.stdout + run.stderr
    assert result['outcome'] == 'succeeded' and result['check_mode'] is True and result['differences'] is True
    assert result['source'] == {'kind': 'instance', 'name': 'dev', 'vendor': 'sqlite', 'cms_version': '10.0.0',
                                'counts': {'collections': 2, 'fields': 7, 'relations': 1}}, result['source']
    assert {'create collection authors', 'create collection books', 'create field books.author',
            'create relation books.author -> authors', 'keep collection pages (not in the snapshot; prune is off)',
            'create role Editors', 'create permission Editors authors create', 'create permission Editors books read'
            } <= set(result['changes']), result['changes']
    assert len(_lines(result, 'create permission')) == 4, result['changes']
    assert result['config']['summary']['roles']['added'] == ['Editors'], result['config']
    assert '+++ after: relation books.author (snapshot)' in run.stdout
    assert '+++ after: permission Editors books create (source)' in run.stdout
    assert 'changed: [staging]' in run.stdout.split('TASK [cairncms.ops.promote : Apply the schema, then the config]')[1]
    assert result['restore_point'] is None and world.points('staging') == []
    assert staging.state() == before
    assert staging.get('/activity', limit=1, sort='-id', fields='id') == activity  # not even activity
    assert dev.token not in run.stdout + run.stderr and staging.token not in run.stdout + run.stderr

    # The promotion: a restore point first, then the schema and the config; staging's own content stays.
    run, result = world.play(staging, cairn_promote_from=source)
    assert run.returncode == 0, run.stdout + run.stderr
    assert result['outcome'] == 'succeeded' and result['applied'] == {'schema': True, 'config': 5}, result
    assert result['restore_point'] and world.points('staging') == [result['restore_point']]
    assert staging.content(['pages']) == before['content']
    assert canonical(without(staging.snapshot(), ['pages'])) == canonical(dev.snapshot())
    assert staging.config()['roles'] == sorted(before['config']['roles'] + [
        role for role in dev.config()['roles'] if role['id'] == editors], key=lambda role: role['id'])
    assert [item for item in staging.config()['permissions'] if item['role'] == editors] == [
        item for item in dev.config()['permissions'] if item['role'] == editors]
    assert works_for_an_editor(staging, editors) == {'title': 'Notes', 'pages': 1, 'author': {'name': 'Ada'}}
    assert staging.token not in run.stdout + run.stderr

    # A second run changes nothing, and takes no restore point.
    run, result = world.play(staging, cairn_promote_from=source)
    assert run.returncode == 0, run.stdout + run.stderr
    assert recap(run.stdout, 'staging')['changed'] == 0, run.stdout
    assert result['differences'] is False and result['restore_point'] is None and len(world.points('staging')) == 1
    assert result['changes'] == ['keep collection pages (not in the snapshot; prune is off)'], result['changes']

    # Snapshot mode: dev's structure in a directory for a commit; a second run writes nothing.
    structure = tmp_path / 'structure'
    run, result = world.play(dev, cairn_promote_mode='snapshot', cairn_promote_dest=str(structure))
    assert run.returncode == 0, run.stdout + run.stderr
    assert result['files'] == {'schema.json': 'changed', 'config/config.json': 'changed',
                               'config/roles/editors.json': 'changed',
                               'config/permissions/editors/authors.json': 'changed',
                               'config/permissions/editors/books.json': 'changed'}, result['files']
    assert result['path'] == str(structure) and result['source']['name'] == 'dev', result
    written = digest_tree(structure)
    assert json.loads((structure / 'schema.json').read_text())['vendor'] == 'sqlite'
    run, result = world.play(dev, cairn_promote_mode='snapshot', cairn_promote_dest=str(structure))
    assert run.returncode == 0 and recap(run.stdout, 'dev')['changed'] == 0, run.stdout
    assert set(result['files'].values()) == {'unchanged'} and digest_tree(structure) == written

    # dev moves on: a field more, a permission more, one less. Promoted from the directory; what staging has and
    # the source lacks is kept.
    _directus.request_json('POST', dev.url + '/fields/books', dev.token, json_body={
        'field': 'isbn', 'type': 'string', 'meta': {'note': 'ISBN-13'}, 'schema': {}})
    _directus.request_json('POST', dev.url + '/permissions', dev.token, json_body={
        'role': editors, 'collection': 'books', 'action': 'update', 'fields': ['title', 'isbn']})
    [gone] = dev.get('/permissions', filter=json.dumps({'role': {'_eq': editors}, 'collection': {'_eq': 'authors'},
                                                        'action': {'_eq': 'create'}}))
    _directus.request('DELETE', '%s/permissions/%s' % (dev.url, gone['id']), dev.token)
    run, result = world.play(dev, cairn_promote_mode='snapshot', cairn_promote_dest=str(structure))
    assert run.returncode == 0, run.stdout + run.stderr
    assert {name for name, state in result['files'].items() if state == 'changed'} == {
        'schema.json', 'config/permissions/editors/authors.json', 'config/permissions/editors/books.json'}
    from_directory = {'directory': str(structure), 'name': 'structure'}
    run, result = world.play(staging, cairn_promote_from=from_directory)
    assert run.returncode == 0, run.stdout + run.stderr
    assert result['source']['kind'] == 'directory' and result['applied'] == {'schema': True, 'config': 1}, result
    assert set(result['changes']) == {
        'create field books.isbn', 'create permission Editors books update',
        'keep collection pages (not in the snapshot; prune is off)',
        'keep permission Editors authors create (not in the source; prune is off)'}, result['changes']
    assert canonical(without(staging.snapshot(), ['pages'])) == canonical(dev.snapshot())
    assert ('authors', 'create') in {(item['collection'], item['action']) for item in staging.config()['permissions']
                                     if item['role'] == editors}

    # An apply the CMS rejects halfway (the schema in, then a permission of a role that is nowhere): staging is put
    # back from the restore point taken first, its schema, config and content as they were.
    before = staging.state()
    points = world.points('staging')
    run, result = world.play(staging, cairn_promote_from={'directory': str(broken_copy(structure, tmp_path / 'bad')),
                                                          'name': 'a broken structure'})
    assert run.returncode != 0
    assert result['outcome'] == 'failed' and result['failed_step'] == 'Apply the schema, then the config', result
    assert (result['failed_part'], result['applied'], result['rolled_back']) == (
        'config', {'schema': True, 'config': 0}, True), result
    assert result['restore_point'] and result['restore_point'] not in points, result
    assert result['error'].startswith('the schema was applied, then the config apply failed: cannot create '
                                      'permission 00000000-0000-4000-8000-00000000dead reviews read: POST %s/'
                                      'permissions failed: HTTP 400: Invalid foreign key' % staging.url), result
    assert result['error'].endswith('The target was put back from restore point %s, taken before the apply'
                                    % result['restore_point']), result['error']
    assert _health(staging.url) == 'ok'
    assert staging.state() == before

    # Prune: what staging has and the source lacks goes - the permission, and staging's own collection with its
    # content; a second run changes nothing.
    run, result = world.play(staging, cairn_promote_from=from_directory, cairn_promote_prune=True)
    assert run.returncode == 0, run.stdout + run.stderr
    assert result['changes'] == ['delete collection pages', 'delete permission Editors authors create'], result
    assert canonical(staging.snapshot()) == canonical(dev.snapshot())
    assert [item for item in staging.config()['permissions'] if item['role'] == editors] == [
        item for item in dev.config()['permissions'] if item['role'] == editors]
    assert staging.content()['items'] == {name: before['content']['items'][name] for name in ('authors', 'books')}
    run, result = world.play(staging, cairn_promote_from=from_directory, cairn_promote_prune=True)
    assert run.returncode == 0 and recap(run.stdout, 'staging')['changed'] == 0, run.stdout
    assert result['changes'] == [], result['changes']


def test_a_restore_point_of_dev_promoted_to_staging_on_postgresql(world, pg_pair):
    dev, staging = world.instance('dev', pg_pair[0]), world.instance('staging', pg_pair[1])
    editors = seed_dev(dev)
    seed_staging(staging)

    # dev's restore point (the backup role) holds its schema and config parts: the source.
    backup = run_playbook('backup.yml', world.inventory(dev), environ=SHOW_STATS)
    assert backup.returncode == 0, backup.stdout + backup.stderr
    [point] = world.points('dev')
    source = {'restore_point': 'latest', 'instance': 'dev'}
    before = staging.state()

    run, result = world.play(staging, check=True, diff=True, cairn_promote_from=source)
    assert run.returncode == 0, run.stdout + run.stderr
    assert result['source']['kind'] == 'restore_point' and result['source']['restore_point'] == point, result
    assert (result['source']['vendor'], result['target']['vendor']) == ('postgres', 'postgres'), result
    assert {'create relation books.author -> authors', 'create role Editors',
            'create permission Editors books create'} <= set(result['changes']), result['changes']
    assert '+++ after: permission Editors books create (source)' in run.stdout
    assert staging.state() == before

    run, result = world.play(staging, cairn_promote_from=source)
    assert run.returncode == 0, run.stdout + run.stderr
    assert result['applied'] == {'schema': True, 'config': 5} and result['restore_point'], result
    assert staging.content(['pages']) == before['content']
    assert canonical(without(staging.snapshot(), ['pages'])) == canonical(dev.snapshot())
    assert works_for_an_editor(staging, editors) == {'title': 'Notes', 'pages': 1, 'author': {'name': 'Ada'}}

    run, result = world.play(staging, cairn_promote_from=source)
    assert run.returncode == 0, run.stdout + run.stderr
    assert recap(run.stdout, 'staging')['changed'] == 0 and result['differences'] is False, result

    # A PostgreSQL schema into a SQLite instance: refused without force, naming both sides; nothing changes.
    lite = world.instance('lite')
    lite_before = lite.state()
    run, result = world.play(lite, cairn_promote_from=source)
    assert run.returncode != 0
    assert result['failed_step'] == 'Diff the source against the target', result
    assert result['error'].startswith(
        'the schema snapshot restore point latest of dev was taken from directus 10.0.0 on postgres, and %s runs '
        'directus 10.0.0 on sqlite: its database vendor differs (postgres, not sqlite).' % lite.url), result['error']
    assert lite.state() == lite_before and world.points('lite') == []
