# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The throwaway PostgreSQL / MariaDB harness (_servers.py, servers_fixtures.py) itself."""

from __future__ import annotations

import os
import socket
import subprocess
import threading
import time

import pytest

import _servers

# Harmless once tests/conftest.py registers the plugin too (pytest loads a plugin once).
pytest_plugins = ['servers_fixtures']

VENDORS = ['postgres', 'mariadb']


@pytest.fixture(params=VENDORS)
def server(request):
    return request.getfixturevalue(request.param + '_server')


@pytest.fixture(params=VENDORS)
def database(request):
    return request.getfixturevalue({'postgres': 'pg_database', 'mariadb': 'mariadb_database'}[request.param])


@pytest.fixture(params=VENDORS)
def disposable_server(request):
    return request.getfixturevalue('disposable_%s_server' % request.param)


def _children(names):
    """PIDs of our own child processes whose program is one of ``names``."""
    found = []
    for entry in os.listdir('/proc'):
        if not entry.isdigit():
            continue
        try:
            with open('/proc/%s/stat' % entry, encoding='ascii', errors='replace') as handle:
                stat = handle.read()
            exe = os.path.basename(os.readlink('/proc/%s/exe' % entry))
        except OSError:
            continue
        ppid = int(stat.rsplit(')', 1)[1].split()[1])
        if ppid == os.getpid() and exe in names:
            found.append(int(entry))
    return found


def test_server_basics(server):
    assert server.running and os.path.exists('/proc/%d' % server.pid)
    assert server.host == '127.0.0.1' and server.port not in (5432, 3306)
    assert server.version and server.version_info[0] >= 10
    assert server.sql("SELECT 1, 'x y', NULL") == '1\tx y\tNULL'
    assert server.rows('SELECT 1 UNION ALL SELECT 2') == [['1'], ['2']]
    env = server.env('SOURCE_')
    assert env == {'SOURCE_DB_CLIENT': {'postgres': 'pg', 'mariadb': 'mysql'}[server.vendor],
                   'SOURCE_DB_HOST': server.host, 'SOURCE_DB_PORT': str(server.port),
                   'SOURCE_DB_DATABASE': server.database, 'SOURCE_DB_USER': 'cairn',
                   'SOURCE_DB_PASSWORD': server.password}
    with pytest.raises(_servers.SqlError):
        server.sql('SELECT * FROM no_such_table')


def test_password_is_really_checked(server):
    if server.vendor == 'postgres':
        argv, env = server.command('psql', '-X', '-c', 'SELECT 1')
        env['PGPASSWORD'] = 'wrong'
    else:
        wrong = os.path.join(server.tmpdir, 'wrong.cnf')
        with open(wrong, 'w', encoding='utf-8') as handle:
            handle.write('[client]\nuser=cairn\npassword=wrong\nhost=127.0.0.1\nport=%d\nprotocol=tcp\n' % server.port)
        argv, env = server.command('mariadb', '-e', 'SELECT 1')
        argv[1] = '--defaults-file=' + wrong
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=30, check=False)
    assert proc.returncode != 0
    assert 'password authentication failed' in proc.stderr or 'Access denied' in proc.stderr, proc.stderr


def test_create_and_drop_database(server):
    name = server.create_database('cairn_scratch_%d' % os.getpid())
    listing = ("SELECT datname FROM pg_database" if server.vendor == 'postgres' else 'SHOW DATABASES')
    assert name in server.sql(listing).split('\n')
    server.drop_database(name)
    server.drop_database(name)  # IF EXISTS
    assert name not in server.sql(listing).split('\n')


def test_cairn_schema(database):
    server, dataset = database.server, database.dataset
    assert database.row_counts() == dataset.counts
    assert dataset.counts['articles'] == 20
    assert database.sql('SELECT version FROM directus_migrations ORDER BY version DESC LIMIT 1') == '20230401A'
    if server.vendor == 'postgres':
        binary = database.sql("SELECT encode(attachment, 'hex') FROM articles WHERE id = 3")
        objects = database.sql("SELECT count(*) FROM pg_views WHERE viewname = 'published_articles' UNION ALL "
                               "SELECT count(*) FROM pg_trigger WHERE tgname = 'articles_slug' UNION ALL "
                               "SELECT last_value FROM cairn_export_seq")
        assert objects.split('\n') == ['1', '1', str(_servers.EXPORT_SEQUENCE_VALUE)]
        next_id = database.sql("INSERT INTO articles (title) VALUES ('Über alles') RETURNING id, slug")
    else:
        binary = database.sql('SELECT LOWER(HEX(attachment)) FROM articles WHERE id = 3')
        objects = database.sql("SELECT COUNT(*) FROM information_schema.triggers WHERE trigger_schema = DATABASE() "
                               "UNION ALL SELECT COUNT(*) FROM information_schema.routines "
                               "WHERE routine_schema = DATABASE() UNION ALL SELECT COUNT(*) FROM "
                               "information_schema.views WHERE table_schema = DATABASE()")
        assert objects.split('\n') == ['2', '2', '1']
        next_id = database.sql("INSERT INTO articles (title) VALUES ('Über alles'); "
                               "SELECT id, slug FROM articles WHERE id = LAST_INSERT_ID()")
    assert binary == _servers.blob(3).hex() and len(set(_servers.blob(3))) == 256
    assert next_id == '%d\tber-alles' % dataset.articles_next_id  # id from the carried-on sequence, slug trigger ran
    title = database.sql('SELECT title FROM articles WHERE id = 4')
    assert title == 'Emoji 🪨🏔️ on the trail #4'


@pytest.mark.parametrize('pg_database', [7], indirect=True)  # or @pytest.mark.cairn_rows(7)
def test_row_count_parameter(pg_database):
    assert pg_database.row_counts()['articles'] == 7
    assert pg_database.env()['DB_DATABASE'] == pg_database.name == str(pg_database)


def test_dump_restore_round_trip(server):
    """command() gives the matching dump tools; the schema carries sequences, triggers and blobs."""
    source, target = server.create_database('cairn_rt_a'), server.create_database('cairn_rt_b')
    try:
        dataset = _servers.load_cairn_schema(server, source, rows=12)
        assert _servers.row_counts(server, source) == dataset.counts
        if server.vendor == 'postgres':
            dump = os.path.join(server.tmpdir, 'rt.dump')
            argv, env = server.command('pg_dump', '-Fc', '-f', dump, database=source)
            subprocess.run(argv, env=env, check=True, timeout=120)
            argv, env = server.command('pg_restore', '--no-owner', '-d', target, dump)
            subprocess.run(argv, env=env, check=True, timeout=120)
            inserted = server.sql("INSERT INTO articles (title) VALUES ('x') RETURNING id", target)
        else:
            argv, env = server.command('mariadb-dump', '--single-transaction', '--routines', '--triggers',
                                       '--hex-blob', source)
            dump = subprocess.run(argv, env=env, check=True, capture_output=True, timeout=120).stdout
            argv, env = server.command('mariadb', target)
            subprocess.run(argv, env=env, input=dump, check=True, timeout=120)
            inserted = server.sql("INSERT INTO articles (title) VALUES ('x'); SELECT LAST_INSERT_ID()", target)
        assert int(inserted) == dataset.articles_next_id
        expected = dict(dataset.counts, articles=dataset.counts['articles'] + 1)
        assert _servers.row_counts(server, target) == expected
    finally:
        server.drop_database(source)
        server.drop_database(target)


def test_kill_makes_connections_fail(disposable_server):
    server = disposable_server
    pid, port, tmpdir = server.pid, server.port, server.tmpdir
    assert server.sql('SELECT 1') == '1'
    started = time.monotonic()
    server.kill()
    assert time.monotonic() - started < 5
    assert not server.running and not os.path.exists('/proc/%d' % pid)
    with pytest.raises(_servers.SqlError):
        server.sql('SELECT 1')
    with pytest.raises(OSError):
        socket.create_connection((server.host, port), timeout=2).close()
    server.stop()
    assert not os.path.exists(tmpdir)


def test_password_not_in_client_argv(server):
    """The clients spawned by sql() get the password from env / a 0600 file, never argv."""
    names = {'psql', 'mariadb', 'mysql'}
    slow = 'SELECT pg_sleep(1.5)' if server.vendor == 'postgres' else 'SELECT SLEEP(1.5)'
    worker = threading.Thread(target=server.sql, args=(slow,))
    worker.start()
    seen = []
    try:
        deadline = time.monotonic() + 5
        while not seen and time.monotonic() < deadline:
            seen = _children(names)
            time.sleep(0.02)
        assert seen, 'did not catch the client process'
        for pid in seen:
            with open('/proc/%d/cmdline' % pid, 'rb') as handle:
                cmdline = handle.read()
            assert server.password.encode() not in cmdline
            with open('/proc/%d/environ' % pid, 'rb') as handle:
                environ = handle.read().split(b'\0')
            if server.vendor == 'postgres':
                assert b'PGPASSWORD=' + server.password.encode() in environ
            else:
                assert b'--defaults-file=' + server.defaults_file.encode() in cmdline.split(b'\0')
                assert not any(item.startswith(b'MYSQL_PWD=') for item in environ)
    finally:
        worker.join()
    if server.vendor == 'mariadb':
        assert os.stat(server.defaults_file).st_mode & 0o777 == 0o600
