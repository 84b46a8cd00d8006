# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The check after a migration's row load, against real PostgreSQL and MariaDB servers: each loaded table's row count
and checksum in the target equal to what was loaded. Where the target can write every column of a table as text, it
computes the checksum itself in SQL (``_rows.Fingerprint``) and the table is not read back: values of every kind the
CMS's columns hold (NULLs, negative zero, scales, fractions of seconds, dates before 1000, UUIDs in upper case, text
that is not ASCII, quotes, newlines, binary) give no false difference, and a value changed, a row removed or a row
added in the target after the load is found, in those tables and in a table that is read back (a single-precision
float column)."""

from __future__ import annotations

import base64
import io
import secrets

import pytest

from ansible_collections.cairncms.ops.plugins.module_utils import _migrate, _rows
from ansible_collections.cairncms.ops.plugins.module_utils._common import CairnError
from ansible_collections.cairncms.ops.plugins.module_utils._db import select_backend
from ansible_collections.cairncms.ops.plugins.module_utils._env import InstanceConfig

TABLES = {
    'postgres': [
        'CREATE TABLE kinds (id integer PRIMARY KEY, big bigint, flag boolean, price numeric(12,2), amount numeric, '
        'title character varying(50), code character(5), body text, doc json, ref uuid, '
        'stamped timestamp with time zone, local timestamp without time zone, day date, '
        'tod time without time zone, data bytea, ratio double precision)',
        'CREATE TABLE measured (id integer PRIMARY KEY, ratio real)'],
    'mysql': [
        'CREATE TABLE kinds (id int PRIMARY KEY, big bigint, flag tinyint(1), price decimal(12,2), '
        'amount decimal(20,6), title varchar(50), code char(5), body text, doc longtext, ref char(36), '
        'stamped timestamp(3) NULL, local datetime, day date, tod time(2), data blob, '
        'legacy varchar(20) CHARACTER SET latin1) CHARACTER SET utf8mb4',
        'CREATE TABLE measured (id int PRIMARY KEY, ratio double)'],
}
ROWS = [
    [1, 2 ** 62, True, '-0.00', '7.5', 'Grüße 🪨 it\'s "quoted"', 'ab', 'line\nbreak\ttab \\ back', '{"b": 1, "a": [1]}',
     'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11', '2011-03-04T05:06:07.1Z', '2011-03-04T05:06:07', '0999-01-01',
     '05:06:07.25', base64.b64encode(b'\x00\xff\n').decode()],
    [2, None, False, '12.5', '100', '', None, '', '[]', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a12',
     '1999-12-31T23:59:59Z', None, '2024-02-29', '00:00:00', base64.b64encode(b'').decode()],
    [3] + [None] * 14,
]
# a column more: double precision on PostgreSQL, text in another character set on MariaDB
LAST = {'postgres': [0.30000000000000004, -123.456e20, None], 'mysql': ['café', 'plain', None]}
FLOATS = [1e14, 1e15, 1234567890123456.7, 0.0001, 9.999e-05, -0.0, 1.0, -12.5, 5e-324, 1.7976931348623157e308, 'NaN',
          '-Infinity', 0.001234]
# per vendor: an UPDATE of one value after the load, for each kind of column
CHANGES = {
    'postgres': ["price = 0.01", "amount = 7.50", "title = 'Grüße'", "ref = 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a13'",
                 "stamped = stamped + interval '1 millisecond'", "tod = '05:06:07.26'", "data = '\\x00ff'",
                 "flag = false", "day = '1000-01-01'", "doc = '{\"a\": [1], \"b\": 1}'",
                 "ratio = 0.3"],
    'mysql': ["price = 0.01", "amount = 7.500001", "title = 'Grüße'", "ref = 'x'",
              "stamped = stamped + INTERVAL 1000 MICROSECOND", "tod = '05:06:07.26'", "data = X'00FF'",
              "flag = 0", "day = '1000-01-01'", "code = 'abc'", "legacy = 'cafe'"],
}


@pytest.fixture(params=['postgres', 'mysql'])
def target(request, tmp_path):
    server = request.getfixturevalue({'postgres': 'postgres_server', 'mysql': 'mariadb_server'}[request.param])
    name = 'cairn_check_%s' % secrets.token_hex(3)
    server.create_database(name)
    try:
        for statement in TABLES[request.param]:
            server.sql(statement, name)
        backend = select_backend(InstanceConfig.from_dotenv(server.env(database=name), str(tmp_path)).database())
        yield request.param, server, name, backend
    finally:
        if server.running:
            server.drop_database(name)


def _stream(backend):
    """A rows stream of ``ROWS`` (table kinds) and two rows of ``measured``, typed as the target's own columns."""
    tables = {table['name']: table for table in backend.row_tables()}
    sink = io.BytesIO()
    writer = _rows.Writer(sink, backend.vendor, ['kinds', 'measured'])
    kinds = [row + [last] for row, last in zip(ROWS, LAST[backend.vendor])]
    if backend.vendor == 'postgres':
        kinds += [[10 + number] + [None] * 14 + [value] for number, value in enumerate(FLOATS)]
    for name, rows in (('kinds', kinds), ('measured', [[1, 0.5], [2, None]])):
        writer.begin(tables[name])
        for row in rows:
            writer.row(list(row))
        writer.end()
    writer.close()
    return sink.getvalue()


def _load(backend, stream):
    load = _migrate.Load(backend)
    load.run(io.BytesIO(stream), 'the test stream')
    return load


def test_the_target_computes_the_checksum_of_every_kind_of_value_and_finds_a_change(target):
    vendor, server, name, backend = target
    stream = _stream(backend)
    load = _load(backend, stream)
    # the kinds table is checked in SQL, the table with a float column is read back
    assert isinstance(load.expected['kinds'][1], _rows.Fingerprint)
    assert isinstance(load.expected['measured'][1], _rows.Digest)
    assert load.verify() == []

    for change in CHANGES[vendor]:
        load = _load(backend, stream)
        server.sql('UPDATE kinds SET %s WHERE id = %d' % (change, 2 if change.startswith('tod') else 1), name)
        assert [entry['table'] for entry in load.verify()] == ['kinds'], change
        assert load.verify()[0]['checksums_equal'] is False, change

    load = _load(backend, stream)
    server.sql('DELETE FROM kinds WHERE id = 3', name)
    server.sql('UPDATE measured SET ratio = 0.25 WHERE id = 1', name)
    assert [(entry['table'], entry['target_rows']) for entry in load.verify()] == [
        ('kinds', len(ROWS) - 1 + (len(FLOATS) if vendor == 'postgres' else 0)), ('measured', 2)]

    load = _load(backend, stream)
    server.sql('INSERT INTO kinds (id) VALUES (4)', name)
    loaded = len(ROWS) + (len(FLOATS) if vendor == 'postgres' else 0)
    assert [(entry['table'], entry['loaded_rows'], entry['target_rows']) for entry in load.verify()] == [
        ('kinds', loaded, loaded + 1)]


def test_a_large_table_is_checked_in_ranges_of_its_key_side_by_side(target, monkeypatch):
    """A table of many rows with one integer key is checked in ranges of it, one session each: together every row
    once (keys negative, far apart, at both ends), and a change in any range is found."""
    vendor, server, name, backend = target
    server.sql('CREATE TABLE spread (id bigint PRIMARY KEY, body text)', name)
    low, high = -(2 ** 40), 2 ** 40
    # a row on each boundary of three ranges, and rows on both ends
    ids = sorted({low, -7, 0, 1, 2, 3, 50, 51, 999, high} | {low + (high - low + 1) * part // 3 for part in (1, 2)})
    tables = {table['name']: table for table in backend.row_tables()}
    sink = io.BytesIO()
    writer = _rows.Writer(sink, vendor, ['spread'])
    writer.begin(tables['spread'])
    for key in ids:
        writer.row([key, 'row %d, é' % key])
    writer.end()
    writer.close()
    stream = sink.getvalue()
    monkeypatch.setattr(_migrate, 'SPLIT_ROWS', len(ids))
    monkeypatch.setattr(_migrate.os, 'cpu_count', lambda: 3)
    asked = []
    whole = backend.table_fingerprints
    monkeypatch.setattr(backend, 'table_fingerprints',
                        lambda tables, where=None: asked.append(where) or whole(tables, where))

    load = _load(backend, stream)
    assert load.verify() == []
    assert len([where for where in asked if where and 'spread' in where]) == 3
    for key in ids:
        load = _load(backend, stream)
        server.sql("UPDATE spread SET body = 'changed' WHERE id = %d" % key, name)
        assert [(entry['table'], entry['checksums_equal']) for entry in load.verify()] == [('spread', False)], key
    load = _load(backend, stream)
    server.sql('DELETE FROM spread WHERE id = 51', name)
    assert [(entry['table'], entry['target_rows']) for entry in load.verify()] == [('spread', len(ids) - 1)]
    load = _load(backend, stream)
    server.sql('DELETE FROM spread', name)  # emptied after the load: no key range to split, and found
    assert [(entry['table'], entry['target_rows']) for entry in load.verify()] == [('spread', 0)]


def _many(backend, count, long_title_at=None):
    """A rows stream of ``count`` rows of table kinds, cut from ``ROWS`` (every kind of value), with keys 1 to
    ``count``; the row ``long_title_at`` has a title longer than the column holds."""
    table = {table['name']: table for table in backend.row_tables()}['kinds']
    sink = io.BytesIO()
    writer = _rows.Writer(sink, backend.vendor, ['kinds'])
    writer.begin(table)
    for key in range(1, count + 1):
        row = [key] + ROWS[key % len(ROWS)][1:] + [LAST[backend.vendor][key % len(ROWS)]]
        if key == long_title_at:
            row[5] = 'x' * 51
        writer.row(row)
    writer.end()
    writer.close()
    return sink.getvalue()


def _load_with(backend, stream, processes, allow_lossy=False):
    """A load of ``stream`` (table kinds) by ``processes``, its artifact checked as a whole (as a migration does)."""
    count = sum(1 for line in stream.splitlines() if line.startswith(b'['))
    return _migrate.Load(backend, allow_lossy=allow_lossy, processes=processes, sizes={'kinds': count}).run(
        io.BytesIO(stream), 'the test stream', finish=lambda: None)


def _contents(server, name, backend):
    """Table kinds as the server writes it, binary values in hexadecimal."""
    table = {table['name']: table for table in backend.row_tables()}['kinds']
    hexadecimal = 'HEX(%s)' if backend.vendor == 'mysql' else "encode(%s, 'hex')"
    return server.sql('SELECT %s FROM kinds ORDER BY id' % ', '.join(
        hexadecimal % column['name'] if column['type'] == 'binary' else column['name'] for column in table['columns']),
        name)


def test_a_large_table_is_loaded_by_processes_of_their_own_as_one_process_loads_it(target, monkeypatch):
    """The rows of a large table are parsed, converted, checksummed and written as the target's text by processes
    of their own (``_fanout``), into the load's one session in order: the target holds the same as after a load by
    one process, the checksums are the same and the check finds no difference; a value the target cannot hold
    fails the load naming its row, and the target keeps what it held; allowed, it is reported."""
    _vendor, server, name, backend = target
    count = 3000
    stream = _many(backend, count)
    one = _load_with(backend, stream, processes=1)
    alone = _contents(server, name, backend)
    assert one.verify() == []
    monkeypatch.setattr(_migrate, 'FANOUT_ROWS', count)
    monkeypatch.setattr(_migrate, 'PIECE_BYTES', 8192)  # many pieces, each process several of them
    fanned = []
    results = _migrate._fanout.Fanout.results
    monkeypatch.setattr(_migrate._fanout.Fanout, 'results',
                        lambda self, pieces: fanned.append(self.processes) or results(self, pieces))
    server.sql('DELETE FROM kinds', name)

    many = _load_with(backend, stream, processes=3)
    assert fanned == [3]
    assert _contents(server, name, backend) == alone
    assert many.summary()['tables'] == one.summary()['tables']
    assert many.verify() == []

    bad = _many(backend, count, long_title_at=2500)
    with pytest.raises(CairnError, match=r'table kinds, column title, row 2500: .*nothing was loaded'):
        _load_with(backend, bad, processes=3)
    assert _contents(server, name, backend) == alone
    lossy = _load_with(backend, bad, processes=3, allow_lossy=True)
    assert fanned == [3, 3, 3]
    assert (lossy.lossy_count, [entry['row'] for entry in lossy.lossy]) == (1, ['2500'])
    assert lossy.verify() == []
    assert server.sql('SELECT title FROM kinds WHERE id = 2500', name) == 'x' * 50
