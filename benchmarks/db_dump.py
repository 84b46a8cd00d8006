#!/usr/bin/env python
# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""cairn_db_dump against the raw dump tools, measured in the same run on the same data.

    .venv/bin/python benchmarks/db_dump.py [--scale 70] [--mariadb-mb 1000] [--rounds 3] [--only pg|mariadb|playbook]
                                           [--filler pgbench|random]

Starts throwaway PostgreSQL and MariaDB servers (tests/integration/_servers.py), fills PostgreSQL
with `pgbench -i -s SCALE` (70: about 1 GB; `--filler random` then overwrites the blank padding of its big
table with random hex, which compresses like text rather than 100:1) and MariaDB with a table of about MARIADB_MB, then times,
alternating, median of ROUNDS:

* PostgreSQL: the module (format custom, zstd level 3) vs `pg_dump -Fc -Z0 | zstd -3` (same format
  and compression); the module with format directory and jobs 2 vs the same single-job raw pipeline.
* MariaDB: the module vs `mariadb-dump --single-transaction ... | zstd -3`.
* The whole backup playbook (`ansible-playbook playbooks/backup.yml`, local connection, one instance whose
  database is the PostgreSQL one above, defaults: custom format, zstd 3, verify on, no retention) vs the raw
  `pg_dump -Fc -f FILE` an operator would run instead (goal: <= 1.0); also its overhead beyond the data work
  (the playbook's wall time minus the module's dump, files and verify steps; goal: <= 2 s on an idle machine).
  `--only playbook` runs this line alone (on the same PostgreSQL data).

Prints seconds, the ratio module/raw (goal: <= 1.05) and the module process's peak RSS (VmHWM), and the
machine's load average before each comparison (the numbers mean little on a busy machine).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COLLECTIONS = os.path.join(ROOT, '.build', 'collections')
sys.path.insert(0, os.path.join(ROOT, 'tests', 'integration'))

import _servers  # noqa: E402  (the test harness's throwaway servers)

MYSQL_DUMP_OPTIONS = ['--single-transaction', '--routines', '--triggers', '--events', '--hex-blob', '--quick',
                      '--no-tablespaces', '--skip-dump-date', '--default-character-set=utf8mb4']


def peak_rss_kib(pid, stop):
    """Poll /proc/<pid>/status for VmHWM (peak resident set) until ``stop`` is set."""
    peak = [0]

    def poll():
        path = '/proc/%d/status' % pid
        while not stop.is_set():
            try:
                with open(path, encoding='ascii') as handle:
                    for line in handle:
                        if line.startswith('VmHWM:'):
                            peak[0] = max(peak[0], int(line.split()[1]))
            except OSError:
                return
            time.sleep(0.02)
    thread = threading.Thread(target=poll, daemon=True)
    thread.start()
    return peak, thread


def run_module(name, args):
    """Run a module as Ansible does on the host; return (seconds, result, peak RSS KiB)."""
    env = dict(os.environ, PYTHONPATH=COLLECTIONS)
    start = time.monotonic()
    proc = subprocess.Popen([sys.executable, '-m', 'ansible_collections.cairncms.ops.plugins.modules.' + name],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
    stop = threading.Event()
    peak, thread = peak_rss_kib(proc.pid, stop)
    out, _err = proc.communicate(json.dumps({'ANSIBLE_MODULE_ARGS': args}).encode())
    seconds = time.monotonic() - start
    stop.set()
    thread.join()
    result = json.loads(out)
    if result.get('failed'):
        raise SystemExit('%s failed: %s' % (name, result.get('msg')))
    return seconds, result, peak[0]


def module_dump(env_file, repo, extra):
    point = run_module('cairn_restore_point', {'repository': repo, 'instance': 'bench'})[1]['restore_point']
    args = dict({'env_file': env_file, 'repository': repo, 'instance': 'bench', 'restore_point': point,
                 'compression': 'zstd', 'compression_level': 3}, **extra)
    seconds, result, rss = run_module('cairn_db_dump', args)
    run_module('cairn_restore_point', {'repository': repo, 'instance': 'bench', 'restore_point': point,
                                       'state': 'failed', 'error': {'msg': 'benchmark run, not kept'}})
    return seconds, result['size_bytes'], rss


def raw_pipeline(dump_argv, env, out_path):
    """``dump | zstd -3 -q -o out``; both exit statuses checked."""
    start = time.monotonic()
    dump = subprocess.Popen(dump_argv, stdout=subprocess.PIPE, env=env)
    zstd = subprocess.Popen(['zstd', '-3', '-q', '-f', '-o', out_path], stdin=dump.stdout)
    dump.stdout.close()
    if zstd.wait() != 0 or dump.wait() != 0:
        raise SystemExit('raw pipeline failed: %s' % ' '.join(dump_argv[:2]))
    seconds = time.monotonic() - start
    size = os.path.getsize(out_path)
    os.unlink(out_path)
    return seconds, size


def compare(label, rounds, module, raw):
    """Alternate module and raw runs; print medians, ratio and peak RSS."""
    print('load average %.2f %.2f %.2f' % os.getloadavg(), flush=True)
    mod_times, raw_times, rss, sizes = [], [], [], []
    for _round in range(rounds):
        seconds, size, peak = module()
        mod_times.append(seconds)
        rss.append(peak)
        sizes.append(size)
        raw_times.append(raw()[0])
    mod, ref = statistics.median(mod_times), statistics.median(raw_times)
    print('%-44s module %7.2fs  raw %7.2fs  ratio %.3f  module peak RSS %6.1f MiB  artifact %7.1f MiB'
          % (label, mod, ref, mod / ref, max(rss) / 1024.0, sizes[-1] / 1048576.0), flush=True)
    return mod / ref


def raw_pg_dump(argv, env, out_path):
    """``pg_dump -Fc -f out`` (pg_dump's own compression): what an operator runs by hand."""
    start = time.monotonic()
    subprocess.run(argv + ['--file=' + out_path], env=env, check=True)
    seconds = time.monotonic() - start
    size = os.path.getsize(out_path)
    os.unlink(out_path)
    return seconds, size


def playbook_backup(env_file, work, list_tasks=False):
    """The backup playbook for one instance, as ansible-playbook runs it (local connection); (seconds, the module's
    step durations, bytes written). Each run writes into a fresh repository. With ``list_tasks``, only Ansible's own
    start (``--list-tasks``: Python, ansible-core, inventory, playbook and roles parsed; nothing run): (seconds,)."""
    repository = tempfile.mkdtemp(prefix='repository-', dir=work)
    inventory = os.path.join(work, 'inventory.json')
    with open(inventory, 'w', encoding='utf-8') as handle:
        json.dump({'all': {'hosts': {'bench': {
            'ansible_connection': 'local', 'ansible_python_interpreter': sys.executable,
            'cairn_env_file': env_file, 'cairn_repository': {'type': 'local', 'path': repository}}}}}, handle)
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=COLLECTIONS, ANSIBLE_SHOW_CUSTOM_STATS='1', ANSIBLE_NOCOLOR='1')
    start = time.monotonic()
    proc = subprocess.run([os.path.join(os.path.dirname(sys.executable), 'ansible-playbook'), '-i', inventory,
                           os.path.join(ROOT, 'playbooks', 'backup.yml')] + (['--list-tasks'] if list_tasks else []),
                          env=env, capture_output=True, text=True, check=False)
    seconds = time.monotonic() - start
    if proc.returncode != 0:
        raise SystemExit('the backup playbook failed:\n%s' % proc.stdout[-3000:])
    subprocess.run(['rm', '-rf', repository], check=True)
    if list_tasks:
        return (seconds,)
    stats = [line for line in proc.stdout.splitlines() if line.strip().startswith('RUN: ')][-1]
    result = json.loads(stats.split('RUN: ', 1)[1])['cairn_backup']['bench']
    return seconds, result['steps'], result['bytes']


def compare_playbook(rounds, env_file, work, raw):
    """Alternate playbook and raw runs; print medians, the ratio and the overhead beyond the data work, in all and
    per instance (without Ansible's own start, which a run pays once whatever its number of instances)."""
    print('load average %.2f %.2f %.2f' % os.getloadavg(), flush=True)
    play_times, raw_times, overheads, starts, notes = [], [], [], [], ''
    for _round in range(rounds):
        seconds, steps, written = playbook_backup(env_file, work)
        play_times.append(seconds)
        overheads.append(seconds - sum(steps.get(step, 0) for step in ('dump', 'files', 'verify')))
        notes = ' + '.join('%s %.2f' % (step, value) for step, value in steps.items())
        raw_times.append(raw()[0])
        starts.append(playbook_backup(env_file, work, list_tasks=True)[0])
    play, ref = statistics.median(play_times), statistics.median(raw_times)
    overhead, start = statistics.median(overheads), statistics.median(starts)
    print('%-44s playbook %5.2fs  raw %7.2fs  ratio %.3f (goal <= 1.0: %s)  written %.1f MiB'
          % ('whole backup playbook vs pg_dump -Fc', play, ref, play / ref, 'met' if play <= ref else 'NOT met',
             written / 1048576.0), flush=True)
    per_instance = overhead - start
    print('    overhead beyond the data work (dump, files, verify) %.2fs: Ansible\'s start (--list-tasks) %.2fs + per '
          'instance %.2fs (goal <= 2 s: %s)' % (overhead, start, per_instance, 'met' if per_instance <= 2 else 'NOT met'),
          flush=True)
    print('    module steps of the last round (s): %s' % notes, flush=True)
    return play / ref


def write_env(directory, values):
    path = os.path.join(directory, '.env')
    with open(path, 'w', encoding='utf-8') as handle:
        handle.write(''.join('%s="%s"\n' % item for item in values.items()))
        handle.write('STORAGE_LOCATIONS=local\nSTORAGE_LOCAL_DRIVER=local\nSTORAGE_LOCAL_ROOT=./uploads\n')
    os.makedirs(os.path.join(directory, 'uploads'), exist_ok=True)
    return path


def bench_postgres(args, work):
    with _servers.PostgresServer() as server:
        print('PostgreSQL %s: pgbench -i -s %d ...' % (server.version, args.scale), flush=True)
        argv, env = server.command('pgbench', '-i', '-q', '-s', str(args.scale))
        subprocess.run(argv, env=dict(os.environ, **env), check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        if args.filler == 'random':  # text that compresses like a CMS's content, not pgbench's blank padding
            print('filling pgbench_accounts.filler with random hex ...', flush=True)
            server.sql("UPDATE pgbench_accounts SET filler = md5(random()::text) || md5(random()::text) "
                       "|| substr(md5(random()::text), 1, 20); VACUUM FULL pgbench_accounts", timeout=3600)
        size = server.rows("SELECT pg_database_size(current_database())")[0][0]
        print('database size %.0f MiB' % (int(size) / 1048576.0), flush=True)
        env_file = write_env(work, server.env())
        repo = {'type': 'local', 'path': os.path.join(work, 'repository')}
        argv, env = server.command('pg_dump', '--format=custom', '--compress=0')
        env = dict(os.environ, **env)
        out = os.path.join(work, 'raw.pgdump.zst')
        if args.only != 'playbook':
            compare('PostgreSQL custom+zstd-3 vs pg_dump|zstd', args.rounds,
                    lambda: module_dump(env_file, repo, {}), lambda: raw_pipeline(argv, env, out))
            compare('PostgreSQL directory jobs=2 vs single pg_dump', args.rounds,
                    lambda: module_dump(env_file, repo, {'format': 'directory', 'jobs': 2}),
                    lambda: raw_pipeline(argv, env, out))
        fc_argv, fc_env = server.command('pg_dump', '--format=custom')
        compare_playbook(args.rounds, env_file, work,
                         lambda: raw_pg_dump(fc_argv, dict(os.environ, **fc_env), os.path.join(work, 'raw.pgdump')))


def bench_mariadb(args, work):
    with _servers.MariadbServer() as server:
        rows = max(1000, args.mariadb_mb * 1048576 // 420)
        print('MariaDB %s: %d rows (about %d MiB) ...' % (server.version, rows, args.mariadb_mb), flush=True)
        server.sql('CREATE TABLE bench (id INT PRIMARY KEY, a CHAR(32), b TEXT, c BLOB) ENGINE=InnoDB')
        step = 200000
        for first in range(1, rows + 1, step):
            last = min(rows, first + step - 1)
            server.sql('INSERT INTO bench SELECT seq, MD5(seq), REPEAT(MD5(seq), 8), UNHEX(SHA2(seq, 256)) '
                       'FROM seq_%d_to_%d' % (first, last))
        env_file = write_env(work, server.env())
        repo = {'type': 'local', 'path': os.path.join(work, 'repository')}
        argv, env = server.command('mariadb-dump', *MYSQL_DUMP_OPTIONS, server.database)
        env = dict(os.environ, **env)
        out = os.path.join(work, 'raw.sql.zst')
        compare('MariaDB sql+zstd-3 vs mariadb-dump|zstd', args.rounds,
                lambda: module_dump(env_file, repo, {}), lambda: raw_pipeline(argv, env, out))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n', 1)[0])
    parser.add_argument('--scale', type=int, default=70, help='pgbench scale (70: about 1 GB)')
    parser.add_argument('--mariadb-mb', type=int, default=1000, help='approximate MariaDB table size')
    parser.add_argument('--rounds', type=int, default=3)
    parser.add_argument('--only', choices=['pg', 'mariadb', 'playbook'])
    parser.add_argument('--filler', choices=['pgbench', 'random'], default='pgbench',
                        help="pgbench_accounts.filler as pgbench makes it (blank padding, compresses 100:1) or random "
                             "hex (compresses like text)")
    args = parser.parse_args()
    if not os.path.exists(os.path.join(COLLECTIONS, 'ansible_collections', 'cairncms', 'ops')):
        raise SystemExit('run `make demo` or `make test` once first: the collection link in .build/ is missing')
    with tempfile.TemporaryDirectory(prefix='cairn-bench-') as work:
        if args.only in (None, 'pg', 'playbook'):
            bench_postgres(args, work)
        if args.only in (None, 'mariadb'):
            bench_mariadb(args, work)


if __name__ == '__main__':
    main()
