# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The modules for real, against real SQLite files, uploads and a local repository."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time

import pytest

from conftest import COLLECTIONS, ROOT, artifacts_of, part_of, run_module
from demo import digests


def backup(env_file, repo, instance='blog', **storage_args):
    point = run_module('cairn_restore_point', repository=repo, instance=instance)
    assert point['changed'] and not point.failed, point
    pid = point['restore_point']
    dump = run_module('cairn_db_dump', env_file=str(env_file), repository=repo, instance=instance, restore_point=pid)
    assert not dump.failed, dump
    files = run_module('cairn_storage_sync', env_file=str(env_file), repository=repo, instance=instance,
                       restore_point=pid, direction='backup', **storage_args)
    assert not files.failed, files
    final = run_module('cairn_restore_point', env_file=str(env_file), repository=repo, instance=instance,
                       restore_point=pid, state='complete')
    assert not final.failed, final
    return final['manifest'], dump, files


def restore(env_file, repo, instance='blog', point='latest', replace=False, check_mode=False):
    db = run_module('cairn_db_restore', env_file=str(env_file), repository=repo, instance=instance,
                    restore_point=point, replace=replace, check_mode=check_mode)
    files = run_module('cairn_storage_sync', env_file=str(env_file), repository=repo, instance=instance,
                       restore_point=point, direction='restore', replace=replace, check_mode=check_mode)
    return db, files


def dump_sql(path):
    conn = sqlite3.connect('file:%s?mode=ro' % path, uri=True)
    try:
        return list(conn.iterdump())
    finally:
        conn.close()


def originals(directory):
    return {name: digest for name, digest in digests(directory).items() if '__' not in name}


def test_round_trip_bytes_rows_and_manifest(source, target, repo):
    manifest, dump, files = backup(source / '.env', repo)
    # The manifest records what the issue asks for.
    assert manifest['format_version'] == 2 and manifest['instance'] == 'blog'
    assert manifest['cms']['key'] and manifest['cms']['migration_level'] == '20230401A'
    assert part_of(manifest, 'database')['row_counts']['articles'] == 12
    assert part_of(manifest, 'database')['server_version'] == sqlite3.sqlite_version
    assert files['skipped_regenerable'] == 1 and files['files'] == 6
    point_dir = os.path.join(repo['path'], 'blog', 'points', manifest['id'])
    for artifact in artifacts_of(manifest):
        with open(os.path.join(point_dir, artifact['path']), 'rb') as handle:
            data = handle.read()
        assert (len(data), hashlib.sha256(data).hexdigest()) == (artifact['size_bytes'], artifact['sha256'])
    db, restored = restore(target / '.env', repo)
    assert db['changed'] and db['target_state'] == 'absent', db
    assert restored['changed'] and restored['transferred'] == 6, restored
    assert dump_sql(source / 'data.db') == dump_sql(target / 'data.db')
    assert digests(target / 'uploads') == originals(source / 'uploads')
    verify = run_module('cairn_restore_verify', env_file=str(target / '.env'), repository=repo, instance='blog',
                        checks=['repository', 'database', 'files'])
    assert not verify.failed and all(check['ok'] for check in verify['checks']) and len(verify['checks']) == 8, verify


def test_restore_is_idempotent(source, target, repo):
    backup(source / '.env', repo)
    restore(target / '.env', repo)
    db, files = restore(target / '.env', repo)
    assert (db['changed'], db['target_state']) == (False, 'identical'), db
    assert (files['changed'], files['unchanged'], files['transferred']) == (False, 6, 0), files


def test_restore_refuses_a_non_empty_target_and_changes_nothing(source, target, repo, tmp_path):
    backup(source / '.env', repo)
    other = tmp_path / 'other'
    import demo_instance
    demo_instance.populated(str(other), files=3, seed=7)
    before_db = hashlib.sha256((other / 'data.db').read_bytes()).hexdigest()
    before_files = digests(other / 'uploads')
    for check_mode in (True, False):
        db, files = restore(other / '.env', repo, check_mode=check_mode)
        assert db.failed and 'Set replace' in db['msg'] and 'not empty' in db['msg'], db
        assert files.failed and 'nothing was changed' in files['msg'], files
    assert hashlib.sha256((other / 'data.db').read_bytes()).hexdigest() == before_db
    assert digests(other / 'uploads') == before_files
    # With replace the target becomes the restore point exactly: no stale file survives.
    db, files = restore(other / '.env', repo, replace=True)
    assert db['changed'] and db['replaced'] and files['removed'] == len(before_files), (db, files)
    assert dump_sql(other / 'data.db') == dump_sql(source / 'data.db')
    assert digests(other / 'uploads') == originals(source / 'uploads')
    assert not [name for name in os.listdir(other) if 'cairn-safety' in name]


def test_check_mode_plans_without_changing(source, target, repo):
    point = run_module('cairn_restore_point', repository=repo, instance='blog', check_mode=True)
    assert point['changed'] and not os.path.exists(repo['path'])
    plan = run_module('cairn_storage_sync', env_file=str(source / '.env'), repository=repo, instance='blog',
                      restore_point=point['restore_point'], direction='backup', check_mode=True)
    assert (plan['transferred'], plan['skipped_regenerable']) == (6, 1) and not os.path.exists(repo['path']), plan
    backup(source / '.env', repo)
    db, files = restore(target / '.env', repo, check_mode=True)
    assert db['changed'] and files['changed'] and files['transferred'] == 6
    assert not (target / 'data.db').exists() and os.listdir(target / 'uploads') == []


def test_incremental_backup_and_every_point_restores_alone(source, target, repo, tmp_path):
    first = backup(source / '.env', repo)[0]
    blobs = os.path.join(repo['path'], 'blog', 'blobs')
    count = sum(len(files) for _dir, _subdirs, files in os.walk(blobs))
    second, _dump, files = backup(source / '.env', repo)
    assert (files['transferred'], files['reused']) == (0, 6), files
    assert sum(len(f) for _dir, _subdirs, f in os.walk(blobs)) == count
    # Change one upload: only it is read and stored again.
    name = sorted(n for n in os.listdir(source / 'uploads') if n.endswith('.txt'))[0]
    old_bytes = (source / 'uploads' / name).read_bytes()
    (source / 'uploads' / name).write_bytes(b'changed content')
    third, _dump, files = backup(source / '.env', repo)
    assert (files['transferred'], files['reused']) == (1, 5), files
    # The first restore point still restores alone, with the old bytes.
    restore(target / '.env', repo, point=first['id'])
    assert (target / 'uploads' / name).read_bytes() == old_bytes
    assert [p['id'] for p in run_module('cairn_backup_info', repository=repo, instance='blog')['restore_points']] \
        == [first['id'], second['id'], third['id']]


def test_corrupt_database_artifact_fails_before_touching_target(source, target, repo):
    manifest = backup(source / '.env', repo)[0]
    artifact = os.path.join(repo['path'], 'blog', 'points', manifest['id'],
                            part_of(manifest, 'database')['artifacts'][0]['path'])
    data = bytearray(open(artifact, 'rb').read())
    data[len(data) // 2] ^= 0x01
    open(artifact, 'wb').write(bytes(data))
    (target / 'data.db').write_bytes(b'')  # an empty target file: would be restored into
    db = restore(target / '.env', repo)[0]
    assert db.failed and 'fails its checksum' in db['msg'] and 'nothing was restored' in db['msg'], db
    assert (target / 'data.db').read_bytes() == b''
    assert sorted(os.listdir(target)) == ['.env', 'data.db', 'uploads']


def test_corrupt_blob_fails_before_any_file_is_written(source, target, repo):
    backup(source / '.env', repo)
    blobs = os.path.join(repo['path'], 'blog', 'blobs')
    victim = sorted(os.path.join(d, f) for d, _subdirs, files in os.walk(blobs) for f in files)[-1]
    data = bytearray(open(victim, 'rb').read())
    data[0] ^= 0xff
    open(victim, 'wb').write(bytes(data))
    files = run_module('cairn_storage_sync', env_file=str(target / '.env'), repository=repo, instance='blog',
                       direction='restore')
    assert files.failed and 'fails its checksum' in files['msg'], files
    assert os.listdir(target / 'uploads') == []
    verify = run_module('cairn_restore_verify', repository=repo, instance='blog', checks=['repository'])
    assert verify.failed and verify['failed_checks'] == ['file blobs sha256'], verify


def test_backup_while_the_cms_writes_stays_consistent(source, target, repo):
    """A writer keeps inserting articles with their activity rows in one transaction each; the
    dump must hold an equal number of both, and pass integrity_check."""
    db_path = str(source / 'data.db')
    stop = threading.Event()
    written = [0]

    def writer():
        conn = sqlite3.connect(db_path, timeout=30)
        while not stop.is_set():
            with conn:
                cur = conn.execute("INSERT INTO articles (title, body) VALUES ('live', ?)", ('x' * 2000,))
                conn.execute("INSERT INTO directus_activity (action, collection, item) VALUES ('create', "
                             "'articles', ?)", (str(cur.lastrowid),))
            written[0] += 1
        conn.close()

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        time.sleep(0.3)
        manifests = [backup(source / '.env', repo)[0] for _round in range(3)]
    finally:
        stop.set()
        thread.join()
    assert written[0] > 10
    for manifest in manifests:
        counts = part_of(manifest, 'database')['row_counts']
        assert counts['articles'] == counts['directus_activity'], counts
    assert len({part_of(m, 'database')['row_counts']['articles'] for m in manifests}) > 1, 'the writer made no progress'
    restore(target / '.env', repo, replace=True)
    conn = sqlite3.connect(str(target / 'data.db'))
    assert conn.execute('PRAGMA integrity_check').fetchone() == ('ok',)
    articles, activity = (conn.execute('SELECT COUNT(*) FROM %s' % t).fetchone()[0]
                          for t in ('articles', 'directus_activity'))
    conn.close()
    assert articles == activity == part_of(manifests[-1], 'database')['row_counts']['articles']


def test_interrupted_backup_leaves_no_restore_point(source, repo):
    # A database large enough that the dump is still running when it is killed.
    conn = sqlite3.connect(str(source / 'data.db'))
    conn.execute('CREATE TABLE big (data BLOB)')
    conn.execute('WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 400) '
                 'INSERT INTO big SELECT randomblob(1048576) FROM n')
    conn.commit()
    conn.close()
    point = run_module('cairn_restore_point', repository=repo, instance='blog')['restore_point']
    args = {'ANSIBLE_MODULE_ARGS': {'env_file': str(source / '.env'), 'repository': repo, 'instance': 'blog',
                                    'restore_point': point, 'compression_level': 19}}
    proc = subprocess.Popen([sys.executable, '-m', 'ansible_collections.cairncms.ops.plugins.modules.cairn_db_dump'],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=dict(os.environ, PYTHONPATH=COLLECTIONS), cwd=ROOT)
    proc.stdin.write(json.dumps(args).encode())
    proc.stdin.close()
    staging = os.path.join(repo['path'], 'blog', 'staging', point)
    deadline = time.monotonic() + 60
    while not any(name.startswith('.cairn-') and name.endswith('.part') for name in os.listdir(staging)):
        assert time.monotonic() < deadline and proc.poll() is None, 'the dump ended before it could be interrupted'
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert run_module('cairn_backup_info', repository=repo, instance='blog')['restore_points'] == []
    final = run_module('cairn_restore_point', env_file=str(source / '.env'), repository=repo, instance='blog',
                       restore_point=point, state='complete')
    assert final.failed and 'has no database part' in final['msg'], final
    assert run_module('cairn_backup_info', repository=repo, instance='blog')['restore_points'] == []


def test_failed_run_keeps_its_error_log(source, repo):
    point = run_module('cairn_restore_point', repository=repo, instance='blog')['restore_point']
    failed = run_module('cairn_restore_point', repository=repo, instance='blog', restore_point=point, state='failed',
                        error={'task': 'Dump the database', 'msg': 'boom'})
    assert failed['changed'] and os.path.isfile(failed['error_log'])
    info = run_module('cairn_backup_info', repository=repo, instance='blog')
    assert info['restore_points'] == [] and info['failed_runs'] == [point]
    assert json.load(open(failed['error_log']))['error']['msg'] == 'boom'
    assert not os.path.exists(os.path.join(repo['path'], 'blog', 'staging', point))


def test_clear_errors(source, target, repo, tmp_path):
    missing = run_module('cairn_db_restore', env_file=str(target / '.env'), repository=repo, instance='blog')
    assert missing.failed and 'holds no restore point of instance' in missing['msg']
    backup(source / '.env', repo)
    wrong = run_module('cairn_db_restore', env_file=str(target / '.env'), repository=repo, instance='blog',
                       restore_point='20000101T000000Z-000000')
    assert wrong.failed and 'is not in local:' in wrong['msg']
    bad = run_module('cairn_instance_info', env_file=str(tmp_path / 'nope.env'))
    assert bad.failed and 'cairn_env_file' in bad['msg']
    traversal = run_module('cairn_backup_info', repository=repo, instance='../etc')
    assert traversal.failed and 'not a valid name' in traversal['msg']
    pg = run_module('cairn_instance_info', env_overrides={'DB_CLIENT': 'pg'})
    assert pg.failed and 'DB_CLIENT=pg' in pg['msg']


@pytest.mark.parametrize('compression', ['zstd', 'none'])
def test_compression_choices_round_trip(source, target, repo, compression):
    point = run_module('cairn_restore_point', repository=repo, instance='blog')['restore_point']
    dump = run_module('cairn_db_dump', env_file=str(source / '.env'), repository=repo, instance='blog',
                      restore_point=point, compression=compression)
    assert dump['artifact'] == 'database.sqlite3' + ('.zst' if compression == 'zstd' else '')
    assert (dump['size_bytes'] < dump['raw_size_bytes']) == (compression == 'zstd')
    run_module('cairn_storage_sync', env_file=str(source / '.env'), repository=repo, instance='blog',
               restore_point=point, direction='backup')
    run_module('cairn_restore_point', env_file=str(source / '.env'), repository=repo, instance='blog',
               restore_point=point, state='complete')
    db = restore(target / '.env', repo)[0]
    assert db['changed'] and dump_sql(target / 'data.db') == dump_sql(source / 'data.db')


@pytest.mark.skipif(os.geteuid() != 0, reason='changing owners needs root')
def test_restored_data_belongs_to_the_instance_owner(source, target, repo):
    """Run as root, a restore hands the database and files to the owner of the target's directories."""
    backup(source / '.env', repo)
    os.chown(target, 4321, 4321)
    os.chown(target / 'uploads', 4321, 4321)
    restore(target / '.env', repo)
    info = os.stat(target / 'data.db')
    assert (info.st_uid, info.st_gid, info.st_mode & 0o777) == (4321, 4321, 0o600)
    for name in os.listdir(target / 'uploads'):
        info = os.stat(target / 'uploads' / name)
        assert (info.st_uid, info.st_mode & 0o777) == (4321, 0o644), name


def test_sqlite_content_move(source, target, repo, tmp_path):
    import demo_instance
    other = tmp_path / 'other'
    demo_instance.populated(str(other), files=2, seed=3)
    conn = sqlite3.connect(str(source / 'data.db'))
    conn.execute("UPDATE articles SET title = 'moved' WHERE id = 1")
    conn.commit()
    conn.close()
    point = run_module('cairn_restore_point', repository=repo, instance='blog')['restore_point']
    dump = run_module('cairn_db_dump', env_file=str(source / '.env'), repository=repo, instance='blog',
                      restore_point=point, tables=['articles'])
    assert dump['row_counts'] == {'articles': 12} and dump['artifact'] == 'database.data.sql.zst', dump
    unknown = run_module('cairn_db_dump', env_file=str(source / '.env'), repository=repo, instance='blog',
                         restore_point=point, tables=['nope'])
    assert unknown.failed and 'table(s) nope are not in the database' in unknown['msg']
    run_module('cairn_storage_sync', env_file=str(source / '.env'), repository=repo, instance='blog',
               restore_point=point, direction='backup')
    assert not run_module('cairn_restore_point', env_file=str(source / '.env'), repository=repo, instance='blog',
                          restore_point=point, state='complete').failed
    users_before = dump_sql(other / 'data.db')
    moved = run_module('cairn_db_restore', env_file=str(other / '.env'), repository=repo, instance='blog',
                       replace=True)
    assert moved['changed'] and moved['tables'] == ['articles'], moved
    # The other instance has other files: every moved article points at a file it does not have.
    assert moved['dangling_file_references'] == {'articles.cover': 12}, moved
    conn = sqlite3.connect(str(other / 'data.db'))
    assert conn.execute('SELECT COUNT(*), MAX(title) FROM articles WHERE id = 1').fetchone() == (1, 'moved')
    assert conn.execute('SELECT COUNT(*) FROM articles').fetchone()[0] == 12
    conn.close()

    def others(lines):  # everything but the articles and their AUTOINCREMENT counter
        return [line for line in lines if 'INSERT INTO "articles"' not in line and "VALUES('articles'," not in line]
    assert others(dump_sql(other / 'data.db')) == others(users_before)
