# -*- coding: utf-8 -*-
# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Move a restore point's rows into an instance of another database vendor (private).

The recipe (docs/migrate.md): the target's system tables are made by the CMS itself (``bootstrap``), the source's
schema part is applied by the CMS (``schema apply``), then the ``rows`` part is loaded, every value turned into what
the target column takes (``_rows.convert``) in one transaction per vendor (``load_rows``), the CMS's own rows of the
target (migrations, settings, the bootstrap's admin) replaced by the source's. Every table is then read back and
its row count and checksum compared with what was loaded. A lossy conversion fails the load before it commits,
naming table, column and row; a failed or refused run leaves the target as it was (empty, or put back from its
safety copy).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import hashlib
import json
import os
import shutil
import tempfile

from ansible_collections.cairncms.ops.plugins.module_utils import _content, _fanout, _fs, _parts, _rows, _scratch, _sync
from ansible_collections.cairncms.ops.plugins.module_utils._args import load_config, load_repository
from ansible_collections.cairncms.ops.plugins.module_utils._cms import bootstrap as _cms_bootstrap
from ansible_collections.cairncms.ops.plugins.module_utils._cms import schema as _cms_schema
from ansible_collections.cairncms.ops.plugins.module_utils._common import CairnError, Timer, utc_now
from ansible_collections.cairncms.ops.plugins.module_utils._db import select_backend
from ansible_collections.cairncms.ops.plugins.module_utils._db._base import integer_key, key_ranges
from ansible_collections.cairncms.ops.plugins.module_utils._manifest import check as check_manifest
from ansible_collections.cairncms.ops.plugins.module_utils._manifest import part as manifest_part

MAX_REPORTED = 50
# The check computed by the target: a table of at least SPLIT_ROWS rows with one integer key is checked in ranges of
# that key, side by side in up to CHECK_SESSIONS sessions (no more than the host's processors).
SPLIT_ROWS = 200000
CHECK_SESSIONS = 4
# The load: the rows of a table of at least FANOUT_ROWS rows (as the restore point lists them) are parsed, converted,
# checksummed and written as the target's text in up to LOAD_PROCESSES forked processes (no more than the host's
# processors) side by side, pieces of about PIECE_BYTES of the stream each, into the load's one session in order.
FANOUT_ROWS = 50000
LOAD_PROCESSES = 4
PIECE_BYTES = 1024 * 1024

# The column each CMS field type gets from the CMS on each vendor (Directus 10 through knex), for the plan a check
# run predicts before any schema exists in the target; a real run reports the columns the CMS made.
PREDICTED = {
    'postgres': {'string': 'character varying(255)', 'text': 'text', 'integer': 'integer', 'bigInteger': 'bigint',
                 'float': 'real', 'decimal': 'numeric', 'boolean': 'boolean', 'json': 'json', 'csv': 'text',
                 'uuid': 'uuid', 'hash': 'character varying(255)', 'date': 'date', 'time': 'time without time zone',
                 'dateTime': 'timestamp without time zone', 'timestamp': 'timestamp with time zone'},
    'mysql': {'string': 'varchar(255)', 'text': 'text', 'integer': 'int(11)', 'bigInteger': 'bigint(20)',
              'float': 'float', 'decimal': 'decimal', 'boolean': 'tinyint(1)', 'json': 'longtext (json)',
              'csv': 'text', 'uuid': 'char(36)', 'hash': 'varchar(255)', 'date': 'date', 'time': 'time',
              'dateTime': 'datetime', 'timestamp': 'timestamp'},
    'sqlite': {'string': 'varchar(255)', 'text': 'text', 'integer': 'integer', 'bigInteger': 'bigint',
               'float': 'float', 'decimal': 'float', 'boolean': 'boolean', 'json': 'json', 'csv': 'text',
               'uuid': 'char(36)', 'hash': 'varchar(255)', 'date': 'date', 'time': 'time', 'dateTime': 'datetime',
               'timestamp': 'datetime'},
}


# Native type names (lower case, without length) as value types, and whether they hold single-precision floats.
_NATIVE = (('timestamp with time zone', 'timestamp'), ('timestamptz', 'timestamp'), ('timestamp', 'datetime'),
           ('datetime', 'datetime'), ('date', 'date'), ('time', 'time'), ('tinyint(1)', 'boolean'),
           ('bool', 'boolean'), ('int', 'integer'), ('serial', 'integer'), ('numeric', 'decimal'),
           ('decimal', 'decimal'), ('real', 'float'), ('float', 'float'), ('double', 'float'), ('uuid', 'uuid'),
           ('json', 'json'), ('char', 'string'), ('text', 'string'), ('clob', 'string'), ('blob', 'binary'),
           ('bytea', 'binary'), ('binary', 'binary'))
_SINGLE = {'postgres': ('real', 'float4'), 'mysql': ('float',), 'sqlite': ()}


def native_kind(native, vendor, field_type=None):
    """``(value type, single precision)`` of a native column type as a vendor names it (``timestamp`` on SQLite is
    the CMS's field type: SQLite declares it ``datetime``)."""
    text = str(native or '').lower()
    if vendor == 'sqlite' and field_type == 'timestamp':
        return 'timestamp', False
    if vendor == 'mysql' and text.startswith('timestamp'):
        return 'timestamp', False
    kind = next((found for fragment, found in _NATIVE if text.startswith(fragment) or fragment in text), 'string')
    single = kind == 'float' and text.split('(', maxsplit=1)[0].strip() in _SINGLE.get(vendor, ())
    return kind, single


def predicted_drift(schema, source_vendor, target_vendor):
    """The fields of a schema snapshot whose stored type the CMS makes differently on ``target_vendor``: what a check
    run can say before the target has any schema."""
    found = []
    for field in (schema or {}).get('fields') or []:
        kind = field.get('type')
        data_type = (field.get('schema') or {}).get('data_type')
        if kind not in PREDICTED.get(target_vendor, {}) or not data_type:
            continue
        after = PREDICTED[target_vendor][kind]
        if native_kind(data_type, source_vendor, kind) != native_kind(after, target_vendor, kind):
            found.append({'table': field.get('collection'), 'column': field.get('field'), 'field_type': kind,
                          'from': {'type': native_kind(data_type, source_vendor, kind)[0], 'native': data_type},
                          'to': {'type': native_kind(after, target_vendor, kind)[0], 'native': after},
                          'predicted': True})
    return found


def widen(backend, schema, source_vendor):
    """Where the CMS made a float field of the target narrower than the source's (single precision, or a fixed
    number of decimals, for a source that stored doubles: SQLite keeps every float, and a decimal, as a double),
    make it hold doubles, so that no value changes: ``[{table, column, from, to}]``."""
    columns = {table['name']: {column['name']: column for column in table['columns']} for table in backend.row_tables()}
    widened = []
    for field in (schema or {}).get('fields') or []:
        data_type = (field.get('schema') or {}).get('data_type')
        column = columns.get(field.get('collection'), {}).get(field.get('field'))
        if not data_type or column is None or column['type'] != 'float':
            continue
        kind, single = native_kind(data_type, source_vendor, field.get('type'))
        if kind == 'float' and not single and (column.get('single') or column.get('scale') is not None):
            after = backend.widen_float(field['collection'], column)
            widened.append({'table': field['collection'], 'column': field['field'], 'from': column['native'],
                            'to': after})
    return widened


class Load:
    """One load of a rows stream into a target (``backend``: its ``_db`` vendor implementation)."""

    def __init__(self, backend, allow_lossy=False, adapt=None, scope=None, sizes=None, processes=None):
        self.backend = backend
        self.allow_lossy = allow_lossy
        # table -> its number of rows as the restore point lists them: which tables are loaded by a Fanout
        self.sizes = dict(sizes or {})
        self.processes = processes or min(LOAD_PROCESSES, os.cpu_count() or 1)
        self.where = None
        self.fanned = {}       # table -> the processes its rows were loaded by (a Fanout)
        # None: every table, each emptied first; else a content move: table -> None (emptied, all its rows loaded)
        # or the primary keys of the rows to add (rows the target has not got: the files moved rows point at)
        self.scope = scope
        # table -> function(source columns, row) -> row: what the target's CMS needs otherwise in its own rows
        self.adapt = dict(adapt or {})
        self.target = backend.row_tables()
        self.by_name = {table['name']: table for table in self.target}
        self.expected = {}     # table -> (target columns loaded, Digest of what was loaded)
        self.drift = []
        self.lossy = []
        self.lossy_count = 0
        self.dropped = []      # source columns or tables the target has not (only with allow_lossy)
        self.head = None

    def _lost(self, table, column, row_id, problem):
        self.lossy_count += 1
        if len(self.lossy) < MAX_REPORTED:
            self.lossy.append({'table': table, 'column': column, 'row': row_id, 'problem': problem})

    def _pairs(self, table):
        name = table['table']
        dest = self.by_name.get(name)
        if dest is None:
            if not self.allow_lossy:
                raise _rows.Lossy('table %s of the source is not in the target (its schema was not applied?); '
                                  'nothing was loaded' % name)
            self.dropped.append({'table': name, 'column': None})
            return None, []
        columns = {column['name']: column for column in dest['columns']}
        pairs = []
        for index, column in enumerate(table['columns']):
            if column['name'] not in columns:
                if not self.allow_lossy:
                    raise _rows.Lossy('column %s.%s of the source is not in the target; nothing was loaded'
                                      % (name, column['name']))
                self.dropped.append({'table': name, 'column': column['name']})
                continue
            pairs.append((index, column, columns[column['name']]))
            change = _rows.drift(column, columns[column['name']])
            if change:
                self.drift.append(dict(change, table=name, column=column['name']))
        return dest, pairs

    def converted(self, table, rows, pairs, digest):
        converters = [(index, _rows.converter(source, target)) for index, source, target in pairs]
        for row in rows:
            try:
                values = [convert(row[index]) for index, convert in converters]
            except _rows.Lossy:
                values = self._one_by_one(table, row, pairs)
            digest.add(values)
            yield values

    def _one_by_one(self, table, row, pairs):
        """A row with a value the target cannot hold: the error naming table, column and row, or (allowed) the row
        as the target can store it, each such value listed."""
        name = table['table']
        keys = [index for index, column in enumerate(table['columns']) if column['name'] in table['primary_key']]
        values = []
        for index, source, target in pairs:
            try:
                values.append(_rows.convert(row[index], source, target))
            except _rows.Lossy as exc:
                row_id = ','.join(str(row[key]) for key in keys) or None
                if not self.allow_lossy:
                    raise _rows.Lossy('table %s, column %s, row %s: %s; nothing was loaded (allow lossy '
                                      'conversions to store it as the target can)'
                                      % (name, source['name'], row_id, exc.message)) from None
                self._lost(name, source['name'], row_id, exc.message)
                values.append(_rows.lose(row[index], source, target))
        return values

    def loads(self, tables, finish=None):
        """``(table, target columns, converted rows)`` of every table loaded; ``finish()`` once the stream is read,
        before the loader commits (the artifact's sha256)."""
        for table, rows in tables:
            keys = None
            if self.scope is not None:
                if table['table'] not in self.scope:
                    for _row in rows:
                        pass
                    continue
                keys = self.scope[table['table']]
                if keys is not None:
                    rows = _only(table, rows, keys)
            dest, pairs = self._pairs(table)
            if dest is None:
                for _row in rows:
                    pass
                continue
            columns = [target for _index, _source, target in pairs]
            # checked by the target itself where it can write every column's values as text (whole tables only)
            renderers = self.backend.fingerprint_renderers(columns) if keys is None else None
            digest = _rows.Fingerprint(renderers) if renderers is not None else _rows.Digest(columns)
            self.expected[table['table']] = (columns, digest)
            if self._fans_out(table, rows, keys):
                yield table['table'], columns, _rows.Rendered(self._fanned_out(table, rows, pairs, columns, digest))
                continue
            adapt = self.adapt.get(table['table'])
            if adapt is not None:
                rows = (adapt(table['columns'], row) for row in rows)
            yield table['table'], columns, self.converted(table, rows, pairs, digest)
        if finish is not None:
            finish()

    def _fans_out(self, table, rows, keys):
        """Whether ``table``'s rows are loaded by processes of their own: a large table, loaded whole, into a vendor
        whose load is text, from a stream whose lines can be taken as they are."""
        return (self.processes > 1 and keys is None and getattr(self.backend, 'rows_text', None) is not None
                and hasattr(rows, 'chunks') and not rows.checksums
                and isinstance(self.sizes.get(table['table']), int) and self.sizes[table['table']] >= FANOUT_ROWS)

    def _fanned_out(self, table, rows, pairs, columns, digest):
        """The text of ``table``'s rows made by a ``_fanout.Fanout``, each process parsing, converting and
        checksumming its pieces (``_Piecework``); what they report is counted in here."""
        _head, render, _tail = self.backend.rows_text(table['table'], columns)
        fanout = _fanout.Fanout(lambda: _Piecework(self, table, pairs, render, digest.fresh()),
                                self.processes, what='loading rows of table %s' % table['table'])
        self.fanned[table['table']] = fanout.processes
        yield from fanout.results(rows.chunks(PIECE_BYTES))
        for report in fanout.reports:
            digest.merge(report['rows'], int(report['total']))
            self.lossy_count += report['lossy_count']
            self.lossy.extend(report['lossy'][:max(0, MAX_REPORTED - len(self.lossy))])

    def run(self, source, where, finish=None):
        """Load the rows stream read from ``source`` (named ``where`` in errors) into the target; ``finish()``
        checks the whole artifact (its sha256) once it is read, before the load commits: the per-table checksums of
        the stream are then not computed again."""
        self.where = where
        self.head, tables = _rows.read(source, where, checksums=finish is None)
        if self.scope is None:
            self.backend.load_rows(self.target, self.loads(tables, finish))
        else:
            emptied = [self.by_name[name] for name in self.head.get('tables') or ()
                       if name in self.by_name and name in self.scope and self.scope[name] is None]
            self.backend.load_rows(emptied, self.loads(tables, finish), content=True)
        return self

    def verify(self):
        """Compare every loaded table's row count and checksum in the target with what was loaded: computed by the
        target in SQL (``_rows.Fingerprint``), or else read back and checksummed here (``_rows.Digest``); the tables
        that differ (empty when all are equal)."""
        computed = {name: columns for name, (columns, digest) in self.expected.items()
                    if isinstance(digest, _rows.Fingerprint)}
        found_by_name = self._fingerprinted(computed) if computed else {}
        read = {name: columns for name, (columns, _digest) in self.expected.items() if name not in computed}
        if read:
            keyed = {name: keys for name, keys in (self.scope or {}).items() if keys is not None}
            tally = _Tally(read, keyed, {name: table.get('primary_key') or [] for name, table in self.by_name.items()})
            self.backend.write_rows(tally, [self.by_name[name] for name in sorted(read)])
            found_by_name.update(tally.digests)
        differ = []
        for name, (_columns, digest) in sorted(self.expected.items()):
            found = found_by_name.get(name)
            if found is None or found.rows != digest.rows or found.checksum != digest.checksum:
                differ.append({'table': name, 'loaded_rows': digest.rows, 'target_rows': found.rows if found else None,
                               'checksums_equal': bool(found) and found.checksum == digest.checksum})
        return differ

    def _fingerprinted(self, computed, sessions=None):
        """``{name: _Found}`` of the tables ``computed`` (name -> columns) as the target computes them; a large table
        with one integer key is split into ranges of it, each computed in a session of its own beside the others
        (``_rows.Fingerprint``'s counts and sums add up)."""
        sessions = sessions or min(CHECK_SESSIONS, os.cpu_count() or 1)
        whole, jobs = [], []
        for name, columns in sorted(computed.items()):
            ranges = self._ranges(name, sessions) if self.expected[name][1].rows >= SPLIT_ROWS else None
            if ranges:
                jobs.extend(([(name, columns)], {name: where}) for where in ranges)
            else:
                whole.append((name, columns))
        if whole:
            jobs.append((whole, None))
        with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, min(sessions, len(jobs)))) as pool:
            results = list(pool.map(lambda job: self.backend.table_fingerprints(*job), jobs))
        counted = {}
        for result in results:
            for name, (rows, checksum) in result.items():
                before = counted.get(name, (0, 0))
                counted[name] = (before[0] + rows, before[1] + int(checksum))
        return {name: _Found(rows, '%d' % total) for name, (rows, total) in counted.items()}

    def _ranges(self, name, sessions):
        """Conditions splitting table ``name`` into ``sessions`` ranges of its integer key (together every row,
        each once); None when it has no single integer key, or one range would do."""
        key = integer_key(self.by_name.get(name) or {})
        if sessions < 2 or key is None:
            return None
        bounds = self.backend.query(self.backend.bounds_sql(name, key))
        # emptied since the load (psql writes NULL as nothing): None, counted whole, found to differ
        return key_ranges(self.backend.quote(key), bounds[0] if bounds else None, sessions)

    def summary(self):
        return {
            'tables': {name: {'rows': digest.rows, 'checksum': digest.checksum}
                       for name, (_columns, digest) in sorted(self.expected.items())},
            'rows': sum(digest.rows for _columns, digest in self.expected.values()),
            'target_only_tables': sorted(set(self.by_name) - set(self.expected)),
            'drift': self.drift, 'lossy': self.lossy, 'lossy_count': self.lossy_count, 'dropped': self.dropped,
            'load_processes': dict(self.fanned),
        }


class _Piecework:
    """What a process of a ``Load``'s ``Fanout`` does with each piece of a table's lines: parse, adapt, convert and
    checksum every row (into ``digest``, its own), and give their load text (``render``) as UTF-8; its ``report``:
    the rows it did, their checksum's sum and the values it stored lossily (only with allow_lossy)."""

    def __init__(self, load, table, pairs, render, digest):
        self.load, self.table, self.pairs, self.render, self.digest = load, table, pairs, render, digest
        self.adapt = load.adapt.get(table['table'])
        load.lossy, load.lossy_count = [], 0  # this process's own

    def work(self, piece):
        table, where = self.table, self.load.where
        rows = (_rows.row_values(line, table, where) for line in piece.split(b'\n'))
        if self.adapt is not None:
            rows = (self.adapt(table['columns'], row) for row in rows)
        return self.render(list(self.load.converted(table, rows, self.pairs, self.digest))).encode('utf-8')

    def report(self):
        return {'rows': self.digest.rows, 'total': '%d' % self.digest.total, 'lossy': self.load.lossy,
                'lossy_count': self.load.lossy_count}


class _Found:
    """A table's row count and checksum as the target computed them."""

    def __init__(self, rows, checksum):
        self.rows = rows
        self.checksum = checksum


class _Tally:
    """A ``_rows.Writer`` that only counts and checksums the named columns of each table (of the rows whose
    primary key is among ``keyed[table]``, for a table a content move added rows to)."""

    def __init__(self, columns, keyed=None, primary_keys=None):
        self.columns = columns
        self.keyed = keyed or {}
        self.primary_keys = primary_keys or {}
        self.digests = {}
        self._pick = None
        self._key = None
        self._digest = None
        self._name = None

    def begin(self, table):
        names = [column['name'] for column in table['columns']]
        wanted = self.columns[table['name']]
        self._pick = [names.index(column['name']) for column in wanted]
        self._digest = _rows.Digest(wanted)
        self._name = table['name']
        key = self.primary_keys.get(table['name']) or []
        self._key = names.index(key[0]) if table['name'] in self.keyed and len(key) == 1 else None

    def row(self, values):
        if self._key is not None and str(values[self._key]) not in self.keyed[self._name]:
            return
        self._digest.add([values[index] for index in self._pick])

    def end(self):
        self.digests[self._name] = self._digest


def _only(table, rows, keys):
    """The rows of ``table`` whose one-column primary key (as text) is among ``keys``."""
    names = [column['name'] for column in table['columns']]
    index = names.index(table['primary_key'][0])
    return (row for row in rows if str(row[index]) in keys)


def check_levels(source_level, target_levels):
    """Refuse a move between CMS versions: the source's migration level must be the target CMS's newest."""
    target_level = max(target_levels) if target_levels else None
    if source_level and target_level and str(source_level) != str(target_level):
        newer = str(source_level) > str(target_level)
        raise CairnError(
            'the restore point is at CMS migration %s, the target CMS at %s: a move between vendors needs the same '
            'CMS version on both sides. %s' % (source_level, target_level,
                                               'Upgrade the target\'s CMS first' if newer else
                                               'Upgrade the source first (restore it on its own vendor, bootstrap, '
                                               'back it up) and migrate that point'))


# ---------------------------------------------------------------------------------------------------------------
# The whole migration (cairn_migrate)
# ---------------------------------------------------------------------------------------------------------------

def target_state(backend):
    """``absent`` (no database yet), ``empty`` (no table) or ``not_empty``."""
    probe = backend.probe()
    if probe.get('exists') is False:
        return 'absent'
    return 'not_empty' if backend.row_tables() else 'empty'


class _Safety:
    """The target as it was before a replacing migration, to put back when the migration fails: the vendor's own
    safety copy (server vendors) or a copy of the SQLite file."""

    def __init__(self, backend, work):
        self.backend, self.work, self.copy = backend, work, None

    def take(self):
        if self.backend.vendor == 'sqlite':
            path = self.backend.path
            self.copy = os.path.join(self.work, 'safety.sqlite3')
            with open(path, 'rb') as source, open(self.copy, 'wb') as target:
                shutil.copyfileobj(source, target, 1024 * 1024)
        else:
            self.copy = self.backend.take_safety_copy(self.work)

    def put_back(self):
        self.backend.empty_tables()
        if self.copy is None:
            return
        if self.backend.vendor == 'sqlite':
            shutil.copyfile(self.copy, self.backend.path)
        else:
            self.backend.put_back(self.copy, self.work)


class _Journal:
    """What a migration that never ended (killed, its host down) leaves for the next run: a file beside the target's
    .env, written before the first change to the target and removed once the run has ended either way (migrated,
    or the target put back or left empty). It names the restore point, what the target was before (``absent``,
    ``empty`` or ``not_empty``) and, for a replaced target, the safety copy of what it held. That copy is kept in a
    private directory beside the journal (or in ``work_dir``), never in the process's scratch directory, which the
    next run sweeps once its process is gone. The journal is read as untrusted input: a safety copy it names
    outside such a directory of this target is refused."""

    STATES = ('absent', 'empty', 'not_empty')

    def __init__(self, config, target, work_dir=None):
        self.target = target
        self.tag = '.cairn-migrate-%s' % hashlib.sha256(target.encode('utf-8')).hexdigest()[:12]
        self.base = config.base_dir
        self.path = os.path.join(self.base, self.tag + '.json')
        self.work_root = os.path.realpath(work_dir or self.base)
        self.previous = self._read()

    def _read(self):
        try:
            raw = _fs.read_bytes(self.base, os.path.basename(self.path), limit=65536)
        except _fs.Missing:
            return None
        except (OSError, ValueError) as exc:
            raise CairnError('cannot read %s, the journal of an earlier migration into %s (%s); nothing was changed'
                             % (self.path, self.target, exc))
        try:
            entry = json.loads(raw.decode('utf-8'))
            work, copy = entry.get('work'), entry.get('safety_copy')
            ok = (entry.get('target') == self.target and entry.get('state_before') in self.STATES
                  and isinstance(entry.get('restore_point'), str) and (work is None or self._ours(work))
                  and (copy is None or (work is not None and os.path.dirname(copy) == work)))
        except (ValueError, AttributeError, TypeError):
            ok = False
        if not ok:
            raise CairnError('%s is not a migration journal of this collection for %s; nothing was changed. Find out '
                             'what the target holds, then remove the file' % (self.path, self.target))
        return entry

    def _ours(self, work):
        return (isinstance(work, str) and os.path.dirname(work) == self.work_root
                and os.path.basename(work).startswith(self.tag + '-'))

    def work_dir(self):
        """A new private directory for a safety copy that outlives this process."""
        return tempfile.mkdtemp(prefix=self.tag + '-', dir=self.work_root)

    def write(self, restore_point, state_before, work=None, safety_copy=None):
        entry = {'target': self.target, 'restore_point': restore_point, 'state_before': state_before,
                 'started': utc_now().strftime('%Y-%m-%dT%H:%M:%SZ'), 'work': work, 'safety_copy': safety_copy}
        _fs.write_bytes(self.base, os.path.basename(self.path), json.dumps(entry, sort_keys=True).encode('utf-8'),
                        mode=0o600)

    def end(self):
        try:
            _fs.unlink(self.base, os.path.basename(self.path))
        except _fs.Missing:
            pass


def _after_interruption(journal, state, replace, safety):
    """What the journal of a migration that never ended means for this run: the state to go on from and a warning
    (or None). A target that was empty before it is cleared again; a replaced one goes on only with ``replace``,
    from the safety copy of what it held then, which ``safety`` takes over."""
    left = journal.previous
    if left is None:
        return state, None
    said = 'a migration of restore point %s into this target, started %s, never ended' % (
        left['restore_point'], left.get('started'))
    if left['state_before'] != 'not_empty':
        if state != 'not_empty':
            return state, None  # it left nothing in the target
        return 'interrupted', '%s; the target was empty before it, and what it left there was removed' % said
    copy = left.get('safety_copy')
    if copy is None or not os.path.isfile(copy):
        return state, ('%s; it replaced what the target held, and its safety copy %s is gone: the target holds what '
                       'that migration left' % (said, copy or '(not made yet)'))
    if not replace:
        raise CairnError('%s; it replaced what the target held, which is kept in %s. Nothing was changed. Run again '
                         'with replace (cairn_migrate_replace: true) to migrate: if that fails, the target is put back '
                         'from that copy' % (said, copy), target_state=state)
    safety.work, safety.copy = left['work'], copy
    # what the target held is the copy, whatever that migration left in it
    return 'not_empty', '%s; this run goes on from the safety copy %s of what the target held before it' % (said, copy)


def _parts_of(repository, instance, manifest):
    """The rows and schema parts the migration needs, and the source's database part; refused, naming what to do,
    when the point has not got them."""
    rows_part = manifest_part(manifest, 'rows')
    if rows_part is None or not rows_part.get('captured'):
        raise CairnError('restore point %s has no rows part%s, which a move to another database vendor loads; make '
                         'a restore point with cairn_backup_parts including rows (the migrate role does, from the '
                         'source instance)' % (manifest['id'], ' (%s)' % rows_part['reason']
                                               if rows_part and rows_part.get('reason') else ''))
    schema = _parts.read_document(repository, instance, manifest, 'schema')
    return manifest_part(manifest, 'database'), rows_part, schema


class _Run:
    """What a migration or a content move starts from: the restore point (its database, rows and schema parts) and
    the target instance (its configuration and database)."""

    def __init__(self, params):
        self.timer = Timer()
        self.repository = load_repository(params)
        self.manifest = check_manifest(self.repository.resolve(params['instance'], params['restore_point']))
        self.instance = params['instance']
        self.database, self.rows_part, self.schema = _parts_of(self.repository, self.instance, self.manifest)
        self.config = load_config(params)
        self.backend = select_backend(self.config.database())


def migrate(params, check_mode=False):
    """The module's run: ``params`` as cairn_migrate takes them (with ``tables``: a content move)."""
    if params.get('tables'):
        return move_content(params, check_mode)
    run = _Run(params)
    timer, repository, manifest, instance = run.timer, run.repository, run.manifest, run.instance
    database, rows_part, schema, config, backend = run.database, run.rows_part, run.schema, run.config, run.backend
    state = target_state(backend)
    target = backend.probe().get('path')
    journal = _Journal(config, str(target), params.get('work_dir'))
    safety = _Safety(backend, None)
    state, interrupted = _after_interruption(journal, state, params['replace'], safety)
    result = {'changed': False, 'restore_point': manifest['id'], 'source_vendor': database['vendor'],
              'target_vendor': backend.vendor, 'target': target, 'target_state': state,
              'migration_level': database.get('migration_level'),
              'tables': {name: entry['rows'] for name, entry in sorted(rows_part['tables'].items())},
              'rows': rows_part.get('rows'),
              'drift': predicted_drift(schema, database['vendor'], backend.vendor), 'lossy': [], 'lossy_count': 0,
              'widened': [], 'replaced': False, 'steps': {}}
    if interrupted:
        result['warnings'] = [interrupted]
    if state == 'not_empty' and not params['replace']:
        raise CairnError('the target database %s is not empty; nothing was changed. A migration fills a new, empty '
                         'database: set replace (cairn_migrate_replace: true) to put the restore point in its place '
                         '(what it holds is put back if the migration fails)' % result['target'],
                         target_state=state)
    chdir = params['chdir'] or config.base_dir
    # The files' plan first: a target storage that holds other files refuses the migration before anything changes.
    file_plans = _sync.plan_restore(config, _sync.read_inventory(repository, instance, manifest), params['replace'],
                                    location_map=params['location_map'], parallel=params['parallel'])
    result['files'] = _sync.restore(config, repository, instance, manifest, replace=params['replace'],
                                    check_mode=True, location_map=params['location_map'],
                                    parallel=params['parallel'], plans=file_plans)
    result['changed'] = True
    if check_mode:
        result['msg'] = ('would migrate restore point %s (%s, %d tables, %s rows) into the %s %s target %s; the drift '
                         'listed is predicted from the schema' % (manifest['id'], database['vendor'],
                                                                  len(result['tables']), result['rows'], state,
                                                                  backend.vendor, result['target']))
        return result
    if state == 'not_empty':
        if safety.copy is None:
            safety.work = journal.work_dir()
            try:
                journal.write(manifest['id'], state, safety.work)
                safety.take()
            except BaseException:
                journal.end()
                shutil.rmtree(safety.work, ignore_errors=True)
                raise
        journal.write(manifest['id'], state, safety.work, safety.copy)
    else:
        safety.work = tempfile.mkdtemp(prefix='.cairn-migrate-', dir=params.get('work_dir') or _scratch.directory())
        journal.write(manifest['id'], journal.previous['state_before'] if state == 'interrupted' else state)
    work = safety.work
    steps = result['steps']
    try:
        if state == 'interrupted':
            backend.empty_tables()
        if state == 'not_empty':
            backend.empty_tables()
            result['replaced'] = True
        if backend.vendor != 'sqlite' and state == 'absent':
            backend.create_database()
        try:
            with _step(steps, 'bootstrap'):
                booted = _cms_bootstrap.run_bootstrap(config, params['command'], chdir, params['env_file'],
                                                      params['timeout'])
            check_levels(database.get('migration_level'), [booted['migration_level']])
            with _step(steps, 'schema'):
                _cms_schema.apply_cli(config, params['command'], chdir, params['env_file'], params['timeout'],
                                      _cms_schema.for_vendor(schema, backend.vendor))
            result['widened'] = widen(backend, schema, database['vendor'])
            with _step(steps, 'rows'):
                flagged = _cms_schema.flag_rows(schema, backend.vendor)
                load = Load(select_backend(config.database()), params['allow_lossy'],
                            adapt={'directus_fields': flagged} if flagged else None, sizes=_sizes(rows_part))
                stream = _parts.kind('rows').open_stream(repository, instance, manifest)
                with stream as source:
                    load.run(source, stream.where, finish=stream.check)
            summary = load.summary()
            result.update(summary, tables={name: entry['rows'] for name, entry in summary['tables'].items()})
            with _step(steps, 'check'):
                differ = load.verify()
            if differ:
                raise CairnError('the target does not hold what was loaded: %s' % '; '.join(
                    '%s (%s rows loaded, %s found, checksums %s)' % (entry['table'], entry['loaded_rows'],
                                                                     entry['target_rows'], 'equal' if
                                                                     entry['checksums_equal'] else 'differ')
                    for entry in differ[:MAX_REPORTED]))
            with _step(steps, 'files'):
                result['files'] = _parts.kind('files').restore(
                    config, repository, instance, manifest, replace=params['replace'], check_mode=False,
                    location_map=params['location_map'], parallel=params['parallel'], plans=file_plans)
        except BaseException as exc:
            try:
                safety.put_back()
            except (CairnError, OSError) as undo:
                raise CairnError('the migration of restore point %s into %s failed (%s), and putting the target '
                                 'back failed too: %s; what it held is kept in %s'
                                 % (manifest['id'], result['target'], getattr(exc, 'message', exc),
                                    getattr(undo, 'message', undo), safety.copy or work)) from None
            raise
    except CairnError as exc:
        if 'putting the target back failed' in exc.message:
            raise
        journal.end()
        shutil.rmtree(work, ignore_errors=True)
        where = ('the target was put back as it was' if state == 'not_empty'
                 else 'the target was left empty, as it was')
        details = dict(result)
        details['changed'] = False
        raise CairnError('the migration of restore point %s into %s failed, %s: %s'
                         % (manifest['id'], result['target'], where, exc.message), **details) from None
    journal.end()
    shutil.rmtree(work, ignore_errors=True)
    result['duration_s'] = timer.seconds
    result['msg'] = ('migrated restore point %s (%s) into the %s database %s: %d tables, %d rows, each table\'s '
                     'count and checksum equal; %d column(s) changed type%s'
                     % (manifest['id'], database['vendor'], backend.vendor, result['target'], len(result['tables']),
                        result['rows'], len(result['drift']),
                        '; %d value(s) stored lossily (allowed)' % result['lossy_count'] if result['lossy_count']
                        else ''))
    if result['lossy_count']:
        result.setdefault('warnings', []).append('%d value(s) could not be stored as they were and were stored as the '
                                                 'target could (allow_lossy): see lossy' % result['lossy_count'])
    return result


def _sizes(rows_part):
    """``{table: rows}`` as the rows part of a restore point lists them."""
    return {name: entry.get('rows') for name, entry in (rows_part.get('tables') or {}).items()
            if isinstance(entry, dict)}


@contextlib.contextmanager
def _step(steps, name):
    timer = Timer()
    yield
    steps['%s_s' % name] = timer.seconds


# ---------------------------------------------------------------------------------------------------------------
# A content move (cairn_migrate with tables; the restore role's cairn_content_tables)
# ---------------------------------------------------------------------------------------------------------------

def _keys(backend, by_name):
    """``target_keys(table)``: the target's primary keys of a table, as text (none when it has no such table)."""
    def target_keys(name):
        table = by_name.get(name)
        if table is None or len(table.get('primary_key') or ()) != 1:
            return []
        rows = backend.query('SELECT %s FROM %s' % (backend.quote(table['primary_key'][0]), backend.quote(name)))
        return [str(row[0]) for row in rows if row and row[0] is not None]
    return target_keys


def move_content(params, check_mode=False):
    """The rows of ``params['tables']`` (with the junction tables between them, and the files they point at) from
    a restore point's rows part into the target's schema: the module's result."""
    run = _Run(params)
    timer, repository, manifest, instance = run.timer, run.repository, run.manifest, run.instance
    database, schema, config, backend = run.database, run.schema, run.config, run.backend
    if backend.probe().get('exists') is False:
        raise CairnError('the target database %s does not exist; a content move loads data only, into the schema the '
                         'target has' % backend.probe().get('path'))
    target = backend.row_tables()
    by_name = {table['name']: table for table in target}
    found = _content.plan(repository, instance, manifest, schema, params['tables'], target)
    target_keys = _keys(backend, by_name)
    present = set(target_keys(_content.FILES))
    new_files = {str(key) for key in found.file_ids if str(key) not in present and key in found.files_in_point}
    dangling, missing = found.dangling(target_keys, [key for key in found.file_ids if str(key) in new_files])
    counts = backend.inspect()['row_counts']
    holding = [name for name in found.moved if counts.get(name)]
    result = {'changed': False, 'restore_point': manifest['id'], 'source_vendor': database['vendor'],
              'target_vendor': backend.vendor, 'target': backend.probe().get('path'), 'content': True,
              'tables': {name: found.rows.get(name, 0) for name in found.moved},
              'brought_tables': [name for name in found.moved if name not in params['tables']],
              'files_brought': len(new_files), 'files_present': len(found.file_ids) - len(new_files),
              'dangling': dangling, 'replaced': bool(holding), 'drift': [], 'lossy': [],
              'lossy_count': 0, 'steps': {}}
    result['rows'] = sum(result['tables'].values()) + len(new_files)
    if holding and not params['replace']:
        raise CairnError('the target\'s table(s) %s hold rows; nothing was changed. Set replace '
                         '(cairn_restore_replace: true) to replace their rows' % ', '.join(holding), **result)
    if result['dangling'] and not params['allow_dangling']:
        raise CairnError('the moved rows would point at rows the target has not got, and nothing was changed: %s. '
                         'Move those tables too, or allow it (allow_dangling: those references become NULL)'
                         % '; '.join('%d %s of %s.%s (%s; e.g. %s)' % (
                             entry['missing'], entry['related'], entry['table'], entry['field'] or 'id',
                             entry['reason'], ', '.join(entry['examples'])) for entry in result['dangling']),
                         **result)
    result['changed'] = True
    if check_mode:
        result['msg'] = ('would move %d row(s) of %s from restore point %s, with %d file(s)'
                         % (result['rows'], ', '.join(found.moved), manifest['id'], len(new_files)))
        return result
    # The files first: new names in the target, which nothing there points at until the rows are in.
    with _step(result['steps'], 'files'):
        wanted = {found.files_in_point[key] for key in found.file_ids if str(key) in new_files}
        inventory = [row for row in _sync.read_inventory(repository, instance, manifest)
                     if (row['location'], row['filename_disk']) in wanted]
        plans = _sync.plan_restore(config, inventory, params['replace'], location_map=params['location_map'],
                                   parallel=params['parallel'], keep_others=True)
        result['files'] = _sync.restore(config, repository, instance, manifest, replace=params['replace'],
                                        check_mode=False, location_map=params['location_map'],
                                        parallel=params['parallel'], plans=plans)
    with _step(result['steps'], 'rows'):
        scope = dict({name: None for name in found.moved}, **{_content.FILES: new_files})
        load = Load(backend, params['allow_lossy'], adapt=_content.clearing(missing), scope=scope,
                    sizes=_sizes(run.rows_part))
        stream = _parts.kind('rows').open_stream(repository, instance, manifest)
        with stream as source:
            load.run(source, stream.where, finish=stream.check)
    summary = load.summary()
    result.update({key: summary[key] for key in ('drift', 'lossy', 'lossy_count', 'load_processes')})
    with _step(result['steps'], 'check'):
        differ = load.verify()
    if differ:
        raise CairnError('the target does not hold what was moved: %s' % ', '.join(e['table'] for e in differ),
                         **result)
    result['duration_s'] = timer.seconds
    result['msg'] = ('moved %d row(s) of %s from restore point %s into %s, with %d file(s); every table\'s count '
                     'and checksum equal' % (result['rows'], ', '.join(found.moved), manifest['id'], result['target'],
                                             len(new_files)))
    return result
