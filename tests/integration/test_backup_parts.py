# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The schema and config parts of every backup. Against real Directus 10.0.0 (SQLite), through the backup playbook:
with the CMS's CLI the restore point holds the CMS's own schema snapshot (the same bytes as its HTTP snapshot,
normalised, and consistent with the dump) and the roles and permissions made over its API; the repository check
reads both; without a way to make the schema the point says why and the backup still succeeds. On PostgreSQL and
MariaDB the config is read inside the dump's own snapshot: while a writer adds a role and an article in one
transaction at a time, every restore point's config has exactly the roles its dump counted."""

from __future__ import annotations

import json
import os
import threading

import pytest

import _directus
import _servers
from conftest import SHOW_STATS, custom_stats, part_of, recap, run_module, run_playbook, write_inventory
from test_cms_schema import _cli, live_snapshot, seed_dev
from test_databases import instance

from ansible_collections.cairncms.ops.plugins.module_utils._cms import config as _cms_config
from ansible_collections.cairncms.ops.plugins.module_utils._cms import schema as _cms_schema

ROLE = '6b8f3c2e-1d4a-4c5b-9e7f-0a1b2c3d4e5f'


def newest_manifest(repository, instance_name):
    points = os.path.join(repository, instance_name, 'points')
    newest = sorted(os.listdir(points))[-1]
    with open(os.path.join(points, newest, 'manifest.json'), encoding='utf-8') as handle:
        return json.load(handle), os.path.join(points, newest)


def test_backup_holds_the_cms_schema_and_config_or_says_why_not(tmp_path):
    workdir = tmp_path / 'cms'
    env = _directus.bootstrap(workdir)
    repository = str(tmp_path / 'repository')
    with _directus.running(workdir) as url:
        token = _directus.login(url, env['ADMIN_EMAIL'], env['ADMIN_PASSWORD'])
        seed_dev(url, token)
        _directus.request_json('POST', url + '/roles', token, json_body={
            'id': ROLE, 'name': 'Editors', 'icon': 'edit', 'app_access': True, 'admin_access': False})
        _directus.request_json('POST', url + '/permissions', token, json_body={
            'role': ROLE, 'collection': 'books', 'action': 'read', 'fields': ['*']})
        live = live_snapshot(url, token)
        inventory = write_inventory(str(tmp_path / 'inventory.json'), {'cms': {
            'cairn_env_file': str(workdir / '.env'), 'cairn_cms_command': _cli()}}, repository)
        run = run_playbook('backup.yml', inventory, environ=SHOW_STATS)
        assert run.returncode == 0, run.stdout + run.stderr
    assert env['SECRET'] not in run.stdout + run.stderr
    manifest, point = newest_manifest(repository, 'cms')
    schema = part_of(manifest, 'schema')
    assert (schema['captured'], schema['via'], schema['vendor'], schema['consistent']) == (True, 'cli', 'sqlite', True)
    assert schema['counts'] == {'collections': 2, 'fields': len(live['fields']), 'relations': 1}, schema
    with open(os.path.join(point, 'schema.json'), 'rb') as handle:
        assert handle.read() == _cms_schema.render(live)  # the CMS's own snapshot, as its HTTP API gives it
    config = part_of(manifest, 'config')
    assert config['captured'] and config['kinds'] == ['roles', 'permissions'], config
    with open(os.path.join(point, 'config.json'), 'rb') as handle:
        document = _cms_config.loads(handle.read())
    assert [(role['id'], role['name']) for role in document['roles']] == [(ROLE, 'Editors')]  # admin left out
    assert [(entry['role'], entry['collection'], entry['action']) for entry in document['permissions']] == [
        (ROLE, 'books', 'read')]
    checked = run_module('cairn_repository_check', repository={'type': 'local', 'path': repository}, instance='cms')
    assert not checked.failed and not checked['problems'], checked

    # Without the CLI or an URL and token: no schema part, the reason in the manifest and the result; still a backup.
    inventory = write_inventory(str(tmp_path / 'inventory2.json'), {'cms': {'cairn_env_file': str(workdir / '.env')}},
                                repository)
    run = run_playbook('backup.yml', inventory, environ=SHOW_STATS)
    assert run.returncode == 0 and recap(run.stdout, 'cms')['failed'] == 0, run.stdout + run.stderr
    manifest, point = newest_manifest(repository, 'cms')
    schema = part_of(manifest, 'schema')
    assert schema['captured'] is False and 'cairn_cms_command' in schema['reason'] and not schema['artifacts']
    assert not os.path.exists(os.path.join(point, 'schema.json'))
    assert part_of(manifest, 'config')['captured'] is True
    listed = run_module('cairn_backup_info', repository={'type': 'local', 'path': repository}, instance='cms')
    assert [(p['schema_captured'], p['config_captured']) for p in listed['restore_points']] == [(True, True),
                                                                                                (False, True)]
    assert custom_stats(run.stdout)['cairn_backup']['cms']['outcome'] == 'succeeded'


PERMISSIONS = {
    'postgres': 'CREATE TABLE directus_permissions (id serial PRIMARY KEY, role uuid, collection varchar(64) NOT NULL, '
                'action varchar(10) NOT NULL, permissions json, validation json, presets json, fields text)',
    'mariadb': 'CREATE TABLE directus_permissions (id int unsigned NOT NULL AUTO_INCREMENT PRIMARY KEY, role char(36), '
               'collection varchar(64) NOT NULL, action varchar(10) NOT NULL, permissions json, validation json, '
               'presets json, fields text)',
}


@pytest.mark.parametrize('fixture', ['pg_database', 'mariadb_database'])
def test_config_is_read_inside_the_dump_snapshot(request, tmp_path, repo, fixture):
    database = request.getfixturevalue(fixture)
    server = database.server
    database.sql(PERMISSIONS[server.vendor])
    # the config leaves out admin roles (each instance has its own): the writer adds none
    admins = int(database.rows('SELECT COUNT(*) FROM directus_roles WHERE admin_access')[0][0])
    stop = threading.Event()
    errors = []

    def writer():
        number = 0
        while not stop.is_set():
            number += 1
            role = "'%08d-0000-4000-8000-000000000000'" % number
            try:
                server.sql(('START TRANSACTION; ' if server.vendor == 'mariadb' else 'BEGIN; ') +
                           "INSERT INTO directus_roles (id, name) VALUES (%s, 'r%d'); " % (role, number) +
                           "INSERT INTO directus_permissions (role, collection, action) VALUES (%s, 'articles', "
                           "'read'); INSERT INTO articles (status, title) VALUES ('draft', 'live'); COMMIT;" % role,
                           database.name)
            except _servers.SqlError as exc:
                errors.append(exc)
                return

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        results = [run_module('cairn_backup', env_file=str(instance(tmp_path, 'source%d' % n, database.env())),
                              repository=repo, instance='cms', posture=False, verify=False) for n in range(3)]
    finally:
        stop.set()
        thread.join()
    assert not errors, errors
    seen = set()
    for result in results:
        assert not result.failed and result['config']['captured'], result
        manifest, point = newest_manifest(repo['path'], 'cms') if result is results[-1] else (None, None)
        counts = result['database']['row_counts']
        assert result['config']['counts']['roles'] == counts['directus_roles'] - admins, result['config']
        assert result['config']['counts']['permissions'] == counts['directus_permissions'], result['config']
        seen.add(counts['directus_roles'])
    assert len(seen) > 1, 'the writer made no progress between dumps'
    with open(os.path.join(point, 'config.json'), 'rb') as handle:
        document = _cms_config.loads(handle.read())
    assert len(document['roles']) == part_of(manifest, 'database')['row_counts']['directus_roles'] - admins
