# -*- coding: utf-8 -*-
# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""SQLite (DB_CLIENT=sqlite3) (private).

The dump uses SQLite's online backup API in a single step, so the copy is one
consistent snapshot even while CairnCMS keeps writing; it is never a plain
file copy. The artifact is that database file, compressed.

A restore point's data is untrusted (whoever can write the repository can forge
it): every connection that runs SQL from it, or writes to it, is made by
``harden`` with a ``Guard`` authorizer, so that it cannot attach other files,
load extensions or call file functions, change settings with a PRAGMA, or (in a
content move) do anything but insert rows into the named tables.
"""

from __future__ import annotations

import base64
import datetime
import io
import json
import os
import re
import shutil
import sqlite3
import stat
import tempfile
import urllib.parse

from ansible_collections.cairncms.ops.plugins.module_utils import _relocate, _rows, _scratch
from ansible_collections.cairncms.ops.plugins.module_utils._common import (
    CHUNK, AtomicFile, CairnError, HashingWriter, fsync_dir, process_start_time, sha256_file)
from ansible_collections.cairncms.ops.plugins.module_utils._env import Database
from ansible_collections.cairncms.ops.plugins.module_utils._db._base import (
    ABSENT, DIFFERENT, EMPTY, IDENTICAL, OUTWARD, DatabaseBackend, limit_facts, marker_matches, restore_marker)

SIDE_FILES = ('-wal', '-shm', '-journal')
_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
# A restore that relocated file rows leaves the restored file's sha256 here (the file is no longer the
# raw dump, whose hash otherwise tells that a target already holds a restore point).
MARKER_SUFFIX = '.cairn-restore.json'
# A restore stages the new file beside the database as ``.cairn-restore-<pid>-<start time>-<random>.sqlite3``;
# one left by a killed run (its process gone, or a name without a pid) is removed by the next restore.
STAGED_PREFIX = '.cairn-restore-'
STAGED = re.compile(r'^\.cairn-restore-(?:(\d+)-(\d+)-)?[A-Za-z0-9_]+\.sqlite3(?:-wal|-shm|-journal)?$')
SAFETY_INFIX = '.cairn-safety-'

# What SQL may never do on a restore point's data: functions that reach files or memory outside the database
# (most exist only in the sqlite3 shell or its extensions, which a hardened connection cannot load) and the
# PRAGMAs that only read (all others change settings or the file's structure).
FILE_FUNCTIONS = frozenset(('load_extension', 'fts3_tokenizer', 'readfile', 'writefile', 'edit', 'fsdir',
                            'lsmode', 'zipfile', 'sqlar_compress', 'sqlar_uncompress'))
READ_PRAGMAS = frozenset(('integrity_check', 'quick_check', 'table_info', 'table_xinfo', 'foreign_key_list'))
ANY = None  # a rule that allows an action on any table of the main database
_READING = (sqlite3.SQLITE_SELECT, sqlite3.SQLITE_READ, getattr(sqlite3, 'SQLITE_RECURSIVE', 33))
_WRITING = (sqlite3.SQLITE_INSERT, sqlite3.SQLITE_UPDATE, sqlite3.SQLITE_DELETE)
_SCHEMA_TABLES = ('sqlite_master', 'sqlite_temp_master', 'sqlite_schema', 'sqlite_temp_schema')
_ACTIONS = {getattr(sqlite3, name): name[7:].lower().replace('_', ' ') for name in (
    'SQLITE_ALTER_TABLE', 'SQLITE_ANALYZE', 'SQLITE_CREATE_INDEX', 'SQLITE_CREATE_TABLE', 'SQLITE_CREATE_TEMP_INDEX',
    'SQLITE_CREATE_TEMP_TABLE', 'SQLITE_CREATE_TEMP_TRIGGER', 'SQLITE_CREATE_TEMP_VIEW', 'SQLITE_CREATE_TRIGGER',
    'SQLITE_CREATE_VIEW', 'SQLITE_CREATE_VTABLE', 'SQLITE_DELETE', 'SQLITE_DROP_INDEX', 'SQLITE_DROP_TABLE',
    'SQLITE_DROP_TEMP_INDEX', 'SQLITE_DROP_TEMP_TABLE', 'SQLITE_DROP_TEMP_TRIGGER', 'SQLITE_DROP_TEMP_VIEW',
    'SQLITE_DROP_TRIGGER', 'SQLITE_DROP_VIEW', 'SQLITE_DROP_VTABLE', 'SQLITE_INSERT', 'SQLITE_REINDEX',
    'SQLITE_SAVEPOINT', 'SQLITE_TRANSACTION', 'SQLITE_UPDATE') if hasattr(sqlite3, name)}


class Guard:
    """The authorizer of a connection to a restore point's data (see ``harden``).

    Reading is always allowed, and so are the writes of the database's own triggers (inside it). Never allowed:
    ATTACH, DETACH, virtual table modules, ``FILE_FUNCTIONS``, PRAGMAs other than ``READ_PRAGMAS``. A statement
    may do more only when ``rules`` (``{action: table names or ANY}``, set with ``phase``) allow it. The first
    refusal is kept for ``error``."""

    def __init__(self, point_id=None, source='its database file', rules=None):
        self.point_id = point_id
        self.source = source
        self.rules = dict(rules or {})
        self.refused = None

    def phase(self, conn, rules):
        """Allow ``rules`` from now on. Setting the authorizer again expires the statements prepared under the
        rules before, so none of them runs again unchecked."""
        self.rules = dict(rules)
        conn.set_authorizer(self)

    def __call__(self, action, arg1, arg2, database, inner):
        if action in _READING:
            return sqlite3.SQLITE_OK
        if action == sqlite3.SQLITE_FUNCTION:
            allowed = (arg2 or '').lower() not in FILE_FUNCTIONS
        elif action == sqlite3.SQLITE_PRAGMA:
            allowed = (arg1 or '').lower() in READ_PRAGMAS
        elif database not in (None, 'main'):
            allowed = False
        elif inner is not None and action in _WRITING:
            allowed = True  # a trigger of the database writing inside it
        else:
            tables = self.rules.get(action, ())
            allowed = tables is ANY or (arg1 or '').lower() in tables
        return sqlite3.SQLITE_OK if allowed else self._deny(action, arg1, arg2, inner)

    def _deny(self, action, arg1, arg2, inner):
        if self.refused is None:
            self.refused = describe_action(action, arg1, arg2, inner)
        return sqlite3.SQLITE_DENY

    @property
    def point(self):
        return 'restore point %s' % self.point_id if self.point_id else 'the restore point'

    def error(self, exc, doing, unchanged):
        """The ``CairnError`` for ``exc`` (an SQLite error raised while ``doing``): the refusal when the guard
        refused something, the error itself otherwise; ``unchanged`` says what was left alone."""
        if self.refused:
            return CairnError('%s was refused, %s: %s tries to %s while %s; a restore never lets a restore point '
                              'reach files, extensions or settings outside its data (a forged or damaged repository?)'
                              % (self.point, unchanged, self.source, self.refused, doing))
        return CairnError('%s failed while %s, %s: %s' % (self.point, doing, unchanged, exc))


def describe_action(action, arg1, arg2, inner):
    """What an SQLite authorizer call asks for, in words."""
    if action == sqlite3.SQLITE_ATTACH:
        text = 'ATTACH the file %r' % arg1
    elif action == sqlite3.SQLITE_DETACH:
        text = 'DETACH %r' % arg1
    elif action == sqlite3.SQLITE_FUNCTION:
        text = 'call %s()' % arg2
    elif action == sqlite3.SQLITE_PRAGMA:
        text = 'run PRAGMA %s%s' % (arg1, '' if arg2 is None else ' = %s' % arg2)
    elif action == sqlite3.SQLITE_TRANSACTION:
        text = 'run %s (transaction control)' % arg1
    elif action in _WRITING and (arg1 or '').lower() in _SCHEMA_TABLES:
        text = 'change the schema (%s %s)' % (_ACTIONS[action], arg1)
    elif action in _ACTIONS:
        text = '%s %s' % (_ACTIONS[action], arg1)
    else:
        text = 'run SQL action %d on %s' % (action, arg1)
    return text + (' (in trigger or view %s)' % inner if inner else '')


def harden(conn, guard):
    """Make ``conn`` safe for a restore point's data: no extension loading, no functions of the schema that are
    not innocuous (``trusted_schema``), foreign keys and recursive triggers off as SQLite has them by default,
    and ``guard`` as its authorizer."""
    if hasattr(conn, 'enable_load_extension'):  # absent when Python's sqlite3 cannot load extensions at all
        conn.enable_load_extension(False)
    conn.execute('PRAGMA trusted_schema = OFF')
    conn.execute('PRAGMA foreign_keys = OFF')
    conn.execute('PRAGMA recursive_triggers = OFF')
    conn.set_authorizer(guard)
    return conn


def _uri(path, **params):
    query = urllib.parse.urlencode(params)
    return 'file:%s?%s' % (urllib.parse.quote(os.path.abspath(path)), query)


def connect_ro(path, immutable=False, guard=None):
    """A read-only connection, hardened with ``guard`` (reading only, by default)."""
    if immutable:
        conn = sqlite3.connect(_uri(path, mode='ro', immutable=1), uri=True)
    else:
        conn = sqlite3.connect(_uri(path, mode='ro'), uri=True, timeout=30)
    try:
        return harden(conn, guard or Guard())
    except BaseException:
        conn.close()
        raise


def connect_rw(path, guard):
    """A hardened connection that writes, in autocommit mode (the caller opens its transaction)."""
    conn = sqlite3.connect(path, timeout=60, isolation_level=None)
    try:
        return harden(conn, guard)
    except BaseException:
        conn.close()
        raise


def tables(conn):
    rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' "
                        "AND name NOT LIKE 'sqlite_%' ORDER BY name").fetchall()
    return [row[0] for row in rows]


def read_rows(conn, names):
    """``{table: [row as a dict]}`` of the tables among ``names`` that ``conn`` has (blobs as hex text)."""
    present = set(tables(conn))
    found = {}
    for name in names:
        if name in present:
            cursor = conn.execute('SELECT * FROM "%s"' % name.replace('"', '""'))
            columns = [column[0] for column in cursor.description]
            found[name] = [{column: value.hex() if isinstance(value, bytes) else value
                            for column, value in zip(columns, row)} for row in cursor]
    return found


def describe(conn):
    """Row counts per table and the CMS migration level."""
    names = tables(conn)
    counts = {}
    for name in names:
        counts[name] = conn.execute('SELECT COUNT(*) FROM "%s"' % name.replace('"', '""')).fetchone()[0]
    level = None
    if 'directus_migrations' in names:
        row = conn.execute('SELECT version FROM directus_migrations ORDER BY version DESC LIMIT 1').fetchone()
        level = row[0] if row else None
    return {'row_counts': counts, 'migration_level': level}


def integrity(conn, quick=False):
    rows = conn.execute('PRAGMA quick_check' if quick else 'PRAGMA integrity_check').fetchall()
    return 'ok' if rows == [('ok',)] else '; '.join(str(row[0]) for row in rows[:5])


def _take_ownership(path, reference, mode=None):
    """Give ``path`` the owner of ``reference`` (when allowed) and its mode (or ``mode``)."""
    info = os.stat(reference)
    if os.geteuid() == 0:
        os.chown(path, info.st_uid, info.st_gid)
    os.chmod(path, mode if mode is not None else info.st_mode & 0o7777)


class SqliteBackend(DatabaseBackend):
    vendor = 'sqlite'
    artifact_format = 'sqlite3'
    artifact_ext = 'sqlite3'
    digest_raw = True  # the restored file is the raw dump: its hash says whether a target already holds it
    point_id = None    # the restore point whose staged file this backend writes (``execute``, ``relocate``)

    @property
    def path(self):
        return self.database.options['filename']

    def probe(self):
        exists = os.path.isfile(self.path)
        return {'vendor': self.vendor, 'server_version': sqlite3.sqlite_version,
                'path': self.path, 'exists': exists,
                'size_bytes': os.path.getsize(self.path) if exists else None}

    def _require_source(self):
        if not os.path.isfile(self.path):
            raise CairnError('the SQLite database %s (DB_FILENAME) does not exist; check cairn_env_file '
                             'and cairn_instance_dir' % self.path)

    def dump(self, sink, scratch_dir):
        self._require_source()
        fd, tmp = tempfile.mkstemp(prefix='.cairn-dump-', suffix='.sqlite3', dir=scratch_dir or _scratch.directory())
        os.close(fd)
        try:
            source = sqlite3.connect(_uri(self.path, mode='ro'), uri=True, timeout=60)
            target = sqlite3.connect(tmp)
            try:
                # pages=-1: the whole database in one step, under one read transaction.
                source.backup(target, pages=-1)
            except sqlite3.Error as exc:
                hint = '; is the disk holding %s full?' % scratch_dir if 'disk I/O' in str(exc) else ''
                raise CairnError('SQLite online backup of %s failed: %s%s' % (self.path, exc, hint))
            finally:
                target.close()
                source.close()
            # The instance's own data, read as it is (a restore point's data is read through ``connect_ro``).
            conn = sqlite3.connect(_uri(tmp, mode='ro', immutable=1), uri=True)
            try:
                check = integrity(conn)
                if check != 'ok':
                    raise CairnError('the backup copy of %s fails PRAGMA integrity_check: %s; the source '
                                     'database is damaged' % (self.path, check))
                facts = describe(conn)
                if self.read:
                    facts['rows'] = read_rows(conn, self.read)
                self.capture_rows(row_tables(conn) if self.rows_out else [], _ranged(conn, tmp),
                                  counts=facts['row_counts'],
                                  bounds=lambda name, key: conn.execute(self.bounds_sql(name, key)).fetchone())
                if self.tables:
                    facts = limit_facts(facts, self.tables)
                    prefixes = tuple('INSERT INTO %s VALUES' % self.quote(table) for table in self.tables)
                    for statement in conn.iterdump():
                        if statement.startswith(prefixes):
                            sink.write(statement.encode('utf-8') + b'\n')
            finally:
                conn.close()
            if not self.tables:
                with open(tmp, 'rb') as handle:
                    shutil.copyfileobj(handle, sink, CHUNK)
        finally:
            for suffix in ('',) + SIDE_FILES:
                if os.path.exists(tmp + suffix):
                    os.unlink(tmp + suffix)
        facts.update({'server_version': sqlite3.sqlite_version, 'integrity_check': 'ok'})
        return facts

    def inspect(self):
        self._require_source()
        conn = connect_ro(self.path)
        try:
            facts = describe(conn)
            facts['integrity_check'] = integrity(conn)
        except sqlite3.DatabaseError as exc:
            raise CairnError('cannot read the SQLite database %s: %s' % (self.path, exc))
        finally:
            conn.close()
        return facts

    def files(self):
        self._require_source()
        conn = connect_ro(self.path)
        try:
            if 'directus_files' not in tables(conn):
                return []
            rows = conn.execute('SELECT id, storage, filename_disk, filesize FROM directus_files').fetchall()
        finally:
            conn.close()
        return [{'id': row[0], 'storage': row[1], 'filename_disk': row[2],
                 'filesize': None if row[3] is None else int(row[3])} for row in rows]

    def read_tables(self, names):
        self._require_source()
        conn = connect_ro(self.path)
        try:
            return read_rows(conn, names)
        finally:
            conn.close()

    def query(self, sql):
        conn = connect_ro(self.path)
        try:
            return [list(row) for row in conn.execute(sql).fetchall()]
        finally:
            conn.close()

    def has_table(self, name):
        return bool(self.query("SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = '%s'"
                               % name.replace("'", "''"))[0][0])

    def execute(self, sql):
        """Our own UPDATEs of ``turn_off``, on the staged file of a restore (``point_id`` names its restore point):
        the file's triggers fire, under a guard that lets nothing reach outside the file."""
        guard = Guard(self.point_id, rules={sqlite3.SQLITE_TRANSACTION: ANY,
                                            sqlite3.SQLITE_UPDATE: frozenset(OUTWARD.values())})
        conn = connect_rw(self.path, guard)
        try:
            conn.executescript('BEGIN IMMEDIATE;\n%s\nCOMMIT;\n' % sql)
        except sqlite3.Error as exc:
            raise guard.error(exc, 'turning off %s' % ' and '.join(sorted(OUTWARD)), 'the target was not touched')
        finally:
            conn.close()

    def restore_content(self, source, tables, location_pairs=(), point_id=None):
        removed = self.clear_leftovers()
        names = frozenset(table.lower() for table in tables)
        guard = Guard(point_id, 'its content SQL')
        # Our own statements: the transaction, emptying the tables, relocating the file rows. The restore point's:
        # INSERT into the named tables, nothing else (no ATTACH, PRAGMA, transaction control, other tables).
        ours = {sqlite3.SQLITE_TRANSACTION: ANY, sqlite3.SQLITE_DELETE: names,
                sqlite3.SQLITE_UPDATE: frozenset(('directus_files',))}
        theirs = {sqlite3.SQLITE_INSERT: names}
        conn = connect_rw(self.path, guard)
        moved = []
        try:
            guard.phase(conn, ours)
            conn.execute('BEGIN IMMEDIATE')
            for table in tables:
                conn.execute('DELETE FROM %s' % self.quote(table))
            guard.phase(conn, theirs)
            statement = ''
            for line in io.TextIOWrapper(source, encoding='utf-8', newline='\n'):
                statement += line
                if sqlite3.complete_statement(statement):
                    conn.execute(statement)
                    statement = ''
                    if not conn.in_transaction:
                        raise CairnError('%s was refused, nothing was changed: its content SQL ended the '
                                         'transaction of the content move' % guard.point)
            if statement.strip():
                raise CairnError('the content dump ends in the middle of a statement')
            guard.phase(conn, ours)
            moved = _relocate_rows(conn, location_pairs)
            conn.execute('COMMIT')
        except (sqlite3.Error, sqlite3.Warning) as exc:
            _rollback(conn, guard, ours)
            raise guard.error(exc, 'loading the rows of %s into %s' % (', '.join(tables), self.path),
                              'nothing was changed')
        except BaseException:
            _rollback(conn, guard, ours)
            raise
        finally:
            conn.close()
        return {'relocations': moved, 'leftovers_removed': removed}

    def relocate(self, location_pairs):
        return _relocate_file(self.path, location_pairs, self.point_id)

    @property
    def marker_path(self):
        return self.path + MARKER_SUFFIX

    def _marker(self):
        try:
            with open(self.marker_path, 'rb') as handle:
                return json.loads(handle.read().decode('utf-8'))
        except (OSError, ValueError):
            return {}

    def compare(self, db_manifest, point_id=None, location_pairs=(), quiesce=()):
        if not os.path.exists(self.path):
            return ABSENT
        if os.path.getsize(self.path) == 0 and not self._has_side_data():
            return EMPTY
        if not self._has_side_data():
            digest = sha256_file(self.path)[0]
            rewritten = bool(location_pairs) or bool(quiesce)
            if not rewritten and digest == db_manifest.get('raw_sha256'):
                return IDENTICAL
            if rewritten and marker_matches(self._marker(), point_id, digest, location_pairs, quiesce):
                return IDENTICAL
        try:
            conn = connect_ro(self.path)
            try:
                if not tables(conn):
                    return EMPTY
            finally:
                conn.close()
        except sqlite3.DatabaseError:
            pass
        return DIFFERENT

    def _has_side_data(self):
        return any(os.path.exists(self.path + side) and os.path.getsize(self.path + side) > 0
                   for side in ('-wal', '-journal'))

    def leftovers(self):
        """Warnings about safety copies beside the database: a restore that was killed before it finished leaves the
        database it replaced in ``<DB_FILENAME>.cairn-safety-*`` (as ``keep_safety_copy`` does on purpose); it is
        never removed here."""
        directory = os.path.dirname(self.path) or '.'
        prefix = os.path.basename(self.path) + SAFETY_INFIX
        try:
            names = sorted(os.listdir(directory))
        except OSError:
            return []
        return ['%s holds the database as it was before an earlier restore (kept with keep_safety_copy, or left by '
                'a restore that was interrupted); it is never removed by cairncms.ops: move it back or delete it '
                'yourself' % os.path.join(directory, name) for name in names
                if name.startswith(prefix) and _is(stat.S_ISDIR, os.path.join(directory, name))]

    def clear_leftovers(self):
        """Remove the staged files that killed restores left beside the database (regular files with our exact
        name whose process is gone; never a symlink); the paths removed."""
        directory = os.path.dirname(self.path) or '.'
        removed = []
        for name in sorted(os.listdir(directory)):
            match = STAGED.match(name)
            if not match:
                continue
            if match.group(1) and process_start_time(int(match.group(1))) == int(match.group(2)):
                continue  # another restore that is still running
            path = os.path.join(directory, name)
            if _is(stat.S_ISREG, path):
                os.unlink(path)
                removed.append(path)
        return removed

    def restore(self, source, db_manifest, keep_safety_copy=False, scratch_dir=None, point_id=None,
                location_pairs=(), quiesce=()):
        directory = os.path.dirname(self.path)
        if not os.path.isdir(directory):
            raise CairnError('the directory %s for DB_FILENAME does not exist; create it first' % directory)
        removed = self.clear_leftovers()
        pid = os.getpid()
        fd, staged = tempfile.mkstemp(prefix='%s%d-%d-' % (STAGED_PREFIX, pid, process_start_time(pid) or 0),
                                      suffix='.sqlite3', dir=directory)
        safety = None
        try:
            with os.fdopen(fd, 'wb') as handle:
                hashed = HashingWriter(handle)
                shutil.copyfileobj(source, hashed, CHUNK)
                handle.flush()
                os.fsync(handle.fileno())
            if hashed.sha256 != db_manifest.get('raw_sha256'):
                raise CairnError('the restored database stream does not match the manifest (sha256 %s, '
                                 'expected %s); the target was not touched'
                                 % (hashed.sha256, db_manifest.get('raw_sha256')))
            guard = Guard(point_id)
            try:
                conn = connect_ro(staged, immutable=True, guard=guard)
                try:
                    check = integrity(conn)
                finally:
                    conn.close()
            except sqlite3.Error as exc:
                raise guard.error(exc, 'checking its integrity', 'the target was not touched')
            if check != 'ok':
                raise CairnError('the database in the restore point fails PRAGMA integrity_check (%s); '
                                 'the target was not touched' % check)
            # The file rows move, and flows and webhooks are turned off, before the file is put in place: the
            # target never holds them unmoved or active. Both run under a guard: the file's own triggers fire.
            moved = _relocate_file(staged, location_pairs, point_id, 'the target was not touched')
            stage = type(self)(Database(self.vendor, self.database.client, {'filename': staged}))
            stage.point_id = point_id
            turned = stage.turn_off(quiesce)
            self.pass_gate()
            _take_ownership(staged, self.path if os.path.exists(self.path) else directory,
                            None if os.path.exists(self.path) else 0o600)
            safety = self._set_aside()
            os.replace(staged, self.path)
            fsync_dir(directory)
            try:
                conn = connect_ro(self.path, guard=Guard(point_id))
                try:
                    check = integrity(conn, quick=True)
                finally:
                    conn.close()
                if check != 'ok':
                    raise CairnError('the restored database fails PRAGMA quick_check: %s' % check)
            except Exception:
                self._put_back(safety)
                safety = None
                raise
        finally:
            for suffix in ('',) + SIDE_FILES:
                if os.path.lexists(staged + suffix):
                    os.unlink(staged + suffix)
        self._record(point_id, location_pairs, quiesce)
        kept = None
        if safety:
            if keep_safety_copy:
                kept = safety
            else:
                shutil.rmtree(safety)
        return {'safety_copy': kept, 'relocations': moved, 'disabled': turned, 'leftovers_removed': removed}

    def _record(self, point_id, location_pairs, quiesce=()):
        """Leave the marker of a relocating or quiescing restore beside the database (or remove a stale one)."""
        if not location_pairs and not quiesce:
            if os.path.exists(self.marker_path):
                os.unlink(self.marker_path)
            return
        marker = restore_marker(point_id, sha256_file(self.path)[0], location_pairs, quiesce)
        with AtomicFile(self.marker_path, mode=0o600) as handle:
            handle.write(json.dumps(marker, sort_keys=True).encode('utf-8'))

    def _set_aside(self):
        """Move the current database and its side files into a safety directory."""
        present = [suffix for suffix in ('',) + SIDE_FILES if os.path.exists(self.path + suffix)]
        if not present:
            return None
        safety = tempfile.mkdtemp(prefix=os.path.basename(self.path) + '.cairn-safety-',
                                  dir=os.path.dirname(self.path))
        for suffix in present:
            os.rename(self.path + suffix, os.path.join(safety, os.path.basename(self.path) + suffix))
        fsync_dir(os.path.dirname(self.path))
        return safety

    def _put_back(self, safety):
        for suffix in ('',) + SIDE_FILES:
            if os.path.exists(self.path + suffix):
                os.unlink(self.path + suffix)
        if safety:
            for name in os.listdir(safety):
                os.rename(os.path.join(safety, name), os.path.join(os.path.dirname(self.path), name))
            os.rmdir(safety)
        fsync_dir(os.path.dirname(self.path))

    # typed rows (the rows part, migrations between vendors) ----------------
    def row_tables(self):
        self._require_source()
        conn = connect_ro(self.path)
        try:
            return row_tables(conn)
        finally:
            conn.close()

    def write_rows(self, writer, tables):
        self._require_source()
        # one read transaction for every table
        conn = connect_ro(self.path, guard=Guard(rules={sqlite3.SQLITE_TRANSACTION: ANY}))
        try:
            conn.execute('BEGIN')
            write_rows(conn, writer, tables)
        finally:
            conn.close()

    @staticmethod
    def widen_float(table, column):
        """SQLite's floats are doubles already."""
        return column['native']

    def empty_tables(self):
        """Remove the database file (a migration's target goes back to absent)."""
        for suffix in ('',) + SIDE_FILES:
            if os.path.lexists(self.path + suffix):
                os.unlink(self.path + suffix)

    def load_rows(self, tables, loads, content=False):
        """Replace the content of every table of ``tables`` (``row_tables`` of this target) by the rows of ``loads``
        (an iterator of ``(table, target columns, rows of neutral values)``) in one transaction, foreign keys not
        checked while loading (SQLite's default); ``sqlite_sequence`` is set past the highest id. A failure rolls
        it all back. A ``content`` move empties only ``tables`` (``loads`` may add rows to others)."""
        conn = sqlite3.connect(self.path, timeout=60, isolation_level=None)
        try:
            conn.execute('PRAGMA foreign_keys = OFF')
            conn.execute('BEGIN IMMEDIATE')
            try:
                for table in (reversed(tables) if content else tables):
                    conn.execute('DELETE FROM "%s"' % table['name'].replace('"', '""'))
                loaded = []
                for name, columns, rows in loads:
                    loaded.append({'name': name, 'columns': columns})
                    sql = 'INSERT INTO "%s" (%s) VALUES (%s)' % (
                        name.replace('"', '""'), ', '.join('"%s"' % c['name'].replace('"', '""') for c in columns),
                        ', '.join('?' for _c in columns))
                    conn.executemany(sql, ([sqlite_value(column, item) for column, item in zip(columns, values)]
                                           for values in rows))
                if 'sqlite_sequence' in {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}:
                    for table in (loaded if content else tables):
                        serial = [c['name'] for c in table['columns'] if c.get('serial')]
                        conn.execute('DELETE FROM sqlite_sequence WHERE name = ?', (table['name'],))
                        if serial:
                            conn.execute('INSERT INTO sqlite_sequence (name, seq) SELECT ?, MAX("%s") FROM "%s" '
                                         'HAVING MAX("%s") IS NOT NULL' % ((serial[0].replace('"', '""'),
                                                                           table['name'].replace('"', '""'),
                                                                           serial[0].replace('"', '""'))),
                                         (table['name'],))
                conn.execute('COMMIT')
            except BaseException:
                conn.execute('ROLLBACK')
                raise
        except sqlite3.Error as exc:
            raise CairnError('loading rows into the SQLite database %s failed: %s' % (self.path, exc)) from None
        finally:
            conn.close()


def _relocate_rows(conn, location_pairs):
    """Count and move the file rows inside the caller's transaction; ``[{from, to, rows}]``."""
    if not location_pairs:
        return []
    counted = conn.execute(_relocate.count_sql(location_pairs)).fetchall()
    conn.execute(_relocate.update_sql(location_pairs))
    return _relocate.relocations(location_pairs, counted)


def _is(kind, path):
    """Whether ``path`` itself (never what a symlink points at) is of ``kind`` (``stat.S_ISDIR``...)."""
    try:
        return kind(os.lstat(path).st_mode)
    except FileNotFoundError:
        return False


def _rollback(conn, guard, rules):
    """Roll back an open transaction of a guarded connection (under ``rules``, which allow it)."""
    if conn.in_transaction:
        guard.phase(conn, rules)
        conn.execute('ROLLBACK')


def _relocate_file(path, location_pairs, point_id=None, unchanged='nothing was changed'):
    """Move the file rows of the database ``path`` in one transaction, under a guard (its triggers fire);
    ``unchanged`` says what a failure leaves alone."""
    if not location_pairs:
        return []
    rules = {sqlite3.SQLITE_TRANSACTION: ANY, sqlite3.SQLITE_UPDATE: frozenset(('directus_files',))}
    guard = Guard(point_id, rules=rules)
    conn = connect_rw(path, guard)
    try:
        conn.execute('BEGIN IMMEDIATE')
        moved = _relocate_rows(conn, location_pairs)
        conn.execute('COMMIT')
    except sqlite3.Error as exc:
        _rollback(conn, guard, rules)
        raise guard.error(exc, 'relocating the directus_files rows', unchanged)
    finally:
        conn.close()
    return moved


# typed rows (the rows part, migrations between vendors) --------------------------------------------------------
# SQLite keeps any value in any column: a column's value type comes from its declared type, and for a timestamp (which
# SQLite declares ``datetime`` like a dateTime) from the CMS's own flag on the field (``directus_fields.special``).
DECLARED = (('bool', 'boolean'), ('int', 'integer'), ('uuid', 'uuid'), ('json', 'json'), ('timestamp', 'datetime'),
            ('datetime', 'datetime'), ('date', 'date'), ('time', 'time'), ('char', 'string'), ('clob', 'string'),
            ('text', 'string'), ('blob', 'binary'), ('real', 'float'), ('floa', 'float'), ('doub', 'float'),
            ('dec', 'decimal'), ('numeric', 'decimal'))
SPECIAL = {'cast-timestamp': 'timestamp', 'cast-boolean': 'boolean', 'cast-json': 'json'}


def _declared(declared):
    lowered = (declared or '').lower()
    for fragment, kind in DECLARED:
        if fragment in lowered:
            return kind
    return 'string'


def row_tables(conn):
    """Every table with its columns (and their value types), primary and foreign keys."""
    fields = {}
    if 'directus_fields' in tables(conn):
        for collection, field, special in conn.execute('SELECT collection, field, special FROM directus_fields'):
            for flag in str(special or '').split(','):
                if flag.strip() in SPECIAL:
                    fields[(collection, field)] = SPECIAL[flag.strip()]
    found = []
    for name in tables(conn):
        quoted = name.replace('"', '""')
        columns, keyed = [], []
        for _cid, column, declared, notnull, _default, primary in conn.execute('PRAGMA table_info("%s")' % quoted):
            kind = fields.get((name, column)) or _declared(declared)
            columns.append({'name': column, 'type': kind, 'native': declared, 'nullable': not notnull})
            if kind == 'float':
                columns[-1]['no_nan'] = True  # SQLite stores a NaN as NULL
            if kind in ('timestamp', 'datetime'):
                columns[-1]['fsp'] = 3  # written as the CMS writes them, in epoch milliseconds
            if primary:
                keyed.append((primary, column))
        keys = {}
        for row in conn.execute('PRAGMA foreign_key_list("%s")' % quoted):
            key = keys.setdefault(row[0], {'name': 'fk_%s_%d' % (name, row[0]), 'table': row[2], 'columns': [],
                                           'referenced': []})
            key['columns'].append(row[3])
            key['referenced'].append(row[4])
        if len(keyed) == 1 and _declared(columns[[c['name'] for c in columns].index(keyed[0][1])]['native']) \
                == 'integer':
            columns[[c['name'] for c in columns].index(keyed[0][1])]['serial'] = True
        found.append({'name': name, 'columns': columns, 'primary_key': [column for _n, column in sorted(keyed)],
                      'foreign_keys': [keys[number] for number in sorted(keys)]})
    return found


def _ranged(conn, path):
    """``stream(writer, found, where=None)`` of ``capture_rows`` for the immutable copy ``path`` open as ``conn``:
    a range of a table (``where``) is read through a connection of its own, which a forked process may open."""
    def stream(writer, found, where=None):
        if where is None:
            write_rows(conn, writer, found)
            return
        own = sqlite3.connect(_uri(path, mode='ro', immutable=1), uri=True)
        try:
            write_rows(own, writer, found, where)
        finally:
            own.close()
    return stream


def write_rows(conn, writer, found, where=None):
    """Stream the rows of ``found`` (``row_tables``) from ``conn`` into a ``_rows.Writer``; ``where``: table -> an
    SQL condition, the rows of that table to read."""
    where = where or {}
    for table in found:
        writer.begin(table)
        readers = [_rows.reader(column['type']) for column in table['columns']]
        names = ', '.join('"%s"' % column['name'].replace('"', '""') for column in table['columns'])
        condition = ' WHERE %s' % where[table['name']] if table['name'] in where else ''
        cursor = conn.execute('SELECT %s FROM "%s"%s' % (names, table['name'].replace('"', '""'), condition))
        for row in cursor:
            writer.row([read(raw) for read, raw in zip(readers, row)])
        writer.end()


def sqlite_value(column, item):
    """A neutral value (already the target column's type) as this vendor stores it, as the CMS writes it: booleans
    as 0 and 1, dates and times of day with a date as epoch milliseconds."""
    if item is None:
        return None
    kind = column['type']
    if kind == 'boolean':
        return 1 if item else 0
    if kind == 'float' and isinstance(item, str):
        return float(item.replace('Infinity', 'inf'))
    if kind == 'binary':
        return base64.b64decode(item)
    if kind in ('timestamp', 'datetime', 'date'):
        moment = datetime.datetime.fromisoformat(item.rstrip('Z') if len(item) > 10 else item + 'T00:00:00')
        moment = moment.replace(tzinfo=datetime.timezone.utc)
        return (moment - _EPOCH) // datetime.timedelta(milliseconds=1)
    return item
