#!/usr/bin/env python
# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""cairn_storage_sync against rsync and rclone, measured in the same run on the same data.

    .venv/bin/python benchmarks/storage_sync.py [--small 10000] [--large 3] [--large-mb 50] [--rounds 3]
        [--only local|s3] [--server moto|s3rver] [--parallel N] [--workdir DIR] [--collections PATH]

Builds a demo instance (tests/support/demo_instance.py) whose local storage location holds a seeded
data set: SMALL files of 1-64 KiB named like CairnCMS uploads (``<yyyy>/<mm>/<uuid>.<ext>``) and LARGE
files of LARGE_MB MiB. Then, median of ROUNDS, each round on a fresh repository and fresh targets:

* local: a backup (restore point staged, database dump, cairn_storage_sync, complete) into a local
  repository, then an unchanged second backup; against ``rsync -a src/ 1/`` and
  ``rsync -a --link-dest=1 src/ 2/``. The extra disk of the second run is ``du`` of the repository
  (or of the rsync snapshots) after it minus before it, as a share of the data set's ``du``.
* s3: the same backups into an S3 repository on an S3-compatible server started here (moto_server, as
  in the tests; or s3rver from .build/s3rver for runs under 1000 files), against
  ``rclone sync --transfers N --checkers N`` into another bucket of the same server, N being the
  module's ``parallel``. The server's CPU seconds are shown, to tell whether it is the bottleneck.

Prints seconds, the ratio module/reference, the peak RSS of the tool's process tree (wait4), extra disk,
and each goal with met/not met. The exit code is 0 whatever the numbers; it is 1 when a run fails.
Credentials reach the module in its JSON arguments on stdin and rclone through RCLONE_CONFIG_* variables,
never on a command line.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COLLECTIONS = os.path.join(ROOT, '.build', 'collections')
S3RVER = os.path.join(ROOT, '.build', 's3rver', 'node_modules', '.bin', 's3rver')
sys.path.insert(0, os.path.join(ROOT, 'tests', 'integration'))
sys.path.insert(0, os.path.join(ROOT, 'tests', 'support'))

import demo_instance  # noqa: E402  (the demo's CairnCMS-shaped instance)
from _emulator import Emulator, free_port  # noqa: E402  (the test harness's emulator base)
from _s3 import MotoServer  # noqa: E402

INSTANCE = 'bench'
REGION = 'us-east-1'
EXTENSIONS = ['jpg', 'jpg', 'jpg', 'png', 'png', 'webp', 'pdf', 'docx', 'svg', 'mp4']
CLOCK_TICKS = os.sysconf('SC_CLK_TCK')

GOALS = {
    ('local', 'unchanged'): 1.0,   # <= 1.0 x rsync
    ('s3', 'first'): 1.0,          # <= 1.0 x rclone
    ('s3', 'unchanged'): 0.2,      # <= 0.2 x rclone
}
DISK_GOAL = 0.01                    # the unchanged local re-run adds < 1 % of the data set


class RunFailed(Exception):
    pass


# measuring ---------------------------------------------------------------------------------------

def run_measured(argv, env=None, stdin=b''):
    """Run ``argv``; return (seconds, exit code, stdout, stderr, peak RSS KiB).

    The peak comes from wait4's rusage of the child, which covers its waited-for children too
    (rsync's forked receiver, for one).
    """
    start = time.monotonic()
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=env)
    outputs = {}
    readers = [threading.Thread(target=lambda name, stream: outputs.__setitem__(name, stream.read()),
                                args=(name, stream), daemon=True)
               for name, stream in (('out', proc.stdout), ('err', proc.stderr))]
    for reader in readers:
        reader.start()
    try:
        proc.stdin.write(stdin)
    except BrokenPipeError:
        pass
    proc.stdin.close()
    for reader in readers:
        reader.join()
    _pid, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    proc.stdout.close()
    proc.stderr.close()
    return time.monotonic() - start, proc.returncode, outputs['out'], outputs['err'], usage.ru_maxrss


def run_tool(argv, env=None):
    """A reference tool; fails the benchmark when it fails."""
    seconds, code, _out, err, peak = run_measured(argv, env=env)
    if code != 0:
        raise RunFailed('%s exited %d: %s' % (os.path.basename(argv[0]), code,
                                              err.decode('utf-8', 'replace').strip()[-2000:]))
    return seconds, peak


def run_module(name, args):
    """Run a module as Ansible does on the host; return (seconds, result, peak RSS KiB)."""
    env = dict(os.environ, PYTHONPATH=COLLECTIONS)
    env.pop('AWS_CA_BUNDLE', None)
    seconds, _code, out, err, peak = run_measured(
        [sys.executable, '-m', 'ansible_collections.cairncms.ops.plugins.modules.' + name], env=env,
        stdin=json.dumps({'ANSIBLE_MODULE_ARGS': args}).encode())
    try:
        result = json.loads(out)
    except ValueError as exc:
        raise RunFailed('%s printed no JSON: %s' % (name, err.decode('utf-8', 'replace').strip()[-2000:])) from exc
    if result.get('failed'):
        raise RunFailed('%s failed: %s' % (name, result.get('msg')))
    return seconds, result, peak


def du_kib(*paths):
    """Disk usage of ``paths`` together (hard links counted once), KiB."""
    existing = [path for path in paths if os.path.exists(path)]
    if not existing:
        return 0
    out = subprocess.run(['du', '-s', '-k', '-c'] + existing, check=True, stdout=subprocess.PIPE).stdout
    return int(out.decode().strip().splitlines()[-1].split()[0])


def cpu_seconds(pid):
    """User + system CPU seconds of a process and its waited-for children so far."""
    if pid is None:
        return 0.0
    with open('/proc/%d/stat' % pid, encoding='ascii') as handle:
        fields = handle.read().rsplit(')', 1)[1].split()
    return sum(int(value) for value in fields[11:15]) / float(CLOCK_TICKS)


# the data set ------------------------------------------------------------------------------------

def make_dataset(root, small, large, large_mb, seed=20240501):
    """Seeded uploads: SMALL files of 1-64 KiB and LARGE of LARGE_MB MiB; returns (files, bytes)."""
    rng = random.Random(seed)
    total = 0
    base_time = 1_600_000_000
    for number in range(small + large):
        year, month = 2021 + rng.randrange(4), 1 + rng.randrange(12)
        directory = os.path.join(root, '%d' % year, '%02d' % month)
        os.makedirs(directory, exist_ok=True)
        ext = 'mp4' if number >= small else rng.choice(EXTENSIONS)
        path = os.path.join(directory, '%s.%s' % (uuid.UUID(int=rng.getrandbits(128)), ext))
        size = rng.randint(1024, 65536) if number < small else large_mb * 1048576
        with open(path, 'wb') as handle:
            left = size
            while left:
                step = min(left, 1048576)
                handle.write(rng.randbytes(step))
                left -= step
        stamp = base_time + rng.randrange(100_000_000)
        os.utime(path, (stamp, stamp))
        total += size
    return small + large, total


def make_instance(work, args):
    instance_dir = os.path.join(work, 'instance')
    os.makedirs(instance_dir)
    env_file = demo_instance.populated(instance_dir, files=6, port=free_port())
    uploads = os.path.join(instance_dir, 'uploads')
    start = time.monotonic()
    files, size = make_dataset(uploads, args.small, args.large, args.large_mb)
    print('data set: %d files, %.1f MiB (du %.1f MiB) in %s, made in %.1fs'
          % (files, size / 1048576.0, du_kib(uploads) / 1024.0, uploads, time.monotonic() - start), flush=True)
    return env_file, uploads


# the module's side -------------------------------------------------------------------------------

def module_options(name):
    """The documented options of a module of the collection (to see whether ``parallel`` exists)."""
    import yaml
    path = os.path.join(COLLECTIONS, 'ansible_collections', 'cairncms', 'ops', 'plugins', 'modules', name + '.py')
    with open(path, encoding='utf-8') as handle:
        source = handle.read()
    doc = source.split("DOCUMENTATION = r'''", 1)[1].split("'''", 1)[0]
    return yaml.safe_load(doc).get('options') or {}


def repository_types():
    sys.path.insert(0, COLLECTIONS)
    try:
        from ansible_collections.cairncms.ops.plugins.module_utils import _repository
    except Exception as exc:  # a tree caught mid-edit, a missing library
        raise SystemExit('cannot import the collection from %s: %s' % (COLLECTIONS, exc)) from exc
    return set(_repository.TYPES)


STEPS = ('staged', 'db_dump', 'sync', 'complete')


def backup(env_file, repo, common, sync_extra, server_pid=None):
    """One whole backup as the backup role runs it: {step: seconds, 'server_cpu': server CPU seconds during
    the sync}, the sync's peak RSS, its result."""
    base = dict({'repository': repo, 'instance': INSTANCE}, **common)
    steps = {}
    steps['staged'], point, _rss = run_module('cairn_restore_point', dict(base, state='staged'))
    pid = point['restore_point']
    try:
        steps['db_dump'], _dump, _rss = run_module('cairn_db_dump', dict(base, env_file=env_file, restore_point=pid))
        os.sync()  # the previous run's dirty pages are not this run's to write back
        cpu = cpu_seconds(server_pid)
        steps['sync'], files, sync_rss = run_module('cairn_storage_sync', dict(
            base, env_file=env_file, restore_point=pid, direction='backup', **sync_extra))
        steps['server_cpu'] = cpu_seconds(server_pid) - cpu
        steps['complete'], _final, _rss = run_module('cairn_restore_point', dict(
            base, env_file=env_file, restore_point=pid, state='complete'))
    except RunFailed as exc:
        try:
            run_module('cairn_restore_point', dict(base, restore_point=pid, state='failed',
                                                   error={'msg': 'benchmark run failed: %s' % exc}))
        except RunFailed:
            pass
        raise
    return steps, sync_rss, files


def check_backup(files, expected, first):
    transferred, reused = (expected, 0) if first else (0, expected)
    if (files['files'], files['transferred'], files['reused']) != (expected, transferred, reused):
        raise RunFailed('%s backup: %d files, %d transferred, %d reused; expected %d, %d, %d' % (
            'first' if first else 'unchanged', files['files'], files['transferred'], files['reused'],
            expected, transferred, reused))


class Series:
    """The rounds of one tool in one case: seconds, peak RSS, extra disk, server CPU, backup steps."""

    def __init__(self):
        self.times, self.rss, self.extra, self.cpu = [], [], [], []
        self.steps = {step: [] for step in STEPS}

    def add_backup(self, steps, rss):
        self.times.append(steps['sync'])
        self.rss.append(rss)
        self.cpu.append(steps['server_cpu'])
        for step in STEPS:
            self.steps[step].append(steps[step])

    @property
    def median(self):
        return statistics.median(self.times)

    def whole(self):
        return [sum(self.steps[step][number] for step in STEPS) for number in range(len(self.times))]

    def steps_text(self):
        return ' + '.join('%s %.2f' % (step, statistics.median(self.steps[step])) for step in STEPS)


# results -----------------------------------------------------------------------------------------

class Table:
    def __init__(self):
        self.rows = []

    def add(self, case, tool, times, rss_kib, ratio=None, extra=None, goal=None, note=''):
        self.rows.append({'case': case, 'tool': tool, 'seconds': statistics.median(times), 'times': times,
                          'ratio': ratio, 'rss': max(rss_kib) / 1024.0 if rss_kib else None,
                          'extra': extra, 'goal': goal, 'note': note})

    def add_module(self, case, mod, ref, goal=None, extra=None, note=''):
        """The module's line (ratio against ``ref``) and the whole backup's line."""
        ratio = mod.median / ref.median
        self.add(case, 'cairn_storage_sync', mod.times, mod.rss, ratio, extra, goal_text(goal, ratio), note)
        whole = mod.whole()
        self.add(case, 'whole backup (4 modules)', whole, [], statistics.median(whole) / ref.median, None, None,
                 mod.steps_text())

    @staticmethod
    def line(row):
        ratio = '%.3f' % row['ratio'] if row['ratio'] is not None else ''
        rss = '%.1f' % row['rss'] if row['rss'] is not None else ''
        return '%-23s %-26s %8.2f %8.2f %7s %8s %-25s %-20s %s' % (
            row['case'], row['tool'], row['seconds'], min(row['times']), ratio, rss, row['extra'] or '',
            row['goal'] or '', row['note'])

    def show(self):
        print()
        print('%-23s %-26s %8s %8s %7s %8s %-25s %-20s %s' % ('case', 'tool', 'seconds', 'fastest', 'ratio',
                                                              'RSS MiB', 'extra disk', 'goal', 'notes'))
        for row in self.rows:
            print(self.line(row))


def goal_text(limit, ratio):
    if limit is None:
        return None
    return '<= %.1fx: %s' % (limit, 'met' if ratio <= limit else 'NOT met')


def extra_text(extra_kib, data_kib, goal=None):
    share = extra_kib / float(data_kib) if data_kib else 0.0
    text = '%.0f KiB %.3f%%' % (extra_kib, share * 100)
    if goal is not None:
        text += ' (<1%%: %s)' % ('met' if share < goal else 'NOT met')
    return text


def load_text():
    return 'load average %.2f %.2f %.2f' % os.getloadavg()


# local -> local ----------------------------------------------------------------------------------

def bench_local(args, work, env_file, uploads, files, table):
    print('\nlocal -> local: cairn_storage_sync into a local repository vs rsync -a --link-dest (%s)'
          % load_text(), flush=True)
    if not shutil.which('rsync'):
        raise RunFailed('rsync is missing: install it with `apt-get install -y rsync`')
    has_fsync = '--fsync' in subprocess.run(['rsync', '--help'], stdout=subprocess.PIPE, check=False).stdout.decode()
    data_kib = du_kib(uploads)
    mod = {'first': Series(), 'unchanged': Series()}
    ref = {'first': Series(), 'unchanged': Series(), 'fsync': Series()}
    for number in range(args.rounds):
        repo_dir = os.path.join(work, 'repo-local-%d' % number)
        repo = {'type': 'local', 'path': repo_dir}
        steps, rss, result = backup(env_file, repo, {}, {})
        check_backup(result, files, first=True)
        mod['first'].add_backup(steps, rss)
        before = du_kib(repo_dir)
        steps, rss, result = backup(env_file, repo, {}, {})
        check_backup(result, files, first=False)
        mod['unchanged'].add_backup(steps, rss)
        mod['unchanged'].extra.append(du_kib(repo_dir) - before)
        shutil.rmtree(repo_dir)

        snapshots = os.path.join(work, 'rsync-%d' % number)
        first, second, durable = (os.path.join(snapshots, name) for name in ('1', '2', 'fsync'))
        os.makedirs(snapshots)
        runs = [('first', ['rsync', '-a', uploads + '/', first + '/']),
                ('unchanged', ['rsync', '-a', '--link-dest=' + first, uploads + '/', second + '/'])]
        if has_fsync:
            runs.append(('fsync', ['rsync', '-a', '--fsync', uploads + '/', durable + '/']))
        for key, argv in runs:
            before = du_kib(snapshots)
            os.sync()
            seconds, rss = run_tool(argv)
            ref[key].times.append(seconds)
            ref[key].rss.append(rss)
            ref[key].extra.append(du_kib(snapshots) - before)
        shutil.rmtree(snapshots)
        print('  round %d: module %.2fs / %.2fs, rsync %.2fs / %.2fs%s' % (
            number + 1, mod['first'].times[-1], mod['unchanged'].times[-1], ref['first'].times[-1],
            ref['unchanged'].times[-1], ' (with --fsync %.2fs)' % ref['fsync'].times[-1] if has_fsync else ''),
            flush=True)

    table.add_module('local first run', mod['first'], ref['first'],
                     note='vs rsync --fsync: %.3f' % (mod['first'].median / ref['fsync'].median) if has_fsync else '')
    table.add('local first run', 'rsync -a', ref['first'].times, ref['first'].rss, 1.0)
    if has_fsync:
        table.add('local first run', 'rsync -a --fsync', ref['fsync'].times, ref['fsync'].rss,
                  ref['fsync'].median / ref['first'].median, None, None, 'durable like the module (info)')
    table.add_module('local unchanged re-run', mod['unchanged'], ref['unchanged'], GOALS[('local', 'unchanged')],
                     extra_text(statistics.median(mod['unchanged'].extra), data_kib, DISK_GOAL))
    table.add('local unchanged re-run', 'rsync -a --link-dest', ref['unchanged'].times, ref['unchanged'].rss, 1.0,
              extra_text(statistics.median(ref['unchanged'].extra), data_kib))
    print('  done (%s)' % load_text(), flush=True)


# local -> S3 -------------------------------------------------------------------------------------

class S3rver(Emulator):
    """s3rver (npm) on a free port, storing objects in ``directory``."""

    name = 's3rver'
    unavailable = RuntimeError
    probe_path = '/'
    access_key = secret_key = 'S3RVER'   # s3rver's fixed, well-known development credentials

    def __init__(self, directory):
        super().__init__()
        self.directory = directory

    @property
    def endpoint(self):
        return self.base_url

    def launch(self, port):
        if not os.path.exists(S3RVER):
            raise RunFailed('s3rver is missing: npm install --prefix .build/s3rver s3rver@3.7.1')
        os.makedirs(self.directory, exist_ok=True)
        return [S3RVER, '-d', self.directory, '-a', '127.0.0.1', '-p', str(port), '--silent',
                '--no-vhost-buckets'], {}


class Moto(MotoServer):
    access_key = 'AKIACAIRNBENCH000001'
    secret_key = 'cairn-bench-dummy-secret'


def s3_admin(server):
    import boto3
    import botocore.config
    return boto3.client('s3', endpoint_url=server.endpoint, region_name=REGION,
                        aws_access_key_id=server.access_key, aws_secret_access_key=server.secret_key,
                        config=botocore.config.Config(s3={'addressing_style': 'path'},
                                                      max_pool_connections=16))


def bucket_bytes(client, bucket):
    total = 0
    for page in client.get_paginator('list_objects').paginate(Bucket=bucket):
        total += sum(item['Size'] for item in page.get('Contents', []))
    return total


def drop_bucket(client, bucket):
    for page in client.get_paginator('list_objects').paginate(Bucket=bucket):
        keys = [{'Key': item['Key']} for item in page.get('Contents', [])]
        if keys:
            client.delete_objects(Bucket=bucket, Delete={'Objects': keys, 'Quiet': True})
    client.delete_bucket(Bucket=bucket)


def rclone_env(server):
    """rclone's remote ``bench:`` from environment variables (no config file, nothing on argv)."""
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(('AWS_', 'RCLONE_'))}
    env.update({
        'RCLONE_CONFIG_BENCH_TYPE': 's3', 'RCLONE_CONFIG_BENCH_PROVIDER': 'Other',
        'RCLONE_CONFIG_BENCH_ENDPOINT': server.endpoint, 'RCLONE_CONFIG_BENCH_REGION': REGION,
        'RCLONE_CONFIG_BENCH_ACCESS_KEY_ID': server.access_key,
        'RCLONE_CONFIG_BENCH_SECRET_ACCESS_KEY': server.secret_key,
        'RCLONE_CONFIG_BENCH_FORCE_PATH_STYLE': 'true', 'RCLONE_CONFIG': os.devnull,
    })
    return env


def start_server(args, work):
    server = Moto() if args.server == 'moto' else S3rver(os.path.join(work, 's3rver-data'))
    try:
        return server.start()
    except Exception as exc:  # the emulators' own "unavailable" errors
        raise RunFailed('cannot start %s: %s' % (args.server, exc)) from exc


def bench_s3(args, work, env_file, uploads, files, table, parallel, has_parallel):
    rclone = shutil.which('rclone')
    if not rclone:
        raise RunFailed('rclone is missing: install it with `apt-get install -y rclone`')
    print('\nlocal -> S3 (%s): cairn_storage_sync into an s3 repository vs rclone sync --transfers %d '
          '--checkers %d (%s)' % (args.server, parallel, parallel, load_text()), flush=True)
    if not has_parallel:
        print('  note: cairn_storage_sync has no `parallel` option in this version (one file at a time); '
              'rclone runs with %d' % parallel, flush=True)
    mod = {'first': Series(), 'unchanged': Series()}
    ref = {'first': Series(), 'unchanged': Series()}
    server = start_server(args, work)
    try:
        server_pid = server.process.pid
        client = s3_admin(server)
        env = rclone_env(server)
        common = {'repository_credentials': {'key': server.access_key, 'secret': server.secret_key}}
        sync_extra = {'parallel': parallel} if has_parallel else {}
        for number in range(args.rounds):
            bucket = 'cairn-bench-%d' % number
            client.create_bucket(Bucket=bucket)
            repo = {'type': 's3', 'bucket': bucket, 'prefix': 'repository', 'endpoint': server.endpoint,
                    'region': REGION, 'force_path_style': True}
            steps, rss, result = backup(env_file, repo, common, sync_extra, server_pid)
            check_backup(result, files, first=True)
            mod['first'].add_backup(steps, rss)
            before = bucket_bytes(client, bucket)
            steps, rss, result = backup(env_file, repo, common, sync_extra, server_pid)
            check_backup(result, files, first=False)
            mod['unchanged'].add_backup(steps, rss)
            mod['unchanged'].extra.append((bucket_bytes(client, bucket) - before) / 1024.0)
            drop_bucket(client, bucket)

            bucket = 'rclone-bench-%d' % number
            client.create_bucket(Bucket=bucket)
            argv = [rclone, 'sync', uploads + '/', 'bench:%s/uploads' % bucket, '--transfers', str(parallel),
                    '--checkers', str(parallel)]
            for key in ('first', 'unchanged'):
                os.sync()
                cpu = cpu_seconds(server_pid)
                seconds, rss = run_tool(argv, env=env)
                ref[key].cpu.append(cpu_seconds(server_pid) - cpu)
                ref[key].times.append(seconds)
                ref[key].rss.append(rss)
            drop_bucket(client, bucket)
            print('  round %d: module %.2fs / %.2fs, rclone %.2fs / %.2fs' % (
                number + 1, mod['first'].times[-1], mod['unchanged'].times[-1], ref['first'].times[-1],
                ref['unchanged'].times[-1]), flush=True)
    finally:
        server.stop()

    for case, key in (('s3 first run', 'first'), ('s3 unchanged re-run', 'unchanged')):
        note = '%s CPU %.1fs' % (args.server, statistics.median(mod[key].cpu))
        if not has_parallel:
            note += '; no parallel option'
        extra = '%.0f KiB stored' % statistics.median(mod[key].extra) if mod[key].extra else None
        table.add_module(case, mod[key], ref[key], GOALS[('s3', key)], extra, note)
        table.add(case, 'rclone sync (%d/%d)' % (parallel, parallel), ref[key].times, ref[key].rss, 1.0, None, None,
                  '%s CPU %.1fs' % (args.server, statistics.median(ref[key].cpu)))
    print('  done (%s)' % load_text(), flush=True)


# main --------------------------------------------------------------------------------------------

def main():
    global COLLECTIONS
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n', 1)[0])
    parser.add_argument('--small', type=int, default=10000, help='files of 1-64 KiB')
    parser.add_argument('--large', type=int, default=3, help='large files')
    parser.add_argument('--large-mb', type=int, default=50, help='size of each large file, MiB')
    parser.add_argument('--rounds', type=int, default=3)
    parser.add_argument('--only', choices=['local', 's3'])
    parser.add_argument('--server', choices=['moto', 's3rver'], default='moto',
                        help='the S3-compatible server both tools write to; s3rver 3.7.1 answers a ListObjectsV2 '
                             'continuation with HTTP 500, so it only serves runs of fewer than 1000 files')
    parser.add_argument('--parallel', type=int, help="the module's parallel option and rclone's --transfers/"
                        "--checkers (default: the module's default, else 8)")
    parser.add_argument('--workdir', help='where the data set and repositories go (default: the system temp dir)')
    parser.add_argument('--collections', default=COLLECTIONS,
                        help='a collections path holding ansible_collections/cairncms/ops (default: '
                             '.build/collections, the working tree); e.g. a `git archive` of a commit')
    args = parser.parse_args()
    COLLECTIONS = os.path.abspath(args.collections)
    if not os.path.exists(os.path.join(COLLECTIONS, 'ansible_collections', 'cairncms', 'ops')):
        raise SystemExit('run `make demo` or `make test` once first: the collection link in .build/ is missing')

    option = module_options('cairn_storage_sync').get('parallel')
    parallel = args.parallel or (option or {}).get('default') or 8
    failed = False
    table = Table()
    with tempfile.TemporaryDirectory(prefix='cairn-bench-storage-', dir=args.workdir) as work:
        env_file, uploads = make_instance(work, args)
        files = args.small + args.large + 6   # the demo's own six uploads (its derivative is skipped)
        if args.only in (None, 'local'):
            try:
                bench_local(args, work, env_file, uploads, files, table)
            except Exception as exc:  # a failed run, or a server that broke: report it, go on, exit 1
                print('local part FAILED: %s' % exc, flush=True)
                failed = True
        if args.only in (None, 's3'):
            if 's3' not in repository_types():
                print('\ns3 part skipped: this version of cairncms.ops has no s3 repository type', flush=True)
                failed = failed or args.only == 's3'
            else:
                try:
                    bench_s3(args, work, env_file, uploads, files, table, parallel, option is not None)
                except Exception as exc:  # a failed run, or a server that broke: report it, go on, exit 1
                    print('s3 part FAILED: %s' % exc, flush=True)
                    failed = True
    table.show()
    print('\nseconds: median of %d rounds (fastest: their minimum); ratio: module / reference (rsync or rclone) '
          'of the same case, on the medians; RSS: peak of the process tree' % args.rounds)
    sys.exit(1 if failed else 0)


if __name__ == '__main__':
    main()
