# -*- coding: utf-8 -*-
# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""MySQL and MariaDB (DB_CLIENT=mysql) through mariadb-dump/mysqldump and the client (private).

The credentials reach the tools in a 0600 ``--defaults-extra-file`` that is
removed afterwards, never in argv. For row counts that match the dump exactly,
a helper session holds ``FLUSH TABLES WITH READ LOCK`` only until both a
counting session and the dump have opened their consistent snapshots (writes
wait for a moment, as with ``--master-data``); without the RELOAD privilege
the counts come from a snapshot opened just before the dump and the manifest
says so (``row_counts_consistent: false``).

A restore point is untrusted input, and the client executes its own commands
found in the SQL it reads (``system``/``\\!`` runs a shell, ``tee`` writes a
file, ``source`` reads one): every restore feeds it with the strongest guard
the installed client has (``guard_options``), and without one it is refused.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
import tempfile
import threading

from ansible_collections.cairncms.ops.plugins.module_utils import _process, _rows, _scratch
from ansible_collections.cairncms.ops.plugins.module_utils._common import CairnError
from ansible_collections.cairncms.ops.plugins.module_utils._db._base import (
    ABSENT, DIFFERENT, EMPTY, IDENTICAL, DatabaseBackend, TextStream, feed_collecting, limit_facts, marker_matches,
    restore_marker, tagged_relocations)

CLIENT_PACKAGE = 'the MariaDB or MySQL client (Debian: mariadb-client)'
DUMP_OPTIONS = ['--single-transaction', '--routines', '--triggers', '--events', '--hex-blob', '--quick',
                '--no-tablespaces', '--skip-dump-date', '--default-character-set=utf8mb4']
CONTENT_OPTIONS = ['--no-create-info', '--skip-triggers', '--single-transaction', '--hex-blob', '--quick',
                   '--skip-add-locks', '--skip-disable-keys', '--no-tablespaces', '--skip-dump-date',
                   '--default-character-set=utf8mb4']
STARTED = (b'CREATE TABLE', b'INSERT INTO', b'-- Dumping data for table', b'-- Dump completed')
# The clients that can be kept from running their own commands on the SQL they read, and how.
GUARDED_CLIENTS = ('the MariaDB client 10.5.25, 10.6.18, 10.11.8, 11.0.6, 11.1.5, 11.2.4, 11.4.2 or newer (--sandbox), '
                   'or the MySQL client 8.0.40, 8.4.3, 9.1.0 or newer (--system-command=OFF, or --commands=OFF where '
                   'it has it)')
# What the guarded client says when the SQL holds a command it refuses.
REFUSALS = ('Not allowed in the sandbox mode', 'disabled the local infile capability', 'Unknown command')
_LOADER_OPTIONS = {}  # client path -> its guard options, detected once per run


def _ident(name):
    return '`%s`' % name.replace('`', '``')


def _literal(text):
    return "'%s'" % text.replace('\\', '\\\\').replace("'", "\\'")


def _option_value(value):
    return '"%s"' % str(value).replace('\\', '\\\\').replace('"', '\\"')


def loader_options(help_text):
    """The options that keep the client whose ``--help`` is ``help_text`` from running its own commands (shell,
    files) found in the SQL it reads, the strongest it has; None when it has none.

    * MariaDB (10.5.25, 10.6.18, 10.11.8, 11.0.6 and newer): ``--sandbox`` refuses system, tee, source and pager
      with an argument, and ends the load with an error.
    * Oracle MySQL with ``--commands`` (9.4, and the 8.0/8.4 updates it was backported to): ``--commands=OFF``
      turns client commands off in batch mode.
    * Oracle MySQL 8.0.40, 8.4.3, 9.1.0 and newer: ``--system-command=OFF`` refuses system; ``--binary-mode`` (which
      such clients have too) turns off the other client commands but delimiter and charset in batch mode.
    """
    def has(option):
        return re.search(r'^\s*(?:-\w, )?%s(?=[\s=\[]|$)' % re.escape(option), help_text, re.MULTILINE) is not None
    if has('--sandbox'):
        return ['--sandbox']
    if has('--commands'):
        return ['--commands=OFF']
    if has('--system-command'):
        return ['--system-command=OFF'] + (['--binary-mode'] if has('--binary-mode') else [])
    return None


class MysqlBackend(DatabaseBackend):
    vendor = 'mysql'
    artifact_format = 'sql'
    artifact_ext = 'sql'

    def __init__(self, database, options=None):
        super().__init__(database, options)
        self._tools = {}
        self._flavor = None

    # plumbing -------------------------------------------------------------
    def tool(self, kind):
        names = {'client': ['mariadb', 'mysql'], 'dump': ['mariadb-dump', 'mysqldump']}[kind]
        if kind not in self._tools:
            self._tools[kind] = _process.find_tool(names, 'the %s tool' % names[0], CLIENT_PACKAGE)
        return self._tools[kind]

    @property
    def name(self):
        return self.database.options['database']

    @property
    def secrets(self):
        return [self.database.options.get('password')]

    def _defaults_file(self, directory):
        options = self.database.options
        lines = ['[client]', 'user=%s' % _option_value(options['user']), 'host=%s' % _option_value(options['host'])]
        if options.get('port'):
            lines.append('port=%d' % int(options['port']))
        if options.get('password'):
            lines.append('password=%s' % _option_value(options['password']))
        ssl = options.get('ssl') or {}
        for key, option in (('ca', 'ssl-ca'), ('cert', 'ssl-cert'), ('key', 'ssl-key')):
            path = ssl.get(key + '_file') or ssl.get(key)
            if path and os.path.exists(str(path)):
                lines.append('%s=%s' % (option, _option_value(path)))
        if ssl and ssl.get('reject_unauthorized') is not False and (ssl.get('ca') or ssl.get('ca_file')):
            lines.append('ssl-verify-server-cert')
        fd, path = tempfile.mkstemp(prefix='.cairn-my-', suffix='.cnf', dir=directory)
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, 'w') as handle:
            handle.write('\n'.join(lines) + '\n')
        return path

    def _run(self, kind, args, database=True, **kwargs):
        """Run a tool with a temporary defaults file; ``args`` after the connection options."""
        directory = tempfile.mkdtemp(prefix='.cairn-my-', dir=_scratch.directory())
        try:
            cnf = self._defaults_file(directory)
            command = [self.tool(kind), '--defaults-extra-file=' + cnf] + args
            if database and kind == 'client':
                command.append('--database=' + self.name)
            return _process.run(command, secrets=self.secrets, what=os.path.basename(self.tool(kind)), **kwargs)
        finally:
            shutil.rmtree(directory, ignore_errors=True)

    def sql(self, statement, database=True):
        out = self._run('client', ['--batch', '--skip-column-names', '--raw', '--default-character-set=utf8mb4'],
                        database=database, stdin=statement.encode('utf-8'))
        return [line.split('\t') for line in out.splitlines() if line]

    def _session(self, directory, what):
        cnf = self._defaults_file(directory)
        return _process.Streaming([self.tool('client'), '--defaults-extra-file=' + cnf, '--batch',
                                   '--skip-column-names', '--unbuffered', '--quick', '--default-character-set=utf8mb4',
                                   '--database=' + self.name],
                                  secrets=self.secrets, mode='rw', what=what)

    # facts ----------------------------------------------------------------
    def _exists(self):
        try:
            rows = self.sql('SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = %s'
                            % _literal(self.name), database=False)
        except CairnError as exc:
            raise CairnError('cannot connect to %s:%s as %s: %s' % (
                self.database.options['host'], self.database.options.get('port') or 3306,
                self.database.options['user'], exc.message))
        return rows[0][0] != '0'

    def server_version(self):
        version = self.sql('SELECT VERSION()', database=False)[0][0]
        self._flavor = 'mariadb' if 'mariadb' in version.lower() else 'mysql'
        return version.split('-')[0]

    def probe(self):
        exists = self._exists()
        return {'vendor': self.vendor, 'server_version': self.server_version(), 'server_flavor': self._flavor,
                'exists': exists, 'path': '%s:%s/%s' % (self.database.options['host'],
                                                        self.database.options.get('port') or 3306, self.name)}

    def _tables_sql(self):
        return ("SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s "
                "AND TABLE_TYPE = 'BASE TABLE' ORDER BY TABLE_NAME" % _literal(self.name))

    def _tables(self):
        return [row[0] for row in self.sql(self._tables_sql())]

    def _columns_sql(self, names):
        listed = ', '.join(_literal(name) for name in names)
        return ('SELECT TABLE_NAME, COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = %s AND TABLE_NAME '
                'IN (%s) ORDER BY TABLE_NAME, ORDINAL_POSITION' % (_literal(self.name), listed))

    @staticmethod
    def _rows_sql(name, columns):
        return 'SELECT JSON_OBJECT(%s) FROM %s' % (', '.join('%s, %s' % (_literal(column), _ident(column))
                                                             for column in columns), _ident(name))

    def read_tables(self, names):
        if not self._exists():
            raise CairnError('the database %s does not exist' % self.name)
        present = set(self._tables())
        names = [name for name in names if name in present]
        columns = {}
        for table, column in (self.sql(self._columns_sql(names)) if names else ()):
            columns.setdefault(table, []).append(column)
        return {name: [json.loads(row[0]) for row in self.sql(self._rows_sql(name, columns[name]))] for name in names}

    def _count_sql(self, tables):
        counts = ' UNION ALL '.join('SELECT %s, COUNT(*) FROM %s' % (_literal(t), _ident(t)) for t in tables)
        level = 'SELECT MAX(version) FROM directus_migrations' if 'directus_migrations' in tables else None
        return counts, level

    def _facts(self):
        tables = self._tables()
        counts, level_sql = self._count_sql(tables)
        row_counts = {name: int(count) for name, count in self.sql(counts)} if tables else {}
        level = self.sql(level_sql)[0][0] if level_sql else None
        return {'row_counts': row_counts, 'migration_level': None if level in (None, 'NULL') else level}

    def inspect(self):
        if not self._exists():
            raise CairnError('the database %s does not exist' % self.name)
        return self._facts()

    def files(self):
        if 'directus_files' not in self._tables():
            return []
        rows = self.sql('SELECT id, storage, filename_disk, filesize FROM directus_files')
        return [{'id': r[0], 'storage': r[1], 'filename_disk': None if r[2] == 'NULL' else r[2],
                 'filesize': None if r[3] == 'NULL' else int(r[3])} for r in rows]

    # dump -----------------------------------------------------------------
    def tool_version(self):
        out = self._run('dump', ['--version'], database=False)
        return out.split('Distrib ')[-1].split(',')[0].strip() if 'Distrib' in out else out.strip().split(' ')[-1]

    def dump(self, sink, scratch_dir):
        if not self._exists():
            raise CairnError('the database %s does not exist' % self.name)
        server = self.server_version()
        tool_version = self.tool_version()
        directory = tempfile.mkdtemp(prefix='.cairn-my-', dir=scratch_dir or _scratch.directory())
        lock = counter = dump = gate = None
        try:
            lock = self._session(directory, 'mariadb (lock session)')
            lock.write(b"FLUSH TABLES WITH READ LOCK;\nSELECT 'locked';\n")
            lock.flush()
            locked = lock.readline().strip() == b'locked'
            if not locked:
                lock.abort()
                lock = None
            counter = self._session(directory, 'mariadb (count session)')
            counter.write(b"SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ;\n"
                          b"START TRANSACTION WITH CONSISTENT SNAPSHOT;\nSELECT 'snapshot';\n")
            counter.flush()
            if counter.readline().strip() != b'snapshot':
                counter.abort()
                raise CairnError('could not open a consistent snapshot: %s' % counter.stderr_tail())
            cnf = self._defaults_file(directory)
            arguments = (CONTENT_OPTIONS + [self.name] + self.tables) if self.tables else (DUMP_OPTIONS + [self.name])
            dump = _process.Streaming([self.tool('dump'), '--defaults-extra-file=' + cnf] + arguments,
                                      secrets=self.secrets, what=os.path.basename(self.tool('dump')))
            gate = _SnapshotGate(lock, _Counter(self, counter))
            lock = None  # the gate holds it now
            dump.pump_out(sink, watch=gate)
            gate.open()
            counts = gate.counts
            counts.join()
            if counts.error:
                raise counts.error
            facts = counts.result
            if self.tables:
                facts = limit_facts(facts, self.tables)
        except BaseException:
            for process in (lock, counter, dump, gate.lock if gate else None):
                if process is not None:
                    process.abort()
            raise
        finally:
            shutil.rmtree(directory, ignore_errors=True)
        facts.update({'server_version': server, 'server_flavor': self._flavor,
                      'dump_tool': os.path.basename(self.tool('dump')), 'dump_tool_version': tool_version,
                      'row_counts_consistent': locked})
        if not locked:
            facts['warnings'] = ['FLUSH TABLES WITH READ LOCK was not allowed (grant RELOAD to %s): the row counts '
                                 'come from a snapshot opened just before the dump and may differ from it if the '
                                 'CMS wrote in between' % self.database.options['user']]
        return facts

    # restore --------------------------------------------------------------
    def _marker(self):
        rows = self.sql('SELECT SCHEMA_COMMENT FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = %s'
                        % _literal(self.name), database=False) if self._flavor == 'mariadb' else []
        try:
            return json.loads(rows[0][0]) if rows and rows[0][0] not in ('', 'NULL') else {}
        except ValueError:
            return {}

    def _changes(self, tables):
        """A fingerprint of the content: the CHECKSUM TABLE of every table."""
        rows = self.sql('CHECKSUM TABLE %s' % ', '.join(_ident(t) for t in tables)) if tables else []
        return hashlib.sha256(json.dumps(rows).encode()).hexdigest()[:32]

    def quote(self, name):
        return _ident(name)

    def literal(self, text):
        return _literal(text)

    def query(self, sql):
        return [[None if value == 'NULL' else value for value in row] for row in self.sql(sql)]

    def has_table(self, name):
        return self.sql('SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = DATABASE() '
                        'AND table_name = %s' % _literal(name)) == [['1']]

    def check_loader(self, content):
        self.guard_options()

    def guard_options(self):
        """The options that keep the client from acting on this host while it loads a restore point (see
        ``loader_options``), read once per run from its ``--help``; refuses a client that has none."""
        client = self.tool('client')
        if client not in _LOADER_OPTIONS:
            _LOADER_OPTIONS[client] = loader_options(_process.run([client, '--no-defaults', '--help'],
                                                                  what=os.path.basename(client)))
        if _LOADER_OPTIONS[client] is None:
            version = _process.run([client, '--no-defaults', '--version'], what=os.path.basename(client)).strip()
            raise CairnError('the client %s (%s) cannot be kept from running the shell commands or reading and '
                             'writing the files a restore point\'s SQL may ask for (system, tee, source), so the '
                             'restore is refused; nothing was changed. Install %s'
                             % (client, version, GUARDED_CLIENTS))
        return list(_LOADER_OPTIONS[client])

    def restore_content(self, source, tables, location_pairs=(), point_id=None):
        directory = tempfile.mkdtemp(prefix='.cairn-my-', dir=_scratch.directory())
        try:
            prefix = ('SET autocommit = 0;\nSET FOREIGN_KEY_CHECKS = 0;\n%s\n'
                      % ''.join('DELETE FROM %s;' % _ident(table) for table in tables)).encode()
            suffix = '\n%sCOMMIT;\n' % (self.relocation_sql(location_pairs) if location_pairs else '')
            rows = self._feed(_process.Prefixed(prefix, source, suffix.encode('utf-8')), directory,
                              collect=bool(location_pairs), point_id=point_id)
        finally:
            shutil.rmtree(directory, ignore_errors=True)
        return {'relocations': tagged_relocations(location_pairs, rows or [])}

    def compare(self, db_manifest, point_id=None, location_pairs=(), quiesce=()):
        if not self._exists():
            return ABSENT
        tables = self._tables()
        if not tables:
            return EMPTY
        self.server_version()
        if self._flavor == 'mariadb' and marker_matches(self._marker(), point_id, self._changes(tables),
                                                        location_pairs, quiesce):
            return IDENTICAL
        return DIFFERENT

    def restore(self, source, db_manifest, keep_safety_copy=False, scratch_dir=None, point_id=None,
                location_pairs=(), quiesce=()):
        self.server_version()
        if not self._exists():
            try:
                self.sql('CREATE DATABASE %s' % _ident(self.name), database=False)
            except CairnError as exc:
                raise CairnError('the database %s does not exist and could not be created (%s); create it first'
                                 % (self.name, exc.message))
        return self.replace_under_safety_copy(lambda work: self._feed(source, work, point_id=point_id),
                                              keep_safety_copy, scratch_dir, point_id, location_pairs, quiesce)

    def take_safety_copy(self, work):
        if not self._tables():
            return None
        safety = os.path.join(work, 'safety.sql')
        self._run('dump', DUMP_OPTIONS + ['--result-file=' + safety, self.name], database=False)
        return safety

    def put_back(self, safety, work):
        with open(safety, 'rb') as handle:
            self._feed(handle, work)

    def _feed(self, source, directory, collect=False, point_id=None):
        """Feed SQL to the client, guarded (``guard_options``, no ``LOAD DATA LOCAL``); with ``collect``, return its
        ``RELOCATED_TAG`` output rows."""
        cnf = self._defaults_file(directory)
        command = ([self.tool('client'), '--defaults-extra-file=' + cnf] + self.guard_options()
                   + ['--local-infile=0', '--batch', '--database=' + self.name])
        what = os.path.basename(self.tool('client'))
        try:
            if not collect:
                _process.Streaming(command, secrets=self.secrets, mode='w', what=what).pump_in(source)
                return None
            return feed_collecting(_process.Streaming(command + ['--skip-column-names', '--raw'], secrets=self.secrets,
                                                      mode='rw', what=what), source)
        except CairnError as exc:
            if point_id and any(text in exc.message for text in REFUSALS):
                raise CairnError('restore point %s was refused: its SQL holds a client command that would act on '
                                 'this host (a shell command, a file read or written), which %s refused (a forged or '
                                 'damaged repository?): %s' % (point_id, what, exc.message))
            raise

    def after_restore(self, point_id, location_pairs=(), quiesce=()):
        if self._flavor != 'mariadb':
            return ['MySQL keeps no database comment: a second restore of the same restore point will not '
                    'recognise it and needs replace']
        marker = json.dumps(restore_marker(point_id, self._changes(self._tables()), location_pairs, quiesce))
        try:
            self.sql('ALTER DATABASE %s COMMENT %s' % (_ident(self.name), _literal(marker)), database=False)
        except CairnError as exc:
            return ['could not record the restore in the database comment (%s)' % exc.message]
        return []

    def create_database(self):
        try:
            self.sql('CREATE DATABASE IF NOT EXISTS %s CHARACTER SET utf8mb4' % _ident(self.name), database=False)
        except CairnError as exc:
            raise CairnError('the database %s does not exist and could not be created (%s); create it, or grant '
                             'CREATE to %s' % (self.name, exc.message, self.database.options['user'])) from None

    # typed rows (the rows part, migrations between vendors) ----------------
    INT_BITS = {'tinyint': 8, 'smallint': 16, 'mediumint': 24, 'int': 32, 'integer': 32, 'bigint': 64, 'year': 16}
    NEUTRAL = {'decimal': 'decimal', 'numeric': 'decimal', 'float': 'float', 'double': 'float', 'real': 'float',
               'char': 'string', 'varchar': 'string', 'tinytext': 'string', 'text': 'string',
               'mediumtext': 'string', 'longtext': 'string', 'enum': 'string', 'set': 'string', 'json': 'json',
               'date': 'date', 'datetime': 'datetime', 'timestamp': 'timestamp', 'time': 'time',
               'binary': 'binary', 'varbinary': 'binary', 'tinyblob': 'binary', 'blob': 'binary',
               'mediumblob': 'binary', 'longblob': 'binary', 'uuid': 'uuid'}
    TEXT_BYTES = {'tinytext': 255, 'text': 65535, 'mediumtext': 16777215}
    _SESSION = "SET NAMES utf8mb4; SET time_zone = '+00:00'; "

    def _column(self, found, json_columns):
        data_type, column_type = found['data_type'].lower(), found['column_type'].lower()
        column = {'name': found['column'], 'native': found['column_type'], 'nullable': bool(found['nullable'])}
        if data_type == 'tinyint' and column_type.startswith('tinyint(1)'):
            column['type'] = 'boolean'
        elif data_type in self.INT_BITS or data_type == 'bit':
            column.update(type='integer', bits=self.INT_BITS.get(data_type, 64), unsigned='unsigned' in column_type)
        else:
            column['type'] = self.NEUTRAL.get(data_type, 'string')
        if data_type == 'longtext' and found['column'] in json_columns:
            column['type'] = 'json'
        if data_type in ('char', 'varchar') and found.get('max_length'):
            column['max_length'] = int(found['max_length'])
        if data_type in self.TEXT_BYTES:
            column['max_bytes'] = self.TEXT_BYTES[data_type]
        if column['type'] == 'decimal' and found.get('precision') is not None:
            column['precision'], column['scale'] = int(found['precision']), int(found.get('scale') or 0)
        if data_type == 'float':
            column['single'] = True
        if column['type'] == 'float' and ',' in column_type:  # float(M,D): M digits, D of them decimals
            column['precision'], column['scale'] = int(found['precision']), int(found.get('scale') or 0)
        if column['type'] == 'float':
            column['finite'] = True
        if data_type == 'timestamp':
            column['range'] = ['1970-01-01T00:00:01', '2038-01-19T03:14:07']
        if column['type'] in ('timestamp', 'datetime', 'time'):
            column['fsp'] = int(found.get('fsp') or 0)
        if 'auto_increment' in (found.get('extra') or '').lower():
            column['serial'] = True
        return column

    def _table_facts_sql(self):
        schema = 'DATABASE()'
        return [
            "SELECT JSON_OBJECT('table', c.TABLE_NAME, 'column', c.COLUMN_NAME, 'data_type', c.DATA_TYPE, "
            "'column_type', c.COLUMN_TYPE, 'max_length', c.CHARACTER_MAXIMUM_LENGTH, 'precision', "
            "c.NUMERIC_PRECISION, 'scale', c.NUMERIC_SCALE, 'fsp', c.DATETIME_PRECISION, 'nullable', "
            "c.IS_NULLABLE = 'YES', 'extra', c.EXTRA) "
            "FROM information_schema.COLUMNS c JOIN information_schema.TABLES t ON t.TABLE_SCHEMA = c.TABLE_SCHEMA "
            "AND t.TABLE_NAME = c.TABLE_NAME AND t.TABLE_TYPE = 'BASE TABLE' WHERE c.TABLE_SCHEMA = %s "
            "ORDER BY c.TABLE_NAME, c.ORDINAL_POSITION" % schema,
            "SELECT JSON_OBJECT('table', TABLE_NAME, 'name', CONSTRAINT_NAME, 'column', COLUMN_NAME, 'references', "
            "REFERENCED_TABLE_NAME, 'referenced', REFERENCED_COLUMN_NAME) FROM information_schema.KEY_COLUMN_USAGE "
            "WHERE TABLE_SCHEMA = %s AND (CONSTRAINT_NAME = 'PRIMARY' OR REFERENCED_TABLE_NAME IS NOT NULL) "
            "ORDER BY TABLE_NAME, CONSTRAINT_NAME, ORDINAL_POSITION" % schema,
            "SELECT JSON_OBJECT('table', TABLE_NAME, 'name', CONSTRAINT_NAME, 'clause', CHECK_CLAUSE) "
            "FROM information_schema.CHECK_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = %s "
            "AND CHECK_CLAUSE LIKE 'json\\_valid(%%'" % schema]

    def _table_facts(self, columns, keys, checks):
        json_columns = {}
        for found in checks:
            json_columns.setdefault(found['table'], set()).add(found['clause'][len('json_valid('):-1].strip('`'))
        tables = {}
        for found in columns:
            table = tables.setdefault(found['table'], {'name': found['table'], 'columns': [], 'primary_key': [],
                                                       'foreign_keys': []})
            table['columns'].append(self._column(found, json_columns.get(found['table'], set())))
        for found in keys:
            table = tables.get(found['table'])
            if table is None:
                continue
            if found['name'] == 'PRIMARY':
                table['primary_key'].append(found['column'])
                continue
            keyed = [key for key in table['foreign_keys'] if key['name'] == found['name']]
            if not keyed:
                keyed = [{'name': found['name'], 'table': found['references'], 'columns': [], 'referenced': []}]
                table['foreign_keys'].append(keyed[0])
            keyed[0]['columns'].append(found['column'])
            keyed[0]['referenced'].append(found['referenced'])
        return [tables[name] for name in sorted(tables)]

    def row_tables(self):
        """Every base table with its columns (and their value types), primary and foreign keys."""
        parsed = [[json.loads(row[0]) for row in self.sql(statement)] for statement in self._table_facts_sql()]
        return self._table_facts(*parsed)

    @staticmethod
    def _rows_select(table):
        values = ', '.join('HEX(%s)' % _ident(c['name']) if c['type'] == 'binary'
                           else 'CAST(%s AS CHAR)' % _ident(c['name']) for c in table['columns'])
        return 'SELECT JSON_ARRAY(%s) FROM %s' % (values, _ident(table['name']))

    def write_rows(self, writer, tables):
        """Stream the rows of ``tables`` (``row_tables``) into a ``_rows.Writer``, in one consistent snapshot."""
        directory = tempfile.mkdtemp(prefix='.cairn-my-', dir=_scratch.directory())
        session = self._session(directory, 'mariadb (rows session)')
        try:
            session.write(b"SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ;\n"
                          b"START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY;\n")
            stream_rows(session, writer, tables)
            session.write(b'COMMIT;\n')
            session.finish()
        except BaseException:
            session.abort()
            raise
        finally:
            shutil.rmtree(directory, ignore_errors=True)

    # What CAST(... AS CHAR) writes of each kind of column, as a function of a neutral value: the load's check
    # (_rows.Fingerprint). Floats (their shortest form is not Python's), BIT, MySQL's own JSON type (it normalises)
    # and UUID have none: their tables are read back instead.
    _TEXT_NATIVES = ('varchar', 'char', 'tinytext', 'text', 'mediumtext', 'longtext', 'enum', 'set')

    def fingerprint_renderers(self, columns):
        """Per column, the function writing a neutral value as this database's ``fingerprint_sql`` does; None when
        a column has none."""
        renderers = []
        for column in columns:
            base, kind = _base_type(column), column['type']
            if kind == 'integer' and base in self.INT_BITS:
                renderers.append(str)
            elif kind == 'boolean' and base == 'tinyint':
                renderers.append(lambda item: '1' if item else '0')
            elif kind == 'decimal' and base in ('decimal', 'numeric') and column.get('scale') is not None:
                renderers.append(_rows.decimal_text(column['scale']))
            elif kind in ('string', 'json') and base in self._TEXT_NATIVES:
                renderers.append(lambda item: item)
            elif kind in ('timestamp', 'datetime') and base in ('timestamp', 'datetime'):
                renderers.append(_rows.stamp_text(int(column.get('fsp') or 0)))
            elif kind == 'date' and base == 'date':
                renderers.append(lambda item: item)
            elif kind == 'time' and base == 'time':
                renderers.append(_rows.stamp_text(int(column.get('fsp') or 0)))
            elif kind == 'binary' and base in ('binary', 'varbinary', 'tinyblob', 'blob', 'mediumblob', 'longblob'):
                renderers.append(lambda item: base64.b64decode(item).hex().upper())
            else:
                return None
        return renderers

    @staticmethod
    def fingerprint_sql(name, columns, utf8mb4=(), where=None):
        """SQL giving the table's name, row count and the sum of ``_rows.Fingerprint`` over ``columns``
        (``utf8mb4``: the names of its text columns stored in that character set, hashed as they are)."""
        values = []
        for column in columns:
            base = _base_type(column)
            if column['type'] == 'binary':
                text = 'HEX(%s)'
            elif base in MysqlBackend._TEXT_NATIVES:
                text = ('CAST(%s AS BINARY)' if column['name'] in utf8mb4
                        else 'CAST(CONVERT(%s USING utf8mb4) AS BINARY)')
            else:
                text = 'CAST(CAST(%s AS CHAR) AS BINARY)'
            text = text % _ident(column['name'])
            values.append("IFNULL(CONCAT(LENGTH(%s), ':', %s), 'N')" % (text, text))
        return ('SELECT %s, COUNT(*), COALESCE(SUM(CAST(CONV(LEFT(SHA2(CONCAT(%s), 256), 15), 16, 10) AS UNSIGNED)), '
                '0) FROM %s%s' % (_literal(name), ', '.join(values), _ident(name), ' WHERE ' + where if where else ''))

    def table_fingerprints(self, tables, where=None):
        """``{name: (rows, checksum)}`` of ``tables`` (``(name, columns)``), as ``_rows.Fingerprint`` has them
        (``where``: name -> the condition of the rows to count)."""
        if not tables:
            return {}
        utf8mb4 = {}
        for table, column in self.sql("SELECT TABLE_NAME, COLUMN_NAME FROM information_schema.COLUMNS WHERE "
                                      "TABLE_SCHEMA = DATABASE() AND CHARACTER_SET_NAME = 'utf8mb4'"):
            utf8mb4.setdefault(table, set()).add(column)
        found = self.sql(self._SESSION + ''.join(
            self.fingerprint_sql(name, columns, utf8mb4.get(name, ()), (where or {}).get(name)) + ';\n'
            for name, columns in tables))
        return {row[0]: (int(row[1]), row[2]) for row in found if len(row) == 3}

    def widen_float(self, table, column):
        """Make a float column hold doubles (a migration's target, for a source whose values are doubles), its
        nullability and default kept."""
        rows = self.sql('SELECT IS_NULLABLE, COLUMN_DEFAULT FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = '
                        'DATABASE() AND TABLE_NAME = %s AND COLUMN_NAME = %s'
                        % (_literal(table), _literal(column['name'])))
        nullable, default = rows[0] if rows else ('YES', 'NULL')
        definition = 'DOUBLE %s' % ('NULL' if nullable == 'YES' else 'NOT NULL')
        if default not in (None, 'NULL'):
            definition += ' DEFAULT %s' % repr(float(default))
        self.sql('ALTER TABLE %s MODIFY %s %s' % (_ident(table), _ident(column['name']), definition))
        return 'double'

    def empty_tables(self):
        """Drop every table and view of the database (a migration's target goes back to empty)."""
        names = self.sql("SELECT TABLE_NAME, TABLE_TYPE FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE()")
        views = [_ident(name) for name, kind in names if kind == 'VIEW']
        tables = [_ident(name) for name, kind in names if kind != 'VIEW']
        statements = ['SET FOREIGN_KEY_CHECKS = 0']
        if views:
            statements.append('DROP VIEW IF EXISTS %s' % ', '.join(views))
        if tables:
            statements.append('DROP TABLE IF EXISTS %s' % ', '.join(tables))
        self.sql(';\n'.join(statements) + ';\n')

    @staticmethod
    def sql_value(column, item):
        """A neutral value (already the target column's type) as a literal of this vendor."""
        return _literal_writer(column)(item)

    @staticmethod
    def rows_text(name, columns):
        """``(head, render, tail)``: what the load writes before the rows of table ``name`` (``columns``: the target
        columns loaded), a function giving the text of a list of rows (neutral values of those columns: INSERT
        statements of at most 1000 rows or about ``INSERT_BYTES``), and what it writes after them."""
        start = 'INSERT INTO %s (%s) VALUES\n' % (_ident(name), ', '.join(_ident(c['name']) for c in columns))
        writers = [_literal_writer(column) for column in columns]

        def render(rows):
            statements, batch, size = [], [], 0
            for values in rows:
                text = '(%s)' % ', '.join([write(item) for write, item in zip(writers, values)])
                batch.append(text)
                size += len(text)
                if size > INSERT_BYTES or len(batch) >= 1000:
                    statements.append(start + ',\n'.join(batch) + ';\n')
                    batch, size = [], 0
            if batch:
                statements.append(start + ',\n'.join(batch) + ';\n')
            return ''.join(statements)
        return '', render, ''

    def load_rows(self, tables, loads, content=False):
        """Replace the content of every table of ``tables`` (``row_tables`` of this target) by the rows of
        ``loads`` (an iterator of ``(table, target columns, rows of neutral values or their text already rendered:
        ``_rows.rendered``)``) in one transaction, foreign key checks off for the session (the rows come whole, in
        the order of their keys). InnoDB moves each auto-increment past the highest id loaded. A failure rolls it all
        back."""
        def script():
            yield (self._SESSION + "SET SESSION sql_mode = 'STRICT_ALL_TABLES,NO_AUTO_VALUE_ON_ZERO,"
                   "NO_ENGINE_SUBSTITUTION'; SET FOREIGN_KEY_CHECKS = 0; START TRANSACTION;\n")
            for table in (reversed(tables) if content else tables):
                yield 'DELETE FROM %s;\n' % _ident(table['name'])
            for name, columns, rows in loads:
                yield from _rows.rendered(rows, *self.rows_text(name, columns))
            yield 'COMMIT;\n'
        directory = tempfile.mkdtemp(prefix='.cairn-my-', dir=_scratch.directory())
        try:
            cnf = self._defaults_file(directory)
            command = ([self.tool('client'), '--defaults-extra-file=' + cnf] + self.guard_options()
                       + ['--local-infile=0', '--batch', '--default-character-set=utf8mb4', '--database=' + self.name])
            _process.Streaming(command, secrets=self.secrets, mode='w',
                               what=os.path.basename(self.tool('client'))).pump_in(TextStream(script()))
        finally:
            shutil.rmtree(directory, ignore_errors=True)


class _SnapshotGate:
    """Holds the global read lock until the dump shows its first table (its snapshot is open then), then
    lets writers go on and starts counting rows in the snapshot opened under the same lock."""

    def __init__(self, lock, counts):
        self.lock = lock
        self.counts = counts
        self._head = b''

    def __call__(self, chunk):
        if self.lock is None:
            return
        self._head = (self._head + chunk)[-65536:]
        if any(marker in self._head for marker in STARTED):
            self.open()

    def open(self):
        if self.lock is not None:
            self.lock.write(b'UNLOCK TABLES;\n')
            self.lock.finish()
            self.lock = None
        if self.counts.ident is None:
            self.counts.start()


_ESCAPES = {'\\\\': '\\', '\\n': '\n', '\\t': '\t', '\\0': '\0'}


def _unescape(text):
    """A value of the client's batch output as it is (the client writes a backslash, newline, tab and NUL as
    ``\\\\``, ``\\n``, ``\\t`` and ``\\0``)."""
    return re.sub(r'\\[\\nt0]', lambda match: _ESCAPES[match.group(0)], text) if '\\' in text else text


class _Counter(threading.Thread):
    """Counts rows in the session that opened its snapshot with the dump's."""

    def __init__(self, backend, session):
        super().__init__(daemon=True)
        self.backend = backend
        self.session = session
        self.result = None
        self.error = None

    def _ask(self, sql):
        """The lines the session answers to ``sql`` (batch mode's escapes undone)."""
        self.session.write((sql + ";\nSELECT '--end--';\n").encode())
        self.session.flush()
        lines = []
        for line in iter(self.session.readline, b''):
            text = line.decode('utf-8').rstrip('\n')
            if text == '--end--':
                break
            lines.append(_unescape(text))
        return lines

    def _rows(self, names):
        """``{table: [row]}`` of ``names`` in the session's snapshot."""
        columns = {}
        for line in self._ask(self.backend._columns_sql(names)):
            table, column = line.split('\t', 1)
            columns.setdefault(table, []).append(column)
        return {name: [json.loads(line) for line in self._ask(self.backend._rows_sql(name, columns.get(name, [])))]
                for name in names}

    def run(self):
        try:
            self.session.write(self.backend._tables_sql().encode() + b";\nSELECT '--end--';\n")
            self.session.flush()
            tables = []
            for line in iter(self.session.readline, b''):
                if line.strip() == b'--end--':
                    break
                tables.append(line.decode('utf-8').rstrip('\n'))
            counts_sql, level_sql = self.backend._count_sql(tables)
            statements = (counts_sql + ';\n' if tables else '') + (level_sql + ';\n' if level_sql else '')
            self.session.write((statements + "SELECT '--end--';\n").encode())
            self.session.flush()
            counts, level = {}, None
            for line in iter(self.session.readline, b''):
                text = line.decode('utf-8').rstrip('\n')
                if text == '--end--':
                    break
                parts = text.split('\t')
                if len(parts) == 2:
                    counts[parts[0]] = int(parts[1])
                else:
                    level = None if text == 'NULL' else text
            self.result = {'row_counts': counts, 'migration_level': level}
            names = [name for name in self.backend.read if name in tables]
            if names:
                self.result['rows'] = self._rows(names)
            self.backend.capture_rows(self.backend.row_tables() if self.backend.rows_out else [],
                                      lambda writer, found: stream_rows(self.session, writer, found))
            self.session.write(b"COMMIT;\n")
            self.session.finish()
        except CairnError as exc:
            self.error = exc
        except (ValueError, OSError) as exc:
            self.error = CairnError('reading in the dump\'s snapshot failed: %s' % exc)


INSERT_BYTES = 1024 * 1024


def _base_type(column):
    """The native type of a ``row_tables`` column without its length, sign or character set (``varchar``)."""
    return str(column.get('native') or '').lower().split('(', 1)[0].split(' ', 1)[0]


def _quoted(text):
    """A string literal (``str.translate`` with a mapping is many times slower on text that is not ASCII; each
    ``in`` is one scan, and most text has none of those characters)."""
    if "'" in text or '\\' in text or '\n' in text or '\r' in text or '\0' in text or '\x1a' in text:
        return "'%s'" % text.replace('\\', '\\\\').replace("'", "\\'").replace('\0', '\\0').replace(
            '\n', '\\n').replace('\r', '\\r').replace('\x1a', '\\Z')
    return "'" + text + "'"


def _literal_writer(column):
    """A function of one neutral value (already the target column's type) giving its literal of this vendor."""
    kind = column['type']
    if kind == 'boolean':
        return lambda item: 'NULL' if item is None else ('1' if item else '0')
    if kind == 'integer':
        return lambda item: 'NULL' if item is None else str(item)
    if kind == 'float':
        return lambda item: 'NULL' if item is None else repr(item)
    if kind == 'binary':
        return lambda item: 'NULL' if item is None else "X'%s'" % base64.b64decode(item).hex()
    if kind in ('timestamp', 'datetime'):
        return lambda item: 'NULL' if item is None else _quoted(item.rstrip('Z').replace('T', ' '))
    return lambda item: 'NULL' if item is None else _quoted(item)


def stream_rows(session, writer, tables):
    """Stream the rows of ``tables`` through a client ``session`` (in the transaction it has open) into a
    ``_rows.Writer``: one query per table, its lines read as they come (batch mode's escapes undone)."""
    session.write(MysqlBackend._SESSION.encode())
    for table in tables:
        session.write((MysqlBackend._rows_select(table) + ";\nSELECT '--end--';\n").encode('utf-8'))
        session.flush()
        writer.begin(table)
        readers = [_rows.reader(column['type'], hexadecimal=True) for column in table['columns']]
        for line in iter(session.readline, b''):
            line = line.rstrip(b'\n')
            if line == b'--end--':
                break
            # a JSON array holds no tab, newline or NUL (it escapes them): batch mode only doubled its backslashes
            writer.row([read(raw) for read, raw in zip(readers, json.loads(line.replace(b'\\\\', b'\\')))])
        else:
            raise CairnError('the rows session ended before table %s was read: %s'
                             % (table['name'], session.stderr_tail() or 'no message'))
        writer.end()
