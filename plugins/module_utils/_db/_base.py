# -*- coding: utf-8 -*-
# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The database vendor interface (private).

A vendor implementation turns the instance's database into one raw byte
stream (``dump``) and back (``restore``), and tells what is there
(``probe``, ``inspect``, ``compare``). Compression, checksums and the
repository are handled once, around it, in ``_db/__init__.py``.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import signal
import tempfile
import threading

from ansible_collections.cairncms.ops.plugins.module_utils import _process, _relocate, _rows, _scratch
from ansible_collections.cairncms.ops.plugins.module_utils._common import CHUNK, CairnError

# What ``compare`` may answer about a restore target.
ABSENT = 'absent'          # nothing there: restore freely
EMPTY = 'empty'            # exists, holds no table: restore freely
IDENTICAL = 'identical'    # already holds exactly the restore point: nothing to do
DIFFERENT = 'different'    # holds other data: only with replace


RELOCATED_TAG = 'cairn-relocated'
# What reaches outside the instance on its own once the CMS runs, by name: the table whose active rows a
# restore can turn off (``quiesce``) in a copy.
OUTWARD = {'flows': 'directus_flows', 'webhooks': 'directus_webhooks'}


def marker_matches(marker, point_id, changes, location_pairs=(), quiesce=()):
    """Whether a restore marker left in a target says it still holds ``point_id``, restored with the same
    location map and the same things turned off, unchanged."""
    return (bool(point_id) and marker.get('cairncms_ops_restore_point') == point_id
            and marker.get('changes') == changes
            and (marker.get('location_map') or []) == _relocate.as_list(location_pairs)
            and (marker.get('quiesced') or []) == sorted(quiesce))


def restore_marker(point_id, changes, location_pairs=(), quiesce=()):
    """The marker a server vendor records after a restore (see ``marker_matches``)."""
    marker = {'cairncms_ops_restore_point': point_id, 'changes': changes}
    if location_pairs:
        marker['location_map'] = _relocate.as_list(location_pairs)
    if quiesce:
        marker['quiesced'] = sorted(quiesce)
    return marker


def tagged_relocations(location_pairs, rows):
    """``relocations`` from query output rows ``[tag, storage, count]`` (other rows are ignored)."""
    return _relocate.relocations(location_pairs, [(row[1], row[2]) for row in rows
                                                  if len(row) == 3 and row[0] == RELOCATED_TAG])


def feed_collecting(process, source):
    """Feed ``source`` to a ``_process.Streaming`` child opened with ``mode='rw'`` while a thread reads its
    output (so neither side waits for the other); returns the output lines that start with
    ``RELOCATED_TAG``, split at tabs."""
    tag = RELOCATED_TAG.encode() + b'\t'
    lines = []

    def collect():
        for line in iter(process.proc.stdout.readline, b''):
            if line.startswith(tag):
                lines.append(line)
    reader = threading.Thread(target=collect, daemon=True)
    reader.start()
    try:
        for chunk in iter(lambda: source.read(CHUNK), b''):
            process.write(chunk)
        process.proc.stdin.close()
    except BaseException:
        process.abort()
        raise
    reader.join()
    process.finish()
    return [line.decode('utf-8', 'replace').rstrip('\r\n').split('\t') for line in lines]


# The rows part: a table of at least SPLIT_ROWS rows with one integer key is read in ranges of that key side by side,
# each range but the first by a process of its own, as many ranges as the host has processors, at most
# CAPTURE_PROCESSES (the rows pass through Python: one processor reads about 30,000 a second).
SPLIT_ROWS = 200000
CAPTURE_PROCESSES = 4


def integer_key(table):
    """The name of ``table``'s primary key when it is one integer column, else None."""
    keys = table.get('primary_key') or []
    kinds = {column['name']: column['type'] for column in table.get('columns') or ()}
    return keys[0] if len(keys) == 1 and kinds.get(keys[0]) == 'integer' else None


def key_ranges(quoted, bounds, parts):
    """SQL conditions on the key ``quoted`` cutting the span ``bounds`` (its lowest and highest value, as the
    database gave them) into ``parts`` ranges which together hold every row once (the first also takes a NULL key).
    None when ``bounds`` are not two integers (an empty table, psql's NULL written as nothing, a key holding text)
    or one range would do."""
    try:
        low, high = int(bounds[0]), int(bounds[1])
    except (TypeError, ValueError, IndexError):
        return None
    if parts < 2 or high - low < parts:
        return None
    cuts = [low + (high - low + 1) * part // parts for part in range(1, parts)]
    return (['(%s < %d OR %s IS NULL)' % (quoted, cuts[0], quoted)]
            + ['%s >= %d AND %s < %d' % (quoted, start, quoted, end) for start, end in zip(cuts, cuts[1:])]
            + ['%s >= %d' % (quoted, cuts[-1])])


def side_by_side(writer, table, ranges, stream):
    """Write ``table``'s rows into the rows stream ``writer`` range by range (``ranges``: SQL conditions): the first
    range read here, each other at the same time by a forked process of its own (``_RangeProcess``) into a file of
    this process's scratch directory, added to the stream once it is done. A failed range fails the whole, its
    message named; no process or file is left behind."""
    children = []
    try:
        for where in ranges[1:]:
            children.append(_RangeProcess(writer, table, where, stream))
        writer.begin(table)
        stream(_Within(writer), [table], {table['name']: ranges[0]})
        for child in children:
            child.add_to(writer)
        writer.end()
    finally:
        for child in children:
            child.discard()


class _Within:
    """The open table of a ``_rows.Writer``: its rows, without a table's beginning and end."""

    def __init__(self, writer):
        self.row = writer.row

    def begin(self, table):
        pass

    def end(self):
        pass


class _RangeProcess:
    """A forked process writing one range of a table's rows (``stream(..., where)``) into a ``_rows.RangeWriter``
    file, then their count and checksum's sum, or its error, as JSON into a pipe, and exiting without running
    anything of its parent's (``os._exit``)."""

    def __init__(self, writer, table, where, stream):
        fd, self.path = tempfile.mkstemp(prefix='.cairn-rows-', dir=_scratch.directory())
        self.pipe, report_end = os.pipe()
        parent = os.getpid()
        self.pid = os.fork()
        if self.pid == 0:  # the child
            os.close(self.pipe)
            report, code = {'error': 'it stopped'}, 1
            try:
                _process.die_with(parent)
                with os.fdopen(fd, 'wb') as handle:
                    part = writer.range_writer(handle)
                    stream(part, [table], {table['name']: where})
                    part.close()
                report, code = {'rows': part.rows, 'total': '%d' % part.total}, 0
            except BaseException as exc:  # pylint: disable=broad-except
                report = {'error': _process.error_text(exc)}
            finally:
                try:
                    os.write(report_end, json.dumps(report).encode('utf-8')[:16384])
                finally:
                    os._exit(code)
        os.close(fd)
        os.close(report_end)
        self.name, self.where = table['name'], where

    def add_to(self, writer):
        with os.fdopen(self.pipe, 'rb') as pipe:
            self.pipe = None
            text = pipe.read()
        _pid, status = os.waitpid(self.pid, 0)
        self.pid = None
        try:
            report = json.loads(text.decode('utf-8'))
        except ValueError:
            report = {}
        code = os.waitstatus_to_exitcode(status)
        if code != 0 or 'rows' not in report:
            raise CairnError('reading the rows of table %s where %s, in a process of its own, failed: %s'
                             % (self.name, self.where, report.get('error') or _process.how_it_ended(code)))
        writer.splice(self.path, int(report['rows']), int(report['total']))

    def discard(self):
        if self.pid is not None:
            with contextlib.suppress(OSError):
                os.kill(self.pid, signal.SIGKILL)
                os.waitpid(self.pid, 0)
            self.pid = None
        if self.pipe is not None:
            os.close(self.pipe)
            self.pipe = None
        with contextlib.suppress(OSError):
            os.unlink(self.path)


class DatabaseBackend:
    vendor = None
    artifact_format = None    # name of the raw format, e.g. "sqlite3"
    artifact_ext = None       # file extension of the raw artifact
    raw_is_compressed = False  # the raw stream is compressed already: store it as it is
    digest_raw = False         # record the sha256 of the raw dump (what compare() of this vendor needs)

    def __init__(self, database, options=None):
        self.database = database
        self.options = options or {}
        # Tables a dump also reads whole, inside its own snapshot, for the parts made from rows (the config part):
        # ``dump`` returns them as ``facts['rows']``.
        self.read = tuple(self.options.get('read') or ())
        # Where a dump also writes the ``rows`` part (``_db.RowsOut``), inside its own snapshot; None: no rows part.
        self.rows_out = self.options.get('rows_out')

    def capture_rows(self, found, stream, counts=None, bounds=None):
        """Write the rows part, when one is wanted: ``found`` are the tables (``row_tables``), ``stream(writer,
        tables, where=None)`` the vendor's ``write_rows`` inside the dump's snapshot (``where``: table -> an SQL
        condition on its rows), callable from a forked process. The tables go parents first. With ``counts``
        (table -> rows in the snapshot) and ``bounds(table, key)`` (the lowest and highest key in the snapshot), a
        table of ``SPLIT_ROWS`` rows or more with one integer key is read in ranges of it side by side
        (``side_by_side``), and the rows read must be the rows counted."""
        if self.rows_out is None or self.tables:
            return
        by_name = {table['name']: table for table in found}
        order = _rows.load_order({table['name']: [key['table'] for key in table['foreign_keys']] for table in found})
        processes = min(CAPTURE_PROCESSES, os.cpu_count() or 1) if bounds is not None else 1
        with self.rows_out.writing(self.vendor, order) as writer:
            whole = []
            for name in order:
                key = integer_key(by_name[name]) if (counts or {}).get(name, 0) >= SPLIT_ROWS else None
                ranges = key_ranges(self.quote(key), bounds(name, key), processes) if key and processes > 1 else None
                if not ranges or not writer.takes_ranges:
                    whole.append(by_name[name])
                    continue
                if whole:
                    stream(writer, whole)
                    whole = []
                side_by_side(writer, by_name[name], ranges, stream)
                if writer.tables[name]['rows'] != counts[name]:
                    raise CairnError('the rows part of table %s holds %d rows read in ranges of its key %s where '
                                     'the snapshot counts %d; the restore point is not made'
                                     % (name, writer.tables[name]['rows'], key, counts[name]))
            if whole:
                stream(writer, whole)

    def row_tables(self):
        """Every table with its columns (name, value ``type`` of ``_rows.TYPES``, ``native`` type, what limits the
        values: ``max_length``, ``bits``, ``precision``...), ``primary_key`` and ``foreign_keys``."""
        raise NotImplementedError

    def write_rows(self, writer, tables):
        """Stream the rows of ``tables`` (``row_tables``) into a ``_rows.Writer``, in one read transaction."""
        raise NotImplementedError

    def load_rows(self, tables, loads):
        """Replace the content of every table of ``tables`` (``row_tables`` of this target) by the rows of ``loads``
        (an iterator of ``(table, target columns, rows of neutral values of those columns' types)``), in one
        transaction that a failure rolls back."""
        raise NotImplementedError

    rows_text = None
    """``rows_text(name, columns)``: ``(head, render, tail)`` of a vendor whose load is text written into one
    session (``_rows.rendered``), which can then be made elsewhere (``_rows.Rendered``); None: the load takes
    values."""

    def empty_tables(self):
        """Remove every table of the database (a migration's target goes back to empty)."""
        raise NotImplementedError

    def fingerprint_renderers(self, columns):  # pylint: disable=unused-argument
        """Per column of ``columns``, the function writing a neutral value as ``table_fingerprints`` has this
        database write it (``_rows.Fingerprint``); None where the database cannot (the check reads the table
        back)."""
        return None

    def table_fingerprints(self, tables, where=None):
        """``{name: (rows, checksum)}`` of ``tables`` (``(name, columns)``), computed by the database; ``where``:
        name -> an SQL condition, the rows of that table to count (a range of its key)."""
        raise NotImplementedError

    def widen_float(self, table, column):
        """Make the float ``column`` (of ``row_tables``) of ``table`` hold doubles; its new native type."""
        raise NotImplementedError

    def read_tables(self, names):
        """``{table: [row as a dict]}`` of the tables among ``names`` that exist, read now; values as the vendor
        gives them as JSON (PostgreSQL: JSON types; MariaDB: JSON_OBJECT's; SQLite: its storage classes)."""
        raise NotImplementedError

    def probe(self):
        """Facts about the server/library and whether the database exists; no change."""
        raise NotImplementedError

    def dump(self, sink, scratch_dir):
        """Write a consistent raw dump into ``sink``; return facts (row counts, migration level...)."""
        raise NotImplementedError

    def inspect(self):
        """Row counts per table and migration level of the live database."""
        raise NotImplementedError

    def files(self):
        """The ``directus_files`` rows: dicts of id, storage, filename_disk, filesize."""
        raise NotImplementedError

    # server vendors: replace the target's content under a safety copy ---------
    def take_safety_copy(self, work):
        """Dump the target into ``work`` when it holds anything; the dump's path, or None."""
        raise NotImplementedError

    def put_back(self, safety, work):
        """Load a safety copy back into the target."""
        raise NotImplementedError

    def after_restore(self, point_id, location_pairs=(), quiesce=()):
        """Record a successful load in the database: the idempotence marker with the location map and what was
        turned off; returns warnings."""
        raise NotImplementedError

    def turn_off(self, kinds, check_mode=False):
        """Turn off the active rows of ``kinds`` (see ``OUTWARD``) by setting their ``status`` to ``inactive``;
        ``{kind: rows}`` (to turn off, in check mode). A missing table counts as nothing to turn off."""
        turned = {}
        for kind in kinds:
            table = OUTWARD[kind]
            if not self.has_table(table):
                turned[kind] = 0
                continue
            quoted = self.quote(table)
            turned[kind] = int(self.query("SELECT COUNT(*) FROM %s WHERE status = 'active'" % quoted)[0][0])
            if turned[kind] and not check_mode:
                self.execute("UPDATE %s SET status = 'inactive' WHERE status = 'active';" % quoted)
        return turned

    # restoring into other storage locations ---------------------------------
    def literal(self, text):
        """``text`` as an SQL string literal of this vendor."""
        return _relocate.sql_literal(text)

    def relocation_sql(self, location_pairs):
        """Statements that print ``RELOCATED_TAG, storage, count`` for the rows that move, then move them
        (one UPDATE), for the end of a transaction."""
        count = _relocate.count_sql(location_pairs, self.literal, tag=RELOCATED_TAG)
        return '%s;\n%s;\n' % (count, _relocate.update_sql(location_pairs, self.literal))

    def relocate(self, location_pairs):
        """Rewrite ``directus_files.storage`` for every pair in one transaction; ``[{from, to, rows}]``."""
        if not location_pairs:
            return []
        rows = self.query('BEGIN;\n%sCOMMIT;\n' % self.relocation_sql(location_pairs))
        return tagged_relocations(location_pairs, rows)

    # A callable that a restore passes before the loaded database counts (restore(gate=...)): it raises when the
    # restore must not go on (the file restore beside it failed), and the target is then put back.
    gate = None

    def pass_gate(self):
        if self.gate is not None:
            self.gate()

    def replace_under_safety_copy(self, load, keep_safety_copy, scratch_dir, point_id, location_pairs=(),
                                  quiesce=()):
        """Take a safety copy of the target, ``load(work)``, relocate the file rows and turn off ``quiesce``,
        put the copy back if that fails. ``work`` is a private directory in ``scratch_dir`` (the module's
        ``work_dir``) or, by default, in this process's scratch directory. The safety copy is removed afterwards
        unless ``keep_safety_copy``: then it is moved, private (0600), to ``scratch_dir`` or the system's
        temporary directory, which outlive the run."""
        work = tempfile.mkdtemp(prefix='.cairn-restore-', dir=scratch_dir or _scratch.directory())
        try:
            safety = self.take_safety_copy(work)
            try:
                load(work)
                moved = self.relocate(location_pairs)
                turned = self.turn_off(quiesce)
                self.pass_gate()
            except CairnError as exc:
                if safety:
                    self.put_back(safety, work)
                    raise CairnError('%s; the database was put back from its safety copy' % exc.message)
                raise
            warnings = self.after_restore(point_id, location_pairs, quiesce)
            kept = None
            if safety and keep_safety_copy:
                kept = keep_file(safety, scratch_dir or tempfile.gettempdir(), '%s.cairn-safety-%s-' % (
                    self.database.options.get('database'), point_id))
            return {'safety_copy': kept, 'warnings': warnings, 'relocations': moved, 'disabled': turned}
        finally:
            shutil.rmtree(work, ignore_errors=True)

    # content moves: named tables, data only ---------------------------------
    def quote(self, name):
        """``name`` as an SQL identifier of this vendor."""
        return '"%s"' % name.replace('"', '""')

    def bounds_sql(self, name, key):
        """SQL giving the lowest and highest value of column ``key`` of table ``name`` (the bounds of
        ``key_ranges``)."""
        quoted = self.quote(key)
        return 'SELECT MIN(%s), MAX(%s) FROM %s' % (quoted, quoted, self.quote(name))

    def query(self, sql):
        """Rows of a read-only query, as lists of strings (None for NULL where the vendor can tell)."""
        raise NotImplementedError

    def has_table(self, name):
        """Whether the database has the table ``name`` (where the CMS looks for it)."""
        raise NotImplementedError

    def execute(self, sql):
        """Run statements that change the database, in one transaction."""
        self.query('BEGIN;\n%s\nCOMMIT;\n' % sql)

    def restore_content(self, source, tables, location_pairs=(), point_id=None):
        """Replace the rows of ``tables`` by those of a data-only dump of restore point ``point_id`` and relocate
        the file rows (``relocation_sql``), in one transaction; returns facts with ``relocations``. The dump is
        untrusted: it must not reach anything but the target database (see ``check_loader``)."""
        raise NotImplementedError

    # a restore point is untrusted input --------------------------------------
    def check_loader(self, content):
        """Refuse, before anything changes, when the tool that would load a restore point (``content``: a content
        move) cannot be kept from acting on this host (running commands, reading or writing files)."""

    def leftovers(self):
        """Warnings about what interrupted restores left beside the target that is never removed here."""
        return []

    @property
    def tables(self):
        """The tables a content dump is limited to (empty: the whole database)."""
        return list(self.options.get('tables') or [])

    def compare(self, db_manifest, point_id=None, location_pairs=(), quiesce=()):
        """One of ABSENT, EMPTY, IDENTICAL, DIFFERENT for this target against a manifest (restored with
        ``location_pairs`` and ``quiesce``)."""
        raise NotImplementedError

    def restore(self, source, db_manifest, keep_safety_copy=False, scratch_dir=None, point_id=None,
                location_pairs=(), quiesce=()):
        """Replace the target's content with the raw dump read from ``source``, then relocate the file rows
        and turn off ``quiesce``.

        Must keep a safety copy of what it replaces until the new content is in
        place and checked, and put it back if anything fails. Returns facts
        (``safety_copy``, ``relocations``, ``disabled``, optional ``warnings``).
        """
        raise NotImplementedError


def keep_file(path, directory, prefix):
    """Move the file ``path`` to a new private (0600) file named ``<prefix><random><extension>`` in ``directory``
    (never over an existing name or through a symlink); its new path."""
    fd, kept = tempfile.mkstemp(prefix=prefix, suffix=os.path.splitext(path)[1], dir=directory)
    os.close(fd)
    os.chmod(path, 0o600)
    try:
        os.replace(path, kept)
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
        # another file system: copy into the file made for it
        with open(path, 'rb') as source, open(kept, 'wb') as target:
            shutil.copyfileobj(source, target, CHUNK)
        os.unlink(path)
    return kept


def limit_facts(facts, tables):
    """Facts of a content dump: only the named tables, which must exist."""
    missing = [table for table in tables if table not in facts['row_counts']]
    if missing:
        raise CairnError('table(s) %s are not in the database; the tables are: %s'
                         % (', '.join(missing), ', '.join(sorted(facts['row_counts']))))
    facts['row_counts'] = {table: facts['row_counts'][table] for table in tables}
    facts['scope'] = {'tables': list(tables), 'data_only': True}
    return facts


class TextStream:
    """A readable byte stream of the text pieces (or their UTF-8 bytes) an iterator yields (SQL a loader is fed as
    it is made)."""

    def __init__(self, pieces):
        self._pieces = pieces
        self._buffer = b''

    def read(self, size=CHUNK):
        parts, length = [self._buffer], len(self._buffer)
        while length < size:
            piece = next(self._pieces, None)
            if piece is None:
                break
            data = piece if piece.__class__ is bytes else piece.encode('utf-8')
            parts.append(data)
            length += len(data)
        data = b''.join(parts)
        self._buffer = data[size:]
        return data[:size]
