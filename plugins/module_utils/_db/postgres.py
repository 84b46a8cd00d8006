# -*- coding: utf-8 -*-
# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PostgreSQL (DB_CLIENT=pg) through pg_dump, pg_restore and psql (private).

The dump runs in a snapshot exported by a helper session, so the row counts
recorded in the manifest are those of the dump exactly, however busy the
server is. The password goes to the tools in PGPASSWORD, never in argv.

A restore point is untrusted input. A full restore goes through pg_restore,
which runs no client commands. A content move is plain SQL, which psql would
also read for its backslash commands (``\\!`` runs a shell): psql gets it in
restricted mode (``\\restrict`` with a key of our own, ``PsqlScript``), and a
psql too old for that mode is refused before anything changes.
"""

from __future__ import annotations

import base64
import decimal
import json
import os
import re
import secrets
import shutil
import tarfile
import tempfile
import threading
import uuid

from ansible_collections.cairncms.ops.plugins.module_utils import _process, _rows, _scratch
from ansible_collections.cairncms.ops.plugins.module_utils._common import CHUNK, CairnError
from ansible_collections.cairncms.ops.plugins.module_utils._db._base import (
    ABSENT, DIFFERENT, EMPTY, IDENTICAL, DatabaseBackend, TextStream, feed_collecting, limit_facts, marker_matches,
    restore_marker, tagged_relocations)

CLIENT_PACKAGE = 'the PostgreSQL client tools (Debian: postgresql-client)'
FORMATS = {'custom': 'pgdump', 'directory': 'pgdir.tar'}
TABLES_SQL = ("SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
              "WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema') "
              "AND n.nspname NOT LIKE 'pg_toast%' AND n.nspname NOT LIKE 'pg_temp%' ORDER BY 1, 2")
CHANGES_SQL = 'SELECT COALESCE(SUM(n_tup_ins + n_tup_upd + n_tup_del), 0) FROM pg_stat_user_tables'
# psql understands \restrict from these minor releases on (and in every major release after 17).
RESTRICT_SINCE = {13: 22, 14: 19, 15: 14, 16: 10, 17: 6}
RESTRICT_VERSIONS = '13.22, 14.19, 15.14, 16.10, 17.6'
# What pg_dump writes at statement level of a plain dump: its own \restrict and \unrestrict lines, and the start
# of a COPY data block, which ends with a line \. (inside it every line is data).
_META_LINE = re.compile(rb'^\\(?:un)?restrict(?:[ \t\r\n]|$)')
_COPY_START = re.compile(rb'^COPY .* FROM stdin;[ \t\r]*\n?$', re.IGNORECASE)


def _ident(name):
    return '"%s"' % name.replace('"', '""')


def _literal(text):
    return "'%s'" % text.replace("'", "''")


def supports_restrict(version):
    """Whether psql ``version`` (``15.14``, ``18beta3``, ``19devel``) has the restricted mode (``\\restrict``)."""
    match = re.match(r'(\d+)(?:\.(\d+))?', version or '')
    if not match:
        return False
    major, minor = int(match.group(1)), int(match.group(2) or 0)
    return major > max(RESTRICT_SINCE) or minor >= RESTRICT_SINCE.get(major, float('inf'))


class PsqlScript:
    """A plain SQL dump of a restore point as psql input in restricted mode: first ``\\restrict <key>`` (every
    backslash command of the input is then refused, and only our random key would lift it), then ``prefix``, the
    dump and ``suffix``. The ``\\restrict``/``\\unrestrict`` lines pg_dump (13.22, 14.19, 15.14, 16.10, 17.6 and
    newer) writes into plain dumps are dropped at statement level; inside COPY data nothing is changed."""

    def __init__(self, source, prefix=b'', suffix=b''):
        self.key = secrets.token_hex(24)
        self._source = source
        self._out = [b'\\restrict ' + self.key.encode() + b'\n' + prefix]
        self._suffix = suffix
        self._pending = []
        self._copy = False
        self._done = False

    def read(self, size=CHUNK):
        while True:
            while self._out:
                chunk = self._out.pop(0)
                if chunk:
                    return chunk
            if self._done:
                return b''
            data = self._source.read(size)
            if data:
                cut = data.rfind(b'\n') + 1
                if not cut:  # no line ends yet: keep it (a list, so that a long line costs no quadratic copying)
                    self._pending.append(data)
                    continue
                block = b''.join(self._pending) + data[:cut]
                self._pending = [data[cut:]]
            else:
                block, self._pending, self._done = b''.join(self._pending), [], True
            self._out.append(self._filter(block))
            if self._done:
                self._out.append(self._suffix)

    def _filter(self, block):
        """``block`` (whole lines, or the rest of the input) without pg_dump's meta-command lines."""
        kept = []
        pos = 0
        while pos < len(block):
            if self._copy:  # COPY data up to its end line \.
                if block.startswith(b'\\.\n', pos):
                    end = pos + 3
                else:
                    end = block.find(b'\n\\.\n', pos)
                    if end < 0:
                        kept.append(block[pos:])
                        break
                    end += 4
                kept.append(block[pos:end])
                pos, self._copy = end, False
                continue
            newline = block.find(b'\n', pos)
            end = len(block) if newline < 0 else newline + 1
            line = block[pos:end]
            if not _META_LINE.match(line):
                kept.append(line)
            self._copy = bool(_COPY_START.match(line))
            pos = end
        return b''.join(kept)


# Debian's pg_wrapper, which /usr/bin/psql, pg_dump and pg_restore are, and where it finds the versions installed.
WRAPPER = 'pg_wrapper'
BINROOT = '/usr/lib/postgresql'
SYSCONFDIR = '/etc/postgresql-common'  # where the wrapper has libpq look for pg_service.conf
_VERSION_DIR = re.compile(r'^\d+(\.\d+)?$')


def unwrapped(path, name, binroot=BINROOT):
    """The program ``path`` runs. Debian's pg_wrapper, a perl script that costs about 20 ms a call, picks a
    version's program by the target cluster, except when PGHOST is set: then it runs the newest installed
    version's program, with PGSYSCONFDIR set to /etc/postgresql-common when unset. These tools always run with
    PGHOST set (``env``), so that program is run directly, and ``env`` sets PGSYSCONFDIR as the wrapper would. Any
    other ``path`` is kept, as is the wrapper when no installed version has the program."""
    if os.path.basename(os.path.realpath(path)) != WRAPPER:
        return path
    try:
        entries = os.listdir(binroot)
    except OSError:
        return path
    found = [(tuple(int(part) for part in entry.split('.')), os.path.join(binroot, entry, 'bin', name))
             for entry in entries if _VERSION_DIR.match(entry)]
    found = sorted(item for item in found if os.access(item[1], os.X_OK))
    return found[-1][1] if found else path


def _major(version):
    match = re.search(r'(\d+)(?:\.(\d+))?', version or '')
    if not match:
        return None
    major = int(match.group(1))
    return major if major >= 10 else major * 10 + int(match.group(2) or 0)


class PostgresBackend(DatabaseBackend):
    vendor = 'postgres'

    def __init__(self, database, options=None):
        super().__init__(database, options)
        self.format = self.options.get('format') or 'custom'
        if self.format not in FORMATS:
            raise CairnError('PostgreSQL dump format %r is not known; use custom or directory' % self.format)
        self.jobs = max(1, int(self.options.get('jobs') or 1))
        self.artifact_format = 'pg_dump-' + self.format
        self.artifact_ext = FORMATS[self.format]
        self.raw_is_compressed = self.format == 'directory' and not self.tables
        self._tools = {}

    # plumbing -------------------------------------------------------------
    def tool(self, name):
        if name not in self._tools:
            self._tools[name] = unwrapped(_process.find_tool([name], name, CLIENT_PACKAGE), name)
        return self._tools[name]

    @property
    def name(self):
        return self.database.options['database']

    def env(self, database=None):
        options = self.database.options
        env = {'PGHOST': options['host'], 'PGUSER': options['user'], 'PGDATABASE': database or self.name,
               'PGCONNECT_TIMEOUT': '15', 'PGAPPNAME': 'cairncms.ops', 'PGOPTIONS': '-c statement_timeout=0'}
        if not os.environ.get('PGSYSCONFDIR') and os.path.isdir(SYSCONFDIR):
            env['PGSYSCONFDIR'] = SYSCONFDIR  # as Debian's pg_wrapper sets it (see ``unwrapped``)
        if options.get('port'):
            env['PGPORT'] = str(options['port'])
        if options.get('password'):
            env['PGPASSWORD'] = options['password']
        ssl = options.get('ssl') or {}
        if ssl:
            mode = ssl.get('mode')
            if not mode:
                mode = 'require' if ssl.get('reject_unauthorized') is False else (
                    'verify-full' if ssl.get('ca') or ssl.get('ca_file') else 'require')
            env['PGSSLMODE'] = str(mode)
            for key, variable in (('ca', 'PGSSLROOTCERT'), ('cert', 'PGSSLCERT'), ('key', 'PGSSLKEY')):
                path = ssl.get(key + '_file') or ssl.get(key)
                if path and os.path.exists(str(path)):
                    env[variable] = str(path)
        return env

    @property
    def secrets(self):
        return [self.database.options.get('password')]

    def psql(self, sql, database=None):
        """Run SQL; return rows as lists of strings."""
        out = _process.run([self.tool('psql'), '-X', '-q', '-A', '-t', '-F', '\t', '-v', 'ON_ERROR_STOP=1',
                            '--no-password'], env=self.env(database), secrets=self.secrets,
                           stdin=sql.encode('utf-8'), what='psql')
        return [line.split('\t') for line in out.splitlines() if line]

    def tool_version(self, name):
        if ('version', name) not in self._tools:
            out = _process.run([self.tool(name), '--version'], what=name)
            match = re.search(r'\(PostgreSQL\) (\S+)', out)
            self._tools[('version', name)] = match.group(1) if match else out.strip()
        return self._tools[('version', name)]

    # facts ----------------------------------------------------------------
    def _exists(self):
        """Whether the database exists; also learns the server version (one connection)."""
        if getattr(self, '_known', None) is None:
            try:
                version = self.psql('SHOW server_version')[0][0]
                exists = True
            except CairnError as exc:
                if 'does not exist' not in exc.message or self.name not in exc.message:
                    raise CairnError('cannot connect to PostgreSQL %s:%s as %s: %s' % (
                        self.database.options['host'], self.database.options.get('port') or 5432,
                        self.database.options['user'], exc.message))
                version, exists = self.psql('SHOW server_version', database='postgres')[0][0], False
            self._known = (exists, version.split(' ')[0])
        return self._known[0]

    def forget(self):
        """Drop what ``_exists`` learnt (the database was created or dropped)."""
        self._known = None

    def server_version(self):
        self._exists()
        return self._known[1]

    def probe(self):
        exists = self._exists()
        return {'vendor': self.vendor, 'server_version': self.server_version(), 'exists': exists,
                'path': '%s:%s/%s' % (self.database.options['host'], self.database.options.get('port') or 5432,
                                      self.name)}

    def _facts(self, snapshot=None):
        """Exact row counts of every table and the migration level, in one query (in ``snapshot``)."""
        count = ("(xpath('/row/n/text()', query_to_xml(format('SELECT COUNT(*) AS n FROM %I.%I', n.nspname, "
                 "c.relname), false, true, '')))[1]::text")
        level = ("(xpath('/row/v/text()', query_to_xml('SELECT MAX(version) AS v FROM directus_migrations', "
                 "false, true, '')))[1]::text")
        sql = TABLES_SQL.replace('SELECT n.nspname, c.relname', "SELECT 't', n.nspname, c.relname, " + count)
        sql += (" ;SELECT 'm', '', '', %s WHERE to_regclass('directus_migrations') IS NOT NULL" % level)
        if snapshot:
            sql = ('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SET TRANSACTION SNAPSHOT %s; %s; COMMIT'
                   % (_literal(snapshot), sql))
        counts, migration = {}, None
        for kind, schema, table, value in self.psql(sql):
            if kind == 't':
                counts[table if schema == 'public' else '%s.%s' % (schema, table)] = int(value)
            else:
                migration = value or None
        facts = {'row_counts': counts, 'migration_level': migration}
        if self.read:
            facts['rows'] = self._rows([name for name in self.read if name in counts], snapshot)
        return facts

    def _rows(self, names, snapshot=None):
        """``{table: [row]}`` of ``names`` (tables that exist), each row as row_to_json gives it (in ``snapshot``)."""
        if not names:
            return {}
        sql = '; '.join("SELECT %s, row_to_json(t)::text FROM %s t" % (_literal(name), _ident(name)) for name in names)
        if snapshot:
            sql = ('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SET TRANSACTION SNAPSHOT %s; %s; COMMIT'
                   % (_literal(snapshot), sql))
        found = {name: [] for name in names}
        for name, text in self.psql(sql):
            found[name].append(json.loads(text))
        return found

    def read_tables(self, names):
        if not self._exists():
            raise CairnError('the PostgreSQL database %s does not exist' % self.name)
        present = {row[0] for row in self.psql(
            "SELECT c.relname FROM pg_class c WHERE c.relkind IN ('r', 'p') AND pg_table_is_visible(c.oid)")}
        return self._rows([name for name in names if name in present])

    def inspect(self):
        if not self._exists():
            raise CairnError('the PostgreSQL database %s does not exist' % self.name)
        return self._facts()

    def files(self):
        rows = self.psql("SELECT to_regclass('directus_files') IS NOT NULL")
        if rows[0][0] != 't':
            return []
        rows = self.psql('SELECT id, storage, filename_disk, filesize FROM directus_files')
        return [{'id': r[0], 'storage': r[1], 'filename_disk': r[2] or None,
                 'filesize': int(r[3]) if r[3] else None} for r in rows]

    # dump -----------------------------------------------------------------
    def check_tool_version(self, server_version):
        tool = self.tool_version('pg_dump')
        if _major(tool) is not None and _major(server_version) is not None and _major(tool) < _major(server_version):
            raise CairnError('pg_dump %s is older than the PostgreSQL %s server and cannot dump it; install the '
                             'client tools of version %d or newer (Debian: postgresql-client-%d)'
                             % (tool, server_version, _major(server_version), _major(server_version)))
        return tool

    def dump(self, sink, scratch_dir):
        if not self._exists():
            raise CairnError('the PostgreSQL database %s does not exist' % self.name)
        server = self.server_version()
        tool_version = self.check_tool_version(server)
        session = _process.Streaming([self.tool('psql'), '-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1',
                                      '--no-password'], env=self.env(), secrets=self.secrets, mode='rw',
                                     what='psql (snapshot session)')
        try:
            session.write(b'BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY;\nSELECT pg_export_snapshot();\n')
            session.flush()
            snapshot = ''
            while not re.match(r'^[0-9A-F]+-[0-9A-F]+-[0-9]+$', snapshot):
                line = session.readline()
                if not line:
                    break
                snapshot = line.decode('utf-8', 'replace').strip()
            if not re.match(r'^[0-9A-F]+-[0-9A-F]+-[0-9]+$', snapshot):
                session.abort()
                raise CairnError('could not export a snapshot from PostgreSQL: %s' % (session.stderr_tail() or snapshot))
            # Count rows in the same snapshot while pg_dump runs.
            counting = _Background(self._facts, snapshot)
            if self.tables:
                self._dump_content(sink, snapshot)
            elif self.format == 'custom':
                self._dump_custom(sink, snapshot)
            else:
                self._dump_directory(sink, snapshot, scratch_dir)
            facts = counting.result()
            if self.tables:
                facts = limit_facts(facts, self.tables)
            self.capture_rows(self.row_tables(snapshot) if self.rows_out else [],
                              lambda writer, tables, where=None: self.write_rows(writer, tables, snapshot, where),
                              counts=facts['row_counts'], bounds=lambda name, key: self._bounds(name, key, snapshot))
        except BaseException:
            session.abort()
            raise
        session.write(b'COMMIT;\n')
        session.finish()
        facts.update({'server_version': server, 'dump_tool': 'pg_dump', 'dump_tool_version': tool_version,
                      'jobs': self.jobs if self.format == 'directory' else 1})
        return facts

    def _dump_custom(self, sink, snapshot, extra=('--format=custom', '--compress=0')):
        _process.Streaming([self.tool('pg_dump'), '--no-password', '--snapshot=' + snapshot] + list(extra),
                           env=self.env(), secrets=self.secrets, what='pg_dump').pump_out(sink)

    def _qualified(self, key):
        schema, _dot, table = key.rpartition('.')
        return '%s.%s' % (_ident(schema or 'public'), _ident(table))

    def _dump_content(self, sink, snapshot):
        self._dump_custom(sink, snapshot, ['--format=plain', '--data-only', '--no-owner', '--no-privileges']
                          + ['--table=' + self._qualified(table) for table in self.tables])

    def query(self, sql):
        return self.psql(sql)

    def has_table(self, name):
        return self.psql('SELECT to_regclass(%s) IS NOT NULL' % _literal(_ident(name))) == [['t']]

    def check_loader(self, content):
        if not content:
            return  # a full restore goes through pg_restore, which runs no client commands
        version = self.tool_version('psql')
        if not supports_restrict(version):
            raise CairnError('psql %s has no restricted mode (\\restrict), so a content move, whose plain SQL could '
                             'make psql run shell commands or write files on this host, is refused; nothing was '
                             'changed. Install psql %s or newer (Debian: postgresql-client)'
                             % (version, RESTRICT_VERSIONS))

    def restore_content(self, source, tables, location_pairs=(), point_id=None):
        self.check_loader(content=True)
        qualified = ', '.join(self._qualified(table) for table in tables)
        # A plain dump empties search_path; the file rows are relocated where the CMS finds them.
        suffix = ('\nRESET search_path;\n' + self.relocation_sql(location_pairs)) if location_pairs else ''
        load = _process.Streaming([self.tool('psql'), '-X', '-q', '-A', '-t', '-F', '\t', '-v', 'ON_ERROR_STOP=1',
                                   '--single-transaction', '--no-password'], env=self.env(), secrets=self.secrets,
                                  mode='rw', what='psql')
        script = PsqlScript(source, ('TRUNCATE %s;\n' % qualified).encode(), suffix.encode('utf-8'))
        try:
            rows = feed_collecting(load, script)
        except CairnError as exc:
            if 'backslash commands are restricted' in exc.message:
                raise CairnError('restore point %s was refused, nothing was changed: its content SQL holds a psql '
                                 'backslash command, which would run on this host (a shell command, a file read or '
                                 'written); psql refused it in restricted mode (a forged or damaged repository?): %s'
                                 % (point_id, exc.message))
            raise
        self.psql('ANALYZE ' + qualified)
        return {'relocations': tagged_relocations(location_pairs, rows)}

    def _dump_directory(self, sink, snapshot, scratch_dir):
        work = tempfile.mkdtemp(prefix='.cairn-pgdir-', dir=scratch_dir or _scratch.directory())
        try:
            target = os.path.join(work, 'dump')
            level = str(min(9, max(0, int(self.options.get('level') or 6))))
            _process.run([self.tool('pg_dump'), '--format=directory', '--jobs=%d' % self.jobs, '--compress=' + level,
                          '--no-password', '--snapshot=' + snapshot, '--file=' + target],
                         env=self.env(), secrets=self.secrets, what='pg_dump')
            with tarfile.open(fileobj=sink, mode='w|', format=tarfile.PAX_FORMAT) as archive:
                for name in sorted(os.listdir(target)):
                    archive.add(os.path.join(target, name), arcname=name, recursive=False)
        finally:
            shutil.rmtree(work, ignore_errors=True)

    # restore --------------------------------------------------------------
    def _marker(self):
        rows = self.psql("SELECT COALESCE(shobj_description(oid, 'pg_database'), '') FROM pg_database "
                         "WHERE datname = current_database()")
        try:
            return json.loads(rows[0][0]) if rows and rows[0][0] else {}
        except ValueError:
            return {}

    def _changes(self):
        return int(self.psql('SELECT pg_stat_clear_snapshot(); ' + CHANGES_SQL)[-1][0])

    def compare(self, db_manifest, point_id=None, location_pairs=(), quiesce=()):
        if not self._exists():
            return ABSENT
        if not self.psql(TABLES_SQL):
            return EMPTY
        if marker_matches(self._marker(), point_id, self._changes(), location_pairs, quiesce):
            return IDENTICAL
        return DIFFERENT

    def create_database(self):
        try:
            self.psql('CREATE DATABASE %s' % _ident(self.name), database='postgres')
            self.forget()
        except CairnError as exc:
            raise CairnError('the PostgreSQL database %s does not exist and could not be created (%s); create it, '
                             'or give %s the CREATEDB right' % (self.name, exc.message, self.database.options['user']))

    def restore(self, source, db_manifest, keep_safety_copy=False, scratch_dir=None, point_id=None,
                location_pairs=(), quiesce=()):
        if not self._exists():
            self.create_database()

        def load(work):
            self._restore_stream(source, db_manifest['format'], work)
            self.psql('ANALYZE')  # here, not after: beside the files a restore stages while the database loads
        return self.replace_under_safety_copy(load, keep_safety_copy, scratch_dir, point_id, location_pairs, quiesce)

    def take_safety_copy(self, work):
        if not self.psql(TABLES_SQL):
            return None
        safety = os.path.join(work, 'safety.pgdump')
        _process.run([self.tool('pg_dump'), '--format=custom', '--no-password', '--file=' + safety],
                     env=self.env(), secrets=self.secrets, what='pg_dump (safety copy)')
        return safety

    def put_back(self, safety, work):
        _process.run(self._restore_args() + [safety], env=self.env(), secrets=self.secrets,
                     what='pg_restore (safety copy)')

    def _restore_args(self):
        return [self.tool('pg_restore'), '--clean', '--if-exists', '--no-owner', '--exit-on-error', '--no-password',
                '--dbname=' + self.name]

    def _restore_stream(self, source, fmt, work):
        if fmt == 'pg_dump-directory':
            target = os.path.join(work, 'dump')
            os.mkdir(target, 0o700)
            with tarfile.open(fileobj=source, mode='r|') as archive:
                for member in archive:
                    if not member.isfile() or '/' in member.name or member.name.startswith('.'):
                        raise CairnError('unexpected entry %r in the PostgreSQL directory dump' % member.name)
                    archive.extract(member, target, set_attrs=False)
            _process.run(self._restore_args() + ['--format=directory', '--jobs=%d' % self.jobs, target],
                         env=self.env(), secrets=self.secrets, what='pg_restore')
            return
        _process.Streaming(self._restore_args() + ['--format=custom', '--single-transaction'], env=self.env(),
                           secrets=self.secrets, mode='w', what='pg_restore').pump_in(source)

    def after_restore(self, point_id, location_pairs=(), quiesce=()):
        try:
            marker = json.dumps(restore_marker(point_id, self._changes(), location_pairs, quiesce))
            self.psql('COMMENT ON DATABASE %s IS %s' % (_ident(self.name), _literal(marker)))
        except CairnError as exc:
            return ['could not record the restore in the database comment (%s); a second restore of the same '
                    'restore point will not recognise it' % exc.message]
        return []

    # typed rows (the rows part, migrations between vendors) ----------------
    # PostgreSQL types as the rows stream's value types (others are read and written as text).
    NEUTRAL = {'int2': ('integer', {'bits': 16}), 'int4': ('integer', {'bits': 32}),
               'int8': ('integer', {'bits': 64}), 'numeric': ('decimal', {}), 'float4': ('float', {'single': True}),
               'float8': ('float', {}), 'bool': ('boolean', {}), 'varchar': ('string', {}), 'bpchar': ('string', {}),
               'text': ('string', {}), 'uuid': ('uuid', {}), 'json': ('json', {}), 'jsonb': ('json', {}),
               'timestamptz': ('timestamp', {}), 'timestamp': ('datetime', {}), 'date': ('date', {}),
               'time': ('time', {}), 'timetz': ('time', {}), 'bytea': ('binary', {})}
    _SESSION = "SET TimeZone = 'UTC'; SET DateStyle = 'ISO, YMD'; SET extra_float_digits = 1; "
    _TABLES_JSON = (
        "SELECT json_build_object('name', c.relname, 'columns', (SELECT json_agg(json_build_object("
        "'name', a.attname, 'udt', t.typname, 'native', format_type(a.atttypid, a.atttypmod), 'typmod', a.atttypmod, "
        "'nullable', NOT a.attnotnull, 'serial', pg_get_serial_sequence(format('%I', c.relname), a.attname) "
        "IS NOT NULL OR a.attidentity <> '') ORDER BY a.attnum) FROM pg_attribute a JOIN pg_type t "
        "ON t.oid = a.atttypid WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped), "
        "'primary_key', (SELECT json_agg(a.attname ORDER BY u.i) FROM pg_constraint k, unnest(k.conkey) "
        "WITH ORDINALITY u(n, i) JOIN pg_attribute a ON a.attnum = u.n WHERE k.conrelid = c.oid "
        "AND a.attrelid = c.oid AND k.contype = 'p'), "
        "'foreign_keys', (SELECT json_agg(json_build_object('name', k.conname, 'table', f.relname, "
        "'definition', pg_get_constraintdef(k.oid), 'columns', (SELECT json_agg(a.attname ORDER BY u.i) "
        "FROM unnest(k.conkey) WITH ORDINALITY u(n, i) JOIN pg_attribute a ON a.attnum = u.n "
        "AND a.attrelid = k.conrelid)) ORDER BY k.conname) FROM pg_constraint k JOIN pg_class f "
        "ON f.oid = k.confrelid WHERE k.conrelid = c.oid AND k.contype = 'f'))::text "
        "FROM pg_class c WHERE c.relkind IN ('r', 'p') AND c.relnamespace = current_schema()::regnamespace "
        "ORDER BY c.relname")

    def _snapshot_sql(self, sql, snapshot):
        if not snapshot:
            return sql
        return ('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SET TRANSACTION SNAPSHOT %s; %s; COMMIT'
                % (_literal(snapshot), sql))

    @classmethod
    def _column(cls, found):
        kind, extra = cls.NEUTRAL.get(found['udt'], ('string', {}))
        column = dict(extra, name=found['name'], type=kind, native=found['native'], nullable=found['nullable'])
        typmod = int(found.get('typmod') or -1)
        if found['udt'] in ('varchar', 'bpchar') and typmod > 4:
            column['max_length'] = typmod - 4
        if found['udt'] == 'numeric' and typmod > 4:
            column['precision'], column['scale'] = ((typmod - 4) >> 16) & 0xffff, (typmod - 4) & 0xffff
        if found.get('serial'):
            column['serial'] = True
        if kind in ('timestamp', 'datetime', 'time'):
            column['fsp'] = typmod if 0 <= typmod <= 6 else 6
        if kind in ('string', 'json'):
            column['no_nul'] = True
        return column

    def row_tables(self, snapshot=None):
        """Every table of the CMS's schema with its columns (and their value types), primary and foreign keys."""
        tables = []
        for (text,) in self.psql(self._snapshot_sql(self._TABLES_JSON, snapshot)):
            found = json.loads(text)
            tables.append({'name': found['name'], 'columns': [self._column(c) for c in found['columns'] or []],
                           'primary_key': found['primary_key'] or [], 'foreign_keys': found['foreign_keys'] or []})
        return tables

    @staticmethod
    def _select(column):
        name = _ident(column['name'])
        return "encode(%s, 'hex')" % name if column['type'] == 'binary' else '%s::text' % name

    def _bounds(self, name, key, snapshot):
        """The lowest and highest value of the key column ``key`` of table ``name`` (in ``snapshot``), as text."""
        found = self.psql(self._snapshot_sql(self.bounds_sql(name, key), snapshot))
        return found[0] if found else None

    def write_rows(self, writer, tables, snapshot=None, where=None):
        """Stream the rows of ``tables`` (``row_tables``, in that order) into a ``_rows.Writer`` (in ``snapshot``):
        one psql session, one COPY per table, a marker line between them; ``where``: table -> an SQL condition, the
        rows of that table to read."""
        where = where or {}
        script = self._SESSION + ''.join(
            "COPY (SELECT json_build_object('cairn_table', %s)) TO STDOUT; "
            "COPY (SELECT json_build_array(%s) FROM %s%s) TO STDOUT;\n"
            % (_literal(table['name']), ', '.join(self._select(c) for c in table['columns']), _ident(table['name']),
               ' WHERE %s' % where[table['name']] if table['name'] in where else '') for table in tables)
        session = _process.Streaming([self.tool('psql'), '-X', '-q', '-v', 'ON_ERROR_STOP=1', '--no-password'],
                                     env=self.env(), secrets=self.secrets, mode='rw', what='psql (rows)')
        feeder = threading.Thread(target=_feed_script, args=(session, self._snapshot_sql(script, snapshot)),
                                  daemon=True)
        feeder.start()
        by_name = {table['name']: table for table in tables}
        current = None
        try:
            for line in iter(session.readline, b''):
                line = line.rstrip(b'\n').replace(b'\\\\', b'\\')
                if line.startswith(b'{'):
                    if current is not None:
                        writer.end()
                    current = by_name[json.loads(line)['cairn_table']]
                    writer.begin(current)
                    readers = [_rows.reader(column['type'], hexadecimal=True) for column in current['columns']]
                    continue
                writer.row([read(raw) for read, raw in zip(readers, json.loads(line))])
            if current is not None:
                writer.end()
        except BaseException:
            session.abort()
            raise
        feeder.join()
        session.finish()

    # What ::text writes (in the session of _SESSION) of each kind of column, as a function of a neutral value: the
    # load's check (_rows.Fingerprint). Single-precision floats, jsonb (it normalises), times with a zone and types
    # the CMS does not make have none: their tables are read back instead.
    _TEXT_NATIVES = ('character varying', 'character', 'text', 'json')

    def fingerprint_renderers(self, columns):
        """Per column, the function writing a neutral value as this database's ``fingerprint_sql`` does; None when
        a column has none."""
        renderers = []
        for column in columns:
            native, kind = str(column.get('native') or '').lower(), column['type']
            base = native.split('(', 1)[0].strip()
            if kind == 'integer' and base in ('smallint', 'integer', 'bigint'):
                renderers.append(str)
            elif kind == 'boolean' and base == 'boolean':
                renderers.append(lambda item: 'true' if item else 'false')
            elif kind == 'decimal' and base == 'numeric':
                renderers.append(_rows.decimal_text(column.get('scale')))
            elif kind in ('string', 'json') and base in self._TEXT_NATIVES:
                renderers.append(lambda item: item)
            elif kind == 'uuid' and base == 'uuid':
                renderers.append(_uuid_text)
            elif kind == 'timestamp' and base == 'timestamp with time zone':
                renderers.append(_rows.stamp_text(None, '+00'))
            elif (kind, base) in (('datetime', 'timestamp without time zone'), ('time', 'time without time zone')):
                renderers.append(_rows.stamp_text(None))
            elif kind == 'date' and base == 'date':
                renderers.append(lambda item: item)
            elif kind == 'binary' and base == 'bytea':
                renderers.append(lambda item: base64.b64decode(item).hex())
            elif kind == 'float' and base == 'double precision' and (_major(self.server_version()) or 0) >= 12:
                renderers.append(_float_text)  # the shortest form is PostgreSQL 12's; 11 writes 16 digits
            else:
                return None
        return renderers

    @staticmethod
    def fingerprint_sql(name, columns, where=None):
        """SQL giving the table's name, row count and the sum of ``_rows.Fingerprint`` over ``columns`` (of the rows
        ``where`` holds for)."""
        values = []
        for column in columns:
            text = ("encode(%s, 'hex')" if column['type'] == 'binary' else '%s::text') % _ident(column['name'])
            values.append("COALESCE(octet_length(convert_to(%s, 'UTF8'))::text || ':' || %s, 'N')" % (text, text))
        condition = ' WHERE ' + where if where else ''
        return ("SELECT %s, count(*), COALESCE(sum(('x' || left(encode(sha256(convert_to(%s, 'UTF8')), 'hex'), 15))"
                "::bit(60)::bigint), 0) FROM %s%s" % (_literal(name), ' || '.join(values), _ident(name), condition))

    def table_fingerprints(self, tables, where=None):
        """``{name: (rows, checksum)}`` of ``tables`` (``(name, columns)``), as ``_rows.Fingerprint`` has them
        (``where``: name -> the condition of the rows to count)."""
        if not tables:
            return {}
        found = self.psql(self._SESSION + ''.join(self.fingerprint_sql(name, columns, (where or {}).get(name)) + ';\n'
                                                  for name, columns in tables))
        return {row[0]: (int(row[1]), row[2]) for row in found if len(row) == 3}

    def widen_float(self, table, column):
        """Make a float column hold doubles (a migration's target, for a source whose values are doubles)."""
        self.psql('ALTER TABLE %s ALTER COLUMN %s TYPE double precision' % (_ident(table), _ident(column['name'])))
        return 'double precision'

    def empty_tables(self):
        """Drop every table, view and sequence of the CMS's schema (a migration's target goes back to empty)."""
        self.psql("DO $$ DECLARE r record; BEGIN FOR r IN SELECT c.relname, c.relkind FROM pg_class c "
                  "WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm') LOOP "
                  "EXECUTE format(CASE r.relkind WHEN 'v' THEN 'DROP VIEW IF EXISTS %I CASCADE' WHEN 'm' THEN "
                  "'DROP MATERIALIZED VIEW IF EXISTS %I CASCADE' ELSE 'DROP TABLE IF EXISTS %I CASCADE' END, "
                  "r.relname); END LOOP; FOR r IN SELECT c.relname FROM pg_class c WHERE c.relnamespace = "
                  "current_schema()::regnamespace AND c.relkind = 'S' LOOP EXECUTE format('DROP SEQUENCE IF EXISTS "
                  "%I CASCADE', r.relname); END LOOP; END $$")

    @staticmethod
    def copy_value(column, item):
        """A neutral value (already the target column's type) as a field of COPY's text format."""
        return _copy_writer(column)(item)

    @staticmethod
    def rows_text(name, columns):
        """``(head, render, tail)``: what the load writes before the rows of table ``name`` (``columns``: the target
        columns loaded; a COPY), a function giving the text of a list of rows (neutral values of those columns: lines
        of COPY's text format), and what it writes after them."""
        writers = [_copy_writer(column) for column in columns]

        def render(rows):
            return ''.join(['\t'.join([write(item) for write, item in zip(writers, values)]) + '\n' for values in rows])
        return ('COPY %s (%s) FROM STDIN;\n' % (_ident(name), ', '.join(_ident(c['name']) for c in columns)), render,
                '\\.\n')

    def load_rows(self, tables, loads, content=False):
        """Replace the content of every table of ``tables`` (``row_tables`` of this target) by the rows of
        ``loads`` (an iterator of ``(table, target columns, rows of neutral values or their text already rendered:
        ``_rows.rendered``)``) in one transaction: the foreign keys are dropped first and made again at the end
        (which checks them), every table is emptied, and the sequences are set past the highest id. A failure rolls
        it all back. A ``content`` move keeps the foreign keys (checked row by row: the rows come parents first) and
        empties only ``tables`` (children first), which other tables' rows must not point at; ``loads`` may add rows
        to other tables."""
        def script():
            yield self._SESSION + 'SET client_min_messages = warning;\n'
            if content:
                for table in reversed(tables):
                    yield 'DELETE FROM %s;\n' % _ident(table['name'])
            else:
                for table in tables:
                    for key in table['foreign_keys']:
                        yield 'ALTER TABLE %s DROP CONSTRAINT %s;\n' % (_ident(table['name']), _ident(key['name']))
                if tables:
                    yield 'TRUNCATE %s RESTART IDENTITY;\n' % ', '.join(_ident(table['name']) for table in tables)
            loaded = []
            for name, columns, rows in loads:
                loaded.append({'name': name, 'columns': columns, 'foreign_keys': []})
                yield from _rows.rendered(rows, *self.rows_text(name, columns))
            for table in (loaded if content else tables):
                for key in table['foreign_keys']:
                    yield 'ALTER TABLE %s ADD CONSTRAINT %s %s;\n' % (
                        _ident(table['name']), _ident(key['name']), key['definition'])
                for column in table['columns']:
                    if column.get('serial'):
                        yield ("SELECT setval(pg_get_serial_sequence(%s, %s), COALESCE(MAX(%s), 0) + 1, false) "
                               "FROM %s;\n" % (_literal(_ident(table['name'])), _literal(column['name']),
                                               _ident(column['name']), _ident(table['name'])))
            yield 'ANALYZE %s;\n' % ', '.join(_ident(table['name']) for table in loaded) if content and loaded \
                else ('ANALYZE;\n' if not content else '')
        load = _process.Streaming([self.tool('psql'), '-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1',
                                   '--single-transaction', '--no-password'], env=self.env(), secrets=self.secrets,
                                  mode='w', what='psql (rows)')
        load.pump_in(TextStream(script()))


class _Background(threading.Thread):
    """Run ``function(*args)`` in a thread; ``result()`` joins and returns or raises."""

    def __init__(self, function, *args):
        super().__init__(daemon=True)
        self._call = (function, args)
        self._value = self._error = None
        self.start()

    def run(self):
        try:
            self._value = self._call[0](*self._call[1])
        except CairnError as exc:
            self._error = exc

    def result(self):
        self.join()
        if self._error:
            raise self._error
        return self._value


def _float_text(item):
    """A double as float8 writes it with extra_float_digits 1: the shortest digits that read back as the same double
    (Python's ``repr`` finds the same), in exponent form below 1e-4 and from 1e15 on."""
    if item.__class__ is str:
        return item  # NaN, Infinity, -Infinity
    number = decimal.Decimal(repr(float(item)))
    if number.is_zero():
        return '-0' if number.is_signed() else '0'
    sign, digits, exponent = number.normalize().as_tuple()
    first = len(digits) - 1 + exponent
    if first < -4 or first >= 15:
        text = ''.join(map(str, digits))
        power = 'e%s%02d' % ('+' if first >= 0 else '-', abs(first))
        text = text[0] + ('.' + text[1:] if len(text) > 1 else '') + power
    else:
        text = format(abs(number).normalize(), 'f')
    return '-' + text if sign else text


def _uuid_text(item):
    """A UUID as the uuid type writes it (lower case, with hyphens)."""
    if len(item) == 36 and item[8] == item[13] == item[18] == item[23] == '-' and item == item.lower():
        return item
    try:
        return str(uuid.UUID(item))
    except ValueError:
        return item


def _copy_text(text):
    """A text as a field of COPY's text format (most text has no character to escape: one scan each)."""
    if '\\' in text or '\n' in text or '\r' in text or '\t' in text:
        return text.replace('\\', '\\\\').replace('\n', '\\n').replace('\r', '\\r').replace('\t', '\\t')
    return text


def _copy_writer(column):
    """A function of one neutral value (already the target column's type) giving its field of COPY's text format."""
    kind = column['type']
    if kind == 'boolean':
        return lambda item: '\\N' if item is None else ('t' if item else 'f')
    if kind == 'binary':
        return lambda item: '\\N' if item is None else '\\\\x' + base64.b64decode(item).hex()
    if kind in ('integer', 'float'):
        return lambda item: '\\N' if item is None else (repr(item) if item.__class__ is float else str(item))
    return lambda item: '\\N' if item is None else _copy_text(item)


def _feed_script(session, script):
    try:
        session.write(script.encode('utf-8'))
        session.proc.stdin.close()
    except (CairnError, OSError):
        pass  # the reader sees psql's failure
