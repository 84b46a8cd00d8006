#!/usr/bin/env python
# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The restore playbook against pg_restore and cp, measured in the same run on the same data.

    .venv/bin/python benchmarks/restore.py [--scale 70] [--files 10000] [--rounds 3] [--jobs 2] [--no-drill]

Starts a throwaway PostgreSQL server (tests/integration/_servers.py), fills a database with `pgbench -i -s
SCALE` (70: about 1 GB) and an instance directory beside it with FILES uploads of 1-64 KiB of random bytes
(benchmarks/storage_sync.py's seeded data set), backs the instance up once with the backup playbook (the role's
defaults: custom format, zstd 3), and makes the reference's own dump once (`pg_dump -Fc`). Then, alternating,
median of ROUNDS, each round into a fresh empty database and an empty uploads directory:

* the restore playbook (`ansible-playbook playbooks/restore.yml`, local connection, `cairn_db_jobs: JOBS`, which
  parallelises only a directory-format dump, the role's defaults otherwise: the checksums checked before writing,
  each file blob as it is staged, verification after) into a second instance whose .env names the empty database
  and uploads directory;
* the reference: `pg_restore -j JOBS -d <empty database>` of the `pg_dump -Fc` file, then `cp -a` of the uploads
  and `sync`: what an operator would run by hand, with no checksum, no verification, no claim.

With ``--drill`` (the default) the instance is a Directus 10.0.0 one (CairnCMS's fork point, bootstrapped into the
same database before pgbench fills it), and once the rounds are done it is backed up again, encrypted (a drill
needs the configuration, which a restore point holds only encrypted), and drilled once with the restore_drill
playbook: the restore into a scratch database and a sandbox, the CMS's bootstrap, its start and the checks over
HTTP. Its RTO and the seconds of each step are printed from its record.

Prints seconds, every round of both sides, the ratio playbook/reference (goal: <= 1.1), what the last restore
reported (its cairn_restore stats) with its slowest tasks (benchmarks/callbacks/cairn_task_times.py), and the
peak resident memory of the largest process of each side (the wait4 resource usage of each command, which covers
every process below it: for the playbook, ansible-playbook itself or a module; for the reference, pg_restore, its
workers or cp). Exit code 0 whatever the numbers, 1 when a run fails.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import pyrage  # a test requirement, as the harness is (the drill's backup is encrypted)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COLLECTIONS = os.path.join(ROOT, '.build', 'collections')
sys.path.insert(0, os.path.join(ROOT, 'tests', 'integration'))
sys.path.insert(0, os.path.join(ROOT, 'benchmarks'))

import _directus  # noqa: E402  (Directus 10.0.0, CairnCMS's fork point, for the drill)
import _servers  # noqa: E402  (the test harness's throwaway servers)
from storage_sync import make_dataset  # noqa: E402  (the seeded uploads of the storage benchmark)


def write_env(directory, database_env):
    os.makedirs(os.path.join(directory, 'uploads'), exist_ok=True)
    path = os.path.join(directory, '.env')
    with open(path, 'w', encoding='utf-8') as handle:
        handle.write(''.join('%s="%s"\n' % item for item in database_env.items()))
        handle.write('KEY="bench-key"\nSECRET="bench-secret"\n'
                     'STORAGE_LOCATIONS=local\nSTORAGE_LOCAL_DRIVER=local\nSTORAGE_LOCAL_ROOT=./uploads\n')
    return path


def timed(argv, env=None):
    """(seconds, peak RSS in KiB of the largest process of the run, stdout) of ``argv``: the wait4 resource usage
    of the child covers every descendant it waited for. Fails the benchmark when the command fails."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.monotonic()
        proc = subprocess.Popen(argv, env=env, stdout=out, stderr=err, cwd=ROOT)
        _pid, status, usage = os.wait4(proc.pid, 0)
        seconds = time.monotonic() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(errors='replace'), err.read().decode(errors='replace')
    if proc.returncode != 0:
        raise SystemExit('%s failed (%d):\n%s\n%s' % (argv[0], proc.returncode, stdout[-4000:], stderr[-2000:]))
    return seconds, usage.ru_maxrss, stdout


def playbook(name, inventory, *extra, times=None):
    """Run a playbook; with ``times``, the wall time of each task is appended there (callbacks/)."""
    argv = [os.path.join(os.path.dirname(sys.executable), 'ansible-playbook'), '-i', inventory,
            os.path.join(ROOT, 'playbooks', name)] + list(extra)
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=COLLECTIONS, ANSIBLE_NOCOLOR='1', ANSIBLE_FORCE_COLOR='0',
               ANSIBLE_LOCALHOST_WARNING='0', ANSIBLE_SHOW_CUSTOM_STATS='1')
    if times:
        env.update(ANSIBLE_CALLBACK_PLUGINS=os.path.join(ROOT, 'benchmarks', 'callbacks'),
                   ANSIBLE_CALLBACKS_ENABLED='cairn_task_times', CAIRN_TASK_TIMES=times)
    return timed(argv, env)


def slowest_tasks(path, count=8):
    """The ``count`` slowest tasks written by the callback: [(seconds, name)]."""
    with open(path, encoding='utf-8') as handle:
        records = [json.loads(line) for line in handle]
    return sorted(((record['seconds'], record['task']) for record in records), reverse=True)[:count]


def stats(output, name):
    """The custom stats ``name`` the run published (ANSIBLE_SHOW_CUSTOM_STATS)."""
    lines = [line for line in output.splitlines() if line.strip().startswith('RUN: ')]
    return json.loads(lines[-1].split('RUN: ', 1)[1]).get(name, {}) if lines else {}


def reset_target(server, database, uploads):
    server.sql('DROP DATABASE IF EXISTS %s WITH (FORCE)' % database, database='postgres')
    server.sql('CREATE DATABASE %s' % database, database='postgres')
    shutil.rmtree(uploads, ignore_errors=True)
    os.makedirs(uploads)
    os.sync()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n', 1)[0])
    parser.add_argument('--scale', type=int, default=70, help='pgbench scale (70: about 1 GB)')
    parser.add_argument('--files', type=int, default=10000, help='uploads of 1-64 KiB')
    parser.add_argument('--rounds', type=int, default=3)
    parser.add_argument('--jobs', type=int, default=2, help='pg_restore jobs, on both sides')
    parser.add_argument('--drill', action=argparse.BooleanOptionalAction, default=True,
                        help='make the instance a Directus 10.0.0 one and drill it once at the end (RTO breakdown)')
    args = parser.parse_args()
    if not os.path.exists(os.path.join(COLLECTIONS, 'ansible_collections', 'cairncms', 'ops')):
        raise SystemExit('run `make demo` or `make test` once first: the collection link in .build/ is missing')
    with tempfile.TemporaryDirectory(prefix='cairn-bench-restore-') as work, _servers.PostgresServer() as server:
        print('load average at start: %.2f %.2f %.2f' % os.getloadavg(), flush=True)
        source = os.path.join(work, 'source')
        settings = None
        if args.drill:  # the CMS's own tables first, in the same database
            os.makedirs(source)
            settings = _directus.bootstrap(source, dict(server.env(), SERVE_APP='true'))
            print('Directus 10.0.0 bootstrapped in the database', flush=True)
        else:
            write_env(source, server.env())
        print('PostgreSQL %s: pgbench -i -s %d ...' % (server.version, args.scale), flush=True)
        argv, env = server.command('pgbench', '-i', '-q', '-s', str(args.scale))
        subprocess.run(argv, env=dict(os.environ, **env), check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        size = int(server.rows('SELECT pg_database_size(current_database())')[0][0])
        files, total = make_dataset(os.path.join(source, 'uploads'), args.files, 0, 0)
        print('database %.0f MiB; %d uploads, %.1f MiB' % (size / 1048576.0, files, total / 1048576.0), flush=True)

        target = os.path.join(work, 'target')
        write_env(target, server.env(database='restored'))
        inventory = os.path.join(work, 'inventory.json')
        with open(inventory, 'w', encoding='utf-8') as handle:
            json.dump({'all': {'vars': {'ansible_connection': 'local', 'ansible_python_interpreter': sys.executable,
                                        'cairn_repository': {'type': 'local', 'path': os.path.join(work, 'repo')},
                                        'cairn_db_jobs': args.jobs},
                               'hosts': {'source': {'cairn_env_file': os.path.join(source, '.env')},
                                         'target': {'cairn_env_file': os.path.join(target, '.env'),
                                                    'cairn_restore_from': 'source'}}}}, handle)
        seconds, _peak, _out = playbook('backup.yml', inventory, '--limit', 'source')
        print('backup playbook (once, untimed for the ratio): %.2fs' % seconds, flush=True)
        dump_file = os.path.join(work, 'reference.pgdump')
        argv, env = server.command('pg_dump', '--format=custom', '--file', dump_file)
        timed(argv, dict(os.environ, **env))

        playbook_times, reference_times, playbook_peaks, reference_peaks = [], [], [], []
        result = {}
        ref_uploads = os.path.join(work, 'reference-uploads')
        for _round in range(args.rounds):
            reset_target(server, 'restored', os.path.join(target, 'uploads'))
            times = os.path.join(work, 'task-times.jsonl')
            if os.path.exists(times):
                os.unlink(times)
            seconds, peak, out = playbook('restore.yml', inventory, '--limit', 'target', times=times)
            result = stats(out, 'cairn_restore').get('target', {})
            if result.get('outcome') != 'succeeded' or result.get('files_written') != files:
                raise SystemExit('the restore did not restore everything: %s' % json.dumps(result)[:2000])
            playbook_times.append(seconds)
            playbook_peaks.append(peak)
            reset_target(server, 'reference', ref_uploads)
            shutil.rmtree(ref_uploads)
            argv, env = server.command('pg_restore', '--jobs', str(args.jobs), '--no-owner',
                                       '--dbname', 'reference', dump_file)
            restore_s, restore_peak, _out = timed(argv, dict(os.environ, **env))
            copy_s, copy_peak, _out = timed(['cp', '-a', os.path.join(source, 'uploads'), ref_uploads])
            start = time.monotonic()
            os.sync()
            reference_times.append(restore_s + copy_s + time.monotonic() - start)
            reference_peaks.append(max(restore_peak, copy_peak))
        play, ref = statistics.median(playbook_times), statistics.median(reference_times)
        print('load average at end: %.2f %.2f %.2f' % os.getloadavg(), flush=True)
        print('%-52s playbook %6.2fs  reference %6.2fs  ratio %.3f (goal <= 1.1: %s)'
              % ('restore playbook vs pg_restore -j%d + cp -a' % args.jobs, play, ref, play / ref,
                 'met' if play <= 1.1 * ref else 'NOT met'), flush=True)
        print('    each round (playbook / reference, s): %s' % ', '.join(
            '%.2f / %.2f' % pair for pair in zip(playbook_times, reference_times)))
        print('    peak RSS of the largest process: playbook side %.1f MiB (ansible-playbook or a module), reference '
              'side %.1f MiB (pg_restore or cp)' % (max(playbook_peaks) / 1024.0, max(reference_peaks) / 1024.0))
        print('    the last restore: %s bytes, %s files written, %s of %s checks passed, role duration %ss'
              % (result.get('bytes'), result.get('files_written'), len([c for c in result.get('checks') or ()
                                                                        if c.get('ok')]),
                 len(result.get('checks') or ()), result.get('duration_s')))
        print('    its steps (s; the database and the files side by side): %s' % ', '.join(
            '%s %s' % (name[:-2], value) for name, value in sorted((result.get('steps') or {}).items())
            if value is not None))
        print('    the slowest tasks of the last restore:')
        for task_s, name in slowest_tasks(times):
            print('    %7.2fs  %s' % (task_s, name))
        if args.drill:
            drill(server, inventory, work, settings)


def drill(server, inventory, work, settings):
    """One drill of the instance (the restore_drill playbook: the restore into a scratch database and a sandbox,
    the CMS's bootstrap, its start, the checks over HTTP) and its RTO breakdown, from its record. A drill needs the
    instance's configuration, which a restore point holds only encrypted: one more backup, encrypted, first."""
    identity = pyrage.x25519.Identity.generate()
    key_file = os.path.join(work, 'backup-key.txt')
    with open(key_file, 'w', encoding='utf-8') as handle:
        handle.write('%s\n' % identity)
    os.chmod(key_file, 0o600)
    with open(inventory, encoding='utf-8') as handle:
        hosts = json.load(handle)
    database = server.env()
    cms = [_directus._node(), str(_directus.ensure_installed())]  # pylint: disable=protected-access
    hosts['all']['hosts']['source'].update({
        'cairn_encryption_recipients': [str(identity.to_public())], 'cairn_encryption_identity_file': key_file,
        'cairn_drill_cms_command': cms + ['start'], 'cairn_cms_command': cms,
        'cairn_drill_cms_environment': {'NODE_ENV': 'production'},
        'cairn_drill_http_email': settings['ADMIN_EMAIL'], 'cairn_drill_http_password': settings['ADMIN_PASSWORD'],
        'cairn_drill_dir': os.path.join(work, 'sandbox'), 'cairn_drill_report_file': os.path.join(work, 'drill.json'),
        'cairn_drill_env_overrides': {'DB_HOST': database['DB_HOST'], 'DB_PORT': database['DB_PORT'],
                                      'DB_USER': database['DB_USER'], 'DB_DATABASE': 'drill_scratch'},
        'cairn_drill_env_secret_overrides': {'DB_PASSWORD': database.get('DB_PASSWORD', '')}})
    with open(inventory, 'w', encoding='utf-8') as handle:
        json.dump(hosts, handle)
    backup_s, _peak, _out = playbook('backup.yml', inventory, '--limit', 'source')
    print('backup playbook, encrypted (once, for the drill): %.2fs' % backup_s, flush=True)
    seconds, peak, _out = playbook('restore_drill.yml', inventory, '--limit', 'source')
    with open(os.path.join(work, 'drill.json'), encoding='utf-8') as handle:
        record = json.load(handle)
    print('the drill of that restore point (restore_drill playbook: %.2fs, peak RSS %.1f MiB): %s, RTO %ss'
          % (seconds, peak / 1024.0, 'passed' if record.get('ok') else 'FAILED', record.get('rto_s')))
    steps = sorted((name[:-2] if name.endswith('_s') else name, value)
                   for name, value in (record.get('steps') or {}).items() if value is not None)
    print('    its steps (s): %s' % ', '.join('%s %s' % step for step in steps))
    checks = ['%s %s' % (check['name'], 'ok' if check['ok'] else 'FAILED') for check in record.get('checks') or ()]
    print('    its checks: %s' % ', '.join(checks))


if __name__ == '__main__':
    main()
