# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PostgreSQL and MariaDB for real: throwaway servers on free ports, the real dump tools."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import threading
import time

import pytest
import zstandard

import _servers
from conftest import (
    artifacts_of, module_command, module_env, part_of, process_argvs, recap, run_module, run_playbook,
    write_inventory)

VENDORS = ['pg_database', 'mariadb_database']


def instance(tmp_path, name, values):
    """A CairnCMS instance directory whose .env points at a database."""
    directory = tmp_path / name
    (directory / 'uploads').mkdir(parents=True)
    (directory / '.env').write_text(''.join('%s="%s"\n' % item for item in values.items()))
    return directory / '.env'


def backup(env_file, repo, instance_name='cms', **dump_args):
    point = run_module('cairn_restore_point', repository=repo, instance=instance_name)['restore_point']
    dump = run_module('cairn_db_dump', env_file=str(env_file), repository=repo, instance=instance_name,
                      restore_point=point, **dump_args)
    assert not dump.failed, dump
    files = run_module('cairn_storage_sync', env_file=str(env_file), repository=repo, instance=instance_name,
                       restore_point=point, direction='backup')
    assert not files.failed, files
    final = run_module('cairn_restore_point', env_file=str(env_file), repository=repo, instance=instance_name,
                       restore_point=point, state='complete')
    assert not final.failed, final
    return final['manifest'], dump


def restore(env_file, repo, **args):
    return run_module('cairn_db_restore', env_file=str(env_file), repository=repo, instance='cms', **args)


def copy_env(database, name):
    return database.server.env(database=name)


def other_instance(tmp_path, database, rows):
    """Another instance on the same server: its own database with the CairnCMS schema and ``rows`` articles."""
    copy = 'copy_%s' % database.name
    database.server.create_database(copy)
    _servers.load_cairn_schema(database.server, copy, rows=rows)
    return copy, instance(tmp_path, 'target', copy_env(database, copy)), _servers.row_counts(database.server, copy)


def next_article_id(server, database):
    if server.vendor == 'postgres':
        return int(server.rows("SELECT nextval(pg_get_serial_sequence('articles', 'id'))", database)[0][0])
    server.sql("INSERT INTO articles (status, title) VALUES ('draft', 'probe')", database)
    return int(server.rows('SELECT MAX(id) FROM articles', database)[0][0])


@pytest.mark.parametrize('fixture, dump_args', [
    ('pg_database', {}),
    ('pg_database', {'format': 'directory', 'jobs': 2}),
    ('mariadb_database', {}),
])
def test_round_trip_counts_sequences_blobs_and_idempotence(request, tmp_path, repo, fixture, dump_args):
    database = request.getfixturevalue(fixture)
    server = database.server
    source = instance(tmp_path, 'source', database.env())
    manifest, dump = backup(source, repo, **dump_args)
    assert part_of(manifest, 'database')['row_counts'] == database.row_counts()
    assert part_of(manifest, 'database')['migration_level'] == '20230401A'
    assert part_of(manifest, 'database')['server_version'] == server.version.split('-')[0].split(' ')[0]
    assert part_of(manifest, 'database')['dump_tool'] in ('pg_dump', 'mariadb-dump', 'mysqldump')
    assert part_of(manifest, 'database').get('row_counts_consistent', True) is True
    if server.vendor == 'mariadb':
        assert part_of(manifest, 'database')['server_flavor'] == 'mariadb'
    copy = 'copy_%s' % database.name
    target = instance(tmp_path, 'target', copy_env(database, copy))
    try:
        first = restore(target, repo, jobs=2)
        assert first['changed'] and first['target_state'] == 'absent', first
        assert _servers.row_counts(server, copy) == database.row_counts()
        verify = run_module('cairn_restore_verify', env_file=str(target), repository=repo, instance='cms',
                            checks=['database'])
        assert not verify.failed, verify
        assert next_article_id(server, copy) == database.dataset.articles_next_id
        blob_sql = ('SELECT encode(attachment, \'hex\') FROM articles ORDER BY id LIMIT 1' if server.vendor == 'postgres'
                    else 'SELECT HEX(attachment) FROM articles ORDER BY id LIMIT 1')
        assert server.rows(blob_sql, copy)[0][0].lower() == _servers.blob(1).hex()
        if server.vendor == 'postgres':
            assert server.rows("SELECT last_value FROM %s" % _servers.EXPORT_SEQUENCE, copy)[0][0] == \
                str(_servers.EXPORT_SEQUENCE_VALUE)
        else:
            assert server.rows('SELECT cairn_article_count()', copy)[0][0] == str(database.dataset.counts['articles'] + 1)
    finally:
        server.drop_database(copy)
    # Idempotence on a restore the target still holds unchanged.
    other = instance(tmp_path, 'again', copy_env(database, copy + 'b'))
    try:
        assert restore(other, repo)['changed']
        again = restore(other, repo)
        assert (again['changed'], again['target_state']) == (False, 'identical'), again
        server.sql("UPDATE articles SET title = 'edited' WHERE id = 1", copy + 'b')
        refused = restore(other, repo)
        assert refused.failed and 'Set replace' in refused['msg'], refused
    finally:
        server.drop_database(copy + 'b')


@pytest.mark.parametrize('fixture', VENDORS)
def test_password_never_on_a_command_line(request, tmp_path, repo, fixture):
    database = request.getfixturevalue(fixture)
    source = instance(tmp_path, 'source', database.env())
    password = database.server.password
    point = run_module('cairn_restore_point', repository=repo, instance='cms')['restore_point']
    args = {'env_file': str(source), 'repository': repo, 'instance': 'cms', 'restore_point': point,
            'compression_level': 19}
    # A private TMPDIR: other workers' runs create their own option files in /tmp meanwhile.
    scratch = tmp_path / 'tmpdir'
    scratch.mkdir()
    proc = subprocess.Popen(module_command('cairn_db_dump'), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=module_env({'TMPDIR': str(scratch)}))
    proc.stdin.write(json.dumps({'ANSIBLE_MODULE_ARGS': args}).encode())
    proc.stdin.close()
    seen = set()
    while proc.poll() is None:
        for argv in process_argvs():
            tool = os.path.basename(argv[0]).decode(errors='replace')
            if tool in ('pg_dump', 'psql', 'mariadb-dump', 'mysqldump', 'mariadb', 'mysql'):
                seen.add(tool)
                assert password.encode() not in b' '.join(argv), argv
                assert not any(arg.startswith((b'-p', b'--password')) for arg in argv[1:]), argv
    result = json.loads(proc.stdout.read())
    assert not result.get('failed'), result
    assert seen & {'pg_dump', 'mariadb-dump', 'mysqldump'}, 'the dump tool was never seen running: %s' % seen
    assert password not in json.dumps(result)
    # Option files live in TMPDIR (tool runs) and in the repository's scratch space (the dump).
    leftovers = [os.path.join(where, name) for top in (scratch, repo['path']) for where, dirs, files in os.walk(top)
                 for name in dirs + files if name.startswith('.cairn-my-')]
    assert not leftovers, leftovers


@pytest.mark.parametrize('fixture', VENDORS)
def test_wrong_password_is_clear_and_not_echoed(request, tmp_path, repo, fixture):
    database = request.getfixturevalue(fixture)
    wrong = 'Wr0ng-pa55word-%s' % fixture
    source = instance(tmp_path, 'source', dict(database.env(), DB_PASSWORD=wrong))
    point = run_module('cairn_restore_point', repository=repo, instance='cms')['restore_point']
    dump = run_module('cairn_db_dump', env_file=str(source), repository=repo, instance='cms', restore_point=point)
    assert dump.failed and 'cannot connect to' in dump['msg'], dump
    assert ('password authentication failed' in dump['msg']) or ('Access denied' in dump['msg']), dump
    assert wrong not in json.dumps(dump)


def test_missing_dump_tool_is_named(tmp_path, repo, pg_database):
    source = instance(tmp_path, 'source', pg_database.env())
    tools = tmp_path / 'bin'
    tools.mkdir()
    os.symlink(pg_database.server.binary('psql'), tools / 'psql')
    point = run_module('cairn_restore_point', repository=repo, instance='cms')['restore_point']
    dump = run_module('cairn_db_dump', environ={'PATH': str(tools)}, env_file=str(source), repository=repo,
                      instance='cms', restore_point=point)
    assert dump.failed and 'pg_dump is needed on this host' in dump['msg'] and 'postgresql-client' in dump['msg']


def _run_dump_in_background(source, repo, point):
    args = {'env_file': str(source), 'repository': repo, 'instance': 'cms', 'restore_point': point,
            'compression_level': 19}
    proc = subprocess.Popen(module_command('cairn_db_dump'), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            env=module_env())
    proc.stdin.write(json.dumps({'ANSIBLE_MODULE_ARGS': args}).encode())
    proc.stdin.close()
    return proc


@pytest.mark.parametrize('server_fixture', ['disposable_postgres_server', 'disposable_mariadb_server'])
def test_server_killed_mid_dump_fails_cleanly(request, tmp_path, repo, server_fixture):
    server = request.getfixturevalue(server_fixture)
    _servers.load_cairn_schema(server, server.database, rows=20)
    server.sql('CREATE TABLE big (id INT PRIMARY KEY, data TEXT)')
    for first in range(0, 60000, 20000):
        values = ','.join("(%d, '%s')" % (n, ('%032x' % (n * 2654435761)) * 60) for n in range(first, first + 20000))
        server.sql('INSERT INTO big VALUES ' + values)
    source = instance(tmp_path, 'source', server.env())
    point = run_module('cairn_restore_point', repository=repo, instance='cms')['restore_point']
    staging = os.path.join(repo['path'], 'cms', 'staging', point)
    proc = _run_dump_in_background(source, repo, point)
    deadline = time.monotonic() + 60
    while not any(name.startswith('.cairn-') and name.endswith('.part') for name in os.listdir(staging)):
        assert time.monotonic() < deadline and proc.poll() is None, 'the dump ended before the server was killed'
        time.sleep(0.01)
    server.kill()
    result = json.loads(proc.stdout.read())
    proc.wait()
    assert result.get('failed') and ('failed' in result['msg'] or 'killed' in result['msg']), result
    assert not [name for name in os.listdir(staging) if name.startswith('database')], os.listdir(staging)
    final = run_module('cairn_restore_point', env_file=str(source), repository=repo, instance='cms',
                       restore_point=point, state='complete')
    assert final.failed and 'has no database part' in final['msg']
    assert run_module('cairn_backup_info', repository=repo, instance='cms')['restore_points'] == []


@pytest.mark.parametrize('fixture', VENDORS)
def test_non_empty_target_refused_then_replaced(request, tmp_path, repo, fixture):
    database = request.getfixturevalue(fixture)
    server = database.server
    source = instance(tmp_path, 'source', database.env())
    manifest, _dump = backup(source, repo)
    copy, target, before = other_instance(tmp_path, database, rows=5)
    try:
        for check_mode in (True, False):
            refused = restore(target, repo, check_mode=check_mode)
            assert refused.failed and 'not empty and differs' in refused['msg'], refused
        assert _servers.row_counts(server, copy) == before
        replaced = restore(target, repo, replace=True, keep_safety_copy=True, work_dir=str(tmp_path))
        assert replaced['changed'] and replaced['replaced'], replaced
        assert _servers.row_counts(server, copy) == part_of(manifest, 'database')['row_counts']
        assert os.path.getsize(replaced['safety_copy']) > 0
    finally:
        server.drop_database(copy)


def _rewrite_artifact(repo, manifest, transform):
    """Replace the dump of a restore point with ``transform(raw)`` and fix the manifest's checksums, as a
    valid but failing dump would be."""
    point = os.path.join(repo['path'], 'cms', 'points', manifest['id'])
    name = part_of(manifest, 'database')['artifacts'][0]['path']
    with open(os.path.join(point, name), 'rb') as handle:
        raw = zstandard.ZstdDecompressor().stream_reader(handle).read()
    raw = transform(raw)
    data = zstandard.ZstdCompressor().compress(raw)
    with open(os.path.join(point, name), 'wb') as handle:
        handle.write(data)
    part_of(manifest, 'database').update(raw_size_bytes=len(raw), raw_sha256=hashlib.sha256(raw).hexdigest())
    for artifact in artifacts_of(manifest):
        if artifact['path'] == name:
            artifact.update(size_bytes=len(data), sha256=hashlib.sha256(data).hexdigest())
    with open(os.path.join(point, 'manifest.json'), 'w') as handle:
        json.dump(manifest, handle)


def test_failed_mariadb_restore_puts_the_target_back(tmp_path, repo, mariadb_database):
    database, server = mariadb_database, mariadb_database.server
    source = instance(tmp_path, 'source', database.env())
    manifest, _dump = backup(source, repo)
    broken = b'SELECT no_such_column FROM no_such_table;\nCREATE TABLE `directus_users`'
    _rewrite_artifact(repo, manifest, lambda raw: raw.replace(b'CREATE TABLE `directus_users`', broken, 1))
    copy, target, before = other_instance(tmp_path, database, rows=5)
    try:
        failed = restore(target, repo, replace=True)
        assert failed.failed and 'put back from its safety copy' in failed['msg'], failed
        assert "doesn't exist" in failed['msg'] or 'no_such_table' in failed['msg']
        assert _servers.row_counts(server, copy) == before
    finally:
        server.drop_database(copy)


def test_failed_postgres_restore_changes_nothing(tmp_path, repo, pg_database):
    database, server = pg_database, pg_database.server
    source = instance(tmp_path, 'source', database.env())
    backup(source, repo)
    copy = 'copy_%s' % database.name
    server.create_database(copy)
    _servers.load_cairn_schema(server, copy, rows=5)
    # An object the dump does not know depends on a table it drops: pg_restore --clean fails midway.
    server.sql('CREATE VIEW target_only AS SELECT id FROM directus_roles', copy)
    before = _servers.row_counts(server, copy)
    target = instance(tmp_path, 'target', copy_env(database, copy))
    try:
        failed = restore(target, repo, replace=True)
        assert failed.failed and 'pg_restore failed' in failed['msg'], failed
        assert 'put back from its safety copy' in failed['msg']
        assert _servers.row_counts(server, copy) == before
        assert server.rows('SELECT COUNT(*) FROM target_only', copy)[0][0] == str(before['directus_roles'])
    finally:
        server.drop_database(copy)


def test_vendor_version_and_migration_checks(tmp_path, repo, pg_database, mariadb_database):
    source = instance(tmp_path, 'source', pg_database.env())
    manifest, _dump = backup(source, repo)
    into_mariadb = instance(tmp_path, 'mariadb', mariadb_database.env())
    crossed = restore(into_mariadb, repo, replace=True)
    assert crossed.failed and 'holds a postgres database but this instance uses mysql' in crossed['msg']
    # Pretend the dump came from PostgreSQL 14: warn by default, refuse when asked.
    point = os.path.join(repo['path'], 'cms', 'points', manifest['id'], 'manifest.json')
    part_of(manifest, 'database')['server_version'] = '14.9'
    with open(point, 'w') as handle:
        json.dump(manifest, handle)
    server, copy = pg_database.server, 'copy_%s' % pg_database.name
    target = instance(tmp_path, 'target', copy_env(pg_database, copy))
    try:
        refused = restore(target, repo, on_version_mismatch='refuse')
        assert refused.failed and 'server is version' in refused['msg'] and 'refuse' in refused['msg']
        warned = restore(target, repo, check_mode=True)
        assert warned['changed'] and 'the target server is version' in json.dumps(warned.get('warnings')), warned
        server.create_database(copy)
        _servers.load_cairn_schema(server, copy, rows=5)
        server.sql("INSERT INTO directus_migrations (version, name) VALUES ('20990101A', 'Future')", copy)
        refused = restore(target, repo, replace=True, on_migration_mismatch='refuse')
        assert refused.failed and 'CMS migration 20990101A' in refused['msg'], refused
        assert server.rows("SELECT COUNT(*) FROM directus_migrations WHERE version = '20990101A'", copy)[0][0] == '1'
    finally:
        server.drop_database(copy)


@pytest.mark.parametrize('fixture', VENDORS)
def test_counts_match_the_dump_while_the_cms_writes(request, tmp_path, repo, fixture):
    """A writer adds an article and its activity row in one transaction each; the manifest's
    counts must keep them equal, which they are only if counted in the dump's snapshot."""
    database = request.getfixturevalue(fixture)
    server = database.server
    base = database.row_counts()
    stop = threading.Event()
    errors = []

    def writer():
        while not stop.is_set():
            try:
                server.sql("START TRANSACTION; INSERT INTO articles (status, title) VALUES ('draft', 'live'); "
                           "INSERT INTO directus_activity (action, collection, item) VALUES ('create', 'articles', "
                           "'x'); COMMIT;" if server.vendor == 'mariadb' else
                           "BEGIN; INSERT INTO articles (status, title) VALUES ('draft', 'live'); "
                           "INSERT INTO directus_activity (action, collection, item) VALUES ('create', 'articles', "
                           "'x'); COMMIT;", database.name)
            except _servers.SqlError as exc:
                errors.append(exc)
                return

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        manifests = [backup(instance(tmp_path, 'source%d' % n, database.env()), repo)[0] for n in range(3)]
    finally:
        stop.set()
        thread.join()
    assert not errors, errors
    grown = set()
    for manifest in manifests:
        counts = part_of(manifest, 'database')['row_counts']
        assert counts['articles'] - base['articles'] == counts['directus_activity'] - base['directus_activity']
        grown.add(counts['articles'])
    assert len(grown) > 1, 'the writer made no progress between dumps'


def test_playbooks_with_postgres(tmp_path, repo, pg_database):
    server, copy = pg_database.server, 'copy_%s' % pg_database.name
    env = pg_database.env()
    password = env.pop('DB_PASSWORD')
    source = instance(tmp_path, 'source', env)
    (tmp_path / 'pgpass').write_text(password)
    with open(source, 'a') as handle:
        handle.write('DB_PASSWORD_FILE=%s\n' % (tmp_path / 'pgpass'))
    for name, size in pg_database.rows('SELECT filename_disk, filesize FROM directus_files'):
        (source.parent / 'uploads' / name).write_bytes(os.urandom(int(size)))
    target_env = copy_env(pg_database, copy)
    target_env.pop('DB_PASSWORD')
    target = instance(tmp_path, 'target', target_env)
    inventory = write_inventory(str(tmp_path / 'inventory.json'), {
        'cms': {'cairn_env_file': str(source)},
        'copy': {'cairn_env_file': str(target), 'cairn_restore_from': 'cms',
                 'cairn_env_secret_overrides': {'DB_PASSWORD': password}},
    }, repo['path'])
    try:
        backup_run = run_playbook('backup.yml', inventory, limit='cms', extra=['-vvv'])
        assert backup_run.returncode == 0, backup_run.stdout + backup_run.stderr
        restore_run = run_playbook('restore.yml', inventory, limit='copy', extra=['-vvv'])
        assert restore_run.returncode == 0, restore_run.stdout + restore_run.stderr
        assert _servers.row_counts(server, copy) == pg_database.row_counts()
        for output in (backup_run.stdout + backup_run.stderr, restore_run.stdout + restore_run.stderr):
            assert password not in output
        again = run_playbook('restore.yml', inventory, limit='copy')
        assert again.returncode == 0 and recap(again.stdout, 'copy')['changed'] == 0, again.stdout
    finally:
        server.drop_database(copy)


RELATIONS = ('CREATE TABLE directus_relations (id INT PRIMARY KEY, many_collection VARCHAR(64) NOT NULL, '
             'many_field VARCHAR(64) NOT NULL, one_collection VARCHAR(64)); '
             "INSERT INTO directus_relations VALUES (1, 'articles', 'cover', 'directus_files');")


@pytest.mark.parametrize('fixture', VENDORS)
def test_content_move_replaces_only_the_named_tables(request, tmp_path, repo, fixture):
    database = request.getfixturevalue(fixture)
    server = database.server
    database.sql(RELATIONS)
    database.sql("UPDATE articles SET title = 'moved content' WHERE id = 2")
    source = instance(tmp_path, 'source', database.env())
    manifest, dump = backup(source, repo, tables=['articles'])
    assert part_of(manifest, 'database')['scope'] == {'tables': ['articles'], 'data_only': True}
    assert part_of(manifest, 'database')['row_counts'] == {'articles': database.row_counts()['articles']}
    assert part_of(manifest, 'database')['artifacts'][0]['path'] == 'database.data.sql.zst'
    copy = 'copy_%s' % database.name
    server.create_database(copy)
    # The target is another instance: its own users, sessions and activity, fewer files.
    _servers.load_cairn_schema(server, copy, rows=5 if server.vendor == 'mariadb' else 25)
    server.sql(RELATIONS, copy)
    before = _servers.row_counts(server, copy)
    target = instance(tmp_path, 'target', copy_env(database, copy))
    try:
        refused = restore(target, repo)
        assert refused.failed and 'not empty and differs' in refused['msg'], refused
        moved = restore(target, repo, replace=True)
        assert moved['changed'] and moved['tables'] == ['articles'], moved
        after = _servers.row_counts(server, copy)
        assert after['articles'] == database.row_counts()['articles']
        assert {t: n for t, n in after.items() if t != 'articles'} == {t: n for t, n in before.items() if t != 'articles'}
        assert server.rows('SELECT title FROM articles WHERE id = 2', copy)[0][0] == 'moved content'
        if server.vendor == 'mariadb':
            # Covers of the moved articles point at files the smaller target does not have.
            assert moved['dangling_file_references']['articles.cover'] > 0, moved
            assert 'articles.cover' in json.dumps(moved.get('warnings'))
        else:
            assert moved['dangling_file_references'] == {}, moved
    finally:
        server.drop_database(copy)


def test_postgres_content_move_with_missing_files_changes_nothing(tmp_path, repo, pg_database):
    """PostgreSQL enforces the cover -> directus_files foreign key: the move fails as a whole."""
    server = pg_database.server
    source = instance(tmp_path, 'source', pg_database.env())
    backup(source, repo, tables=['articles'])
    copy, target, before = other_instance(tmp_path, pg_database, rows=3)
    try:
        failed = restore(target, repo, replace=True)
        assert failed.failed and 'foreign key' in failed['msg'], failed
        assert _servers.row_counts(server, copy) == before
    finally:
        server.drop_database(copy)


def test_pg_dump_older_than_the_server_is_refused_up_front(tmp_path, repo, pg_database):
    source = instance(tmp_path, 'source', pg_database.env())
    tools = tmp_path / 'bin'
    tools.mkdir()
    os.symlink(pg_database.server.binary('psql'), tools / 'psql')
    fake = tools / 'pg_dump'
    fake.write_text('#!/bin/sh\nif [ "$1" = --version ]; then echo "pg_dump (PostgreSQL) 13.4"; exit 0; fi\n'
                    'exec %s "$@"\n' % pg_database.server.binary('pg_dump'))
    fake.chmod(0o755)
    point = run_module('cairn_restore_point', repository=repo, instance='cms')['restore_point']
    dump = run_module('cairn_db_dump', environ={'PATH': '%s:/usr/bin:/bin' % tools}, env_file=str(source),
                      repository=repo, instance='cms', restore_point=point)
    assert dump.failed and 'pg_dump 13.4 is older than the PostgreSQL' in dump['msg'], dump
    assert 'postgresql-client-15' in dump['msg']
    staged = os.listdir(os.path.join(repo['path'], 'cms', 'staging', point))
    assert not [name for name in staged if name.startswith('database')], staged


@pytest.mark.parametrize('fixture', VENDORS)
def test_restore_quiesce_turns_off_flows_and_webhooks_and_is_recorded(request, tmp_path, repo, fixture):
    database = request.getfixturevalue(fixture)
    server = database.server
    database.sql("CREATE TABLE directus_flows (id VARCHAR(36) PRIMARY KEY, status VARCHAR(16) NOT NULL)")
    database.sql("INSERT INTO directus_flows VALUES ('a', 'active'), ('b', 'inactive'), ('c', 'active')")
    source = instance(tmp_path, 'source', database.env())
    backup(source, repo)
    copy = 'quiet_%s' % database.name
    target = instance(tmp_path, 'target', copy_env(database, copy))
    try:
        planned = restore(target, repo, quiesce=['flows', 'webhooks'], _ansible_check_mode=True)
        assert planned['disabled'] == {'flows': None, 'webhooks': None} and 'turned off' in planned['msg'], planned
        applied = restore(target, repo, quiesce=['webhooks', 'flows'])
        assert applied['changed'] and applied['disabled'] == {'flows': 2, 'webhooks': 0}, applied
        assert server.rows('SELECT id, status FROM directus_flows ORDER BY id', copy) == [
            ['a', 'inactive'], ['b', 'inactive'], ['c', 'inactive']]
        assert database.rows("SELECT COUNT(*) FROM directus_flows WHERE status = 'active'") == [['2']]
        # Recorded with the restore: the same restore again changes nothing; one without quiesce is another
        # restore, refused without replace.
        again = restore(target, repo, quiesce=['flows', 'webhooks'])
        assert (again['changed'], again['target_state']) == (False, 'identical'), again
        plain = restore(target, repo)
        assert plain.failed and 'Set replace' in plain['msg'], plain
        assert server.password not in json.dumps(applied)
    finally:
        server.drop_database(copy)
