# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Restoring into other storage locations and backends (location_map), turning off flows and webhooks in a
restored copy (quiesce), and the cross-store check."""

from __future__ import annotations

import json
import os
import sqlite3

import pytest

import _servers
import demo_instance
from _s3 import ACCESS_KEY, SECRET_KEY, env_lines
from conftest import recap, run_module, run_playbook, write_inventory
from test_databases import backup as db_backup
from test_modules import backup

LOCAL = 'STORAGE_LOCATIONS=local\nSTORAGE_LOCAL_DRIVER=local\nSTORAGE_LOCAL_ROOT=./uploads  # uploads\n'


def relocate_env(directory, locations):
    """Replace the demo instance's local location by ``locations`` (.env text)."""
    env = directory / '.env'
    text = env.read_text()
    assert LOCAL in text
    env.write_text(text.replace(LOCAL, locations))
    return env


def db_rows(path, sql):
    conn = sqlite3.connect('file:%s?mode=ro' % path, uri=True)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def restore(env_file, repo, location_map, instance='blog', check_mode=False, replace=False):
    common = dict(env_file=str(env_file), repository=repo, instance=instance, restore_point='latest',
                  replace=replace, location_map=location_map, check_mode=check_mode)
    return run_module('cairn_db_restore', **common), run_module('cairn_storage_sync', direction='restore', **common)


def verify(env_file, repo, location_map, instance='blog', checks=('database', 'files')):
    return run_module('cairn_restore_verify', env_file=str(env_file), repository=repo, instance=instance,
                      checks=list(checks), location_map=location_map)


def bucket(client, name, prefix):
    listed = client.list_objects_v2(Bucket=name, Prefix=prefix).get('Contents', [])
    return {item['Key'][len(prefix):]: client.get_object(Bucket=name, Key=item['Key'])['Body'].read()
            for item in listed}


def originals(directory):
    return {name: (directory / name).read_bytes() for name in os.listdir(directory) if '__' not in name}


def test_local_disk_to_s3_with_a_location_map(tmp_path, s3_server, repo):
    results = []
    source = tmp_path / 'source'
    demo_instance.populated(str(source))
    manifest, _dump, _files = backup(source / '.env', repo)
    expected = originals(source / 'uploads')
    assert len(expected) == 6
    client = s3_server.client()
    name = s3_server.create_bucket('cairn-relocated')
    target = tmp_path / 'target'
    demo_instance.empty(str(target))
    env = relocate_env(target, 'STORAGE_LOCATIONS=cloud\n' + env_lines('cloud', s3_server.endpoint, name, 'media'))

    # Without a map, the restore point's location "local" has nowhere to go: refused, nothing written.
    files = run_module('cairn_storage_sync', env_file=str(env), repository=repo, instance='blog',
                       direction='restore')
    results.append(files)
    assert files.failed and 'local' in files['msg'] and 'STORAGE_LOCATIONS=cloud' in files['msg'], files
    assert 'cairn_restore_location_map' in files['msg'], files
    db = run_module('cairn_db_restore', env_file=str(env), repository=repo, instance='blog',
                    location_map={'local': 'clod'})
    results.append(db)
    assert db.failed and 'clod' in db['msg'] and not (target / 'data.db').exists(), db

    db, files = restore(env, repo, {'local': 'cloud'}, check_mode=True)
    results += [db, files]
    assert db['changed'] and db['relocated_rows'] is None, db
    assert db['relocations'] == [{'from': 'local', 'to': 'cloud', 'rows': None}], db
    assert files['changed'] and files['transferred'] == 6, files
    assert files['locations'][0]['location'] == 'local' and files['locations'][0]['target'] == 'cloud', files
    assert bucket(client, name, '') == {} and not (target / 'data.db').exists()

    db, files = restore(env, repo, {'local': 'cloud'})
    results += [db, files]
    assert not db.failed and db['changed'] and db['relocated_rows'] == 6, db
    assert db['relocations'] == [{'from': 'local', 'to': 'cloud', 'rows': 6}], db
    assert not files.failed and files['transferred'] == 6, files
    # The bytes are in the bucket verbatim, under the location's root and the same filename_disk.
    assert bucket(client, name, 'media/') == expected
    rows = db_rows(target / 'data.db', 'SELECT storage, filename_disk FROM directus_files ORDER BY filename_disk')
    assert rows == [('cloud', filename) for filename in sorted(expected)]

    checked = verify(env, repo, {'local': 'cloud'})
    results.append(checked)
    assert not checked.failed and len(checked['checks']) == 5, checked
    assert checked['unreferenced'] == {'count': 0, 'bytes': 0, 'examples': [], 'locations': {}}, checked

    # The same restore again changes nothing; another map is another restore (refused without replace).
    db, files = restore(env, repo, {'local': 'cloud'})
    results += [db, files]
    assert (db['changed'], db['target_state'], db['relocated_rows']) == (False, 'identical', 0), db
    assert (files['changed'], files['unchanged']) == (False, 6), files
    db = run_module('cairn_db_restore', env_file=str(env), repository=repo, instance='blog')
    results.append(db)
    assert db.failed and 'Set replace' in db['msg'], db

    # An object no row references is reported, not deleted; a regenerable derivative is not reported.
    client.put_object(Bucket=name, Key='media/stray.bin', Body=b'x' * 1234)
    derivative = sorted(expected)[0].rsplit('.', 1)[0] + '__' + 'a' * 40 + '.png'
    client.put_object(Bucket=name, Key='media/' + derivative, Body=b'thumbnail')
    checked = verify(env, repo, {'local': 'cloud'})
    results.append(checked)
    assert not checked.failed, checked
    assert checked['unreferenced'] == {'count': 1, 'bytes': 1234, 'examples': ['cloud:stray.bin'],
                                       'locations': {'cloud': 1}}, checked
    assert bucket(client, name, 'media/')['stray.bin'] == b'x' * 1234

    text = json.dumps(results)
    assert SECRET_KEY not in text and ACCESS_KEY not in text


def test_cross_store_check_reports_and_fails(source, target, repo):
    backup(source / '.env', repo)
    db, files = restore(target / '.env', repo, {})
    assert db['changed'] and files['transferred'] == 6 and db['relocated_rows'] == 0, (db, files)
    uploads = target / 'uploads'
    (uploads / 'unreferenced.txt').write_bytes(b'left over by someone')
    checked = verify(target / '.env', repo, {})
    assert not checked.failed, checked
    assert checked['unreferenced'] == {'count': 1, 'bytes': 20, 'examples': ['local:unreferenced.txt'],
                                       'locations': {'local': 1}}, checked
    assert (uploads / 'unreferenced.txt').exists()

    # A truncated object fails the check, by name and size.
    [first, second] = sorted(name for name in os.listdir(uploads) if name.endswith('.png'))[:2]
    size = (uploads / first).stat().st_size
    (uploads / first).write_bytes((uploads / first).read_bytes()[:10])
    (uploads / second).unlink()
    checked = verify(target / '.env', repo, {})
    assert checked.failed and 'directus_files have their bytes' in checked['failed_checks'], checked
    [entry] = [check for check in checked['checks'] if check['name'] == 'directus_files have their bytes']
    assert 'local:%s (10 bytes, expected %d)' % (first, size) in entry['detail'], entry
    assert '1 missing: local:%s' % second in entry['detail'], entry

    # A row in a location this instance does not have fails with what to do.
    conn = sqlite3.connect(str(target / 'data.db'))
    with conn:
        conn.execute("UPDATE directus_files SET storage = 'gone' WHERE filename_disk = ?", (first,))
    conn.close()
    checked = verify(target / '.env', repo, {}, checks=['files'])
    [entry] = [check for check in checked['checks'] if check['name'] == 'directus_files have their bytes']
    assert not entry['ok'] and "1 row(s) in location(s) gone, which is not in STORAGE_LOCATIONS (local)" \
        in entry['detail'], entry


def _pg_instance(tmp_path, name, values, locations):
    directory = tmp_path / name
    directory.mkdir()
    lines = ''.join('%s="%s"\n' % item for item in values.items())
    lines += 'STORAGE_LOCATIONS=%s\n' % ','.join(locations)
    for location in locations:
        (directory / location).mkdir()
        lines += 'STORAGE_%s_DRIVER=local\nSTORAGE_%s_ROOT=./%s\n' % (location.upper(), location.upper(), location)
    (directory / '.env').write_text(lines)
    return directory


def test_postgres_swap_of_two_locations(tmp_path, repo, pg_database):
    server, copy = pg_database.server, 'reloc_%s' % pg_database.name
    rows = pg_database.rows('SELECT id, filename_disk, filesize FROM directus_files ORDER BY id')
    moved = [row[0] for row in rows[::3]]
    pg_database.sql("UPDATE directus_files SET storage = 'assets' WHERE id IN (%s)"
                    % ', '.join("'%s'" % file_id for file_id in moved))
    source = _pg_instance(tmp_path, 'source', pg_database.env(), ['local', 'assets'])
    data = {}
    for file_id, filename, size in rows:
        location = 'assets' if file_id in moved else 'local'
        data[filename] = (location, os.urandom(int(size)))
        (source / location / filename).write_bytes(data[filename][1])
    backup(source / '.env', repo, instance='cms')
    target = _pg_instance(tmp_path, 'target', pg_database.server.env(database=copy), ['local', 'assets'])
    swap = {'local': 'assets', 'assets': 'local'}
    try:
        db, files = restore(target / '.env', repo, swap, instance='cms')
        assert not db.failed and db['changed'], db
        assert db['relocations'] == [{'from': 'assets', 'to': 'local', 'rows': len(moved)},
                                     {'from': 'local', 'to': 'assets', 'rows': len(rows) - len(moved)}], db
        assert db['relocated_rows'] == len(rows)
        assert not files.failed and files['transferred'] == len(rows), files
        stored = dict(server.rows('SELECT id, storage FROM directus_files', copy))
        assert stored == {row[0]: 'local' if row[0] in moved else 'assets' for row in rows}
        for filename, (location, payload) in data.items():
            swapped = 'local' if location == 'assets' else 'assets'
            assert (target / swapped / filename).read_bytes() == payload
            assert not (target / location / filename).exists()
        checked = verify(target / '.env', repo, swap, instance='cms')
        assert not checked.failed and checked['unreferenced']['count'] == 0, checked

        db, files = restore(target / '.env', repo, swap, instance='cms')
        assert (db['changed'], db['target_state'], files['changed']) == (False, 'identical', False), (db, files)
        # Without the map the database holds other data now.
        db = run_module('cairn_db_restore', env_file=str(target / '.env'), repository=repo, instance='cms')
        assert db.failed and 'Set replace' in db['msg'], db
    finally:
        server.drop_database(copy)


def test_restore_role_with_a_location_map(source, target, repo, tmp_path):
    env = relocate_env(target, 'STORAGE_LOCATIONS=media\nSTORAGE_MEDIA_DRIVER=local\nSTORAGE_MEDIA_ROOT=./media\n')
    inventory = write_inventory(str(tmp_path / 'inventory.json'), {
        'blog': {'cairn_env_file': str(source / '.env')},
        'clone': {'cairn_env_file': str(env), 'cairn_restore_from': 'blog',
                  'cairn_restore_location_map': {'local': 'media'}},
    }, repo['path'])
    run = run_playbook('backup.yml', inventory, limit='blog')
    assert run.returncode == 0, run.stdout + run.stderr
    run = run_playbook('restore.yml', inventory, limit='clone')
    assert run.returncode == 0, run.stdout + run.stderr
    assert '5 of 5 checks passed' in run.stdout, run.stdout
    assert originals(target / 'media') == originals(source / 'uploads')
    assert db_rows(target / 'data.db', 'SELECT DISTINCT storage FROM directus_files') == [('media',)]
    again = run_playbook('restore.yml', inventory, limit='clone')
    assert again.returncode == 0 and recap(again.stdout, 'clone')['changed'] == 0, again.stdout


@pytest.mark.parametrize('fixture', ['pg_database', 'mariadb_database'])
def test_content_move_relocates_inside_its_transaction(request, tmp_path, repo, fixture):
    database = request.getfixturevalue(fixture)
    server, copy = database.server, 'move_%s' % database.name
    source = _pg_instance(tmp_path, 'source', database.env(), ['local'])
    db_backup(source / '.env', repo, tables=['directus_files', 'articles'])
    files = len(database.rows('SELECT id FROM directus_files'))
    server.create_database(copy)
    _servers.load_cairn_schema(server, copy)
    server.sql("UPDATE directus_files SET storage = 'other'", copy)
    target = _pg_instance(tmp_path, 'target', server.env(database=copy), ['cloud'])
    try:
        moved = run_module('cairn_db_restore', env_file=str(target / '.env'), repository=repo, instance='cms',
                           replace=True, location_map={'local': 'cloud'})
        assert not moved.failed and moved['tables'] == ['directus_files', 'articles'], moved
        assert moved['relocations'] == [{'from': 'local', 'to': 'cloud', 'rows': files}], moved
        assert server.rows('SELECT storage, COUNT(*) FROM directus_files GROUP BY storage', copy) == [
            ['cloud', str(files)]]
    finally:
        server.drop_database(copy)


def test_restore_role_quiesce_on_sqlite_is_recorded_and_idempotent(source, target, repo, tmp_path):
    with sqlite3.connect(str(source / 'data.db')) as db:
        db.execute('CREATE TABLE directus_webhooks (id INTEGER PRIMARY KEY, status TEXT NOT NULL)')
        db.executemany('INSERT INTO directus_webhooks (status) VALUES (?)', [('active',), ('active',), ('inactive',)])
    db.close()
    inventory = write_inventory(str(tmp_path / 'inventory.json'), {
        'blog': {'cairn_env_file': str(source / '.env')},
        'copy': {'cairn_env_file': str(target / '.env'), 'cairn_restore_from': 'blog',
                 'cairn_restore_quiesce': ['flows', 'webhooks']},
    }, repo['path'])
    run = run_playbook('backup.yml', inventory, limit='blog')
    assert run.returncode == 0, run.stdout + run.stderr
    run = run_playbook('restore.yml', inventory, limit='copy')
    assert run.returncode == 0, run.stdout + run.stderr
    assert db_rows(target / 'data.db', 'SELECT DISTINCT status FROM directus_webhooks') == [('inactive',)]
    assert db_rows(source / 'data.db', "SELECT COUNT(*) FROM directus_webhooks WHERE status = 'active'") == [(2,)]
    marker = json.loads((target / 'data.db.cairn-restore.json').read_text())
    assert marker['quiesced'] == ['flows', 'webhooks'], marker
    again = run_playbook('restore.yml', inventory, limit='copy')
    assert again.returncode == 0 and recap(again.stdout, 'copy')['changed'] == 0, again.stdout
