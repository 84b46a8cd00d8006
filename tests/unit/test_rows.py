# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The vendor-neutral rows stream (_rows): values as each vendor stores them turned into one encoding, the canonical
form checksums hash, the stream's checks (a stream cut short, changed, or forged is refused, naming what is wrong),
conversions into another column and what they would lose, the load order; and the migration's type-drift
prediction (_migrate)."""

from __future__ import annotations

import io
import json

import pytest

from ansible_collections.cairncms.ops.plugins.module_utils import _migrate, _rows
from ansible_collections.cairncms.ops.plugins.module_utils._common import CairnError


@pytest.mark.parametrize('kind,raw,expected', [
    ('integer', '9007199254740993', 9007199254740993),
    ('integer', 9007199254740993, 9007199254740993),
    ('integer', 3.0, 3),
    ('integer', True, 1),
    ('decimal', '1.50000', '1.50000'),
    ('decimal', 12.5, '12.5'),
    ('decimal', '-0.000123', '-0.000123'),
    ('float', '0.1', 0.1),
    ('float', 'NaN', 'NaN'),
    ('float', '-Infinity', '-Infinity'),
    ('float', float('inf'), 'Infinity'),
    ('boolean', 't', True),
    ('boolean', '0', False),
    ('boolean', 1, True),
    ('string', '', ''),
    ('string', 'a\tb\nc\\d\'e"😀', 'a\tb\nc\\d\'e"😀'),
    ('string', 12, '12'),
    ('uuid', 'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11', 'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11'),
    ('json', '{"b": 1, "a": [1,2]}', '{"b": 1, "a": [1,2]}'),
    ('json', {'a': 1}, '{"a": 1}'),
    # PostgreSQL in UTC, another offset, ISO with Z, SQLite's CURRENT_TIMESTAMP text and its epoch milliseconds
    ('timestamp', '2024-03-01 10:30:00+00', '2024-03-01T10:30:00Z'),
    ('timestamp', '2024-03-01T12:30:00.120+02:00', '2024-03-01T10:30:00.12Z'),
    ('timestamp', '2024-03-01T10:30:00.000Z', '2024-03-01T10:30:00Z'),
    ('timestamp', '2024-03-01 10:30:00', '2024-03-01T10:30:00Z'),
    ('timestamp', 1709289000000, '2024-03-01T10:30:00Z'),
    ('timestamp', '1709289000123', '2024-03-01T10:30:00.123Z'),
    ('datetime', '2024-03-01 12:30:00.123000', '2024-03-01T12:30:00.123'),
    ('datetime', 1709296200000, '2024-03-01T12:30:00'),
    ('date', '2024-03-01', '2024-03-01'),
    ('date', 1709251200000, '2024-03-01'),
    ('time', '12:30:01', '12:30:01'),
    ('time', '12:30', '12:30:00'),
    ('time', '12:30:01.500000', '12:30:01.5'),
    ('binary', b'\x00\xff\x10', 'AP8Q'),
    ('binary', b'', ''),
])
def test_a_stored_value_becomes_the_neutral_encoding(kind, raw, expected):
    assert _rows.value(kind, raw) == expected


def test_null_stays_null_and_is_never_an_empty_string():
    for kind in _rows.TYPES:
        assert _rows.value(kind, None) is None
    assert _rows.value('string', '') == ''


@pytest.mark.parametrize('kind,raw', [('integer', 'x1'), ('integer', 1.5), ('boolean', 'maybe'),
                                      ('decimal', 'NaN'), ('timestamp', 'yesterday'), ('time', 'noon'),
                                      ('nonsense', 'x')])
def test_a_value_that_is_not_of_its_type_is_an_error_naming_it(kind, raw):
    with pytest.raises(CairnError) as caught:
        _rows.value(kind, raw)
    assert repr(raw) in caught.value.message or kind in caught.value.message


def test_equal_content_has_equal_checksums_whatever_the_vendor_wrote_and_the_row_order():
    columns = [{'name': 'id', 'type': 'integer'}, {'name': 'price', 'type': 'decimal'},
               {'name': 'u', 'type': 'uuid'}, {'name': 'meta', 'type': 'json'}]
    one, two = _rows.Digest(columns), _rows.Digest(list(reversed(columns)))
    one.add([1, '12.50', 'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11', '{"b": 1, "a": 2}'])
    one.add([2, '0.000', None, '[]'])
    two.add(['[ ]', None, '0', 2])
    two.add(['{"a":2,"b":1}', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '12.5', 1])
    assert (one.rows, one.checksum) == (two.rows, two.checksum)
    three = _rows.Digest(columns)
    three.add([1, '12.51', 'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11', '{"b": 1, "a": 2}'])
    three.add([2, '0.000', None, '[]'])
    assert three.checksum != one.checksum
    empty = _rows.Digest(columns)
    empty.add([2, '0.000', None, '[]'])
    empty.add([1, '12.50', 'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11', '{"b": 1, "a": 2}'])
    assert empty.checksum == one.checksum
    nulls, blanks = _rows.Digest([{'name': 's', 'type': 'string'}]), _rows.Digest([{'name': 's', 'type': 'string'}])
    nulls.add([None])
    blanks.add([''])
    assert nulls.checksum != blanks.checksum


TABLES = [
    {'name': 'parents', 'columns': [{'name': 'id', 'type': 'integer'}, {'name': 'name', 'type': 'string'}],
     'primary_key': ['id'], 'foreign_keys': []},
    {'name': 'kids', 'columns': [{'name': 'id', 'type': 'integer'}, {'name': 'parent', 'type': 'integer'}],
     'primary_key': ['id'], 'foreign_keys': [{'name': 'fk', 'table': 'parents', 'columns': ['parent']}]},
]


DEFAULT_ROWS = {'parents': [[1, 'a\nb'], [2, None]], 'kids': [[1, 1], [2, None]]}


def _stream(rows=None):
    out = io.BytesIO()
    writer = _rows.Writer(out, 'sqlite', [table['name'] for table in TABLES])
    for table in TABLES:
        writer.begin(table)
        for row in (rows or {}).get(table['name'], DEFAULT_ROWS[table['name']]):
            writer.row(row)
        writer.end()
    writer.close()
    return out.getvalue(), writer


def _read_all(data):
    head, tables = _rows.read(io.BytesIO(data), 'the stream')
    return head, {table['table']: list(rows) for table, rows in tables}


def test_a_stream_reads_back_what_was_written_with_its_counts_and_checksums():
    data, writer = _stream()
    head, found = _read_all(data)
    assert head['vendor'] == 'sqlite' and head['tables'] == ['parents', 'kids']
    assert found == DEFAULT_ROWS
    assert writer.tables['parents']['rows'] == 2 and writer.rows == 4
    assert data.count(b'\n') == 1 + 2 * (1 + 2 + 1) + 1  # head, per table head rows end, tail: one line each


@pytest.mark.parametrize('damage,expected', [
    (lambda lines: lines[:-1], 'cut short'),
    (lambda lines: lines[:4], 'cut short'),
    (lambda lines: [lines[0]] + [lines[1], b'[3,"forged"]'] + lines[2:], 'was changed'),
    (lambda lines: [line.replace(b'"a\\nb"', b'"a\\nc"') for line in lines], 'was changed'),
    (lambda lines: [lines[0]] + [lines[1], b'[1,"a","b"]'] + lines[2:], '3 values for 2 columns'),
    (lambda lines: [lines[0]] + [b'{"table":"x","columns":[{"name":"id","type":"pointer"}]}'] + lines[1:],
     'unknown type'),
    (lambda lines: [b'{"format":"cairn-rows","version":2}'] + lines[1:], 'version 2'),
    (lambda lines: [b'not json'] + lines[1:], 'not a rows stream'),
    (lambda lines: lines[:-1] + [b'{"end_of_rows":true,"tables":3,"rows":4}'], 'holds 2'),
])
def test_a_damaged_or_forged_stream_is_refused_naming_what_is_wrong(damage, expected):
    assert expected in _refused(_read_all, damage)


def _refused(read, damage):
    """The message with which ``read`` refuses the test stream after ``damage`` (a function of its lines)."""
    data, _writer = _stream()
    lines = data.rstrip(b'\n').split(b'\n')
    with pytest.raises(CairnError) as caught:
        read(b'\n'.join(damage(lines)) + b'\n')
    return caught.value.message


def _read_raw(data, size=8):
    """Every table's rows read as lines taken as they are (``chunks``, pieces of about ``size`` bytes), each then
    parsed as a row of it (``row_values``)."""
    _head, tables = _rows.read(io.BytesIO(data), 'the stream', checksums=False)
    found = {}
    for table, rows in tables:
        found[table['table']] = [_rows.row_values(line, table, 'the stream')
                                 for piece in rows.chunks(size) for line in piece.split(b'\n')]
    return found


@pytest.mark.parametrize('size', [1, 8, 1024 * 1024])
def test_a_table_s_lines_taken_as_they_are_are_its_rows(size):
    data, _writer = _stream()
    assert _read_raw(data, size) == DEFAULT_ROWS
    _head, tables = _rows.read(io.BytesIO(data), 'the stream')
    with pytest.raises(ValueError):
        next(iter(tables))[1].chunks(size).__next__()  # only where the whole stream's sha256 is checked


@pytest.mark.parametrize('damage,expected', [
    (lambda lines: lines[:-1], 'cut short'),
    (lambda lines: lines[:4], 'cut short'),
    (lambda lines: [lines[0]] + [lines[1], b'[3,"forged"]'] + lines[2:], 'was changed'),
    (lambda lines: [lines[0]] + [lines[1], b'[1,"a","b"]'] + lines[3:], '3 values for 2 columns'),
    (lambda lines: [lines[0]] + [lines[1], b' {"end":"parents"}'] + lines[3:], 'does not end where it should'),
    (lambda lines: [lines[0]] + [lines[1], b'[1,"a"'] + lines[3:], 'not a rows stream'),
    (lambda lines: lines[:-1] + [b'{"end_of_rows":true,"tables":3,"rows":4}'], 'holds 2'),
])
def test_lines_taken_as_they_are_refuse_a_damaged_stream_too(damage, expected):
    assert expected in _refused(_read_raw, damage)


def column(kind, **limits):
    return dict(limits, name='c', type=kind)


@pytest.mark.parametrize('item,source,target,expected', [
    ('a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', column('string'), column('uuid'), 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'),
    ('12.5', column('decimal'), column('decimal', precision=10, scale=2), '12.5'),
    (12.5, column('float'), column('decimal', precision=10, scale=2), '12.5'),
    (True, column('boolean'), column('integer', bits=8), 1),
    (1, column('integer'), column('boolean'), True),
    ('2024-03-01T10:30:00', column('datetime'), column('timestamp'), '2024-03-01T10:30:00Z'),
    ('2024-03-01T10:30:00Z', column('timestamp'), column('datetime'), '2024-03-01T10:30:00'),
    ('2024-03-01T00:00:00', column('datetime'), column('date'), '2024-03-01'),
    ('{"a": 1}', column('string'), column('json'), '{"a": 1}'),
    (0.1, column('float'), column('float', single=True), 0.1),
    (9007199254740993, column('integer'), column('integer', bits=64), 9007199254740993),
    ('x' * 255, column('string'), column('string', max_length=255), 'x' * 255),
    (None, column('string'), column('integer', bits=8), None),
])
def test_a_value_converts_into_another_column(item, source, target, expected):
    assert _rows.convert(item, source, target) == expected


@pytest.mark.parametrize('item,source,target,lost,message', [
    ('x' * 256, column('string'), column('string', max_length=255), 'x' * 255, 'longer than the column\'s 255'),
    ('12.345', column('decimal'), column('decimal', precision=10, scale=2), '12.34', '2 decimal places'),
    (3.141592653589793, column('float'), column('float', single=True), 3.1415927, 'single-precision'),
    (300, column('integer'), column('integer', bits=8), None, 'out of the column\'s range'),
    (2 ** 63, column('integer'), column('integer', bits=64), None, 'out of the column\'s range'),
    ('not-a-uuid', column('string'), column('uuid'), None, 'cannot be stored as uuid'),
    ('2024-03-01T10:30:00', column('datetime'), column('date'), None, 'has a time of day'),
    ('{not json', column('string'), column('json'), None, 'cannot be stored as json'),
])
def test_a_lossy_conversion_is_refused_and_allowed_only_where_something_sensible_can_be_stored(
        item, source, target, lost, message):
    with pytest.raises(_rows.Lossy) as caught:
        _rows.convert(item, source, target)
    assert message in caught.value.message
    if lost is None:
        with pytest.raises(_rows.Lossy):
            _rows.lose(item, source, target)
    else:
        assert _rows.lose(item, source, target) == lost


def test_drift_names_a_change_of_stored_type_and_not_a_mere_spelling():
    assert _rows.drift(column('string', max_length=20, native='varchar(20)'),
                       column('string', max_length=20, native='character varying(20)')) is None
    assert _rows.drift(column('string', native='varchar'), column('string', max_length=255, native='x')) is None
    changed = _rows.drift(column('string', native='char(36)'), column('uuid', native='uuid'))
    assert changed == {'from': {'type': 'string', 'native': 'char(36)'}, 'to': {'type': 'uuid', 'native': 'uuid'}}
    assert _rows.drift(column('float', native='double'), column('float', single=True, native='real'))


def test_tables_load_after_the_tables_their_foreign_keys_point_at():
    order = _rows.load_order({'directus_files': ['directus_folders', 'directus_users'],
                              'directus_users': ['directus_roles'], 'directus_roles': [],
                              'directus_folders': ['directus_folders'], 'articles': ['directus_files'],
                              'directus_flows': ['directus_operations'], 'directus_operations': ['directus_flows']})
    assert order.index('directus_roles') < order.index('directus_users') < order.index('directus_files')
    assert order.index('directus_folders') < order.index('directus_files') < order.index('articles')
    assert sorted(order) == sorted(['directus_files', 'directus_users', 'directus_roles', 'directus_folders',
                                    'articles', 'directus_flows', 'directus_operations'])


def test_a_check_run_predicts_the_columns_another_vendor_stores_otherwise():
    schema = {'fields': [
        {'collection': 'a', 'field': 'title', 'type': 'string', 'schema': {'data_type': 'varchar'}},
        {'collection': 'a', 'field': 'at', 'type': 'timestamp', 'schema': {'data_type': 'datetime'}},
        {'collection': 'a', 'field': 'u', 'type': 'uuid', 'schema': {'data_type': 'char'}},
        {'collection': 'a', 'field': 'f', 'type': 'float', 'schema': {'data_type': 'float'}},
        {'collection': 'a', 'field': 'alias', 'type': 'alias', 'schema': None},
    ]}
    drift = {entry['column']: entry for entry in _migrate.predicted_drift(schema, 'sqlite', 'postgres')}
    assert sorted(drift) == ['f', 'u']
    assert drift['u']['to'] == {'type': 'uuid', 'native': 'uuid'} and drift['u']['predicted']
    assert json.dumps(_migrate.predicted_drift(schema, 'sqlite', 'sqlite')) == '[]'


def test_a_move_between_cms_versions_is_refused_naming_which_side_to_upgrade():
    _migrate.check_levels('20230401A', ['20230401A'])
    with pytest.raises(CairnError, match='Upgrade the target'):
        _migrate.check_levels('20230501A', ['20230401A'])
    with pytest.raises(CairnError, match='Upgrade the source'):
        _migrate.check_levels('20230301A', ['20230401A'])


@pytest.mark.parametrize('item,target,lost,message', [
    ('é' * 40000, column('string', max_bytes=65535), 'é' * 32767, '80000 bytes'),
    ('a\0b', column('string', no_nul=True), 'ab', 'NUL character'),
    ('NaN', column('float', finite=True), None, 'cannot hold NaN'),
    ('Infinity', column('float', no_nan=True), 'Infinity', None),
])
def test_what_a_vendor_cannot_store_is_lossy_too(item, target, lost, message):
    source = column(target['type'])
    if message is None:
        assert _rows.convert(item, source, target) == lost
        return
    with pytest.raises(_rows.Lossy, match=message):
        _rows.convert(item, source, target)
    if lost is None:
        with pytest.raises(_rows.Lossy):
            _rows.lose(item, source, target)
    else:
        assert _rows.lose(item, source, target) == lost


@pytest.mark.parametrize('item', [float('nan'), float('inf'), 'NaN', '-Infinity'])
def test_a_double_that_is_no_number_is_lossy_in_a_decimal_column(item):
    source, target = column('float'), column('decimal', precision=12, scale=2)
    with pytest.raises(_rows.Lossy, match='cannot be stored as decimal'):
        _rows.convert(item, source, target)
    with pytest.raises(_rows.Lossy, match='cannot be stored as decimal'):
        _rows.lose(item, source, target)


def test_a_point_in_time_outside_mysql_timestamps_range_is_lossy():
    target = column('timestamp', range=['1970-01-01T00:00:01', '2038-01-19T03:14:07'])
    assert _rows.convert('2038-01-19T03:14:07Z', column('timestamp'), target) == '2038-01-19T03:14:07Z'
    for item in ('2038-01-19T03:14:08Z', '1969-12-31T23:59:59Z'):
        with pytest.raises(_rows.Lossy, match='outside the column'):
            _rows.convert(item, column('timestamp'), target)


def test_fractions_of_seconds_are_cut_to_what_the_column_keeps():
    assert _rows.convert('2024-03-01T10:30:00.123456Z', column('timestamp'), column('timestamp', fsp=0)) == \
        '2024-03-01T10:30:00Z'
    assert _rows.convert('2024-03-01T10:30:00.123456Z', column('timestamp'), column('datetime', fsp=3)) == \
        '2024-03-01T10:30:00.123'
    assert _rows.convert('12:30:01.5', column('time'), column('time', fsp=6)) == '12:30:01.5'
    assert _rows.drift(column('timestamp', fsp=6), column('timestamp', fsp=0))


RELATIONS = {'relations': [
    {'collection': 'articles', 'field': 'author', 'related_collection': 'authors', 'meta': {}},
    {'collection': 'articles', 'field': 'image', 'related_collection': 'directus_files', 'meta': {}},
    {'collection': 'articles_tags', 'field': 'articles_id', 'related_collection': 'articles',
     'meta': {'junction_field': 'tags_id'}},
    {'collection': 'articles_tags', 'field': 'tags_id', 'related_collection': 'tags',
     'meta': {'junction_field': 'articles_id'}},
    {'collection': 'articles_files', 'field': 'articles_id', 'related_collection': 'articles',
     'meta': {'junction_field': 'directus_files_id'}},
    {'collection': 'articles_files', 'field': 'directus_files_id', 'related_collection': 'directus_files',
     'meta': {'junction_field': 'articles_id'}},
]}
TARGET = [{'name': 'directus_files', 'foreign_keys': [{'columns': ['uploaded_by'], 'table': 'directus_users'}]},
          {'name': 'articles', 'foreign_keys': [{'columns': ['user_created'], 'table': 'directus_users'},
                                                {'columns': ['image'], 'table': 'directus_files'}]}]


def test_a_content_move_brings_the_junctions_between_moved_tables_and_knows_what_they_point_at():
    from ansible_collections.cairncms.ops.plugins.module_utils import _content
    moved, files, references = _content.closure(RELATIONS, ['articles'], TARGET)
    assert moved == ['articles', 'articles_files']  # tags do not move: their junction neither
    assert files == {'articles': [('image', 'directus_files')], 'articles_files': [
        ('directus_files_id', 'directus_files')]}
    assert sorted(references) == ['articles', 'directus_files']
    assert references['articles'] == [('author', 'authors'), ('user_created', 'directus_users')]
    assert references['directus_files'] == [('uploaded_by', 'directus_users')]
    moved, _files, references = _content.closure(RELATIONS, ['articles', 'tags', 'authors'], TARGET)
    assert moved == ['articles', 'tags', 'authors', 'articles_files', 'articles_tags']
    assert references['articles'] == [('user_created', 'directus_users')]


def test_a_plan_finds_what_would_dangle_and_a_move_allowed_to_dangle_clears_exactly_that():
    from ansible_collections.cairncms.ops.plugins.module_utils import _content
    moved, files, references = _content.closure(RELATIONS, ['articles'], TARGET)
    plan = _content.Plan(moved, files, references)
    cols = [{'name': name, 'type': 'string'} for name in ('id', 'author', 'image', 'user_created')]
    file_cols = [{'name': name, 'type': 'string'} for name in ('id', 'storage', 'filename_disk', 'uploaded_by')]
    plan.read([({'table': 'directus_files', 'columns': file_cols},
                iter([['f1', 'local', 'a.png', 'u1'], ['f2', 'local', 'b.png', 'u2']])),
               ({'table': 'articles', 'columns': cols},
                iter([['1', 'a1', 'f1', 'u1'], ['2', 'a2', 'f9', None], ['3', None, None, 'u1']])),
               ({'table': 'tags', 'columns': [{'name': 'id', 'type': 'string'}]}, iter([['t1']]))])
    assert plan.rows == {'articles': 3} and plan.file_ids == {'f1', 'f9'}
    keys = {'authors': ['a1'], 'directus_users': []}
    report, missing = plan.dangling(lambda table: keys.get(table, []), ['f1'])
    found = {(entry['table'], entry['field']): entry for entry in report}
    assert found[('directus_files', None)]['examples'] == ['f9']  # not in the restore point
    assert found[('articles', 'author')]['examples'] == ['a2']
    assert found[('articles', 'user_created')]['missing'] == 1
    assert found[('directus_files', 'uploaded_by')]['examples'] == ['u1']  # only the brought file's uploader
    clear = _content.clearing(missing)
    assert clear['articles'](cols, ['2', 'a2', 'f9', None]) == ['2', None, None, None]
    assert clear['articles'](cols, ['1', 'a1', 'f1', 'u1']) == ['1', 'a1', 'f1', None]
    assert clear['directus_files'](file_cols, ['f1', 'local', 'a.png', 'u1']) == ['f1', 'local', 'a.png', None]


def test_a_float_column_of_fixed_decimals_takes_what_fits():
    target = column('float', single=True, precision=10, scale=5)
    assert _rows.convert(3.14159, column('float'), target) == 3.14159
    with pytest.raises(_rows.Lossy, match='out of the column'):
        _rows.convert(1048576.25, column('float'), target)
    with pytest.raises(_rows.Lossy, match='5 decimal places'):
        _rows.convert(1e-7, column('float'), target)
    assert _rows.lose(1e-7, column('float'), target) == 0.0


class _Target:
    """A stand-in loader: it consumes the rows and 'commits' only when the whole load went through."""
    vendor = 'sqlite'

    def __init__(self):
        self.committed = None

    @staticmethod
    def row_tables():
        return [dict(table, columns=[dict(column) for column in table['columns']]) for table in TABLES]

    def load_rows(self, tables, loads, content=False):
        loaded = {name: [list(values) for values in rows] for name, _columns, rows in loads}
        self.committed = loaded

    @staticmethod
    def fingerprint_renderers(_columns):
        return None  # as SQLite: the check reads the tables back


def test_a_load_checks_the_whole_artifact_before_it_commits():
    data, _writer = _stream()
    target = _Target()
    load = _migrate.Load(target).run(io.BytesIO(data), 'the stream', finish=lambda: None)
    assert target.committed == DEFAULT_ROWS
    assert load.summary()['rows'] == 4

    def damaged():
        raise CairnError('the rows artifact does not match its manifest')
    target = _Target()
    with pytest.raises(CairnError, match='does not match'):
        _migrate.Load(target).run(io.BytesIO(data), 'the stream', finish=damaged)
    assert target.committed is None


_FAST_CASES = [
    ({'type': 'string'}, {'type': 'string', 'max_length': 5, 'no_nul': True},
     ['abc', 'abcde', 'abcdef', 'a\0b', '', 'ÿÿÿÿÿ', 7, None]),
    ({'type': 'string'}, {'type': 'string', 'max_bytes': 8},
     ['ab', 'abcdefgh', 'abcdefghi', 'ééé', 'éééé', '🪨🪨', '🪨🪨🪨']),
    ({'type': 'uuid'}, {'type': 'string', 'max_length': 36},
     ['0A1B2C3D-AAAA-4BBB-ACCC-0123456789AB', '0a1b2c3d-aaaa-4bbb-accc-0123456789ab-x', None]),
    ({'type': 'json'}, {'type': 'string', 'max_length': 10}, ['{"a": 1}', '{"a": 12345}', None]),
    ({'type': 'json'}, {'type': 'json', 'max_bytes': 4, 'no_nul': True}, ['{"a": 1}', '"a\0"', None, 5]),
    ({'type': 'json'}, {'type': 'json', 'max_bytes': 4}, ['{"a": 1}', 5, None]),
    ({'type': 'string'}, {'type': 'string'}, ['a', 5, 1.5, True, None]),
    ({'type': 'boolean'}, {'type': 'boolean'}, [True, 'true', 1, None]),
    ({'type': 'integer'}, {'type': 'integer', 'bits': 8}, [127, 128, -128, -129, True, 3.0, None]),
    ({'type': 'integer'}, {'type': 'integer', 'bits': 8, 'unsigned': True}, [0, 255, 256, -1]),
    ({'type': 'decimal'}, {'type': 'decimal', 'precision': 5, 'scale': 2},
     ['123.45', '123.450', '1234.5', '-999.99', '-1000', '0.001', '007.5', '0.00', '-0', '1.', '.5', '1e2',
      '١٢', '12.3٤', None]),
    ({'type': 'timestamp'}, {'type': 'timestamp', 'fsp': 0, 'range': ['1970-01-01T00:00:01', '2038-01-19T03:14:07']},
     ['2011-03-04T05:06:07.123Z', '2011-03-04T05:06:07Z', '1960-01-01T00:00:00Z', '2038-01-19T03:14:07.9Z',
      '2038-01-19T03:14:08Z', None]),
    ({'type': 'datetime'}, {'type': 'datetime', 'fsp': 3}, ['2011-03-04T05:06:07.123456', '2011-03-04T05:06:07']),
    # between two types: a double into a decimal column, a UUID's text into a uuid column, a date and time into a
    # timestamp column
    ({'type': 'float'}, {'type': 'decimal', 'precision': 5, 'scale': 2},
     [12.5, 123.45, 999.99, 1000.0, -999.99, 0.001, 1.005, -0.0, 0.0, 1e-7, 1e22, 1e16, 123.0, 7, '12.5', 'NaN',
      'Infinity', float('inf'), float('nan'), True, None]),
    ({'type': 'float'}, {'type': 'decimal'}, [12.5, 1e22, 1.5e-7, -0.0, 3, None]),
    ({'type': 'string'}, {'type': 'uuid', 'no_nul': True},
     ['a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11', '{a0eebc99-9c0b-4ef8-bb6d-'
      '6bb9bd380a11}', 'a0eebc999c0b4ef8bb6d6bb9bd380a11', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a1', 'not a uuid',
      'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11\n', '', 5, None]),
    ({'type': 'datetime'}, {'type': 'timestamp'},
     ['2011-03-04T05:06:07', '2011-03-04T05:06:07.5', '2011-03-04T05:06:07.123456', '2011-03-04T05:06:07.1234567',
      '2011-03-04T05:06:07.120', '2011-02-29T05:06:07', '2011-13-04T05:06:07', '2011-03-04T24:00:00',
      '0999-01-01T00:00:00', '0000-01-01T00:00:00', '2011-03-04 05:06:07', '2011-03-04T05:06', '2011-03-04',
      '2011-03-04T05:06:07Z', '٢٠١١-03-04T05:06:07', 1299215167000, None]),
    ({'type': 'datetime'}, {'type': 'timestamp', 'fsp': 2, 'range': ['1970-01-01T00:00:01', '2038-01-19T03:14:07']},
     ['2011-03-04T05:06:07.125', '2011-03-04T05:06:07.12', '2011-03-04T05:06:07.1', '2011-03-04T05:06:07',
      '1960-01-01T00:00:00', '2038-01-19T03:14:07.999',
      '2038-01-19T03:14:08', None]),
]

# A common value of each conversion between two types that has a shortcut: converted without ``convert``.
_CROSSINGS = [
    ({'type': 'float'}, {'type': 'decimal', 'precision': 12, 'scale': 2}, 1234.5, '1234.5'),
    ({'type': 'string'}, {'type': 'uuid'}, 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
     'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'),
    ({'type': 'datetime'}, {'type': 'timestamp', 'fsp': 3}, '2011-03-04T05:06:07.1234', '2011-03-04T05:06:07.123Z'),
]


@pytest.mark.parametrize('source,target,item,expected', _CROSSINGS)
def test_a_common_value_between_two_types_is_converted_in_place(source, target, item, expected, monkeypatch):
    source, target = dict(source, name='c'), dict(target, name='c')
    assert _rows.convert(item, source, target) == expected
    converter = _rows.converter(source, target)

    def refuse(*_args):
        raise AssertionError('convert() was called')
    monkeypatch.setattr(_rows, 'convert', refuse)
    assert converter(item) == expected


@pytest.mark.parametrize('source,target,items', _FAST_CASES)
def test_a_converter_gives_what_convert_gives(source, target, items):
    """The converters' shortcuts for the common cases store, and refuse, exactly what ``convert`` does."""
    source, target = dict(source, name='c'), dict(target, name='c')
    converter = _rows.converter(source, target)
    for item in items:
        try:
            expected = _rows.convert(item, source, target)
        except _rows.Lossy as exc:
            with pytest.raises(_rows.Lossy) as raised:
                converter(item)
            assert raised.value.message == exc.message
            continue
        assert converter(item) == expected and type(converter(item)) is type(expected), item


@pytest.mark.parametrize('raw', ['123.45', '123.450', '-0.50', '0.000', '-0', '0', '100', '007.50', '1.', '.5', '1E+2',
                                 '-12', '١٢', '12.3٤', ' 5', '0.1000000000000000000001'])
def test_the_decimal_shortcuts_give_what_decimal_gives(raw):
    """A decimal read from a vendor and its canonical form, taken from the text where it is plain, are what
    ``decimal.Decimal`` makes of it."""
    try:
        expected = _rows.value('decimal', raw)
    except CairnError:
        with pytest.raises(CairnError):
            _rows.reader('decimal')(raw)
        return
    assert _rows.reader('decimal')(raw) == expected
    number = __import__('decimal').Decimal(expected)
    assert _rows.canonical('decimal', expected) == ('0' if number.is_zero() else format(number.normalize(), 'f'))


@pytest.mark.parametrize('raw', ['0', '1', 't', 'f', 'true', 'false', 'TRUE', ' 1', 'yes', 1, 0, True, 1.0])
def test_the_boolean_shortcut_gives_what_value_gives(raw):
    assert _rows.reader('boolean')(raw) is _rows.value('boolean', raw)


@pytest.mark.parametrize('kind', ['timestamp', 'datetime', 'date'])
@pytest.mark.parametrize('raw', ['2014-03-01 10:30:00.123+00', '2014-03-01T10:30:00Z', '2014-03-01 10:30:00+02:00',
                                 '2014-03-01', '2014-13-01 10:30:00+00', '2014-02-30 00:00:00', '2014-03-01 x',
                                 '0999-01-01 00:00:00+00', '1393669800123', 1393669800123, '2014-03-01 25:00:00'])
def test_the_date_and_time_shortcut_gives_what_value_gives(kind, raw):
    try:
        expected = _rows.value(kind, raw)
    except CairnError as exc:
        with pytest.raises(CairnError) as raised:
            _rows.reader(kind)(raw)
        assert raised.value.message == exc.message
        return
    assert _rows.reader(kind)(raw) == expected


@pytest.mark.parametrize('fsp,zone,item,expected', [
    (0, '', '2011-03-04T05:06:07Z', '2011-03-04 05:06:07'),
    (3, '', '2011-03-04T05:06:07.1Z', '2011-03-04 05:06:07.100'),
    (2, '', '05:06:07', '05:06:07.00'),
    (None, '+00', '2011-03-04T05:06:07.100Z', '2011-03-04 05:06:07.1+00'),
    (None, '+00', '0999-01-01T00:00:00Z', '0999-01-01 00:00:00+00'),
    (None, '', '05:06:07.000', '05:06:07'),
])
def test_a_date_and_time_is_written_as_the_database_writes_it(fsp, zone, item, expected):
    assert _rows.stamp_text(fsp, zone)(item) == expected


@pytest.mark.parametrize('scale,item,expected', [
    (2, '-0.00', '0.00'), (2, '-0', '0.00'), (2, '7.5', '7.50'), (2, '12.34', '12.34'), (0, '5', '5'),
    (None, '007.50', '7.50'), (None, '1E+2', '100'), (None, '-0.0', '0.0'), (None, '-1.5', '-1.5'), (6, '1', '1.000000'),
])
def test_a_decimal_is_written_as_the_database_writes_it(scale, item, expected):
    assert _rows.decimal_text(scale)(item) == expected


def test_a_fingerprint_tells_values_nulls_and_their_places_apart():
    def checksum(rows):
        fingerprint = _rows.Fingerprint([str, str])
        for row in rows:
            fingerprint.add(row)
        return fingerprint.rows, fingerprint.checksum
    same = checksum([['a', 'b'], ['c', None]])
    assert checksum([['c', None], ['a', 'b']]) == same  # whatever the order of the rows
    for other in ([['a', 'b'], [None, 'c']], [['ab', ''], ['c', None]], [['a', 'b'], ['c', '']],
                  [['a', 'b'], ['c', 'N']], [['a', 'b']]):
        assert checksum(other) != same, other
    # the definition the SQL of each vendor computes: the first 15 hex digits of each row's sha256, added up
    first = int(__import__('hashlib').sha256('1:a2:é'.encode()).hexdigest()[:15], 16)
    second = int(__import__('hashlib').sha256(b'N0:').hexdigest()[:15], 16)
    assert checksum([['a', 'é'], [None, '']]) == (2, str(first + second))


_JSON_SAMPLES = [
    [1, -2, 2 ** 70, 0.1, -0.0, 1e300, 'text', '', None, True, False],
    ['quote " backslash \\ newline \n tab \t nul \x00 bell \x07 del \x7f', 'é ü 中文 😀', '\u2028\u2029'],
    {'b': 1, 'a': [1, {'d': None, 'c': 'x'}], '': 'empty', 'é': 2},
    'a string alone', 12, None, [], {}, [[[]]],
]


@pytest.mark.parametrize('native', [True, False], ids=['c-encoder', 'pure-python'])
def test_compact_json_writes_what_json_dumps_writes(monkeypatch, native):
    if not native:
        monkeypatch.setattr(json.encoder, 'c_make_encoder', None)
    for sort_keys in (False, True):
        for allow_nan in (False, True):
            write = _rows.compact_json(sort_keys=sort_keys, allow_nan=allow_nan)
            for sample in _JSON_SAMPLES:
                assert write(sample) == json.dumps(sample, ensure_ascii=False, separators=(',', ':'),
                                                   sort_keys=sort_keys, allow_nan=allow_nan)
    assert _rows.compact_json()([float('nan'), float('inf')]) == '[NaN,Infinity]'
    with pytest.raises(ValueError):
        _rows.compact_json(allow_nan=False)([float('nan')])
