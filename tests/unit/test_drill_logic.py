# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Restore drills: the sandbox's variables, the guard, the record's RTO and RPO, and the process handling
(a real child process; no CMS)."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time

import pytest

from ansible_collections.cairncms.ops.plugins.module_utils import _drill, _guard, _service
from ansible_collections.cairncms.ops.plugins.module_utils._common import CairnError, process_start_time
from ansible_collections.cairncms.ops.plugins.module_utils._db import select_backend
from ansible_collections.cairncms.ops.plugins.module_utils._db._base import marker_matches, restore_marker
from ansible_collections.cairncms.ops.plugins.module_utils._env import InstanceConfig


def manifest(vendor='sqlite', locations=('local',), started='2026-11-22T02:00:00.000000Z'):
    return {'id': '20261122T020000.000Z-abcdef', 'instance': 'blog', 'started_at': started,
            'database': {'vendor': vendor}, 'storage': {'locations': [{'name': name} for name in locations]}}


def config(values, base='/srv/cms'):
    return InstanceConfig.load(None, values, base)


def test_sqlite_sandbox_gets_its_own_everything():
    values = _drill.sandbox_overrides(['local', 'cloud'], manifest(locations=('local', 'extra')),
                                      '/var/tmp/drill', '127.0.0.1', 4100, {})
    assert values['DB_FILENAME'] == '/var/tmp/drill/database/data.db'
    assert values['PUBLIC_URL'] == 'http://127.0.0.1:4100' and values['PORT'] == '4100'
    for name in ('local', 'extra', 'cloud'):  # the manifest's and the captured STORAGE_LOCATIONS
        assert values['STORAGE_%s_DRIVER' % name.upper()] == 'local'
        assert values['STORAGE_%s_ROOT' % name.upper()] == '/var/tmp/drill/storage/%s' % name
    assert values['CACHE_STORE'] == 'memory' and values['RATE_LIMITER_ENABLED'] == 'false'


def test_operator_overrides_win_and_server_databases_need_a_scratch_database():
    with pytest.raises(CairnError, match='Set DB_DATABASE'):
        _drill.sandbox_overrides([], manifest('postgres'), '/d', '127.0.0.1', 1, {'DB_HOST': 'db'})
    values = _drill.sandbox_overrides([], manifest('postgres', ('s3',)), '/d', '::1', 1, {
        'DB_DATABASE': 'blog_drill', 'STORAGE_S3_DRIVER': 's3', 'STORAGE_S3_BUCKET': 'scratch', 'HOST': '::1'})
    assert 'DB_FILENAME' not in values and values['DB_DATABASE'] == 'blog_drill'
    assert values['STORAGE_S3_DRIVER'] == 's3' and 'STORAGE_S3_ROOT' not in values
    assert values['PUBLIC_URL'] == 'http://[::1]:1'


def refuse(copy, others):
    _guard.refuse_shared(copy, 'the drill sandbox', 'cairn_drill_env_overrides', others)


def test_guard_refuses_the_live_database_and_storage():
    live = config({'DB_CLIENT': 'pg', 'DB_HOST': 'localhost', 'DB_DATABASE': 'blog', 'DB_USER': 'cms',
                   'STORAGE_LOCATIONS': 'cloud', 'STORAGE_CLOUD_DRIVER': 's3', 'STORAGE_CLOUD_BUCKET': 'media'})
    same_db = config({'DB_CLIENT': 'postgres', 'DB_HOST': '127.0.0.1', 'DB_PORT': '5432', 'DB_DATABASE': 'blog',
                      'DB_USER': 'drill', 'STORAGE_LOCAL_ROOT': '/var/tmp/d/storage/local'})
    with pytest.raises(CairnError, match='would use the database of the live instance'):
        refuse(same_db, [('the live instance', live, True)])
    # On loopback, the same name on another host's server is another database.
    refuse(same_db, [('the source as captured', live, False)])
    same_bucket = config({'DB_CLIENT': 'pg', 'DB_HOST': 'localhost', 'DB_DATABASE': 'blog_drill', 'DB_USER': 'd',
                          'STORAGE_LOCATIONS': 'cloud', 'STORAGE_CLOUD_DRIVER': 's3',
                          'STORAGE_CLOUD_BUCKET': 'media'})
    for same_host in (True, False):  # a bucket is the same bucket from anywhere
        with pytest.raises(CairnError, match='storage location cloud of the drill sandbox is location cloud'):
            refuse(same_bucket, [('the live instance', live, same_host)])
    other_port = config({'DB_CLIENT': 'pg', 'DB_HOST': 'localhost', 'DB_PORT': '5433', 'DB_DATABASE': 'blog',
                         'DB_USER': 'd', 'STORAGE_LOCAL_ROOT': '/var/tmp/d/storage/local'})
    refuse(other_port, [('the live instance', live, True)])
    named = config({'DB_CLIENT': 'pg', 'DB_HOST': 'db.internal', 'DB_DATABASE': 'blog', 'DB_USER': 'd'})
    with pytest.raises(CairnError, match='would use the database'):
        refuse(named, [('the source as captured', config({'DB_CLIENT': 'pg', 'DB_HOST': 'DB.internal',
                                                          'DB_DATABASE': 'blog', 'DB_USER': 'cms'}), False)])
    # The same SQLite file, named another way, is the same database.
    sandbox = config({'DB_CLIENT': 'sqlite3', 'DB_FILENAME': '/srv/cms/./data.db', 'STORAGE_LOCAL_ROOT': '/x'})
    with pytest.raises(CairnError, match='would use the database'):
        refuse(sandbox, [('the source', config({'DB_CLIENT': 'sqlite3', 'DB_FILENAME': 'data.db'}), True)])


def test_captured_configuration_without_its_files_or_directory():
    captured = _guard.captured_config('DB_CLIENT=sqlite3\nDB_FILENAME=./data.db\nDB_PASSWORD_FILE=/run/x\n')
    assert captured.database().options['filename'] == os.path.join(_guard.SOURCE_DIR, 'data.db')


def test_record_measures_rto_and_rpo_and_names_every_problem():
    checks = [{'name': 'row counts', 'ok': True}, {'name': 'http login', 'ok': False}]
    drill = _drill.record(manifest(), '2026-11-22T03:00:00.000000Z', checks,
                          ended_at='2026-11-22T03:01:30.500000Z', max_rto_s=60, max_rpo_s=3600, host='cms1')
    assert (drill['rto_s'], drill['rpo_s']) == (90.5, 3600.0)
    assert drill['ok'] is False and drill['failed_checks'] == ['http login']
    assert len(drill['problems']) == 2 and 'RTO 90.5 s' in drill['problems'][1]  # RPO 3600 is within its limit
    assert drill['id'].startswith('20261122T030000.000Z-')
    passed = _drill.record(manifest(), '2026-11-22T03:00:00.000000Z', checks[:1],
                           ended_at='2026-11-22T03:00:10.000000Z')
    assert passed['ok'] and passed['max_rto_s'] is None
    assert _drill.record(manifest(), '2026-11-22T03:00:00.000000Z', [])['problems'] == ['no check ran']
    failed = _drill.record(manifest(), '2026-11-22T03:00:00.000000Z', [], error='Start: exited with code 3')
    assert failed['problems'] == ['Start: exited with code 3']


def test_remove_only_what_the_drill_owns(tmp_path):
    foreign = tmp_path / 'foreign'
    foreign.mkdir()
    (foreign / 'data').write_text('keep')
    with pytest.raises(CairnError, match='not a drill sandbox'):
        _drill.remove(str(foreign))
    owned = tmp_path / 'owned'
    owned.mkdir()
    (owned / _drill.MARKER).write_text('{}')
    (owned / 'data').write_text('drill copy')
    # A CMS a killed drill left running in the sandbox is stopped with it.
    left = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'], cwd=str(owned),
                            start_new_session=True)
    try:
        (owned / _drill.PID_FILE).write_text(json.dumps({'pid': left.pid, 'start_time': process_start_time(left.pid)}))
        assert _drill.remove(str(owned), check_mode=True) and owned.exists() and left.poll() is None
        assert _drill.remove(str(owned)) and not owned.exists()
        assert left.wait(timeout=5) is not None
    finally:
        if left.poll() is None:
            left.kill()
    assert not _drill.remove(str(owned))


def test_process_is_stopped_as_a_group_and_a_reused_pid_is_never_signalled(tmp_path):
    pid_file = str(tmp_path / 'cms.pid')
    # A parent that starts a child in its process group, as npm or a shell wrapper would.
    leader = subprocess.Popen([sys.executable, '-c', 'import subprocess, sys, time; subprocess.Popen([sys.executable, '
                               '"-c", "import time; time.sleep(60)"]); time.sleep(60)'], start_new_session=True)
    try:
        with open(pid_file, 'w') as handle:
            json.dump({'pid': leader.pid, 'start_time': process_start_time(leader.pid) + 1}, handle)
        assert _service.running(pid_file) is None  # same pid, other start time: not ours
        assert not _service.stop(pid_file) and leader.poll() is None and not os.path.exists(pid_file)
        with open(pid_file, 'w') as handle:
            json.dump({'pid': leader.pid, 'start_time': process_start_time(leader.pid)}, handle)
        assert _service.running(pid_file) == leader.pid
        assert _service.stop(pid_file, timeout=5)
        assert leader.wait(timeout=5) is not None
        members = subprocess.run(['pgrep', '-g', str(leader.pid)], capture_output=True, text=True, check=False)
        assert members.stdout.strip() == ''
    finally:
        if leader.poll() is None:
            leader.kill()


def test_a_child_that_ignores_sigterm_is_killed_with_its_group(tmp_path):
    pid_file = str(tmp_path / 'cms.pid')
    stubborn = ('import signal, subprocess, sys, time; subprocess.Popen([sys.executable, "-c", "import signal, time; '
                'signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)"]); time.sleep(60)')
    leader = subprocess.Popen([sys.executable, '-c', stubborn], start_new_session=True)
    try:
        deadline = time.monotonic() + 10
        while len(_service._group(leader.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(_service._group(leader.pid)) == 2
        with open(pid_file, 'w') as handle:
            json.dump({'pid': leader.pid, 'start_time': process_start_time(leader.pid)}, handle)
        assert _service.stop(pid_file, timeout=1)
        leader.wait(timeout=5)
        assert _service._group(leader.pid) == []
    finally:
        if leader.poll() is None:
            leader.kill()


def test_start_failure_shows_the_log_end_with_secrets_masked(tmp_path):
    env_file = tmp_path / '.env'
    # a password inside a URL too (CACHE_REDIS is not a secret by its name's shape alone)
    env_file.write_text('SECRET=s3cr3t-value-123\nPORT=1\nCACHE_REDIS=redis://cms:redis-pw-77@cache:6379\n')
    script = 'print("connecting with s3cr3t-value-123 failed; auth redis-pw-77 refused"); raise SystemExit(4)'
    with pytest.raises(CairnError) as caught:
        _service.start([sys.executable, '-c', script], str(tmp_path), 'http://127.0.0.1:9', str(env_file),
                       str(tmp_path / 'pid'), str(tmp_path / 'cms.log'), timeout=20)
    assert 'exited with code 4' in caught.value.message and 'connecting with ******** failed' in caught.value.message
    assert 's3cr3t' not in caught.value.message and not (tmp_path / 'pid').exists()
    assert 'redis-pw-77' not in caught.value.message and 'auth ******** refused' in caught.value.message


def test_turn_off_active_flows_and_webhooks_once(tmp_path):
    path = str(tmp_path / 'data.db')
    with sqlite3.connect(path) as db:
        db.execute('CREATE TABLE directus_flows (id TEXT, status TEXT)')
        db.executemany('INSERT INTO directus_flows VALUES (?, ?)', [('a', 'active'), ('b', 'inactive'), ('c', 'active')])
    db.close()
    backend = select_backend(config({'DB_CLIENT': 'sqlite3', 'DB_FILENAME': path}).database())
    assert backend.turn_off(['flows', 'webhooks'], check_mode=True) == {'flows': 2, 'webhooks': 0}
    assert backend.turn_off(['flows', 'webhooks']) == {'flows': 2, 'webhooks': 0}  # no directus_webhooks table
    assert backend.turn_off(['flows']) == {'flows': 0}
    with sqlite3.connect(path) as db:
        assert db.execute('SELECT id, status FROM directus_flows ORDER BY id').fetchall() == [
            ('a', 'inactive'), ('b', 'inactive'), ('c', 'inactive')]
    db.close()


def test_markers_record_what_was_turned_off():
    marker = restore_marker('p1', 7, (), ['webhooks', 'flows'])
    assert marker['quiesced'] == ['flows', 'webhooks']
    assert marker_matches(marker, 'p1', 7, (), ['flows', 'webhooks'])
    assert not marker_matches(marker, 'p1', 7, ())
    assert not marker_matches(restore_marker('p1', 7), 'p1', 7, (), ['flows'])


def test_status_of_an_instance_against_limits():
    from ansible_collections.cairncms.ops.plugins.module_utils._common import parse_time
    from ansible_collections.cairncms.ops.plugins.module_utils._lifecycle import status
    now = parse_time('2026-11-22T12:00:00.000000Z')
    points = [{'id': 'old', 'started_at': '2026-11-20T02:00:00.000000Z', 'verified_ok': True},
              {'id': 'new', 'started_at': '2026-11-22T02:00:00.000000Z', 'verified_ok': False,
               'secrets_captured': True}]
    drill = {'id': 'd1', 'ok': True, 'started_at': '2026-11-15T12:00:00.000000Z', 'rto_s': 40.0, 'rpo_s': 60.0}
    found, problems = status(points, drill, ['f1'], None, max_point_age=36000, max_drill_age=7 * 86400, now=now)
    assert (found['newest_point'], found['newest_point_age_s'], found['restore_points']) == ('new', 36000.0, 2)
    assert (found['last_drill_age_s'], found['failed_runs'], found['locked']) == (604800.0, 1, False)
    assert problems == ['the last check of the newest restore point found problems']  # ages exactly at the limits
    found, problems = status(points, dict(drill, ok=False, problems=['RTO 90.0 s is over']), [], {'run': 'x'},
                             max_point_age=35999, now=now)
    assert found['locked'] and len(problems) == 3 and 'over the limit of 35999 s' in problems[0]
    assert problems[2] == 'the last restore drill failed: RTO 90.0 s is over'
    assert status([], None, [], None, max_drill_age=1, now=now)[1] == ['no restore point', 'no restore drill in the last 1 s']
