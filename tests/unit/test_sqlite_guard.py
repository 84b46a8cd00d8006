# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A restore point is untrusted input: the SQLite guard, the psql restricted-mode script and the choice of the
MySQL/MariaDB client's guard options, as pure logic (the integration tests forge real restore points)."""

from __future__ import annotations

import io
import os
import sqlite3

import pytest

from ansible_collections.cairncms.ops.plugins.module_utils._db.mysql import loader_options
from ansible_collections.cairncms.ops.plugins.module_utils._db.postgres import PsqlScript, supports_restrict
from ansible_collections.cairncms.ops.plugins.module_utils._db.sqlite import (
    ANY, Guard, connect_ro, connect_rw, harden)


@pytest.fixture
def database(tmp_path):
    path = str(tmp_path / 'data.db')
    conn = sqlite3.connect(path)
    conn.executescript("CREATE TABLE articles (id INTEGER PRIMARY KEY, title TEXT);"
                       "CREATE TABLE directus_users (id INTEGER PRIMARY KEY, email TEXT);"
                       "CREATE TABLE log (what TEXT);"
                       "CREATE TRIGGER logged AFTER INSERT ON articles BEGIN INSERT INTO log VALUES ('x'); END;"
                       "INSERT INTO articles VALUES (1, 'kept');")
    conn.commit()
    conn.close()
    return path


CONTENT = {sqlite3.SQLITE_INSERT: frozenset(('articles',))}


@pytest.mark.parametrize('statement, refused', [
    ("ATTACH DATABASE '{outside}' AS x", "ATTACH the file '{outside}'"),
    ("SELECT load_extension('{outside}')", 'call load_extension()'),
    ("SELECT fts3_tokenizer('simple')", 'call fts3_tokenizer()'),
    ('PRAGMA writable_schema = ON', 'run PRAGMA writable_schema = ON'),
    ('PRAGMA journal_mode = OFF', 'run PRAGMA journal_mode = OFF'),
    ("INSERT INTO directus_users VALUES (9, 'evil@example.com')", 'insert directus_users'),
    ("UPDATE articles SET title = 'changed'", 'update articles'),
    ('DELETE FROM articles', 'delete articles'),
    ('DROP TABLE articles', 'change the schema (delete sqlite_master)'),
    ('CREATE TABLE more (a)', 'change the schema (insert sqlite_master)'),
    ('CREATE TEMP TABLE t (a)', 'change the schema (insert sqlite_temp_master)'),
    ('CREATE TRIGGER t AFTER INSERT ON articles BEGIN SELECT 1; END', 'create trigger t'),
    ('COMMIT', 'run COMMIT (transaction control)'),
])
def test_content_guard_refuses_all_but_inserts_into_the_named_tables(database, tmp_path, statement, refused):
    outside = str(tmp_path / 'outside.db')
    guard = Guard('20250101T000000Z-1', 'its content SQL', CONTENT)
    conn = connect_rw(database, guard)
    try:
        with pytest.raises(sqlite3.DatabaseError, match='not authorized|prohibited'):
            conn.execute(statement.format(outside=outside))
    finally:
        conn.close()
    assert guard.refused == refused.format(outside=outside)
    message = guard.error(sqlite3.DatabaseError('not authorized'), 'loading rows', 'nothing was changed').message
    assert 'restore point 20250101T000000Z-1 was refused, nothing was changed' in message
    assert refused.format(outside=outside) in message
    assert not os.path.exists(outside)


def test_content_guard_lets_inserts_and_the_targets_own_triggers_run(database):
    guard = Guard('p', rules=CONTENT)
    conn = connect_rw(database, guard)
    try:
        conn.execute("INSERT INTO articles VALUES (2, 'new')")
        conn.execute('SELECT COUNT(*) FROM articles').fetchall()
        conn.execute('PRAGMA integrity_check').fetchall()
    finally:
        conn.close()
    assert guard.refused is None
    check = sqlite3.connect(database)
    assert check.execute('SELECT COUNT(*) FROM log').fetchone() == (2,)  # the fixture's row, and ours
    check.close()


def test_a_new_phase_expires_statements_prepared_under_the_last(database):
    """Python caches prepared statements: a statement allowed in our phase must be checked again in theirs."""
    guard = Guard('p', rules={sqlite3.SQLITE_DELETE: ANY})
    conn = connect_rw(database, guard)
    try:
        conn.execute('DELETE FROM log')
        guard.phase(conn, CONTENT)
        with pytest.raises(sqlite3.DatabaseError):
            conn.execute('DELETE FROM log')
    finally:
        conn.close()
    assert guard.refused == 'delete log'


def test_a_trigger_of_a_forged_file_cannot_reach_outside(tmp_path):
    path = str(tmp_path / 'forged.db')
    conn = sqlite3.connect(path)
    conn.executescript("CREATE TABLE directus_files (id TEXT PRIMARY KEY, storage TEXT);"
                       "INSERT INTO directus_files VALUES ('a', 'local');"
                       "CREATE TRIGGER evil AFTER UPDATE ON directus_files BEGIN "
                       "SELECT load_extension('%s'); END;" % (tmp_path / 'evil'))
    conn.commit()
    conn.close()
    guard = Guard('p', rules={sqlite3.SQLITE_UPDATE: frozenset(('directus_files',))})
    conn = connect_rw(path, guard)
    try:
        with pytest.raises(sqlite3.DatabaseError):
            conn.execute("UPDATE directus_files SET storage = 'cloud'")
    finally:
        conn.close()
    assert guard.refused == 'call load_extension() (in trigger or view evil)'


def test_harden_turns_off_extensions_and_the_trusted_schema(database):
    conn = harden(sqlite3.connect(database), Guard())
    try:
        conn.set_authorizer(None)  # the settings alone, without the guard
        assert conn.execute('PRAGMA trusted_schema').fetchone() == (0,)
        assert conn.execute('PRAGMA foreign_keys').fetchone() == (0,)
        with pytest.raises(sqlite3.OperationalError, match='not authorized'):
            conn.execute("SELECT load_extension('x')")
    finally:
        conn.close()


def test_read_only_connections_are_guarded(database, tmp_path):
    conn = connect_ro(database)
    try:
        assert conn.execute('PRAGMA quick_check').fetchall() == [('ok',)]
        with pytest.raises(sqlite3.DatabaseError):
            conn.execute("ATTACH DATABASE '%s' AS x" % (tmp_path / 'other.db'))
    finally:
        conn.close()
    assert not (tmp_path / 'other.db').exists()


@pytest.mark.parametrize('version, supported', [
    ('12.22', False), ('13.21', False), ('13.22', True), ('14.18', False), ('14.19', True), ('15.13', False),
    ('15.14', True), ('15.20', True), ('16.9', False), ('16.10', True), ('17.5', False), ('17.6', True),
    ('18.0', True), ('18beta3', True), ('19devel', True), ('9.6.24', False), ('', False), ('unknown', False),
])
def test_psql_restricted_mode_versions(version, supported):
    assert supports_restrict(version) is supported


DUMP = (b'--\n-- PostgreSQL database dump\n--\n\n\\restrict abcDEF123\n\nSET statement_timeout = 0;\n'
        b'COPY public.articles (id, title) FROM stdin;\n'
        b'1\t\\restrict looks like a meta-command but is data\n'
        b'2\t\\.\n'
        b'3\tlast\n'
        b'\\.\n'
        b'\n\\unrestrict abcDEF123\n'
        b'SELECT pg_catalog.setval(\'public.articles_id_seq\', 3, true);\n'
        b'\\unrestrict abcDEF123\n')


@pytest.mark.parametrize('chunk', [1, 2, 3, 7, 64, 1 << 20])
def test_psql_script_drops_pg_dumps_meta_lines_only_at_statement_level(chunk):
    class Slow(io.BytesIO):
        def read(self, size=-1):
            return super().read(min(chunk, size) if size and size > 0 else chunk)

    script = PsqlScript(Slow(DUMP), b'TRUNCATE x;\n', b'\nCOMMIT;\n')
    out = b''
    while True:
        data = script.read(5)
        if not data:
            break
        out += data
    assert out.startswith(b'\\restrict ' + script.key.encode() + b'\nTRUNCATE x;\n')
    body = out.split(b'\n', 2)[2]
    assert b'abcDEF123' not in body
    assert b'1\t\\restrict looks like a meta-command but is data\n2\t\\.\n3\tlast\n\\.\n' in body
    assert body.endswith(b"SELECT pg_catalog.setval('public.articles_id_seq', 3, true);\n\nCOMMIT;\n")
    assert len(script.key) >= 32 and script.key.isalnum()


def test_psql_script_keeps_every_other_backslash_command_for_psql_to_refuse():
    forged = b'SET x = 1;\n\\! touch /tmp/x\n\\o /tmp/y\n\\unrestrictx\n'
    script = PsqlScript(io.BytesIO(forged))
    out = b''.join(iter(script.read, b''))
    assert out.endswith(b'SET x = 1;\n\\! touch /tmp/x\n\\o /tmp/y\n\\unrestrictx\n')


MARIADB_HELP = '''mariadb  Ver 15.1 Distrib 10.11.19-MariaDB, for debian-linux-gnu (x86_64) using  EditLine wrapper
  --binary-mode       Binary mode allows certain character sequences to be
  --sandbox           Disallow commands that access the file system (except \\P
  --secure-auth       Refuse client connecting to server if it uses old
sandbox                           FALSE
'''
MYSQL_8040_HELP = '''mysql  Ver 8.0.40 for Linux on x86_64 (MySQL Community Server - GPL)
  --binary-mode       By default, ASCII '\\0' is disallowed and '\\r\\n' is
  --system-command    Enable (by default) or disable the system mysql command.
'''
MYSQL_94_HELP = '''mysql  Ver 9.4.0 for Linux on x86_64 (MySQL Community Server - GPL)
  --binary-mode       By default, ASCII '\\0' is disallowed and '\\r\\n' is
  --commands          Enable or disable processing of local mysql commands.
  --system-command    Enable (by default) or disable the system mysql command.
'''
OLD_HELP = '''mariadb  Ver 15.1 Distrib 10.11.6-MariaDB, for debian-linux-gnu (x86_64) using  EditLine wrapper
  --binary-mode       Binary mode allows certain character sequences to be
  --sandbox-like-but-not  an option of another name
secure-auth                       FALSE
'''


@pytest.mark.parametrize('help_text, options', [
    (MARIADB_HELP, ['--sandbox']),
    (MYSQL_94_HELP, ['--commands=OFF']),
    (MYSQL_8040_HELP, ['--system-command=OFF', '--binary-mode']),
    (OLD_HELP, None),
])
def test_the_strongest_client_guard_is_chosen(help_text, options):
    assert loader_options(help_text) == options
