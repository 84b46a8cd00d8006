# -*- coding: utf-8 -*-
# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""SQLite (DB_CLIENT=sqlite3) (private).

The dump uses SQLite's online backup API in a single step, so the copy is one
consistent snapshot even while CairnCMS keeps writing; it is never a plain
file copy. The artifact is that database file, compressed.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import sqlite3
import tempfile
import urllib.parse

from ansible_collections.cairncms.ops.plugins.module_utils import _relocate
from ansible_collections.cairncms.ops.plugins.module_utils._common import (
    CHUNK, AtomicFile, CairnError, HashingWriter, fsync_dir, sha256_file)
from ansible_collections.cairncms.ops.plugins.module_utils._env import Database
from ansible_collections.cairncms.ops.plugins.module_utils._db._base import (
    ABSENT, DIFFERENT, EMPTY, IDENTICAL, DatabaseBackend, limit_facts, marker_matches, restore_marker)

SIDE_FILES = ('-wal', '-shm', '-journal')
# A restore that relocated file rows leaves the restored file's sha256 here (the file is no longer the
# raw dump, whose hash otherwise tells that a target already holds a restore point).
MARKER_SUFFIX = '.cairn-restore.json'


def _uri(path, **params):
    query = urllib.parse.urlencode(params)
    return 'file:%s?%s' % (urllib.parse.quote(os.path.abspath(path)), query)


def connect_ro(path, immutable=False):
    if immutable:
        return sqlite3.connect(_uri(path, mode='ro', immutable=1), uri=True)
    return sqlite3.connect(_uri(path, mode='ro'), uri=True, timeout=30)


def tables(conn):
    rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' "
                        "AND name NOT LIKE 'sqlite_%' ORDER BY name").fetchall()
    return [row[0] for row in rows]


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
        fd, tmp = tempfile.mkstemp(prefix='.cairn-dump-', suffix='.sqlite3', dir=scratch_dir)
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
            conn = connect_ro(tmp, immutable=True)
            try:
                check = integrity(conn)
                if check != 'ok':
                    raise CairnError('the backup copy of %s fails PRAGMA integrity_check: %s; the source '
                                     'database is damaged' % (self.path, check))
                facts = describe(conn)
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
        conn = sqlite3.connect(self.path, timeout=60, isolation_level=None)
        try:
            conn.executescript('BEGIN IMMEDIATE;\n%s\nCOMMIT;\n' % sql)
        finally:
            conn.close()

    def restore_content(self, source, tables, location_pairs=()):
        conn = sqlite3.connect(self.path, timeout=60, isolation_level=None)
        moved = []
        try:
            conn.execute('BEGIN IMMEDIATE')
            for table in tables:
                conn.execute('DELETE FROM %s' % self.quote(table))
            statement = ''
            for line in io.TextIOWrapper(source, encoding='utf-8', newline='\n'):
                statement += line
                if sqlite3.complete_statement(statement):
                    conn.execute(statement)
                    statement = ''
            if statement.strip():
                raise CairnError('the content dump ends in the middle of a statement')
            moved = _relocate_rows(conn, location_pairs)
            conn.execute('COMMIT')
        except sqlite3.Error as exc:
            conn.execute('ROLLBACK')
            raise CairnError('loading the content into %s failed, nothing was changed: %s' % (self.path, exc))
        except BaseException:
            if conn.in_transaction:
                conn.execute('ROLLBACK')
            raise
        finally:
            conn.close()
        return {'relocations': moved}

    def relocate(self, location_pairs):
        conn = sqlite3.connect(self.path, timeout=60, isolation_level=None)
        try:
            return _relocate_file(conn, self.path, location_pairs)
        finally:
            conn.close()

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

    def restore(self, source, db_manifest, keep_safety_copy=False, scratch_dir=None, point_id=None,
                location_pairs=(), quiesce=()):
        directory = os.path.dirname(self.path)
        if not os.path.isdir(directory):
            raise CairnError('the directory %s for DB_FILENAME does not exist; create it first' % directory)
        fd, staged = tempfile.mkstemp(prefix='.cairn-restore-', suffix='.sqlite3', dir=directory)
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
            conn = connect_ro(staged, immutable=True)
            try:
                check = integrity(conn)
            finally:
                conn.close()
            if check != 'ok':
                raise CairnError('the database in the restore point fails PRAGMA integrity_check (%s); '
                                 'the target was not touched' % check)
            # The file rows move, and flows and webhooks are turned off, before the file is put in place: the
            # target never holds them unmoved or active.
            conn = sqlite3.connect(staged, isolation_level=None)
            try:
                moved = _relocate_file(conn, staged, location_pairs)
            finally:
                conn.close()
            turned = type(self)(Database(self.vendor, self.database.client, {'filename': staged})).turn_off(quiesce)
            _take_ownership(staged, self.path if os.path.exists(self.path) else directory,
                            None if os.path.exists(self.path) else 0o600)
            safety = self._set_aside()
            os.replace(staged, self.path)
            fsync_dir(directory)
            try:
                conn = connect_ro(self.path)
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
            if os.path.exists(staged):
                os.unlink(staged)
        self._record(point_id, location_pairs, quiesce)
        kept = None
        if safety:
            if keep_safety_copy:
                kept = safety
            else:
                shutil.rmtree(safety)
        return {'safety_copy': kept, 'relocations': moved, 'disabled': turned}

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


def _relocate_rows(conn, location_pairs):
    """Count and move the file rows inside the caller's transaction; ``[{from, to, rows}]``."""
    if not location_pairs:
        return []
    counted = conn.execute(_relocate.count_sql(location_pairs)).fetchall()
    conn.execute(_relocate.update_sql(location_pairs))
    return _relocate.relocations(location_pairs, counted)


def _relocate_file(conn, path, location_pairs):
    """Move the file rows of the database ``path`` (opened as ``conn``, autocommit) in one transaction."""
    if not location_pairs:
        return []
    try:
        conn.execute('BEGIN IMMEDIATE')
        moved = _relocate_rows(conn, location_pairs)
        conn.execute('COMMIT')
    except sqlite3.Error as exc:
        if conn.in_transaction:
            conn.execute('ROLLBACK')
        raise CairnError('relocating the directus_files rows of %s failed, nothing was changed: %s' % (path, exc))
    return moved
