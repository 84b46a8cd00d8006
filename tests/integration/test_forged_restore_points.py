# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A restore point is untrusted input: whoever can write the repository (a stolen bucket credential, a compromised
backup host) can forge one. Each test makes a genuine restore point with the modules, rewrites its database
artifact as such an attacker would (every checksum of the manifest fixed up), and restores it for real: the forged
part may put data into the target database and nothing more, and a refused restore changes nothing."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import sqlite3
import subprocess
import tempfile
import threading

import pytest
import zstandard

import _servers
import demo_instance
from conftest import (
    artifacts_of, descendants, module_command, module_env, part_of, process_argvs, run_module, run_playbook,
    write_inventory)
from test_databases import backup as db_backup, instance, other_instance
from test_modules import backup as sqlite_backup, dump_sql
from test_relocation import relocate_env

from ansible_collections.cairncms.ops.plugins.module_utils._common import process_start_time


def forge(repo, instance_name, manifest, transform, part='database'):
    """Rewrite the artifact of a restore point's ``part`` (its database dump) with ``transform(raw)`` and fix the
    manifest's sizes and sha256 sums (artifact and raw dump) so that every checksum matches; the forged raw bytes."""
    point = os.path.join(repo['path'], instance_name, 'points', manifest['id'])
    name = part_of(manifest, part)['artifacts'][0]['path']
    with open(os.path.join(point, name), 'rb') as handle:
        raw = zstandard.ZstdDecompressor().stream_reader(handle).read()
    forged = transform(raw)
    assert forged != raw, 'the forgery changed nothing'
    data = zstandard.ZstdCompressor().compress(forged)
    with open(os.path.join(point, name), 'wb') as handle:
        handle.write(data)
    if 'raw_size_bytes' in part_of(manifest, part):
        part_of(manifest, part)['raw_size_bytes'] = len(forged)
    if 'raw_sha256' in part_of(manifest, part):
        part_of(manifest, part)['raw_sha256'] = hashlib.sha256(forged).hexdigest()
    for artifact in artifacts_of(manifest):
        if artifact['path'] == name:
            artifact.update(size_bytes=len(data), sha256=hashlib.sha256(data).hexdigest())
    with open(os.path.join(point, 'manifest.json'), 'w') as handle:
        json.dump(manifest, handle)
    return forged


def raw_artifact(repo, instance_name, manifest):
    point = os.path.join(repo['path'], instance_name, 'points', manifest['id'])
    with open(os.path.join(point, part_of(manifest, 'database')['artifacts'][0]['path']), 'rb') as handle:
        return zstandard.ZstdDecompressor().stream_reader(handle).read()


def after_line(raw, starts, injection):
    """``raw`` with ``injection`` (lines) at statement level, right after the first statement that starts a line
    with ``starts`` (after the line that ends it with ``;``)."""
    lines = raw.split(b'\n')
    started = False
    for number, line in enumerate(lines):
        started = started or line.startswith(starts)
        if started and line.rstrip().endswith(b';'):
            return b'\n'.join(lines[:number + 1] + injection.split(b'\n') + lines[number + 1:])
    raise AssertionError('no statement starting with %r' % starts)


def snapshot(server, database):
    """Row counts and every article title: what a refused restore must leave as it was."""
    return _servers.row_counts(server, database), server.rows('SELECT id, title FROM articles ORDER BY id', database)


def fake_tool(directory, name, real, intercept):
    """An executable ``name`` in ``directory`` that answers ``intercept`` (shell case patterns to output) and runs
    ``real`` otherwise."""
    path = os.path.join(str(directory), name)
    with open(path, 'w') as handle:
        handle.write('#!/bin/sh\nfor arg in "$@"; do case "$arg" in\n%s\nesac; done\nexec %s "$@"\n'
                     % (intercept, real))
    os.chmod(path, 0o755)
    return path


# PostgreSQL: psql in restricted mode ------------------------------------------------------------------------------

PSQL_INJECTIONS = [
    pytest.param(b'\\! touch {marker}', id='shell'),
    pytest.param(b"\\o {marker}\nSELECT 'written';", id='output-file'),
    pytest.param(b"\\copy (SELECT 'copied') TO '{marker}'", id='copy-to-file'),
    pytest.param(b'\\unrestrict {key}\n\\! touch {marker}', id='unrestrict-with-the-dumps-key'),
]


@pytest.mark.parametrize('injection', PSQL_INJECTIONS)
def test_postgres_content_move_never_runs_psql_commands(tmp_path, repo, pg_database, injection):
    server = pg_database.server
    manifest, _dump = db_backup(instance(tmp_path, 'source', pg_database.env()), repo, tables=['articles'])
    genuine = raw_artifact(repo, 'cms', manifest)
    key = re.search(rb'^\\restrict (\S+)$', genuine, re.MULTILINE)
    assert key, 'this pg_dump writes no \\restrict line: the genuine restore below proves less than it should'
    copy, target, _before = other_instance(tmp_path, pg_database, rows=25)
    try:
        # The genuine content move, \restrict lines and all, restores.
        moved = run_module('cairn_db_restore', env_file=str(target), repository=repo, instance='cms', replace=True)
        assert moved['changed'] and moved['tables'] == ['articles'], moved
        assert _servers.row_counts(server, copy)['articles'] == pg_database.row_counts()['articles']
        server.sql("UPDATE articles SET title = 'target own' WHERE id = 3", copy)
        before = snapshot(server, copy)
        marker = tmp_path / 'pwned'
        forge(repo, 'cms', manifest, lambda raw: after_line(raw, b'SET row_security', injection.replace(
            b'{marker}', str(marker).encode()).replace(b'{key}', key.group(1))))
        refused = run_module('cairn_db_restore', env_file=str(target), repository=repo, instance='cms', replace=True)
        assert refused.failed and 'restore point %s was refused, nothing was changed' % manifest['id'] in \
            refused['msg'] and 'backslash command' in refused['msg'], refused
        assert not marker.exists()
        assert snapshot(server, copy) == before
    finally:
        server.drop_database(copy)


def test_postgres_forged_content_move_through_the_restore_role(tmp_path, repo, pg_database):
    server = pg_database.server
    source = instance(tmp_path, 'source', pg_database.env())
    manifest, _dump = db_backup(source, repo, tables=['articles'])
    marker = tmp_path / 'pwned'
    injection = b'\\! touch %s' % str(marker).encode()
    forge(repo, 'cms', manifest, lambda raw: after_line(raw, b'SET row_security', injection))
    copy, target, _counts = other_instance(tmp_path, pg_database, rows=25)
    before = snapshot(server, copy)
    inventory = write_inventory(str(tmp_path / 'inventory.json'), {
        'copy': {'cairn_env_file': str(target), 'cairn_restore_from': 'cms', 'cairn_restore_replace': True},
    }, repo['path'])
    try:
        run = run_playbook('restore.yml', inventory, limit='copy')
        assert run.returncode != 0, run.stdout + run.stderr
        assert 'restore point %s was refused, nothing was changed' % manifest['id'] in run.stdout, run.stdout
        assert not marker.exists()
        assert snapshot(server, copy) == before
        assert pg_database.server.password not in run.stdout + run.stderr
    finally:
        server.drop_database(copy)


def test_postgres_content_move_refused_without_a_restricted_psql(tmp_path, repo, pg_database):
    server = pg_database.server
    manifest, _dump = db_backup(instance(tmp_path, 'source', pg_database.env()), repo, tables=['articles'])
    tools = tmp_path / 'bin'
    tools.mkdir()
    fake_tool(tools, 'psql', server.binary('psql'), '--version) echo "psql (PostgreSQL) 15.13"; exit 0;;')
    copy, target, _counts = other_instance(tmp_path, pg_database, rows=25)
    before = snapshot(server, copy)
    try:
        for check_mode in (True, False):
            refused = run_module('cairn_db_restore', environ={'PATH': '%s:%s' % (tools, os.environ['PATH'])},
                                 env_file=str(target), repository=repo, instance='cms', replace=True,
                                 check_mode=check_mode)
            assert refused.failed and 'psql 15.13 has no restricted mode' in refused['msg'], refused
            assert '15.14' in refused['msg'] and 'nothing was changed' in refused['msg'], refused
        assert snapshot(server, copy) == before
        # A full restore goes through pg_restore and needs no restricted psql.
        full, _dump = db_backup(instance(tmp_path, 'full', pg_database.env()), repo)
        plan = run_module('cairn_db_restore', environ={'PATH': '%s:%s' % (tools, os.environ['PATH'])},
                          env_file=str(target), repository=repo, instance='cms', restore_point=full['id'],
                          replace=True, check_mode=True)
        assert not plan.failed and plan['changed'], plan
    finally:
        server.drop_database(copy)


# MySQL / MariaDB: the client in sandbox mode ----------------------------------------------------------------------

MARIADB_INJECTIONS = [
    pytest.param(b'system touch {marker}', id='system'),
    pytest.param(b'\\! touch {marker}', id='shell'),
    pytest.param(b"tee {marker}\nSELECT 'teed';", id='tee'),
    pytest.param(b"LOAD DATA LOCAL INFILE '{secret}' INTO TABLE articles (title);", id='load-data-local'),
]


def _mariadb_forgery(injection, marker, secret):
    def transform(raw):
        # An attacker drops the line with which mariadb-dump itself turns the sandbox on.
        raw = b'\n'.join(line for line in raw.split(b'\n') if b'enable the sandbox mode' not in line)
        return after_line(raw, b'INSERT INTO', injection.replace(b'{marker}', str(marker).encode()).replace(
            b'{secret}', str(secret).encode()))
    return transform


@pytest.mark.parametrize('content', [False, True], ids=['full', 'content-move'])
@pytest.mark.parametrize('injection', MARIADB_INJECTIONS)
def test_mariadb_restore_never_runs_client_commands(tmp_path, repo, mariadb_database, injection, content):
    server = mariadb_database.server
    manifest, _dump = db_backup(instance(tmp_path, 'source', mariadb_database.env()), repo,
                                **({'tables': ['articles']} if content else {}))
    marker, secret = tmp_path / 'pwned', tmp_path / 'secret.txt'
    secret.write_text('a secret line of this host\n')
    forge(repo, 'cms', manifest, _mariadb_forgery(injection, marker, secret))
    copy, target, _counts = other_instance(tmp_path, mariadb_database, rows=5)
    before = snapshot(server, copy)
    try:
        refused = run_module('cairn_db_restore', env_file=str(target), repository=repo, instance='cms', replace=True)
        assert refused.failed and 'restore point %s was refused' % manifest['id'] in refused['msg'], refused
        if not content:
            assert 'put back from its safety copy' in refused['msg'], refused
        assert not marker.exists()
        assert snapshot(server, copy) == before
        assert server.rows("SELECT COUNT(*) FROM articles WHERE title LIKE 'a secret line%%'", copy) == [['0']]
        assert server.password not in json.dumps(refused)
    finally:
        server.drop_database(copy)


def test_mariadb_client_without_sandbox_is_refused_before_anything_changes(tmp_path, repo, mariadb_database):
    server = mariadb_database.server
    source = instance(tmp_path, 'source', mariadb_database.env())
    full, _dump = db_backup(source, repo)
    content, _dump = db_backup(source, repo, tables=['articles'])
    real = shutil.which('mariadb') or shutil.which('mysql')
    tools = tmp_path / 'bin'
    tools.mkdir()
    fake_tool(tools, 'mariadb', real, '--help) %s "$@" | grep -v -e --sandbox; exit 0;;' % real)
    copy, target, _counts = other_instance(tmp_path, mariadb_database, rows=5)
    before = snapshot(server, copy)
    try:
        for point in (full['id'], content['id']):
            for check_mode in (True, False):
                refused = run_module('cairn_db_restore', environ={'PATH': '%s:%s' % (tools, os.environ['PATH'])},
                                     env_file=str(target), repository=repo, instance='cms', restore_point=point,
                                     replace=True, check_mode=check_mode)
                assert refused.failed and 'cannot be kept from running the shell commands' in refused['msg'], refused
                assert 'MariaDB client 10.5.25' in refused['msg'] and 'nothing was changed' in refused['msg'], refused
        assert snapshot(server, copy) == before
    finally:
        server.drop_database(copy)


# SQLite: the guard ------------------------------------------------------------------------------------------------

SQLITE_CONTENT_INJECTIONS = [
    pytest.param(b"ATTACH DATABASE '{outside}' AS x;\nCREATE TABLE x.t (a);", "ATTACH the file '{outside}'",
                 id='attach'),
    pytest.param(b"SELECT load_extension('{outside}');", 'call load_extension()', id='load-extension'),
    pytest.param(b"INSERT INTO directus_users (id, email) VALUES ('evil', 'evil@example.com');",
                 'insert directus_users', id='other-table'),
    pytest.param(b'PRAGMA writable_schema = ON;', 'run PRAGMA writable_schema = ON', id='pragma'),
    pytest.param(b'COMMIT;', 'run COMMIT (transaction control)', id='commit'),
]


@pytest.mark.parametrize('injection, refused_text', SQLITE_CONTENT_INJECTIONS)
def test_sqlite_content_move_is_limited_to_inserting_rows(source, repo, tmp_path, injection, refused_text):
    other = tmp_path / 'other'
    demo_instance.populated(str(other), files=2, seed=3)
    point = run_module('cairn_restore_point', repository=repo, instance='blog')['restore_point']
    assert not run_module('cairn_db_dump', env_file=str(source / '.env'), repository=repo, instance='blog',
                          restore_point=point, tables=['articles']).failed
    run_module('cairn_storage_sync', env_file=str(source / '.env'), repository=repo, instance='blog',
               restore_point=point, direction='backup')
    manifest = run_module('cairn_restore_point', env_file=str(source / '.env'), repository=repo, instance='blog',
                          restore_point=point, state='complete')['manifest']
    outside = tmp_path / 'outside.db'
    forge(repo, 'blog', manifest, lambda raw: after_line(raw, b'INSERT INTO', injection.replace(
        b'{outside}', str(outside).encode())))
    before = dump_sql(other / 'data.db')
    refused = run_module('cairn_db_restore', env_file=str(other / '.env'), repository=repo, instance='blog',
                         replace=True)
    assert refused.failed, refused
    assert 'restore point %s was refused, nothing was changed' % point in refused['msg'], refused
    assert refused_text.format(outside=outside) in refused['msg'], refused
    assert dump_sql(other / 'data.db') == before
    assert not outside.exists()


def _sqlite_file_forgery(tmp_path, sql):
    def transform(raw):
        fd, path = tempfile.mkstemp(suffix='.sqlite3', dir=str(tmp_path))
        with os.fdopen(fd, 'wb') as handle:
            handle.write(raw)
        conn = sqlite3.connect(path)
        conn.executescript(sql)
        conn.commit()
        conn.close()
        with open(path, 'rb') as handle:
            return handle.read()
    return transform


FLOWS_TRIGGER = ("CREATE TABLE directus_flows (id TEXT PRIMARY KEY, status TEXT NOT NULL);"
                 "INSERT INTO directus_flows VALUES ('a', 'active');"
                 "CREATE TRIGGER evil AFTER UPDATE ON directus_flows BEGIN SELECT load_extension('{outside}'); END;")
FILES_TRIGGER = "CREATE TRIGGER evil AFTER UPDATE ON directus_files BEGIN SELECT load_extension('{outside}'); END;"


def _untouched(directory):
    """The target's files and the sha256 of each: a refused restore leaves them all as they were."""
    return {name: hashlib.sha256((directory / name).read_bytes()).hexdigest()
            for name in sorted(os.listdir(directory)) if (directory / name).is_file()}


def test_sqlite_forged_file_trigger_fired_by_quiesce_through_the_restore_role(source, repo, tmp_path):
    manifest, _dump, _files = sqlite_backup(source / '.env', repo)
    outside = tmp_path / 'outside.so'
    forge(repo, 'blog', manifest, _sqlite_file_forgery(tmp_path, FLOWS_TRIGGER.format(outside=outside)))
    other = tmp_path / 'other'
    demo_instance.populated(str(other), files=2, seed=3)
    before = _untouched(other)
    inventory = write_inventory(str(tmp_path / 'inventory.json'), {
        'copy': {'cairn_env_file': str(other / '.env'), 'cairn_restore_from': 'blog', 'cairn_restore_replace': True,
                 'cairn_restore_quiesce': ['flows']},
    }, repo['path'])
    run = run_playbook('restore.yml', inventory, limit='copy')
    assert run.returncode != 0, run.stdout + run.stderr
    assert 'restore point %s was refused, the target was not touched' % manifest['id'] in run.stdout, run.stdout
    assert 'call load_extension() (in trigger or view evil)' in run.stdout, run.stdout
    assert _untouched(other) == before
    assert not outside.exists()


@pytest.mark.parametrize('sql, expected', [
    pytest.param(FILES_TRIGGER, 'was refused, the target was not touched: its database file tries to call '
                 'load_extension() (in trigger or view evil) while relocating the directus_files rows', id='trigger'),
    pytest.param("PRAGMA writable_schema = ON; INSERT INTO sqlite_master VALUES ('trigger', 'evil', "
                 "'directus_files', 0, 'CREATE TRIGGER evil AFTER UPDATE ON directus_files BEGIN ATTACH DATABASE "
                 "''{outside}'' AS x; END');", 'failed while checking its integrity, the target was not touched',
                 id='attach-in-a-trigger'),
])
def test_sqlite_forged_file_trigger_fired_by_relocation(source, repo, tmp_path, sql, expected):
    manifest, _dump, _files = sqlite_backup(source / '.env', repo)
    outside = tmp_path / 'outside.db'
    forge(repo, 'blog', manifest, _sqlite_file_forgery(tmp_path, sql.format(outside=outside)))
    other = tmp_path / 'other'
    demo_instance.populated(str(other), files=2, seed=3)
    env = relocate_env(other, 'STORAGE_LOCATIONS=media\nSTORAGE_MEDIA_DRIVER=local\nSTORAGE_MEDIA_ROOT=./media\n')
    before = _untouched(other)
    refused = run_module('cairn_db_restore', env_file=str(env), repository=repo, instance='blog', replace=True,
                         location_map={'local': 'media'})
    assert refused.failed and 'restore point %s %s' % (manifest['id'], expected) in refused['msg'], refused
    assert _untouched(other) == before
    assert not outside.exists()


# Leftovers of interrupted SQLite restores --------------------------------------------------------------------------

def test_sqlite_leftovers_of_a_killed_restore(source, target, repo, tmp_path):
    sqlite_backup(source / '.env', repo)
    outside = tmp_path / 'outside.sqlite3'
    outside.write_bytes(b'not ours to delete')
    leftover = target / '.cairn-restore-x.sqlite3'
    leftover.write_bytes(b'half a database')
    journal = target / '.cairn-restore-x.sqlite3-journal'
    journal.write_bytes(b'its journal')
    linked = target / '.cairn-restore-y.sqlite3'
    os.symlink(str(outside), str(linked))
    running = target / ('.cairn-restore-%d-%d-z.sqlite3' % (os.getpid(), process_start_time(os.getpid())))
    running.write_bytes(b'a restore that still runs')
    unrelated = target / '.cairn-restore-notes.txt'
    unrelated.write_bytes(b'not a staged file')
    safety = target / 'data.db.cairn-safety-x'
    safety.mkdir()
    (safety / 'data.db').write_bytes(b'the database before a killed restore')
    plan = run_module('cairn_db_restore', env_file=str(target / '.env'), repository=repo, instance='blog',
                      check_mode=True)
    assert not plan.failed and leftover.exists() and journal.exists(), plan
    assert str(safety) in json.dumps(plan.get('warnings')), plan
    restored = run_module('cairn_db_restore', env_file=str(target / '.env'), repository=repo, instance='blog')
    assert restored['changed'] and not restored.failed, restored
    assert not leftover.exists() and not journal.exists()
    assert restored['leftovers_removed'] == [str(leftover), str(journal)], restored
    assert os.path.islink(str(linked)) and outside.read_bytes() == b'not ours to delete'
    assert running.exists() and unrelated.exists()
    assert (safety / 'data.db').read_bytes() == b'the database before a killed restore'
    assert str(safety) in json.dumps(restored.get('warnings')) and 'never removed' in json.dumps(restored['warnings'])


# Scratch space: never in the repository ----------------------------------------------------------------------------

def _watch(paths, stop, seen):
    while not stop.is_set():
        for top in paths:
            for directory, dirs, files in os.walk(top):
                seen.update(os.path.join(directory, name) for name in dirs + files)


def _option_files(proc, found):
    """The --defaults-extra-file arguments of the MySQL tools that ``proc`` runs (not those of tests running beside
    this one)."""
    while proc.poll() is None:
        for argv in process_argvs(descendants(proc.pid)):
            found.update(arg.decode(errors='replace').split('=', 1)[1] for arg in argv
                         if arg.startswith(b'--defaults-extra-file='))


def _dump_in_background(env_file, repo, instance_name, tmpdir):
    point = run_module('cairn_restore_point', repository=repo, instance=instance_name)['restore_point']
    args = {'env_file': str(env_file), 'repository': repo, 'instance': instance_name, 'restore_point': point}
    proc = subprocess.Popen(module_command('cairn_db_dump'), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            env=module_env({'TMPDIR': str(tmpdir)}))
    proc.stdin.write(json.dumps({'ANSIBLE_MODULE_ARGS': args}).encode())
    proc.stdin.close()
    return proc


def test_temporary_files_stay_out_of_the_repository(source, repo, tmp_path, mariadb_database):
    tmpdir = tmp_path / 'tmpdir'
    tmpdir.mkdir()
    base = tmpdir / ('cairncms-ops-%d' % os.geteuid())
    # A scratch directory left by a killed process is removed by the next run; a live one is kept.
    base.mkdir(mode=0o700)
    dead = subprocess.Popen(['true'])
    dead.wait()
    killed = base / ('%d-12345-abc' % dead.pid)
    killed.mkdir()
    (killed / '.cairn-my-x.cnf').write_text('password=left over\n')
    alive = base / ('%d-%d-def' % (os.getpid(), process_start_time(os.getpid())))
    alive.mkdir()
    # A SQLite database big enough for its dump copy to be seen.
    with sqlite3.connect(str(source / 'data.db')) as conn:
        conn.execute('CREATE TABLE ballast (data BLOB)')
        conn.executemany('INSERT INTO ballast VALUES (?)', [(os.urandom(1 << 20),) for _number in range(40)])
    conn.close()
    stop, seen = threading.Event(), set()
    watcher = threading.Thread(target=_watch, args=([repo['path'], str(base)], stop, seen))
    watcher.start()
    try:
        proc = _dump_in_background(source / '.env', repo, 'blog', tmpdir)
        assert not json.loads(proc.stdout.read()).get('failed')
        proc.wait()
        option_files = set()
        proc = _dump_in_background(instance(tmp_path, 'maria', mariadb_database.env()), repo, 'cms', tmpdir)
        _option_files(proc, option_files)
        result = json.loads(proc.stdout.read())
        proc.wait()
        assert not result.get('failed'), result
    finally:
        stop.set()
        watcher.join()
    assert not killed.exists() and alive.exists()
    scratch_names = ('.cairn-dump-', '.cairn-my-', '.cairn-pgdir-', '.cairn-restore-')
    in_repository = [path for path in seen if path.startswith(repo['path'])
                     and os.path.basename(path).startswith(scratch_names)]
    assert not in_repository, in_repository
    copies = [path for path in seen if os.path.basename(path).startswith('.cairn-dump-')]
    assert copies and all(path.startswith(str(base) + os.sep) for path in copies), copies
    assert option_files and all(path.startswith(str(base) + os.sep) for path in option_files), option_files
    # Each run's own scratch directory is gone when it ends.
    assert sorted(os.listdir(str(base))) == [alive.name]


def test_kept_safety_copy_outlives_the_run_and_is_private(tmp_path, repo, mariadb_database):
    server = mariadb_database.server
    tmpdir = tmp_path / 'tmpdir'
    tmpdir.mkdir()
    manifest, _dump = db_backup(instance(tmp_path, 'source', mariadb_database.env()), repo)
    copy, target, _counts = other_instance(tmp_path, mariadb_database, rows=5)
    try:
        replaced = run_module('cairn_db_restore', environ={'TMPDIR': str(tmpdir)}, env_file=str(target),
                              repository=repo, instance='cms', replace=True, keep_safety_copy=True)
        assert replaced['changed'] and replaced['safety_copy'], replaced
        kept = replaced['safety_copy']
        assert os.path.dirname(kept) == str(tmpdir) and os.path.basename(kept).startswith(
            '%s.cairn-safety-%s-' % (copy, manifest['id'])), kept
        assert os.stat(kept).st_mode & 0o777 == 0o600 and b'INSERT INTO' in open(kept, 'rb').read()
        assert os.listdir(str(tmpdir / ('cairncms-ops-%d' % os.geteuid()))) == []
    finally:
        server.drop_database(copy)
