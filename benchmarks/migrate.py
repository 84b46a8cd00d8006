#!/usr/bin/env python
# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The migrate playbook against the target vendor's own dump and restore, measured in the same run on the same data.

    .venv/bin/python benchmarks/migrate.py [--pg-mb 1024] [--sqlite-mb 300] [--rounds 3] [--only CASE] [--jobs 1]

Two cases (issue 14 item 5), each from a real Directus 10.0.0 (CairnCMS's fork point; tests/integration/_directus.py)
on throwaway servers (tests/integration/_servers.py):

* ``pg-mariadb``: an instance on PostgreSQL of about PG_MB MiB (pg_database_size) moved to MariaDB;
* ``sqlite-pg``: an instance on SQLite of about SQLITE_MB MiB (the database file) moved to PostgreSQL.

**Source.** The CMS is bootstrapped on the source vendor and started; a collection ``bench_items`` is made through its
API with fields of mixed types (string title, text body, integer, timestamp, json, uuid, decimal(12,2), boolean), so
the CMS's schema knows them. The CMS is stopped and the collection is filled by SQL to the size asked (PostgreSQL:
COPY through psql; SQLite: executemany), with seeded text-like values (words, some of them non-ASCII), as the CMS
stores them (SQLite: timestamps in epoch milliseconds, booleans 0 and 1, decimals as floats).

**Measured side**, each round into an empty target (its database dropped, and on MariaDB created empty, as the
tests do; uploads emptied) and a fresh local repository: the whole ``ansible-playbook playbooks/migrate.yml`` (local
connection; the backup role with ``cairn_backup_parts: [database, files, secrets, schema, config, rows]`` on the
source, then the migrate role on a target whose .env names the other vendor and has the source's KEY and SECRET: the
CMS's ``bootstrap`` and ``schema apply`` through ``cairn_cms_command``, the rows loaded and checked, the files, then
``cairn_restore_verify``; no ``cairn_cms_service``, the role's defaults otherwise).

**Reference side**, in the same round after it: the same data natively on the target vendor. The database the
migration has just made is dumped and restored into an empty database of that vendor with its own tools: MariaDB
``mariadb-dump --single-transaction | mariadb`` (one pipeline, timed as a whole); PostgreSQL ``pg_dump -Fc -f FILE``
then ``pg_restore [-j JOBS] -d EMPTY FILE`` (the sum). This is what an operator moving an instance within one vendor
would run, and it carries the target's system tables as well as the content.

Prints, per case, the median seconds of ROUNDS of each side and their ratio (goal: playbook <= 2 x reference), the
peak resident memory of the largest process of each side (the wait4 resource usage of each command, which covers
every process below it; goal for the migration: < 200 MB, i.e. 190.7 MiB), the peak of each kind of process of the
playbook side (VmHWM sampled from /proc every 0.2 s: ansible-playbook, each module, the CMS's node CLI, the database
clients), the backup's and the migration's own steps (their cairn_backup / cairn_migrate custom stats) and the
slowest tasks (benchmarks/callbacks/cairn_task_times.py). Exit code 0 whatever the numbers, 1 when a run fails.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COLLECTIONS = os.path.join(ROOT, '.build', 'collections')
sys.path.insert(0, os.path.join(ROOT, 'tests', 'integration'))

import _directus  # noqa: E402  (the test harness's Directus 10.0.0)
import _servers  # noqa: E402  (the test harness's throwaway servers)
import _site  # noqa: E402  (a Directus in a work directory, started and stopped by the tests' service manager)

MiB = 1048576.0
GOAL_RATIO = 2.0
GOAL_PEAK = 200e6  # bytes: 200 MB
COLLECTION = 'bench_items'
# the content fields, made through the CMS's API (besides its id and title)
FIELDS = [
    {'field': 'body', 'type': 'text', 'meta': {'interface': 'input-multiline'}, 'schema': {}},
    {'field': 'views', 'type': 'integer', 'meta': {'interface': 'input'}, 'schema': {}},
    {'field': 'published_at', 'type': 'timestamp', 'meta': {'interface': 'datetime', 'special': ['cast-timestamp']},
     'schema': {}},
    {'field': 'payload', 'type': 'json', 'meta': {'interface': 'input-code', 'special': ['cast-json']}, 'schema': {}},
    {'field': 'ref', 'type': 'uuid', 'meta': {'interface': 'input'}, 'schema': {}},
    {'field': 'price', 'type': 'decimal', 'meta': {'interface': 'input'},
     'schema': {'numeric_precision': 12, 'numeric_scale': 2}},
    {'field': 'active', 'type': 'boolean', 'meta': {'interface': 'boolean', 'special': ['cast-boolean']},
     'schema': {}},
]
COLUMNS = ['title'] + [field['field'] for field in FIELDS]
CASES = {'pg-mariadb': ('postgres', 'mysql'), 'sqlite-pg': ('sqlite', 'postgres')}
NAMES = {'postgres': 'PostgreSQL', 'mysql': 'MariaDB', 'sqlite': 'SQLite'}
WORDS = ('cairn stone trail summit ridge valley river north south marker path route climb rest view map guide '
         'weather snow rock moss heather granite slate limestone shelter cloud wind rain sun peak col pass '
         'Grüße café naïve Ωμέγα 山 石塚 道 – \u201cquoted\u201d 🪨 🏔️').split()
EPOCH_2000, SPAN_30_YEARS = 946684800, 30 * 365 * 86400


# --------------------------------------------------------------------------------------------------- the data

class Rows:
    """Seeded rows of bench_items: (title, body, views, published_at epoch ms, payload json, ref uuid, price in
    cents, active)."""

    def __init__(self, seed=14):
        self.rng = random.Random(seed)
        # a pool of text to cut the bodies from: every body a different slice, text-like to compress
        self.pool = ' '.join(self.rng.choice(WORDS) for _word in range(400000))
        self.number = 0

    def take(self, count):
        rng, pool, last = self.rng, self.pool, len(self.pool) - 1200
        for _row in range(count):
            self.number += 1
            start = rng.randrange(last)
            body = pool[start:start + rng.randrange(300, 1100)]
            title = 'Item %d: %s' % (self.number, pool[start:start + rng.randrange(10, 80)].strip())
            stamp = (EPOCH_2000 + rng.randrange(SPAN_30_YEARS)) * 1000 + rng.randrange(1000)
            payload = '{"n": %d, "tags": ["%s", "%s"], "score": %d.%03d, "draft": %s}' % (
                self.number, rng.choice(WORDS[:30]), rng.choice(WORDS[:30]), rng.randrange(100), rng.randrange(1000),
                'true' if rng.random() < 0.2 else 'false')
            ref = '%032x' % rng.getrandbits(128)
            ref = '%s-%s-4%s-a%s-%s' % (ref[:8], ref[8:12], ref[13:16], ref[17:20], ref[20:])
            yield (title, body, rng.randrange(1000000), stamp, payload, ref, rng.randrange(100000000),
                   rng.random() < 0.5)


def copy_line(row):
    """A row as a line of PostgreSQL's COPY text format (the values hold no tab, newline or backslash)."""
    title, body, views, stamp, payload, ref, cents, active = row
    moment = time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime(stamp // 1000)) + '.%03d+00' % (stamp % 1000)
    return '\t'.join((title, body, str(views), moment, payload, ref, '%d.%02d' % divmod(cents, 100),
                      't' if active else 'f')) + '\n'


def sqlite_row(row):
    """A row as the CMS stores it in SQLite: epoch milliseconds, a float decimal, 0 or 1."""
    title, body, views, stamp, payload, ref, cents, active = row
    return (title, body, views, stamp, payload, ref, cents / 100, 1 if active else 0)


def fill(size_of, insert, target_bytes):
    """Insert rows in chunks until ``size_of()`` reaches ``target_bytes``; the number of rows."""
    rows, total, size = Rows(), 0, size_of()
    per_row = None
    while size < target_bytes:
        count = 2000 if per_row is None else max(1000, min(250000, int((target_bytes - size) / per_row) + 1))
        before = size
        insert(rows.take(count))
        total += count
        size = size_of()
        per_row = max(1.0, (size - before) / float(count))
        print('    %d rows, %.0f MiB' % (total, size / MiB), flush=True)
    return total


def fill_postgres(server, database, target_bytes):
    def insert(rows):
        argv, env = server.command('psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-c',
                                   'COPY %s (%s) FROM STDIN' % (COLLECTION, ', '.join(COLUMNS)), database=database)
        proc = subprocess.Popen(argv, env=dict(os.environ, **env), stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)
        with proc.stdin as stream:
            batch = []
            for row in rows:
                batch.append(copy_line(row))
                if len(batch) == 5000:
                    stream.write(''.join(batch).encode())
                    batch = []
            stream.write(''.join(batch).encode())
        if proc.wait() != 0:
            raise SystemExit('COPY into %s failed' % COLLECTION)

    def size_of():
        return int(server.rows('SELECT pg_database_size(current_database())', database)[0][0])

    total = fill(size_of, insert, target_bytes)
    server.sql('VACUUM ANALYZE %s' % COLLECTION, database, timeout=3600)
    return total, size_of()


def fill_sqlite(path, target_bytes):
    db = sqlite3.connect(path)
    try:
        def insert(rows):
            with db:
                statement = 'INSERT INTO %s (%s) VALUES (%s)' % (
                    COLLECTION, ', '.join(COLUMNS), ', '.join('?' * len(COLUMNS)))
                db.executemany(statement, (sqlite_row(row) for row in rows))

        def size_of():
            return os.path.getsize(path)

        total = fill(size_of, insert, target_bytes)
    finally:
        db.close()
    return total, os.path.getsize(path)


# --------------------------------------------------------------------------------------------- measuring

class Sampler(threading.Thread):
    """The peak resident memory (VmHWM) of every process below ``root``, read from /proc every ``interval`` s, by
    kind: ansible-playbook (with its workers), ``module <name>``, ``node (CMS CLI <command>)`` or the program."""

    def __init__(self, root, interval=0.2):
        super().__init__(daemon=True)
        self.root, self.interval, self.peaks = root, interval, {}
        self.done = threading.Event()

    def run(self):
        while True:
            self.sample()
            if self.done.wait(self.interval):
                return

    @staticmethod
    def _read(pid, name):
        try:
            with open('/proc/%s/%s' % (pid, name), 'rb') as handle:
                return handle.read().decode(errors='replace')
        except OSError:
            return ''

    def sample(self):
        children = {}
        for pid in os.listdir('/proc'):
            if pid.isdigit():
                stat = self._read(pid, 'stat')
                if stat:
                    children.setdefault(int(stat.rsplit(')', 1)[1].split()[1]), []).append(int(pid))
        todo = [self.root]
        while todo:
            pid = todo.pop()
            todo.extend(children.get(pid, ()))
            hwm = [line for line in self._read(pid, 'status').splitlines() if line.startswith('VmHWM:')]
            if hwm:
                kind = self.kind(self._read(pid, 'cmdline').split('\0'))
                self.peaks[pid] = (kind, max(int(hwm[0].split()[1]), self.peaks.get(pid, ('', 0))[1]))

    @staticmethod
    def kind(argv):
        for arg in argv:
            if 'AnsiballZ_' in arg:
                return 'module ' + arg.rsplit('AnsiballZ_', 1)[1].rsplit('.py', 1)[0]
        if any(arg.endswith('ansible-playbook') for arg in argv[:2]):
            return 'ansible-playbook'
        if os.path.basename(argv[0]) == 'node':
            return 'node (CMS CLI %s)' % ' '.join(arg for arg in argv[2:4] if arg and arg[:1] not in '-/')
        return os.path.basename(argv[0]) or '?'

    def by_kind(self):
        """{kind: peak KiB}."""
        result = {}
        for kind, peak in self.peaks.values():
            result[kind] = max(result.get(kind, 0), peak)
        return result


def timed(argv, env=None, sample=False):
    """(seconds, peak RSS in KiB of the largest process of the run, stdout, peaks by kind) of ``argv``: the wait4
    resource usage of the child covers every descendant it waited for. Fails the benchmark when the command fails."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.monotonic()
        proc = subprocess.Popen(argv, env=env, stdout=out, stderr=err, cwd=ROOT)
        sampler = Sampler(proc.pid) if sample else None
        if sampler:
            sampler.start()
        _pid, status, usage = os.wait4(proc.pid, 0)
        seconds = time.monotonic() - start
        if sampler:
            sampler.done.set()
            sampler.join()
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(errors='replace'), err.read().decode(errors='replace')
    if proc.returncode != 0:
        raise SystemExit('%s failed (%d):\n%s\n%s' % (argv[0], proc.returncode, stdout[-6000:], stderr[-2000:]))
    return seconds, usage.ru_maxrss, stdout, sampler.by_kind() if sampler else {}


def piped(first, second, env):
    """(seconds, peak RSS KiB of the larger of the two) of ``first | second``; fails the benchmark when either
    fails."""
    start = time.monotonic()
    with tempfile.TemporaryFile() as err:
        producer = subprocess.Popen(first, env=env, stdout=subprocess.PIPE, stderr=err)
        consumer = subprocess.Popen(second, env=env, stdin=producer.stdout, stdout=subprocess.DEVNULL, stderr=err)
        producer.stdout.close()
        results = [os.wait4(proc.pid, 0) for proc in (producer, consumer)]
        seconds = time.monotonic() - start
        err.seek(0)
        problems = err.read().decode(errors='replace')
    for argv, (_pid, status, _usage) in zip((first, second), results):
        if os.waitstatus_to_exitcode(status) != 0:
            raise SystemExit('%s failed:\n%s' % (os.path.basename(argv[0]), problems[-3000:]))
    return seconds, max(usage.ru_maxrss for _pid, _status, usage in results)


def playbook(name, inventory, times):
    """Run a playbook; the wall time of each task is appended to ``times`` (callbacks/)."""
    argv = [os.path.join(os.path.dirname(sys.executable), 'ansible-playbook'), '-i', inventory,
            os.path.join(ROOT, 'playbooks', name)]
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=COLLECTIONS, ANSIBLE_NOCOLOR='1', ANSIBLE_FORCE_COLOR='0',
               ANSIBLE_LOCALHOST_WARNING='0', ANSIBLE_SHOW_CUSTOM_STATS='1',
               ANSIBLE_CALLBACK_PLUGINS=os.path.join(ROOT, 'benchmarks', 'callbacks'),
               ANSIBLE_CALLBACKS_ENABLED='cairn_task_times', CAIRN_TASK_TIMES=times)
    return timed(argv, env, sample=True)


def slowest_tasks(path, count=8):
    """The ``count`` slowest tasks written by the callback: [(seconds, host, name)]."""
    with open(path, encoding='utf-8') as handle:
        records = [json.loads(line) for line in handle]
    return sorted(((record['seconds'], record['host'], record['task']) for record in records), reverse=True)[:count]


def stats(output, name):
    """The custom stats ``name`` the run published (ANSIBLE_SHOW_CUSTOM_STATS)."""
    lines = [line for line in output.splitlines() if line.strip().startswith('RUN: ')]
    return json.loads(lines[-1].split('RUN: ', 1)[1]).get(name, {}) if lines else {}


def steps_text(steps):
    return ' + '.join('%s %.2f' % (name[:-2] if name.endswith('_s') else name, value)
                      for name, value in sorted((steps or {}).items()) if isinstance(value, (int, float)))


# ------------------------------------------------------------------------------------------------ a case

class Vendor:
    """Databases of one vendor for the case: the .env settings of a database, emptying it, its size, its native
    dump + restore."""

    def __init__(self, vendor, server, work):
        self.vendor, self.server, self.work = vendor, server, work

    def env(self, name):
        if self.vendor == 'sqlite':
            return {'DB_CLIENT': 'sqlite3', 'DB_FILENAME': os.path.join(self.work, name, _directus.DB_FILENAME)}
        env = self.server.env(database=name)
        if self.vendor == 'mysql':
            env['DB_CHARSET'] = 'utf8mb4'  # the CMS's connection takes 3-byte utf8 otherwise
        return env

    def empty(self, name, create):
        """No database ``name`` (the migration makes it), or an empty one (``create``; MariaDB, as the tests)."""
        if self.vendor == 'sqlite':
            path = os.path.join(self.work, name, _directus.DB_FILENAME)
            if os.path.exists(path):
                os.unlink(path)
            return
        self.server.drop_database(name)
        if create:
            self.server.create_database(name)

    def size(self, name):
        if self.vendor == 'sqlite':
            return os.path.getsize(os.path.join(self.work, name, _directus.DB_FILENAME))
        if self.vendor == 'postgres':
            return int(self.server.rows('SELECT pg_database_size(current_database())', name)[0][0])
        directory = os.path.join(self.server.datadir, name)  # InnoDB's statistics lag behind a bulk load
        return sum(os.path.getsize(os.path.join(directory, entry)) for entry in os.listdir(directory))

    def label(self):
        if self.vendor == 'mysql':
            return 'mariadb-dump --single-transaction | mariadb'
        return 'pg_dump -Fc + pg_restore'

    def dump_and_restore(self, source, target, jobs):
        """(seconds, peak RSS KiB) of the vendor's own copy of database ``source`` into the empty ``target``."""
        self.empty(target, create=True)
        if self.vendor == 'mysql':
            first, env = self.server.command('mariadb-dump', '--single-transaction', source)
            second, _env = self.server.command('mariadb', target)
            return piped(first, second, dict(os.environ, **env))
        dump_file = os.path.join(self.work, 'reference.pgdump')
        argv, env = self.server.command('pg_dump', '--format=custom', '--file', dump_file, database=source)
        dump_s, dump_peak, _out, _kinds = timed(argv, dict(os.environ, **env))
        argv, env = self.server.command('pg_restore', '--no-owner', '--jobs', str(jobs), '--dbname', target,
                                        dump_file, database=target)
        restore_s, restore_peak, _out, _kinds = timed(argv, dict(os.environ, **env))
        os.unlink(dump_file)
        return dump_s + restore_s, max(dump_peak, restore_peak)


def make_source(vendor, work, size_mb):
    """A Directus on ``vendor`` with bench_items made through its API and filled by SQL; (site, rows, bytes)."""
    name = 'mig_source'
    if vendor.vendor != 'sqlite':
        vendor.server.create_database(name)
    site = _site.Site(os.path.join(work, name), vendor.env(name)).start()
    try:
        _directus.create_collection(site.url, site.token, COLLECTION, FIELDS)
        _directus.create_item(site.url, site.token, COLLECTION, {
            'title': 'made through the API', 'body': 'its text', 'views': 1, 'published_at': '2023-04-01T12:00:00.250Z',
            'payload': {'n': 0, 'tags': ['api']}, 'ref': '5eed0000-0000-4000-8000-00000000be01', 'price': '12.50',
            'active': True})
    finally:
        site.stop()
    print('  filling %s to %d MiB ...' % (COLLECTION, size_mb), flush=True)
    if vendor.vendor == 'sqlite':
        rows, size = fill_sqlite(site.settings['DB_FILENAME'], size_mb * MiB)
    else:
        rows, size = fill_postgres(vendor.server, name, size_mb * MiB)
    return site, rows + 1, size


def run_case(case, servers, work, size_mb, rounds, jobs):
    source_kind, target_kind = CASES[case]
    work = os.path.join(work, case)
    os.makedirs(work)
    source_vendor = Vendor(source_kind, servers.get(source_kind), work)
    target_vendor = Vendor(target_kind, servers.get(target_kind), work)
    print('%s: %s -> %s' % (case, NAMES[source_kind], NAMES[target_kind]), flush=True)
    start = time.monotonic()
    source, rows, size = make_source(source_vendor, work, size_mb)
    print('  source: %d rows in %s, database %.0f MiB (made in %.0fs)'
          % (rows, COLLECTION, size / MiB, time.monotonic() - start), flush=True)

    target_env = target_vendor.env('mig_target')
    target_env.update(KEY=source.settings['KEY'], SECRET=source.settings['SECRET'])
    target = _site.Site(os.path.join(work, 'mig_target'), target_env, bootstrap=False)
    cli = [_directus._node(), str(_directus.ensure_installed())]  # pylint: disable=protected-access
    repository = os.path.join(work, 'repository')
    common = {'ansible_connection': 'local', 'ansible_python_interpreter': sys.executable,
              'cairn_repository': {'type': 'local', 'path': repository}, 'cairn_cms_command': cli}
    inventory = os.path.join(work, 'inventory.json')
    with open(inventory, 'w', encoding='utf-8') as handle:
        json.dump({'all': {'children': {
            'cairn_migrate_sources': {'hosts': {'source': dict(
                common, cairn_instance='site', cairn_env_file=str(source.workdir / '.env'))}},
            'cairn_migrate_targets': {'hosts': {'target': dict(
                common, cairn_instance='site-new', cairn_migrate_from='site',
                cairn_env_file=str(target.workdir / '.env'))}}}}}, handle)

    playbook_times, reference_times, playbook_peaks, reference_peaks, kinds = [], [], [], [], {}
    migrated = backed_up = {}
    times = os.path.join(work, 'task-times.jsonl')
    target_size = 0
    for number in range(rounds):
        target_vendor.empty('mig_target', create=target_kind == 'mysql')
        uploads = os.path.join(target.workdir, _directus.UPLOADS_DIRNAME)
        shutil.rmtree(uploads, ignore_errors=True)
        os.makedirs(uploads)
        shutil.rmtree(repository, ignore_errors=True)
        if os.path.exists(times):
            os.unlink(times)
        os.sync()
        seconds, peak, out, by_kind = playbook('migrate.yml', inventory, times)
        migrated = stats(out, 'cairn_migrate').get('site-new', {})
        backed_up = stats(out, 'cairn_backup').get('site', {})
        if migrated.get('outcome') != 'succeeded' or int(migrated.get('rows') or 0) < rows:
            raise SystemExit('the migration did not move everything: %s' % json.dumps(migrated)[:3000])
        playbook_times.append(seconds)
        playbook_peaks.append(peak)
        for kind, value in by_kind.items():
            kinds[kind] = max(kinds.get(kind, 0), value)
        target_size = target_vendor.size('mig_target')
        os.sync()
        ref_s, ref_peak = target_vendor.dump_and_restore('mig_target', 'mig_reference', jobs)
        reference_times.append(ref_s)
        reference_peaks.append(ref_peak)
        print('  round %d: playbook %.2fs (backup %ss, migration %ss), reference %.2fs'
              % (number + 1, seconds, backed_up.get('duration_s'), migrated.get('duration_s'), ref_s), flush=True)
        target_vendor.empty('mig_reference', create=False)

    play, ref = statistics.median(playbook_times), statistics.median(reference_times)
    peak = max(playbook_peaks) * 1024.0
    print('%-52s playbook %7.2fs  reference %7.2fs  ratio %.3f (goal <= %g: %s)'
          % ('%s: migrate playbook vs %s' % (case, target_vendor.label()), play, ref, play / ref, GOAL_RATIO,
             'met' if play <= GOAL_RATIO * ref else 'NOT met'), flush=True)
    print('    data: %d rows of %s; source %s %.0f MiB, target %s %.0f MiB; %d tables, %s rows moved'
          % (rows, COLLECTION, NAMES[source_kind], size / MiB, NAMES[target_kind], target_size / MiB,
             int(migrated.get('tables') or 0), migrated.get('rows')))
    print('    peak RSS of the largest process: playbook side %.1f MiB (goal < 200 MB = 190.7 MiB: %s), reference '
          'side %.1f MiB' % (peak / MiB, 'met' if peak < GOAL_PEAK else 'NOT met', max(reference_peaks) / 1024.0))
    own = max([value for kind, value in kinds.items() if not kind.startswith('node')] or [0]) * 1024.0
    print('    of which the collection\'s own processes (ansible-playbook and the modules, without the CMS\'s node '
          'CLI): %.1f MiB (goal: %s)' % (own / MiB, 'met' if own < GOAL_PEAK else 'NOT met'))
    print('    by kind (VmHWM sampled): %s' % ', '.join(
        '%s %.1f' % (kind, value / 1024.0) for kind, value in sorted(kinds.items(), key=lambda item: -item[1])
        if value >= 10240))
    print('    the last backup (s): duration %s; steps %s' % (backed_up.get('duration_s'),
                                                              steps_text(backed_up.get('steps'))))
    print('    the last migration (s): duration %s; steps %s; %s column(s) of another type (content), %s of the '
          'system tables; %s lossy; %d of %d checks passed'
          % (migrated.get('duration_s'), steps_text(migrated.get('steps')), len(migrated.get('drift') or ()),
             migrated.get('drift_system_columns'), migrated.get('lossy_count'),
             len([check for check in migrated.get('checks') or () if check.get('ok')]),
             len(migrated.get('checks') or ())))
    if migrated.get('drift'):
        print('    content drift: %s' % json.dumps(migrated['drift'])[:600])
    print('    the slowest tasks of the last run:')
    for task_s, host, name in slowest_tasks(times):
        print('    %7.2fs  %-7s %s' % (task_s, host, name))
    target_vendor.empty('mig_target', create=False)
    if source_kind != 'sqlite':
        source_vendor.empty('mig_source', create=False)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n', 1)[0])
    parser.add_argument('--pg-mb', type=int, default=1024, help='size of the PostgreSQL source (pg-mariadb), MiB')
    parser.add_argument('--sqlite-mb', type=int, default=300, help='size of the SQLite source (sqlite-pg), MiB')
    parser.add_argument('--rounds', type=int, default=3)
    parser.add_argument('--only', choices=sorted(CASES), action='append', help='one case (repeatable); default both')
    parser.add_argument('--jobs', type=int, default=1, help='pg_restore jobs of the PostgreSQL reference')
    args = parser.parse_args()
    if not os.path.exists(os.path.join(COLLECTIONS, 'ansible_collections', 'cairncms', 'ops')):
        raise SystemExit('run `make demo` or `make test` once first: the collection link in .build/ is missing')
    cases = [case for case in sorted(CASES, reverse=True) if not args.only or case in args.only]
    needs = {vendor for case in cases for vendor in CASES[case]}
    _directus.ensure_installed()
    with tempfile.TemporaryDirectory(prefix='cairn-bench-migrate-') as work, contextlib.ExitStack() as stack:
        servers = {}
        if 'postgres' in needs:
            servers['postgres'] = stack.enter_context(_servers.PostgresServer())
        if 'mysql' in needs:
            servers['mysql'] = stack.enter_context(_servers.MariadbServer())
        print('load average at start: %.2f %.2f %.2f; %s' % (os.getloadavg() + (', '.join(
            '%s %s' % (NAMES[kind], server.version) for kind, server in sorted(servers.items())),)), flush=True)
        for case in cases:
            run_case(case, servers, work, args.pg_mb if case == 'pg-mariadb' else args.sqlite_mb, args.rounds,
                     args.jobs)
        print('load average at end: %.2f %.2f %.2f' % os.getloadavg(), flush=True)


if __name__ == '__main__':
    main()
