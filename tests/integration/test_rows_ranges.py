# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The rows part of a large table read in ranges of its integer key side by side, each range but the first by a
forked process of its own (``_db._base.side_by_side``), against a real PostgreSQL server and SQLite: the stream holds
the same rows and checksums as one read of the whole table, with rows on every range boundary, negative keys and,
in SQLite, a NULL key; a range that fails fails the capture with its message, and leaves no process or file
behind. Through the backup playbook: a value no range can read, a range's process killed, then the module itself
killed (its range's process ends with it) fail their runs with no restore point; the next run's rows part holds
every row of the table."""

from __future__ import annotations

import contextlib
import io
import json
import os
import secrets
import signal
import sqlite3
import time

import pytest
from conftest import SHOW_STATS, Gate, custom_stats, descendants, part_of, run_module, run_playbook, write_inventory

from ansible_collections.cairncms.ops.plugins.module_utils import _compress, _db, _rows, _scratch
from ansible_collections.cairncms.ops.plugins.module_utils._common import CairnError
from ansible_collections.cairncms.ops.plugins.module_utils._db import _base, select_backend
from ansible_collections.cairncms.ops.plugins.module_utils._env import InstanceConfig

# keys far apart, negative ones, and (with 3 ranges of -600..1400) rows on both cuts and beside them
KEYS = sorted(set(list(range(-600, -400)) + [66, 67, 68, 732, 733, 734] + list(range(1200, 1401))))


class _RowsOut:
    """The rows part written into a file, as ``_db.RowsOut`` writes it into a repository."""

    def __init__(self, path):
        self.path = path
        self.written = None

    @contextlib.contextmanager
    def writing(self, vendor, order):
        with open(self.path, 'wb') as handle:
            writer, close = _db.rows_writer(handle, vendor, order, 'zstd', 3, 1)
            yield writer
            close()
        self.written = writer.tables


def _capture(config, path):
    rows_out = _RowsOut(path)
    backend = select_backend(config.database(), {'rows_out': rows_out})
    backend.dump(io.BytesIO(), _scratch.directory())
    with open(path, 'rb') as handle:
        head, tables = _rows.read(_compress.reader(handle, 'zstd'), path)
        found = {table['table']: sorted((list(row) for row in rows), key=repr) for table, rows in tables}
    return head, found, rows_out.written


@pytest.fixture(params=['postgres', 'sqlite'])
def source(request, tmp_path):
    if request.param == 'sqlite':
        path = str(tmp_path / 'data.db')
        conn = sqlite3.connect(path)
        with conn:
            conn.execute('CREATE TABLE items (id integer PRIMARY KEY, title text, n bigint)')
            conn.execute('CREATE TABLE loose (id int PRIMARY KEY, note text)')  # not the rowid: a NULL key allowed
            conn.execute('CREATE TABLE tags (code varchar(10) PRIMARY KEY, item integer REFERENCES items (id))')
            conn.executemany('INSERT INTO items VALUES (?, ?, ?)',
                             [(key, 'item %d ü' % key, key * 2 ** 40) for key in KEYS])
            conn.executemany('INSERT INTO loose VALUES (?, ?)', [(key, 'n%d' % key) for key in KEYS]
                             + [(None, 'a NULL key')])
            conn.executemany('INSERT INTO tags VALUES (?, ?)', [('t%d' % key, key) for key in KEYS[:50]])
        conn.close()
        yield request.param, InstanceConfig.from_dotenv({'DB_CLIENT': 'sqlite3', 'DB_FILENAME': path}, str(tmp_path))
        return
    server = request.getfixturevalue('postgres_server')
    name = 'cairn_ranges_%s' % secrets.token_hex(3)
    server.create_database(name)
    try:
        server.sql('CREATE TABLE items (id integer PRIMARY KEY, title text, n bigint); '
                   'CREATE TABLE loose (id bigint PRIMARY KEY, note text); '
                   'CREATE TABLE tags (code varchar(10) PRIMARY KEY, item integer REFERENCES items (id)); '
                   'INSERT INTO items SELECT k, \'item \' || k || \' ü\', k::bigint * 1099511627776 '
                   'FROM unnest(ARRAY[%s]) k; '
                   'INSERT INTO loose SELECT k, \'n\' || k FROM unnest(ARRAY[%s]) k; '
                   'INSERT INTO tags SELECT \'t\' || k, k FROM unnest(ARRAY[%s]) k'
                   % (','.join(map(str, KEYS)), ','.join(map(str, KEYS + [2 ** 40])),
                      ','.join(map(str, KEYS[:50]))), name)
        yield request.param, InstanceConfig.from_dotenv(server.env(database=name), str(tmp_path))
    finally:
        if server.running:
            server.drop_database(name)


def _split(monkeypatch, processes):
    monkeypatch.setattr(_base, 'SPLIT_ROWS', 100)
    monkeypatch.setattr(_base, 'CAPTURE_PROCESSES', processes)
    monkeypatch.setattr(_base.os, 'cpu_count', lambda: processes)


def _range_files():
    return [name for name in os.listdir(_scratch.directory()) if name.startswith('.cairn-rows-')]


@pytest.fixture
def forks(monkeypatch):
    """The processes the capture forks; each must have been waited for by the end of the test."""
    pids = []
    real = os.fork

    def counted():
        pid = real()
        if pid:
            pids.append(pid)
        return pid
    monkeypatch.setattr(_base.os, 'fork', counted)
    yield pids
    for pid in pids:
        with pytest.raises(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)


def test_a_table_read_in_ranges_side_by_side_holds_every_row_once(source, tmp_path, monkeypatch, forks):
    vendor, config = source
    whole_head, whole, whole_facts = _capture(config, str(tmp_path / 'whole.ndjson.zst'))
    assert len(whole['items']) == len(KEYS) and len(whole['tags']) == 50
    assert len(whole['loose']) == len(KEYS) + 1
    assert forks == []
    for processes in (2, 3):
        _split(monkeypatch, processes)
        del forks[:]
        head, split, facts = _capture(config, str(tmp_path / ('split%d.ndjson.zst' % processes)))
        # both large tables were read in ranges (one forked process per range but the first), the small one whole
        assert len(forks) == 2 * (processes - 1)
        assert head['tables'] == whole_head['tables']
        # the reader checked each table's rows against the checksum at its end: the same rows, the same checksums
        assert split == whole
        assert facts == whole_facts
        assert _range_files() == []


def test_a_range_that_fails_fails_the_capture_and_leaves_nothing_behind(source, tmp_path, monkeypatch, forks):
    _vendor, config = source
    _split(monkeypatch, 3)
    real = _rows.reader
    parent = os.getpid()

    def failing(kind, *args, **kwargs):
        read = real(kind, *args, **kwargs)
        if os.getpid() == parent or kind != 'string':
            return read

        def refuse(raw):
            if raw is not None and raw.endswith(' 1300 ü'):
                raise CairnError('a value the test refuses (%s)' % raw)
            return read(raw)
        return refuse
    monkeypatch.setattr(_rows, 'reader', failing)
    with pytest.raises(CairnError) as caught:
        _capture(config, str(tmp_path / 'failed.ndjson.zst'))
    message = str(caught.value)
    quoted = '"id"'
    assert 'reading the rows of table items where %s >= ' % quoted in message
    assert 'a value the test refuses (item 1300 ü)' in message
    assert _range_files() == []
    assert forks


def test_the_reading_process_fails_and_the_other_ranges_are_stopped(source, tmp_path, monkeypatch, forks):
    _vendor, config = source
    _split(monkeypatch, 3)
    real = _base._Within.__init__  # pylint: disable=protected-access

    def failing(self, writer):
        real(self, writer)
        raise CairnError('the first range failed here')
    monkeypatch.setattr(_base._Within, '__init__', failing)  # pylint: disable=protected-access
    with pytest.raises(CairnError, match='the first range failed here'):
        _capture(config, str(tmp_path / 'failed.ndjson.zst'))
    assert _range_files() == []
    assert forks


def _state(pid):
    try:
        with open('/proc/%d/status' % pid, 'rb') as handle:
            return handle.read().lower()
    except OSError:
        return b'zombie'


def _forked_reader(root):
    """The pid of a process a module below ``root`` forked (its command line its parent's), or None."""
    found = descendants(root)
    lines = {}
    for pid in found:
        try:
            with open('/proc/%d/cmdline' % pid, 'rb') as handle:
                lines[pid] = handle.read()
            with open('/proc/%d/stat' % pid, 'rb') as handle:
                parent = int(handle.read().rsplit(b')', 1)[1].split()[1])
        except (OSError, ValueError):
            continue
        if b'AnsiballZ_cairn_backup' in lines[pid] and lines.get(parent) == lines[pid]:
            return pid
    return None


def _reading_a_range(inventory, directory):
    """A backup playbook run started, and the pid of the process its module forked to read a range."""
    gate = Gate('backup.yml', inventory, 'Back up into one restore point', directory)
    gate.wait()
    gate.release()
    deadline = time.monotonic() + 300
    while (victim := _forked_reader(gate.proc.pid)) is None:
        assert gate.proc.poll() is None and time.monotonic() < deadline, 'no range was read by a process of its own'
        time.sleep(0.02)
    return gate, victim


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason='a table is read in ranges on a host of 2 processors or more')
def test_the_backup_playbook_reads_a_large_table_in_ranges_after_failed_runs(tmp_path):
    rows = _base.SPLIT_ROWS + 100
    path = str(tmp_path / 'data.db')
    conn = sqlite3.connect(path)
    with conn:
        conn.execute('CREATE TABLE items (id integer PRIMARY KEY, title text, n integer)')
        conn.executemany('INSERT INTO items VALUES (?, ?, ?)',
                         ((key, 'item %d' % key, key * 7) for key in range(1, rows + 1)))
        conn.execute("UPDATE items SET n = 'not a number' WHERE id = %d" % (rows - 10))  # in the last range
    conn.close()
    with open(str(tmp_path / '.env'), 'w', encoding='utf-8') as handle:
        handle.write('DB_CLIENT=sqlite3\nDB_FILENAME=%s\nKEY=k\nSECRET=s\nSTORAGE_LOCATIONS=local\n'
                     'STORAGE_LOCAL_DRIVER=local\nSTORAGE_LOCAL_ROOT=%s\n' % (path, tmp_path / 'uploads'))
    os.makedirs(str(tmp_path / 'uploads'))
    repository = str(tmp_path / 'repository')
    inventory = write_inventory(str(tmp_path / 'inventory.json'), {'cms': {
        'cairn_env_file': str(tmp_path / '.env'), 'cairn_backup_parts': ['database', 'files', 'rows']}}, repository)
    listed = {'repository': {'type': 'local', 'path': repository}, 'instance': 'cms'}

    # 1. a value no reader takes, in a range read by a process of its own: the run fails, naming it
    run = run_playbook('backup.yml', inventory, environ=SHOW_STATS)
    assert run.returncode != 0
    assert 'reading the rows of table items where "id" >= ' in run.stdout, run.stdout
    assert "'not a number' is not a integer value" in run.stdout, run.stdout
    assert run_module('cairn_backup_info', **listed)['restore_points'] == []

    # 2. the range's process killed while it reads: the run fails, saying so
    conn = sqlite3.connect(path)
    with conn:
        conn.execute('UPDATE items SET n = id * 7')
    conn.close()
    gate, victim = _reading_a_range(inventory, tmp_path / 'gate')
    os.kill(victim, 9)
    run = gate.finish()
    assert run.returncode != 0
    assert 'in a process of its own, failed: it was killed by signal 9' in run.stdout, run.stdout
    assert run_module('cairn_backup_info', **listed)['restore_points'] == []

    # 3. the module itself killed while a range's process reads: that process ends with it
    gate, victim = _reading_a_range(inventory, tmp_path / 'gate2')
    with open('/proc/%d/stat' % victim, 'rb') as handle:
        module = int(handle.read().rsplit(b')', 1)[1].split()[1])
    os.kill(victim, signal.SIGSTOP)  # held where it is: only its parent's end may end it now
    try:
        os.kill(module, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while b'zombie' not in _state(victim):
            assert time.monotonic() < deadline, 'the range process stayed after its module was killed'
            time.sleep(0.05)
    finally:
        with contextlib.suppress(OSError):
            os.kill(victim, signal.SIGKILL)
    run = gate.finish()
    assert run.returncode != 0
    assert run_module('cairn_backup_info', **listed)['restore_points'] == []

    # 4. the next run (taking over the killed run's lock once it has been silent for a second): every row, each
    # once, checked against the table's checksum by the reader
    time.sleep(1.5)
    run = run_playbook('backup.yml', inventory, environ=SHOW_STATS, extra=['-e', 'cairn_lock_stale_after=1'])
    assert run.returncode == 0, run.stdout + run.stderr
    assert custom_stats(run.stdout)['cairn_backup']['cms']['outcome'] == 'succeeded'
    [point] = run_module('cairn_backup_info', **listed)['restore_points']
    with open(os.path.join(repository, 'cms', 'points', point['id'], 'manifest.json'), encoding='utf-8') as handle:
        part = part_of(json.load(handle), 'rows')
    assert part['tables']['items']['rows'] == rows
    with open(os.path.join(repository, 'cms', 'points', point['id'], part['artifacts'][0]['path']), 'rb') as handle:
        _head, tables = _rows.read(_compress.reader(handle, 'zstd'), 'the rows part')
        [(table, read)] = [(table, list(found)) for table, found in tables]
    assert table['table'] == 'items'
    assert sorted(read) == [[key, 'item %d' % key, key * 7] for key in range(1, rows + 1)]
