# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The backup playbook through ansible-playbook: one module run per instance (cairn_backup), its result published for
AWX, what a check run would do, no new restore point while the newest is younger than cairn_backup_min_interval
(a second run changes nothing), at most cairn_backup_dump_slots dumps at once against one PostgreSQL server (a slot
of a killed run taken over once stale), a step over its timeout stopped and named, and one fleet summary per run -
also when some or all instances failed."""

from __future__ import annotations

import collections
import glob
import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest

import _servers
import demo_instance
from ansible_collections.cairncms.ops.plugins.module_utils._common import parse_time
from ansible_collections.cairncms.ops.plugins.module_utils._process import descendants
from conftest import ROOT, SHOW_STATS, custom_stats, part_of, process_argvs, recap, run_playbook, _env

MODULE_RUN = re.compile(r"EXEC /bin/sh -c '\S*python\S* \S+/AnsiballZ_(\w+)\.py")


def inventory(tmp_path, hosts, **common):
    variables = {'ansible_connection': 'local', 'ansible_python_interpreter': sys.executable,
                 'cairn_repository': {'type': 'local', 'path': str(tmp_path / 'repository')}}
    variables.update(common)
    path = tmp_path / 'inventory.json'
    path.write_text(json.dumps({'all': {'vars': variables, 'hosts': hosts}}))
    return str(path)


def play(inventory_path, extra=(), **kwargs):
    """ansible-playbook backup.yml; (the run, the custom stats it published for AWX)."""
    run = run_playbook('backup.yml', inventory_path, extra=list(extra), environ=SHOW_STATS, **kwargs)
    return run, custom_stats(run.stdout)


def points(tmp_path, instance):
    directory = tmp_path / 'repository' / instance / 'points'
    return sorted(os.listdir(directory)) if directory.exists() else []


def test_one_module_run_its_result_check_mode_and_min_interval(tmp_path, source):
    hosts = {'blog': {'cairn_env_file': str(source / '.env')}}
    path = inventory(tmp_path, hosts, cairn_backup_min_interval=3600, cairn_retention={'keep_last': 3})

    planned, stats = play(path, extra=['-vvv'], check=True)
    assert planned.returncode == 0, planned.stdout + planned.stderr
    assert collections.Counter(MODULE_RUN.findall(planned.stdout)) == {'cairn_backup': 1}, planned.stdout
    result = stats['cairn_backup']['blog']
    assert result['check_mode'] is True and result['outcome'] == 'succeeded' and result['made'] is False
    assert 'Would write restore point %s of blog' % result['restore_point'] in planned.stdout
    assert 'Wrote restore point' not in planned.stdout and not (tmp_path / 'repository').exists()

    run, stats = play(path, extra=['-vvv'])
    assert run.returncode == 0, run.stdout + run.stderr
    # The whole backup - discover, begin, dump, files, secrets, finalize, verify, prune - is one module start.
    assert collections.Counter(MODULE_RUN.findall(run.stdout)) == {'cairn_backup': 1}, run.stdout
    result = stats['cairn_backup']['blog']
    [point] = points(tmp_path, 'blog')
    manifest = json.loads((tmp_path / 'repository' / 'blog' / 'points' / point / 'manifest.json').read_text())
    uploads = sum(os.path.getsize(source / 'uploads' / name) for name in os.listdir(source / 'uploads')
                  if '__' not in name)
    [database] = part_of(manifest, 'database')['artifacts']
    assert (result['outcome'], result['restore_point'], result['host'], result['error'], result['made']) == (
        'succeeded', point, 'blog', None, True), result
    assert result['bytes'] == database['size_bytes'] + uploads and result['verified'] is True, result
    assert result['duration_s'] > 0 and 0 <= result['rpo_s'] < result['duration_s'], result
    assert set(result['steps']) == {'discover', 'begin', 'dump', 'files', 'secrets', 'schema', 'config', 'rows',
                                    'finalize', 'verify', 'prune', 'posture'}, result
    assert result['database']['tables'] == len(part_of(manifest, 'database')['row_counts'])
    assert result['files']['files'] == 6
    # How far apart the dump's snapshot and the end of the file listing were: in the manifest and the result.
    snapshot, listed = (parse_time(part_of(manifest, 'database')['snapshot_at']),
                        parse_time(part_of(manifest, 'files')['listed_at']))
    assert snapshot <= listed and manifest['capture_skew_s'] == round((listed - snapshot).total_seconds(), 3)
    assert float(result['capture_skew_s']) == manifest['capture_skew_s'] < result['duration_s'], result
    summary = stats['cairn_fleet']
    assert (summary['total'], summary['succeeded'], summary['instances'][0]['restore_point']) == (1, 1, point)
    assert 'Wrote restore point %s of blog' % point in run.stdout

    # Younger than cairn_backup_min_interval: no new restore point, nothing changed, the fresh one named.
    again, stats = play(path)
    assert again.returncode == 0 and recap(again.stdout, 'blog')['changed'] == 0, again.stdout
    assert points(tmp_path, 'blog') == [point]
    result = stats['cairn_backup']['blog']
    assert result['made'] is False and result['restore_point'] == point and result['fresh']['restore_point'] == point
    assert 'No new restore point of blog: %s is' % point in again.stdout


def test_fleet_summary_when_some_and_when_all_instances_fail(tmp_path, source):
    for name in ('broken', 'gone'):
        demo_instance.empty(str(tmp_path / name))  # no database: the dump fails
    hosts = {'blog': {'cairn_env_file': str(source / '.env')},
             'broken': {'cairn_env_file': str(tmp_path / 'broken' / '.env')},
             'gone': {'cairn_env_file': str(tmp_path / 'gone' / '.env')}}
    summary_file = tmp_path / 'fleet.json'
    path = inventory(tmp_path, hosts, cairn_fleet_summary_file=str(summary_file))

    some, stats = play(path, limit='blog,broken')
    assert some.returncode != 0 and recap(some.stdout, 'broken')['failed'] == 1, some.stdout
    written = json.loads(summary_file.read_text())
    assert written == stats['cairn_fleet'] and (written['succeeded'], written['failed']) == (1, 1), written
    by_host = {entry['host']: entry for entry in written['instances']}
    assert by_host['blog']['outcome'] == 'succeeded' and by_host['blog']['bytes'] > 0
    assert by_host['broken']['outcome'] == 'failed' and "failed in 'Dump the database'" in by_host['broken']['error']
    assert written['problems'] == ['broken']
    # The failed run named its step in the published result and in its error log; its point was marked failed.
    failed = stats['cairn_backup']['broken']
    assert (failed['outcome'], failed['failed_step'], points(tmp_path, 'broken')) == ('failed', 'Dump the database', [])
    [log] = glob.glob(str(tmp_path / 'repository' / 'broken' / 'failed' / '*' / 'error.json'))
    error = json.loads(open(log).read())['error']
    assert (error['task'], error['step']) == ('Dump the database', 'dump') and 'does not exist' in error['msg']
    assert not (tmp_path / 'repository' / 'broken' / 'lock.json').exists()

    # Every host fails, in batches of one (after a batch that failed whole, Ansible runs nothing more): the summary
    # is written all the same, naming the host that never ran.
    summary_file.unlink()
    every, stats = play(path, limit='broken,gone', extra=['-e', 'cairn_serial=1'])
    assert every.returncode != 0, every.stdout
    written = json.loads(summary_file.read_text())
    assert written == stats['cairn_fleet'], written
    assert [(entry['host'], entry['outcome']) for entry in written['instances']] == [
        ('broken', 'failed'), ('gone', 'not_run')], written
    assert (written['succeeded'], written['failed'], written['not_run']) == (0, 1, 1)


# --- against one PostgreSQL server ------------------------------------------------------------------------------

class TableLock:
    """A session holding an ACCESS EXCLUSIVE lock on ``articles`` of a database: a pg_dump of it waits."""

    def __init__(self, server, database):
        argv, env = server.command('psql', '-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1', database=database)
        self.proc = subprocess.Popen(argv, env=dict(os.environ, **env), stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)
        self.proc.stdin.write('BEGIN; LOCK TABLE articles IN ACCESS EXCLUSIVE MODE; SELECT 42;\n')
        self.proc.stdin.flush()
        assert self.proc.stdout.readline().strip() == '42'

    def release(self):
        if self.proc.poll() is None:
            self.proc.communicate('COMMIT;\n', timeout=60)


def waiting_dumps(server, databases):
    """The databases where a session of cairncms.ops waits for a lock (a dump that started)."""
    rows = server.rows("SELECT DISTINCT datname FROM pg_stat_activity WHERE application_name = 'cairncms.ops' "
                       "AND wait_event_type = 'Lock'")
    return {row[0] for row in rows} & set(databases)


def dump_tools(database):
    """Pids of the pg_dump processes working on ``database``."""
    found = []
    for pid in filter(str.isdigit, os.listdir('/proc')):
        try:
            argv = open('/proc/%s/cmdline' % pid, 'rb').read().split(b'\0')
            environ = open('/proc/%s/environ' % pid, 'rb').read().split(b'\0')
        except OSError:
            continue
        if os.path.basename(argv[0]) == b'pg_dump' and b'PGDATABASE=' + database.encode() in environ:
            found.append(int(pid))
    return found


@pytest.fixture(scope='module')
def pg_fleet(postgres_server, tmp_path_factory):
    """Three instances whose databases are on one PostgreSQL server."""
    base = tmp_path_factory.mktemp('pg-fleet')
    names = {}
    for host in ('alpha', 'bravo', 'charlie'):
        database = postgres_server.create_database('cairn_slots_%s_%d' % (host, os.getpid()))
        _servers.load_cairn_schema(postgres_server, database, rows=5)
        (base / host / 'uploads').mkdir(parents=True)
        (base / host / '.env').write_text(''.join('%s="%s"\n' % item for item in postgres_server.env(
            database=database).items()) + 'STORAGE_LOCATIONS=local\nSTORAGE_LOCAL_DRIVER=local\n'
            'STORAGE_LOCAL_ROOT=./uploads\n')
        names[host] = database
    yield {'server': postgres_server, 'databases': names, 'base': base}
    for database in names.values():
        postgres_server.drop_database(database)


def test_dump_slots_let_one_dump_at_a_time_run_against_one_server(tmp_path, pg_fleet):
    server, databases = pg_fleet['server'], pg_fleet['databases']
    hosts = {host: {'cairn_env_file': str(pg_fleet['base'] / host / '.env')} for host in databases}
    path = inventory(tmp_path, hosts, cairn_backup_dump_slots=1)
    locks = {database: TableLock(server, database) for database in databases.values()}
    remote_tmp = str(tmp_path / 'remote-tmp')  # where this run's module runs start from: told apart from others'
    env = _env({'ANSIBLE_SHOW_CUSTOM_STATS': '1', 'ANSIBLE_REMOTE_TMP': remote_tmp})
    proc = subprocess.Popen([os.path.join(os.path.dirname(sys.executable), 'ansible-playbook'), '-i', path,
                             os.path.join(ROOT, 'playbooks', 'backup.yml'), '--forks', '3'],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=ROOT)
    try:
        # Each dump waits for its table. With one slot, one dump at a time may be seen waiting: each is held until
        # all three module runs have started and for 2 s more, then let go; the next may start only then.
        most, order, deadline = 0, [], time.monotonic() + 300
        while len(order) < len(databases):
            assert time.monotonic() < deadline and proc.poll() is None, 'the backups stalled'
            dumping = waiting_dumps(server, databases.values())
            most = max(most, len(dumping))
            started = {run for argv in process_argvs() for run in re.findall(
                re.escape(remote_tmp).encode() + rb'/(ansible-tmp-[^/]+)/AnsiballZ_cairn_backup', b' '.join(argv))}
            if dumping - set(order) and (order or len(started) == len(databases)):
                held_until = time.monotonic() + 2
                while time.monotonic() < held_until:
                    most = max(most, len(waiting_dumps(server, databases.values())))
                    time.sleep(0.1)
                for database in sorted(dumping - set(order)):
                    locks[database].release()
                    order.append(database)
            time.sleep(0.1)
        output = proc.communicate(timeout=300)[0]
    finally:
        for lock in locks.values():
            lock.release()
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, output
    assert most == 1 and sorted(order) == sorted(databases.values()), (most, order)
    stats = json.loads([line for line in output.splitlines() if line.strip().startswith('RUN: ')][-1].split('RUN: ')[1])
    windows = sorted((result['database']['started_at'], result['database']['finished_at'], result['dump_slot'])
                     for result in stats['cairn_backup'].values())
    for before, after in zip(windows, windows[1:]):
        assert before[1] <= after[0], windows  # no dump began before the one before it ended
    assert all(slot['slot'] == 1 and slot['slots'] == 1 for _start, _end, slot in windows), windows
    assert len({slot['server'] for _start, _end, slot in windows}) == 1


def test_a_killed_runs_slot_is_taken_over_and_a_step_over_its_timeout_is_stopped(tmp_path, pg_fleet):
    server, database = pg_fleet['server'], pg_fleet['databases']['alpha']
    path = inventory(tmp_path, {'alpha': {'cairn_env_file': str(pg_fleet['base'] / 'alpha' / '.env')}},
                     cairn_backup_dump_slots=1, cairn_lock_stale_after=2, cairn_lock_wait=10)
    lock = TableLock(server, database)
    try:
        # A backup killed in its dump: its dump slot (and instance lock) stay behind, silent. The next run waits for
        # the slot until it is stale, then for the instance lock, whose last beat came a moment after the slot's
        # (cairn_lock_wait: without it, the lock a few milliseconds short of stale is refused at once).
        killed = subprocess.Popen([os.path.join(os.path.dirname(sys.executable), 'ansible-playbook'), '-i', path,
                                   os.path.join(ROOT, 'playbooks', 'backup.yml')], stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL, env=_env(), cwd=ROOT)
        deadline = time.monotonic() + 120
        while not dump_tools(database):
            assert time.monotonic() < deadline and killed.poll() is None, 'the first backup never dumped'
            time.sleep(0.1)
        for pid in [killed.pid] + descendants(killed.pid):  # the playbook, its workers (own sessions), the module
            os.kill(pid, signal.SIGKILL)
        killed.wait()
        gone_by = time.monotonic() + 30
        while dump_tools(database):  # killed: gone once reaped
            assert time.monotonic() < gone_by, dump_tools(database)
            time.sleep(0.1)
        [slot] = glob.glob(str(tmp_path / 'repository' / 'dump-slot-*-1' / 'lock.json'))
        # The next backup takes the slot over once it is stale; its dump, still waiting for the table, is stopped
        # at the step's limit, and the run fails naming the step and the variable.
        started = time.monotonic()
        run, stats = play(path, extra=['-e', '{"cairn_backup_timeouts": {"dump": 3}}'])
        took = time.monotonic() - started
        assert run.returncode != 0, run.stdout
        assert "failed in 'Dump the database'" in run.stdout and 'cairn_backup_timeouts.dump' in run.stdout, run.stdout
        assert took < 60 and not dump_tools(database), (took, dump_tools(database))
    finally:
        lock.release()
    result = stats['cairn_backup']['alpha']
    assert result['outcome'] == 'failed' and result['dump_slot']['taken_over'], result
    assert 'took longer than its limit of 3s (cairn_backup_timeouts.dump)' in result['error'], result
    assert not os.path.exists(slot) and not (tmp_path / 'repository' / 'alpha' / 'lock.json').exists()
    logs = {os.path.basename(os.path.dirname(log)): json.loads(open(log).read())['error']
            for log in glob.glob(str(tmp_path / 'repository' / 'alpha' / 'failed' / '*' / 'error.json'))}
    assert logs[result['restore_point']]['step'] == 'dump' and 'limit of 3s' in logs[result['restore_point']]['msg']
    assert len(logs) == 2 and points(tmp_path, 'alpha') == []  # the killed run's staging was marked interrupted
