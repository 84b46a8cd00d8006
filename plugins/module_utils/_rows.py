# -*- coding: utf-8 -*-
# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Vendor-neutral typed rows (private): the ``rows`` part's stream, its value types, and the checks a migration makes.

A rows stream (``rows.jsonl``, compressed) is JSON lines (docs/restore-point-format.md, "The rows part"):

* a head ``{"format": "cairn-rows", "version": 1, "vendor": ..., "tables": [names in load order]}``;
* per table, ``{"table": name, "columns": [{"name", "type", ...}], "primary_key": [...], "foreign_keys": [...]}``,
  then one JSON array per row (values in column order), then ``{"end": name, "rows": n, "checksum": hex}``;
* a tail ``{"end_of_rows": true, "tables": n, "rows": n}``: a stream without it was cut short.

Values have one encoding whatever the vendor (``TYPES``): integers as JSON integers of any size (read them exactly),
decimals as strings of their exact digits, floats as JSON numbers (``"NaN"``, ``"Infinity"``, ``"-Infinity"``),
booleans, strings, UUIDs as strings, JSON as the text stored, ``timestamp`` (with a zone) in UTC ending in ``Z``,
``datetime`` without a zone, ``date``, ``time``, binary as base64; NULL is ``null`` and never an empty string.
Vendors turn what they store into these values (``value``); a migration turns them into what the target column
takes (``convert``), refusing what would change (``Lossy``); ``Digest`` is the per-table checksum over a canonical
form of every value, the same for equal content whatever the vendor and row order.
"""

from __future__ import annotations

import base64
import datetime
import decimal
import hashlib
import json
import math
import re
import struct
import uuid

from ansible_collections.cairncms.ops.plugins.module_utils._common import CairnError

FORMAT = 'cairn-rows'
VERSION = 1
ARTIFACT = 'rows.jsonl'
TYPES = ('integer', 'decimal', 'float', 'boolean', 'string', 'uuid', 'json', 'timestamp', 'datetime', 'date', 'time',
         'binary')
# Integer ranges of the native types (bits), for a target that stores fewer than the source.
INT_BITS = {'tinyint': 8, 'smallint': 16, 'mediumint': 24, 'integer': 32, 'int': 32, 'bigint': 64}
_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
_STAMP = re.compile(r'^(\d{4,})-(\d\d)-(\d\d)(?:[T ](\d\d):(\d\d)(?::(\d\d)(?:\.(\d{1,9}))?)?)?\s*'
                    r'(Z|[+-]\d\d(?::?\d\d)?)?$')
_TIME = re.compile(r'^(-?\d\d+):(\d\d)(?::(\d\d)(?:\.(\d{1,9}))?)?([+-]\d\d(?::?\d\d)?)?$')
MAX_LINE = 256 * 1024 * 1024
_UTC = (None, 'Z', '+00', '+00:00', '+0000')


class Lossy(CairnError):
    """A value the target column cannot hold as it is (text too long, a number out of range...)."""


# ---------------------------------------------------------------------------------------------------------------
# values: what a vendor stores -> the neutral encoding
# ---------------------------------------------------------------------------------------------------------------

def _fraction(digits):
    digits = (digits or '').rstrip('0')
    return '.' + digits[:6] if digits else ''


def _stamp(text, zoned):
    """``text`` (ISO 8601 or SQL, with or without a zone) as the neutral timestamp (UTC, ``Z``) or datetime."""
    match = _STAMP.match(text.strip())
    if not match:
        raise CairnError('%r is not a date and time' % text)
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    moment = datetime.datetime(int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0),
                               int(((fraction or '') + '000000')[:6]))
    if zone in _UTC and len(year) == 4:
        # already in UTC (the common case: what the vendors hand over): the text as it is, without strftime
        text = '%s-%s-%sT%s:%s:%s%s' % (year, month, day, hour or '00', minute or '00', second or '00',
                                        _fraction(fraction))
        return text + 'Z' if zoned else text
    if zone and zone != 'Z':
        sign = -1 if zone[0] == '-' else 1
        digits = zone[1:].replace(':', '')
        offset = datetime.timedelta(hours=int(digits[:2]), minutes=int(digits[2:4] or 0))
        moment = moment - sign * offset  # to UTC
    text = moment.strftime('%Y-%m-%dT%H:%M:%S') + _fraction('%06d' % moment.microsecond)
    if moment.year < 1000:
        text = '%04d' % moment.year + text[text.index('-'):]
    return text + 'Z' if zoned else text


def _from_millis(number, zoned):
    moment = _EPOCH + datetime.timedelta(milliseconds=int(number))
    text = moment.strftime('%Y-%m-%dT%H:%M:%S') + _fraction('%06d' % moment.microsecond)
    return text + 'Z' if zoned else text


def _time(text):
    match = _TIME.match(text.strip())
    if not match:
        raise CairnError('%r is not a time of day' % text)
    hour, minute, second, fraction, _zone = match.groups()
    return '%s:%s:%s%s' % (hour, minute, second or '00', _fraction(fraction))


def _decimal_text(raw):
    if isinstance(raw, float):
        raw = repr(raw)
    try:
        number = decimal.Decimal(str(raw).strip())
    except decimal.InvalidOperation:
        raise CairnError('%r is not a decimal number' % (raw,)) from None
    if not number.is_finite():
        raise CairnError('%r is not a finite decimal number' % (raw,))
    return format(number, 'f')


def _float(raw):
    if isinstance(raw, str):
        text = raw.strip()
        special = {'nan': 'NaN', 'infinity': 'Infinity', 'inf': 'Infinity', '-infinity': '-Infinity',
                   '-inf': '-Infinity'}.get(text.lower())
        if special:
            return special
        raw = float(text)
    number = float(raw)
    if math.isnan(number):
        return 'NaN'
    if math.isinf(number):
        return 'Infinity' if number > 0 else '-Infinity'
    return number


TRUE = (True, 1, '1', 't', 'true', 'y', 'yes', 'on')
FALSE = (False, 0, '0', 'f', 'false', 'n', 'no', 'off')


def _boolean(raw):
    key = raw.strip().lower() if isinstance(raw, str) else raw
    if isinstance(key, float) and key in (0.0, 1.0):
        key = int(key)
    if key in TRUE:
        return True
    if key in FALSE:
        return False
    raise CairnError('%r is not a boolean' % (raw,))


def value(kind, raw):
    """``raw`` (a vendor's stored value: text, a number, bytes, a bool, None) as the neutral value of ``kind``."""
    if raw is None:
        return None
    try:
        if kind == 'integer':
            if isinstance(raw, bool):
                return int(raw)
            if isinstance(raw, float):
                if raw != int(raw):
                    raise CairnError('%r is not an integer' % raw)
                return int(raw)
            return int(raw) if isinstance(raw, int) else int(str(raw).strip())
        if kind == 'decimal':
            return _decimal_text(raw)
        if kind == 'float':
            return _float(raw)
        if kind == 'boolean':
            return _boolean(raw)
        if kind == 'binary':
            data = raw if isinstance(raw, (bytes, bytearray, memoryview)) else str(raw).encode('utf-8')
            return base64.b64encode(bytes(data)).decode('ascii')
        if isinstance(raw, (bytes, bytearray, memoryview)):
            raw = bytes(raw).decode('utf-8')
        if kind in ('timestamp', 'datetime', 'date'):
            zoned = kind == 'timestamp'
            if isinstance(raw, (int, float)) and not isinstance(raw, bool):
                text = _from_millis(raw, zoned)  # SQLite: the CMS writes epoch milliseconds
            elif isinstance(raw, str) and raw.strip().lstrip('-').isdigit() and len(raw.strip()) > 8:
                text = _from_millis(int(raw), zoned)
            else:
                text = _stamp(str(raw), zoned)
            return text[:10] if kind == 'date' else text
        if kind == 'time':
            return _time(str(raw))
        if kind == 'json':
            return raw if isinstance(raw, str) else json.dumps(raw, ensure_ascii=False)
        if kind in ('string', 'uuid'):
            return raw if isinstance(raw, str) else (repr(raw) if isinstance(raw, float) else str(raw))
    except (ValueError, OverflowError, UnicodeDecodeError) as exc:
        raise CairnError('%r is not a %s value: %s' % (raw, kind, exc)) from None
    raise CairnError('value type %r is not known (the types are %s)' % (kind, ', '.join(TYPES)))


def reader(kind, hexadecimal=False):
    """``value`` of ``kind`` as a function of one stored value, with what a vendor hands over most (text as text,
    integers as integers or digits) taken in place; ``hexadecimal``: binary comes as hex digits."""
    def general(raw):
        return value(kind, raw)
    if kind in ('string', 'uuid', 'json'):
        return lambda raw: raw if raw is None or raw.__class__ is str else general(raw)
    if kind == 'integer':
        def integer(raw):
            if raw is None or raw.__class__ is int:
                return raw
            if raw.__class__ is str and raw.isdigit():
                return int(raw)
            return general(raw)
        return integer
    if kind == 'binary' and hexadecimal:
        return lambda raw: None if raw is None else general(bytes.fromhex(raw))
    if kind == 'decimal':
        return lambda raw: raw if raw.__class__ is str and _plain_decimal(raw) else general(raw)
    if kind == 'boolean':
        return lambda raw: _BOOLEANS.get(raw, raw) if raw.__class__ is str and raw in _BOOLEANS else general(raw)
    if kind in ('timestamp', 'datetime', 'date'):
        zoned, cut = kind == 'timestamp', 10 if kind == 'date' else None

        def moment(raw):
            # text that starts as a date (not epoch milliseconds): what value() does with it, without its dispatch
            if raw.__class__ is str and raw[4:5] == '-' and raw[:4].isdigit():
                try:
                    return _stamp(raw, zoned)[:cut]
                except (ValueError, OverflowError):
                    pass  # value() names the problem
            return general(raw)
        return moment
    return general


_BOOLEANS = {'0': False, '1': True, 'f': False, 't': True, 'false': False, 'true': True}


def _plain_decimal(text):
    """Whether ``text`` is a decimal number written as ``format(Decimal(text), 'f')`` writes it: ASCII digits, an
    optional sign and fraction, no leading zeros."""
    whole, point, fraction = text[1:].partition('.') if text[:1] == '-' else text.partition('.')
    return (whole.isdigit() and whole.isascii() and (whole == '0' or whole[0] != '0')
            and (not point or (fraction.isdigit() and fraction.isascii())))


def compact_json(sort_keys=False, allow_nan=True):
    """A function writing an object as ``json.dumps(obj, ensure_ascii=False, separators=(',', ':'), sort_keys=...,
    allow_nan=...)`` does, with its encoder made once: ``json.dumps`` makes a new one for every call, which took
    about as long as writing a row of the rows stream. Objects must not refer to themselves (not checked)."""
    python = json.JSONEncoder(ensure_ascii=False, separators=(',', ':'), sort_keys=sort_keys, allow_nan=allow_nan)
    make = getattr(json.encoder, 'c_make_encoder', None)
    quote = getattr(json.encoder, 'c_encode_basestring', None)
    if make is None or quote is None:  # no C accelerator: the pure-Python encoder, made once all the same
        return python.encode
    native = make(None, python.default, quote, None, ':', ',', sort_keys, False, allow_nan)
    return lambda obj: ''.join(native(obj, 0))


_COMPACT = compact_json()
_SORTED = compact_json(sort_keys=True)
_STRICT = compact_json(allow_nan=False)


# ---------------------------------------------------------------------------------------------------------------
# canonical form and checksums
# ---------------------------------------------------------------------------------------------------------------

def canonical(kind, neutral):
    """The form a checksum hashes: equal for equal values, whatever the vendor wrote (scale of decimals, case of
    UUIDs, key order and spacing of JSON)."""
    if neutral is None:
        return None
    if kind == 'decimal':
        if neutral.__class__ is str and _plain_decimal(neutral):
            text = neutral.rstrip('0').rstrip('.') if '.' in neutral else neutral
            return '0' if text in ('0', '-0') else text
        number = decimal.Decimal(neutral)
        return '0' if number.is_zero() else format(number.normalize(), 'f')
    if kind == 'float':
        return neutral if isinstance(neutral, str) else repr(float(neutral))
    if kind == 'uuid':
        return neutral.lower()
    if kind == 'json':
        try:
            return _SORTED(json.loads(neutral))
        except ValueError:
            return neutral
    return neutral


# The value types whose canonical form is the value itself.
_AS_IS = frozenset(('integer', 'boolean', 'string', 'timestamp', 'datetime', 'date', 'time', 'binary'))


class _Summed:
    """A table's row count and the sum of a hash of each row, which adds up over parts of the table counted apart
    (a range read by another process, the pieces of a load's processes): ``total`` and ``merge``."""

    rows = 0
    _sum = 0

    @property
    def total(self):
        """The sum (before a ``Digest``'s modulo): what another count of more rows of the table adds (``merge``)."""
        return self._sum

    def merge(self, rows, total):
        """Count in ``rows`` rows whose ``total`` another count of the same columns computed."""
        self.rows += rows
        self._sum += total


class Digest(_Summed):
    """A table's row count and checksum: the sum, modulo 2^256, of every row's sha256 of its canonical values
    (a JSON array, in the order of the column names sorted), so that it does not depend on the order the rows or
    the columns come in."""

    def __init__(self, columns):
        self._columns = columns
        order = sorted(range(len(columns)), key=lambda index: columns[index]['name'])
        self._plan = [(index, None if columns[index]['type'] in _AS_IS else columns[index]['type'])
                      for index in order]
        self._same = all(kind is None for _index, kind in self._plan) and order == list(range(len(columns)))
        self.rows = 0
        self._sum = 0

    def add(self, values):
        if self._same:
            row = values
        else:
            row = [values[index] if kind is None else canonical(kind, values[index]) for index, kind in self._plan]
        text = _COMPACT(row)
        self._sum += int.from_bytes(hashlib.sha256(text.encode('utf-8')).digest(), 'big')
        self.rows += 1

    @property
    def checksum(self):
        return '%064x' % (self._sum % (1 << 256))

    def fresh(self):
        """A ``Digest`` of the same columns and no rows yet."""
        return Digest(self._columns)


class Fingerprint(_Summed):
    """A table's row count and a checksum of every value in the form the target database writes it as text, the
    same that database computes in SQL over what it holds (``fingerprint_sql`` of a ``_db`` backend): a load's
    check without reading the table back. ``renderers``: per column, the function giving a neutral value's text as
    that database writes it (``None`` stays NULL). Each row is the sha256 of its values, each written as the
    length of its UTF-8 bytes, a colon and those bytes (``N`` for NULL); the checksum is the sum of the first 60
    bits of those sha256s (the first 15 characters of the hex digest), which SQL adds up exactly from one hash per
    row (a second sum made MariaDB hash every row twice, or keep the hashes in a derived table: a third slower)."""

    def __init__(self, renderers):
        self._renderers = renderers
        self.rows = 0
        self._sum = 0

    def add(self, values):
        parts = []
        for render, item in zip(self._renderers, values):
            if item is None:
                parts.append(b'N')
            else:
                data = render(item).encode('utf-8', 'surrogatepass')
                parts.append(b'%d:%s' % (len(data), data))
        self._sum += int.from_bytes(hashlib.sha256(b''.join(parts)).digest()[:8], 'big') >> 4
        self.rows += 1

    @property
    def checksum(self):
        return '%d' % self._sum

    def fresh(self):
        """A ``Fingerprint`` of the same columns and no rows yet."""
        return Fingerprint(self._renderers)


def stamp_text(fsp=None, zone=''):
    """A renderer of a neutral date and time as ``YYYY-MM-DD HH:MM:SS`` with its fraction padded to ``fsp`` digits
    (MySQL), or without its trailing zeros (``fsp`` None: PostgreSQL), then ``zone``."""
    def render(item):
        body = item[:-1] if item.endswith('Z') else item
        body = body.replace('T', ' ', 1)
        whole, _point, fraction = body.partition('.')
        if fsp is None:
            fraction = fraction.rstrip('0')
            return whole + ('.' + fraction if fraction else '') + zone
        return whole + ('.' + (fraction + '0' * fsp)[:fsp] if fsp else '') + zone
    return render


def decimal_text(scale=None):
    """A renderer of a neutral decimal as a database writes it: ``scale`` decimals (a column of fixed scale), or
    the digits given (None), never a negative zero."""
    step = decimal.Decimal(1).scaleb(-scale) if scale is not None else None

    def render(item):
        if item.__class__ is str and _plain_decimal(item) and item.lstrip('-0.'):
            fraction = item.partition('.')[2]
            if scale is None or (len(fraction) == scale and (scale or '.' not in item)):
                return item
        number = decimal.Decimal(item)
        if step is not None:
            number = number.quantize(step)
        text = format(number, 'f')
        return text[1:] if number.is_zero() and text.startswith('-') else text
    return render


class Rendered:
    """A table's rows already written as the target's load text (the ``render`` of a backend's ``rows_text``,
    elsewhere): ``pieces``, an iterator of that text (str or its UTF-8 bytes)."""

    def __init__(self, pieces):
        self.pieces = pieces


def rendered(rows, head, render, tail, size=1000):
    """The load text of a table's rows (value lists, or ``Rendered``): ``head``, the rows given to ``render``
    ``size`` at a time, ``tail``."""
    yield head
    if isinstance(rows, Rendered):
        yield from rows.pieces
    else:
        batch = []
        for values in rows:
            batch.append(values)
            if len(batch) >= size:
                yield render(batch)
                batch = []
        if batch:
            yield render(batch)
    yield tail


class _Count:
    """A ``Digest`` that only counts."""

    def __init__(self):
        self.rows = 0
        self.checksum = None

    def add(self, _values):
        self.rows += 1


# ---------------------------------------------------------------------------------------------------------------
# the stream
# ---------------------------------------------------------------------------------------------------------------

def _line(obj):
    return _STRICT(obj).encode('utf-8') + b'\n'


class Writer:
    """Writes a rows stream into a binary ``sink``; ``tables`` (what ``Table``\\ s it wrote) for the manifest.
    ``frames``: how the stream takes rows another process wrote (``RangeWriter``): ``open(handle)`` gives the sink it
    writes them into, ``append(path)`` adds what it wrote to the stream as it is (``splice``)."""

    def __init__(self, sink, vendor, order, frames=None):
        self._sink = sink
        self._frames = frames
        self.tables = {}
        self.rows = 0
        self._table = None
        self._digest = None
        sink.write(_line({'format': FORMAT, 'version': VERSION, 'vendor': vendor, 'tables': list(order)}))

    def begin(self, table):
        """Start ``table`` (a dict: name, columns, primary_key, foreign_keys)."""
        self._table = table
        self._digest = Digest(table['columns'])
        head = {'table': table['name'], 'columns': table['columns'], 'primary_key': table.get('primary_key') or [],
                'foreign_keys': table.get('foreign_keys') or []}
        self._sink.write(_line(head))

    def row(self, values):
        self._digest.add(values)
        self._sink.write(_line(values))

    @property
    def takes_ranges(self):
        """Whether this stream takes rows other processes wrote (``range_writer``, ``splice``)."""
        return self._frames is not None

    def range_writer(self, handle):
        """A ``RangeWriter`` into the binary file ``handle``, for a process reading a range of a table's rows beside
        this one."""
        return RangeWriter(self._frames.open(handle))

    def splice(self, path, rows, total):
        """Add to the open table the ``rows`` rows a ``RangeWriter`` wrote into the file ``path``, their checksum's
        sum being ``total``."""
        self._digest.merge(rows, total)
        self._frames.append(path)

    def end(self):
        name = self._table['name']
        self.tables[name] = {'rows': self._digest.rows, 'checksum': self._digest.checksum}
        self.rows += self._digest.rows
        self._sink.write(_line({'end': name, 'rows': self._digest.rows, 'checksum': self._digest.checksum}))
        self._table = None

    def close(self):
        self._sink.write(_line({'end_of_rows': True, 'tables': len(self.tables), 'rows': self.rows}))


class RangeWriter(Writer):
    """What a process reading one range of a table's rows writes, for the stream's ``Writer.splice``: only the
    rows' lines, into ``sink``; their count (``rows``) and checksum's sum (``total``) once ``close``\\ d."""

    def __init__(self, sink):  # pylint: disable=super-init-not-called
        self._sink = sink
        self._frames = None
        self._digest = None
        self.tables = {}
        self.rows = 0
        self.total = 0

    def begin(self, table):
        self._digest = Digest(table['columns'])

    def end(self):
        self.rows, self.total = self._digest.rows, self._digest.total

    def close(self):
        self._sink.close()


class _Lines:
    """Lines of a binary stream, each at most ``MAX_LINE`` bytes (read a chunk at a time, each line cut out of it
    once)."""

    def __init__(self, source, where):
        self._source = source
        self._where = where
        self._buffer = b''
        self._pos = 0
        self._done = False

    def next(self):
        while True:
            cut = self._buffer.find(b'\n', self._pos)
            if cut >= 0:
                line = self._buffer[self._pos:cut]
                self._pos = cut + 1
                return line
            rest = self._buffer[self._pos:]
            if self._done:
                self._buffer, self._pos = b'', 0
                return rest or None
            pieces, size = [rest], len(rest)
            while True:
                chunk = self._source.read(1024 * 1024)
                if not chunk:
                    self._done = True
                    break
                pieces.append(chunk)
                size += len(chunk)
                if b'\n' in chunk:
                    break
                if size > MAX_LINE:
                    raise CairnError('%s has a line longer than %d bytes: not a rows stream'
                                     % (self._where, MAX_LINE))
            self._buffer, self._pos = b''.join(pieces), 0


def _parse(line, where):
    try:
        return json.loads(line.decode('utf-8'))
    except (UnicodeDecodeError, ValueError) as exc:
        raise CairnError('%s is not a rows stream: a line is not JSON (%s)' % (where, exc)) from None


def _check_table(head, where):
    columns = head.get('columns')
    if not isinstance(head.get('table'), str) or not isinstance(columns, list) or not columns:
        raise CairnError('%s has a table head without a name or columns' % where)
    for column in columns:
        if not isinstance(column, dict) or not isinstance(column.get('name'), str) or column.get('type') not in TYPES:
            raise CairnError('%s: table %s has a column without a name or of an unknown type'
                             % (where, head['table']))
    names = [column['name'] for column in columns]
    if len(set(names)) != len(names):
        raise CairnError('%s: table %s names a column twice' % (where, head['table']))
    return head


def read(source, where, checksums=True):
    """Read a rows stream from the binary ``source``: ``(head, tables)`` where ``tables`` yields
    ``(table, rows)`` with ``rows`` an iterator of value lists; every table's count and checksum (only its count
    without ``checksums``, for a reader that checks the whole artifact's sha256 before it trusts what it read) and
    the tail are checked as they go by (an error names what is wrong). Consume each ``rows`` before the next
    table."""
    lines = _Lines(source, where)
    first = lines.next()
    head = _parse(first, where) if first is not None else None
    if not isinstance(head, dict) or head.get('format') != FORMAT:
        raise CairnError('%s is not a rows stream (no %s head)' % (where, FORMAT))
    if head.get('version') != VERSION:
        raise CairnError('%s is a rows stream of version %r; this release reads version %d: upgrade the collection'
                         % (where, head.get('version'), VERSION))

    def tables():
        count = 0
        while True:
            line = lines.next()
            if line is None:
                raise CairnError('%s ends before its tail: the rows stream was cut short' % where)
            item = _parse(line, where)
            if isinstance(item, dict) and item.get('end_of_rows'):
                if item.get('tables') != count:
                    raise CairnError('%s says it holds %r tables but holds %d' % (where, item.get('tables'), count))
                return
            table = _check_table(item if isinstance(item, dict) else {}, where)
            count += 1
            yield table, _TableRows(lines, table, where, checksums)

    return head, tables()


class _TableRows:
    """The rows of one table of a stream: iterated, value lists (each table's count and, with ``checksums``, its
    checksum checked against its end line); or, for a reader that parses them elsewhere, ``chunks`` of their lines
    as they are (``row_values`` parses one)."""

    def __init__(self, lines, table, where, checksums=True):
        self._lines = lines
        self._table = table
        self._where = where
        self.checksums = checksums

    def _next(self):
        line = self._lines.next()
        if line is None:
            raise CairnError('%s ends inside table %s: the rows stream was cut short'
                             % (self._where, self._table['table']))
        return line

    def __iter__(self):
        table, where = self._table, self._where
        digest = Digest(table['columns']) if self.checksums else _Count()
        width = len(table['columns'])
        while True:
            item = _parse(self._next(), where)
            if isinstance(item, list):
                if len(item) != width:
                    raise _width_error(where, table, item)
                digest.add(item)
                yield item
                continue
            self._end(item, digest.rows, digest.checksum)
            return

    def chunks(self, size):
        """The table's row lines as they are, joined by newlines in pieces of about ``size`` bytes; its end line
        checked for the number of lines (only for a stream read without ``checksums``: whoever parses the lines
        checks the values, and the whole stream's sha256 stands for the tables' checksums)."""
        if self.checksums:
            raise ValueError('a table\'s lines are taken as they are only from a stream read without checksums')
        rows, piece, length = 0, [], 0
        while True:
            line = self._next()
            if line[:1] == b'{':
                break
            rows += 1
            piece.append(line)
            length += len(line) + 1
            if length >= size:
                yield b'\n'.join(piece)
                piece, length = [], 0
        if piece:
            yield b'\n'.join(piece)
        self._end(_parse(line, self._where), rows, None)

    def _end(self, item, rows, checksum):
        table, where = self._table, self._where
        if not isinstance(item, dict) or item.get('end') != table['table']:
            raise CairnError('%s: table %s does not end where it should' % (where, table['table']))
        if item.get('rows') != rows or (self.checksums and item.get('checksum') != checksum):
            raise CairnError('%s: table %s holds %d rows of checksum %s, its end line says %r rows of checksum %r: '
                             'the rows stream was changed'
                             % (where, table['table'], rows, checksum, item.get('rows'), item.get('checksum')))


def _width_error(where, table, item):
    return CairnError('%s: a row of table %s has %d values for %d columns'
                      % (where, table['table'], len(item), len(table['columns'])))


def row_values(line, table, where):
    """The values of one row line of ``table`` (a line ``_TableRows.chunks`` gave), checked to be a row of it."""
    item = _parse(line, where)
    if not isinstance(item, list):
        raise CairnError('%s: table %s does not end where it should' % (where, table['table']))
    if len(item) != len(table['columns']):
        raise _width_error(where, table, item)
    return item


# ---------------------------------------------------------------------------------------------------------------
# into another column: conversions and what they would lose
# ---------------------------------------------------------------------------------------------------------------

def _float32(number):
    """The double a single-precision column gives back for ``number`` (its shortest decimal form)."""
    single = struct.unpack('<f', struct.pack('<f', number))[0]
    for digits in range(1, 10):
        text = '%.*g' % (digits, single)
        if struct.unpack('<f', struct.pack('<f', float(text)))[0] == single:
            return float(text)
    return single


# What each value type is once read from a stream's JSON (a value of another JSON type is no value of its column).
_SHAPES = dict({kind: str for kind in TYPES}, integer=int, float=(float, int, str), boolean=bool)


def convert(item, source, target):
    """``item`` (neutral value of column ``source``) as the neutral value the ``target`` column takes; a ``Lossy``
    error when the target would store something else. Columns are the dicts of a table head: ``type`` and, where
    they limit what fits, ``max_length`` (characters), ``max_bytes`` (UTF-8), ``bits``, ``unsigned``,
    ``precision``, ``scale``, ``single`` (single-precision floats), ``no_nul`` (text without NUL characters),
    ``finite`` (no NaN or infinities), ``no_nan``, ``range`` (of a date and time, in UTC) and ``fsp`` (digits of
    seconds' fractions kept: cut to them, not lossy)."""
    if item is None:
        return None
    kind, want = source['type'], target['type']
    if not isinstance(item, _SHAPES.get(kind, object)):
        raise Lossy('%r is not a %s value (a rows stream holds it as JSON of another type)' % (item, kind))
    try:
        result = _convert(item, kind, want)
    except Lossy:
        raise
    except (ValueError, decimal.InvalidOperation, OverflowError, CairnError) as exc:
        raise Lossy('%r cannot be stored as %s (%s)' % (item, want, getattr(exc, 'message', exc))) from None
    if want in ('timestamp', 'datetime', 'time') and target.get('fsp') is not None:
        result = _cut_fraction(result, target['fsp'])
    _fits(result, target, item)
    return result


def _cut_fraction(text, digits):
    """A date and time or time of day with at most ``digits`` digits of seconds' fractions: the column's own
    precision, a property of its type (reported as drift), not a lossy value."""
    zone = 'Z' if text.endswith('Z') else ''
    body = text[:-1] if zone else text
    if '.' not in body:
        return text
    whole, fraction = body.split('.', 1)
    return whole + _fraction(fraction[:digits]) + zone


_LIMITS = ('max_length', 'max_bytes', 'bits', 'precision', 'scale', 'single', 'no_nul', 'finite', 'no_nan', 'range',
           'fsp')


def converter(source, target):
    """``convert`` from column ``source`` into column ``target`` as a function of one value, with the common cases
    (the same type, at most a length or a range to check) checked in place and the rest left to ``convert``."""
    kind, want = source['type'], target['type']
    limits = {key for key in _LIMITS if target.get(key) not in (None, False)}

    def general(item):
        return convert(item, source, target)
    if kind != want:
        shortcut = _CROSSING.get((kind, want))
        if shortcut is not None and limits <= shortcut[0]:
            return shortcut[1](target, general)
    if kind != want and not (want == 'string' and kind in ('uuid', 'json')):
        return general
    shape = _SHAPES.get(kind, object)
    if not limits:
        return general if kind != want else (lambda item: item if item is None or isinstance(item, shape)
                                             else general(item))
    if want == 'string' and limits <= {'max_length', 'max_bytes', 'no_nul'}:
        # a text (or the text of a UUID or JSON) the column holds as it is
        longest = target.get('max_length') or float('inf')
        # a text of at most max_bytes / 4 characters fits in max_bytes of UTF-8
        safe = (target['max_bytes'] // 4) if target.get('max_bytes') else float('inf')
        no_nul = bool(target.get('no_nul'))

        def text(item):
            if item is None or (item.__class__ is str and len(item) <= longest and len(item) <= safe
                                and not (no_nul and '\0' in item)):
                return item
            return general(item)
        return text
    if kind != want:
        return general
    if want == 'json' and limits <= {'max_length', 'max_bytes', 'no_nul'}:
        # JSON's text is checked for NUL characters only (its columns hold gigabytes)
        no_nul = bool(target.get('no_nul'))
        return lambda item: item if item is None or (item.__class__ is str and not (no_nul and '\0' in item)) \
            else general(item)
    if want == 'integer' and limits <= {'bits'}:
        bits = target['bits']
        low, high = (0, (1 << bits) - 1) if target.get('unsigned') else (-(1 << (bits - 1)), (1 << (bits - 1)) - 1)

        def number(item):
            if item is None or (item.__class__ is int and low <= item <= high):
                return item
            return general(item)
        return number
    if want == 'decimal' and limits <= {'precision', 'scale'} and target.get('precision'):
        # plain digits within the column's precision and scale are stored as they are
        fits = _decimal_fits(target)
        return lambda item: item if item.__class__ is str and fits(item) else general(item)
    if want in ('timestamp', 'datetime') and limits <= {'fsp', 'range'}:
        fsp, bounds = target.get('fsp'), target.get('range')

        def moment(item):
            if item is None or item.__class__ is not str:
                return general(item)
            if fsp is not None and '.' in item:
                item = _cut_fraction(item, fsp)
            if bounds and not bounds[0] <= item.rstrip('Z')[:19] <= bounds[1]:
                return general(item)
            return item
        return moment
    return general


def _decimal_fits(target):
    """Whether plain decimal digits (text) fit column ``target``'s precision and scale as they are."""
    scale = int(target.get('scale') or 0)
    whole_digits = int(target['precision']) - scale if target.get('precision') else None

    def fits(text):
        whole, point, fraction = text[1:].partition('.') if text[:1] == '-' else text.partition('.')
        return (whole.isdigit() and whole.isascii() and (not point or (fraction.isdigit() and fraction.isascii()))
                and (whole_digits is None or (len(whole.lstrip('0')) <= whole_digits
                                              and len(fraction.rstrip('0')) <= scale)))
    return fits


def _float_to_decimal(target, general):
    # a double whose shortest text has no exponent: that text is its decimal (what _decimal_text gives)
    fits = _decimal_fits(target)

    def exact(item):
        if item.__class__ is float:
            text = repr(item)
            if fits(text):
                return text
        return general(item)
    return exact


_UUID_TEXT = re.compile(r'[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}')


def _string_to_uuid(_target, general):
    # a UUID's text in lower case, as uuid.UUID writes it: the value as it is
    match = _UUID_TEXT.fullmatch
    return lambda item: item if item.__class__ is str and match(item) else general(item)


_NEUTRAL_DATETIME = re.compile(r'([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})'
                               r'(?:\.[0-9]{0,5}[1-9])?')


def _datetime_to_timestamp(target, general):
    # a neutral date and time (no zone: taken as UTC), a real date: the timestamp is it with a Z
    fsp, bounds = target.get('fsp'), target.get('range')
    match = _NEUTRAL_DATETIME.fullmatch

    def moment(item):
        found = match(item) if item.__class__ is str else None
        if found is None:
            return general(item)
        try:
            datetime.datetime(*[int(part) for part in found.groups()])
        except ValueError:
            return general(item)  # convert names the problem
        if bounds and not bounds[0] <= item[:19] <= bounds[1]:
            return general(item)
        result = item + 'Z'
        # its fraction has no trailing zero: cut only where it has more digits than the column keeps
        return _cut_fraction(result, fsp) if fsp is not None and len(item) > 20 + fsp else result
    return moment


# (source type, target type) -> (the column limits it checks, its maker(target, general)): a conversion between two
# types whose common values are checked in place, the rest left to ``convert``.
_CROSSING = {
    ('float', 'decimal'): ({'precision', 'scale'}, _float_to_decimal),
    ('string', 'uuid'): ({'no_nul'}, _string_to_uuid),
    ('datetime', 'timestamp'): ({'fsp', 'range'}, _datetime_to_timestamp),
}


def _convert(item, kind, want):
    if kind == want:
        return item
    if want == 'string':
        if kind == 'boolean':
            return 'true' if item else 'false'
        return item if isinstance(item, str) else (repr(item) if isinstance(item, float) else str(item))
    if want == 'json':
        if kind == 'string':
            json.loads(item)
            return item
        return json.dumps(item)
    if want == 'uuid':
        return str(uuid.UUID(item)) if str(uuid.UUID(item)) == item.lower() else item.lower()
    if want == 'integer':
        if kind == 'boolean':
            return int(item)
        if kind == 'float' and isinstance(item, str):
            raise ValueError('not a finite number')
        number = decimal.Decimal(str(item))
        if number != number.to_integral_value():
            raise ValueError('it has a fraction')
        return int(number)
    if want == 'boolean':
        return _boolean(item)
    if want == 'decimal':
        return _decimal_text(item)
    if want == 'float':
        return _float(item)
    if want in ('timestamp', 'datetime', 'date'):
        text = _stamp(str(item), want == 'timestamp') if kind != 'time' else None
        if text is None:
            raise ValueError('a time of day is not a date')
        if want == 'date':
            if text[10:].strip('T0:.Z'):
                raise ValueError('it has a time of day')
            return text[:10]
        return text
    if want == 'time':
        if kind in ('timestamp', 'datetime'):
            raise ValueError('a date and time is not a time of day')
        return _time(str(item))
    if want == 'binary':
        return base64.b64encode(str(item).encode('utf-8')).decode('ascii')
    raise ValueError('no conversion from %s' % kind)


def _fits(result, target, original):
    want = target['type']
    if want == 'string' and target.get('max_length') and len(result) > target['max_length']:
        raise Lossy('a text of %d characters is longer than the column\'s %d' % (len(result), target['max_length']))
    if want == 'string' and target.get('max_bytes') and len(result.encode('utf-8')) > target['max_bytes']:
        raise Lossy('a text of %d bytes is longer than the column\'s %d'
                    % (len(result.encode('utf-8')), target['max_bytes']))
    if isinstance(result, str) and target.get('no_nul') and '\0' in result:
        raise Lossy('the column cannot hold a NUL character')
    if want in ('timestamp', 'datetime') and target.get('range') and not \
            target['range'][0] <= result.rstrip('Z')[:19] <= target['range'][1]:
        raise Lossy('%s is outside the column\'s range (%s to %s)' % (result, target['range'][0], target['range'][1]))
    if want == 'float' and isinstance(result, str) and (target.get('finite') or
                                                        (target.get('no_nan') and result == 'NaN')):
        raise Lossy('the column cannot hold %s' % result)
    if want == 'integer' and target.get('bits'):
        bits = target['bits']
        low, high = (0, (1 << bits) - 1) if target.get('unsigned') else (-(1 << (bits - 1)), (1 << (bits - 1)) - 1)
        if not low <= result <= high:
            raise Lossy('%d is out of the column\'s range (%d to %d)' % (result, low, high))
    if want == 'decimal' and target.get('precision'):
        number = decimal.Decimal(result)
        scale = int(target.get('scale') or 0)
        if number != number.quantize(decimal.Decimal(1).scaleb(-scale), rounding=decimal.ROUND_HALF_EVEN):
            raise Lossy('%s has more than the column\'s %d decimal places' % (result, scale))
        if abs(number) >= decimal.Decimal(10) ** (int(target['precision']) - scale):
            raise Lossy('%s has more digits than the column\'s precision %d' % (result, target['precision']))
    if want == 'float' and target.get('scale') is not None and target.get('precision') and \
            not isinstance(result, str):
        if abs(result) >= 10 ** (int(target['precision']) - int(target['scale'])):
            raise Lossy('%r is out of the column\'s range (%d digits, %d of them decimals)'
                        % (original, target['precision'], target['scale']))
        if round(result, int(target['scale'])) != result:
            raise Lossy('%r has more than the column\'s %d decimal places' % (original, target['scale']))
    if want == 'float' and target.get('single') and not isinstance(result, str) and _float32(result) != result:
        raise Lossy('%r would be stored as %r (the column holds single-precision floats)'
                    % (original, _float32(result)))


def lose(item, source, target):
    """What a target column stores of ``item`` when a lossy conversion is allowed: text cut at the column's length,
    decimals and floats rounded; the ``Lossy`` error where nothing sensible can be stored (a number out of range, a
    text that is no UUID)."""
    try:
        return convert(item, source, target)
    except Lossy as exc:
        problem = exc
    want = target['type']
    if not isinstance(item, _SHAPES.get(source['type'], object)):
        raise problem
    try:
        result = _convert(item, source['type'], want)
    except (ValueError, decimal.InvalidOperation, OverflowError, CairnError):
        raise problem from None
    if isinstance(result, str) and target.get('no_nul'):
        result = result.replace('\0', '')
    if want == 'string' and (target.get('max_length') or target.get('max_bytes')):
        result = result[:target.get('max_length') or len(result)]
        while target.get('max_bytes') and len(result.encode('utf-8')) > target['max_bytes']:
            result = result[:-1]
        return result
    if isinstance(result, str) and target.get('no_nul'):
        return convert(result, dict(source, type=want), target)
    if want == 'decimal' and target.get('precision'):
        scale = int(target.get('scale') or 0)
        rounded = decimal.Decimal(result).quantize(decimal.Decimal(1).scaleb(-scale), rounding=decimal.ROUND_HALF_EVEN)
        return convert(format(rounded, 'f'), dict(source, type='decimal'), target)
    if want == 'float' and target.get('scale') is not None and not isinstance(result, str):
        rounded = round(result, int(target['scale']))
        return convert(rounded, dict(source, type='float'), target)
    if want == 'float' and target.get('single'):
        return _float32(result)
    raise problem


def drift(source, target):
    """How a column's stored type changes from ``source`` to ``target`` (``{from, to}``, the value type and native
    type of each side), or None: another value type, single instead of double precision, another length limit or
    decimal precision and scale, fractions of seconds, where both sides have one."""
    changed = source['type'] != target['type'] or bool(source.get('single')) != bool(target.get('single'))
    for key in ('max_length', 'precision', 'scale', 'fsp'):
        if source.get(key) is not None and target.get(key) is not None and source[key] != target[key]:
            changed = True
    if not changed:
        return None
    return {'from': {'type': source['type'], 'native': source.get('native')},
            'to': {'type': target['type'], 'native': target.get('native')}}


# ---------------------------------------------------------------------------------------------------------------
# load order
# ---------------------------------------------------------------------------------------------------------------

def load_order(tables):
    """Table names so that a table comes after the tables its foreign keys point at (``tables``: name ->
    list of referenced table names); a cycle or a self-reference is kept in name order (the loaders do not
    check foreign keys while loading)."""
    order, done, visiting = [], set(), set()

    def visit(name):
        if name in done or name in visiting:
            return
        visiting.add(name)
        for parent in sorted(tables.get(name) or ()):
            if parent in tables and parent != name:
                visit(parent)
        visiting.discard(name)
        done.add(name)
        order.append(name)
    for name in sorted(tables):
        visit(name)
    return order
