# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Throwaway PostgreSQL and MariaDB servers for integration tests.

Each server lives in a fresh temporary directory (data directory, unix socket,
log, client credentials) and listens on a free TCP port on 127.0.0.1, so it
never touches a system instance on 5432/3306.  Authentication is real: a
superuser ``cairn`` with a random password is created and every client call
goes over TCP with that password, which is passed through the environment
(``PGPASSWORD``) or a 0600 option file (``--defaults-file``), never argv.

Typical use::

    with PostgresServer() as pg:                  # or MariadbServer()
        pg.create_database('shop')
        expected = load_cairn_schema(pg, 'shop', rows=50)
        assert row_counts(pg, 'shop') == expected.counts
        env = pg.env()                            # DB_CLIENT, DB_HOST, ... for a CairnCMS .env
        argv, environ = pg.command('pg_dump', '-Fc', 'shop')   # matching client, creds in environ

Binaries are looked up at start (see ``PostgresServer.find_bindir`` and
``MariadbServer.find_binaries``); ``$CAIRN_PG_BINDIR`` / ``$CAIRN_MARIADB_BINDIR``
force a directory.  When run as root, PostgreSQL is run as the ``postgres`` OS
user (``$CAIRN_PG_OS_USER`` overrides) because initdb/postgres refuse root;
MariaDB is run with ``--user=root``.

Only the standard library is used.
"""

from __future__ import annotations

import atexit
import ctypes
import dataclasses
import datetime
import glob
import json
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
import weakref
from collections.abc import Sequence

__all__ = [
    'ServerError', 'ServerUnavailable', 'ServerStartError', 'SqlError',
    'PostgresServer', 'MariadbServer', 'CairnDataset',
    'load_cairn_schema', 'row_counts', 'free_port',
]

HOST = '127.0.0.1'
USER = 'cairn'
DATABASE = 'cairn'
START_TIMEOUT = 60
STOP_TIMEOUT = 30
SQL_TIMEOUT = 300
SOCKET_PATH_MAX = 107          # sizeof(sun_path) - 1 on Linux
_NAME_RE = re.compile(r'^[A-Za-z_][A-Za-z0-9_]{0,62}$')
_ADDRESS_IN_USE = ('Address already in use', 'could not bind', 'Bind on TCP/IP port', 'Do you already have another')


class ServerError(RuntimeError):
    """Base class of the errors raised here."""


class ServerUnavailable(ServerError):
    """The server binaries are not installed (tests usually skip on this)."""


class ServerStartError(ServerError):
    """initdb / install-db / the server failed; the message carries the log tail."""


class SqlError(ServerError):
    """A client (psql / mariadb) exited non-zero."""

    def __init__(self, message: str, returncode: int, stdout: str, stderr: str):
        super().__init__(message)
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr


# --------------------------------------------------------------------------- helpers

def free_port(host: str = HOST) -> int:
    """A TCP port that was free a moment ago (the servers retry if it is taken meanwhile)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def _tail(path: str, lines: int = 40) -> str:
    try:
        with open(path, encoding='utf-8', errors='replace') as handle:
            return ''.join(handle.readlines()[-lines:])
    except OSError as error:
        return '(no log: %s)' % error


def _clean_environ(drop_prefixes: Sequence[str]) -> dict[str, str]:
    """os.environ without variables that would redirect or configure the clients."""
    return {key: value for key, value in os.environ.items() if not key.startswith(tuple(drop_prefixes))}


def _check_name(name: str) -> str:
    name = str(name)
    if not _NAME_RE.match(name):
        raise ValueError('unsafe database/user name %r (want [A-Za-z_][A-Za-z0-9_]*)' % name)
    return name


try:
    _LIBC = ctypes.CDLL(None, use_errno=True)
except OSError:  # pragma: no cover - not Linux/glibc
    _LIBC = None


def _die_with_parent() -> None:
    """preexec_fn: SIGKILL the child when the thread that started it dies (PR_SET_PDEATHSIG).

    subprocess calls it after switching uid, so the setting survives.  It is a
    safety net against leaked servers when pytest itself is killed (a
    SIGKILLed postmaster still leaves a 56-byte SysV segment, see ipcs -m).
    Start servers from a long-lived thread (pytest's main thread is).
    """
    if _LIBC is not None:
        _LIBC.prctl(1, signal.SIGKILL)  # 1 == PR_SET_PDEATHSIG


_LIVE: weakref.WeakSet = weakref.WeakSet()


@atexit.register
def _stop_leftovers() -> None:
    for server in list(_LIVE):
        try:
            server.stop()
        except Exception:  # noqa: BLE001 - best effort at interpreter exit
            pass


# --------------------------------------------------------------------------- base class

class _Server:
    """Lifecycle shared by both vendors; subclasses provide the vendor bits."""

    vendor = ''            # 'postgres' / 'mariadb'
    db_client = ''         # DB_CLIENT value in a CairnCMS .env
    _prefix = 'cairn-db-'

    def __init__(self, *, user: str = USER, password: str | None = None, database: str = DATABASE,
                 base_dir: str | None = None, start_timeout: float = START_TIMEOUT,
                 die_with_parent: bool = True):
        self.user = _check_name(user)
        self.password = password or secrets.token_urlsafe(18)
        self.database = _check_name(database)
        self.host = HOST
        self.port: int | None = None
        self.version: str | None = None
        self.base_dir = base_dir or tempfile.gettempdir()
        self.start_timeout = start_timeout
        self.die_with_parent = die_with_parent
        self.tmpdir: str | None = None
        self.log_path: str | None = None
        self._proc: subprocess.Popen | None = None

    # -- context manager / lifecycle ------------------------------------------------

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.stop()

    def __repr__(self):
        return '<%s %s:%s pid=%s>' % (type(self).__name__, self.host, self.port, self.pid)

    @property
    def pid(self) -> int | None:
        """PID of the server process (the postmaster / mariadbd)."""
        return self._proc.pid if self._proc else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def version_info(self) -> tuple[int, ...]:
        """(major, minor[, patch]) parsed from ``version``."""
        match = re.match(r'(\d+(?:\.\d+)*)', self.version or '')
        return tuple(int(part) for part in match.group(1).split('.')) if match else ()

    def start(self):
        """Create the temp dir, initialise, start on a free port, create the user and database."""
        if self.tmpdir:
            raise ServerError('%r was already started' % self)
        self._locate()
        self.tmpdir = tempfile.mkdtemp(prefix=self._prefix, dir=self.base_dir)
        _LIVE.add(self)
        try:
            self._initialise()
            for attempt in range(3):
                self.port = free_port()
                self._check_socket_length()
                self._spawn()
                try:
                    self._wait_ready()
                    break
                except ServerStartError:
                    if attempt < 2 and self._lost_port_race():
                        continue
                    raise
            self._after_start()
        except BaseException:
            self.stop()
            raise
        return self

    def kill(self) -> None:
        """SIGKILL the server and every process of its session (backends too), no cleanup.

        Simulates a crash, e.g. in the middle of a dump.  ``stop()`` still
        removes the temp dir afterwards.
        """
        if self._proc is None:
            return
        try:
            os.killpg(self._proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self._proc.wait()
        self._after_kill()

    def stop(self) -> None:
        """Clean shutdown (escalating to SIGKILL) and removal of the temp dir.  Idempotent."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.send_signal(self._stop_signal)
            try:
                self._proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.kill()
        if self._proc is not None:
            try:  # stray children (backends) of the session
                os.killpg(self._proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        if self.tmpdir:
            shutil.rmtree(self.tmpdir, ignore_errors=True)
        self.tmpdir = None
        _LIVE.discard(self)

    def log_tail(self, lines: int = 40) -> str:
        return _tail(self.log_path, lines) if self.log_path else ''

    # -- SQL -------------------------------------------------------------------------

    def sql(self, statement: str, database: str | None = None, *, timeout: float = SQL_TIMEOUT) -> str:
        """Run SQL (one or more statements, fed on stdin) and return the output.

        Output: one line per row, columns separated by tabs, no headers, no
        command tags, NULL printed as ``NULL``; the trailing newline is
        stripped.  PostgreSQL prints values verbatim (a newline inside a value
        breaks the row), MariaDB escapes ``\\n``, ``\\t``, ``\\\\`` and ``\\0``.
        Raises ``SqlError`` on any error (the script stops at the first one).
        """
        argv, env = self._sql_command(str(database) if database else self.database)
        proc = subprocess.run(argv, input=statement, env=env, capture_output=True, text=True,
                              encoding='utf-8', timeout=timeout, check=False, cwd=self.tmpdir)
        if proc.returncode != 0:
            excerpt = statement if len(statement) < 500 else statement[:500] + '...'
            raise SqlError('%s failed (exit %d) on %s:\n%s\nSQL: %s' % (
                os.path.basename(argv[0]), proc.returncode, self, proc.stderr.strip(), excerpt),
                proc.returncode, proc.stdout, proc.stderr)
        return proc.stdout[:-1] if proc.stdout.endswith('\n') else proc.stdout

    def rows(self, statement: str, database: str | None = None) -> list[list[str]]:
        """``sql()`` split into rows and columns."""
        output = self.sql(statement, database)
        return [line.split('\t') for line in output.split('\n')] if output else []

    def create_database(self, name: str) -> str:
        raise NotImplementedError

    def drop_database(self, name: str) -> None:
        raise NotImplementedError

    def env(self, prefix: str = '', database: str | None = None) -> dict[str, str]:
        """The CairnCMS (Directus) .env settings pointing at this server."""
        values = {'DB_CLIENT': self.db_client, 'DB_HOST': self.host, 'DB_PORT': str(self.port),
                  'DB_DATABASE': str(database) if database else self.database,
                  'DB_USER': self.user, 'DB_PASSWORD': self.password}
        return {prefix + key: value for key, value in values.items()}

    def command(self, tool: str, *args: str) -> tuple[list[str], dict[str, str]]:
        """argv and environment to run a client tool of this server's version against it."""
        raise NotImplementedError

    # -- vendor hooks ------------------------------------------------------------------

    _stop_signal = signal.SIGTERM

    def _locate(self) -> None: ...
    def _initialise(self) -> None: ...
    def _spawn(self) -> None: ...
    def _ready(self) -> bool: ...
    def _after_start(self) -> None: ...
    def _after_kill(self) -> None: ...
    def _socket_path(self) -> str: ...
    def _sql_command(self, database: str) -> tuple[list[str], dict[str, str]]: ...

    # -- internals ---------------------------------------------------------------------

    def _popen(self, argv: list[str], **kwargs) -> subprocess.Popen:
        with open(self.log_path, 'ab') as log:
            return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                    cwd=self.tmpdir, start_new_session=True,
                                    preexec_fn=_die_with_parent if self.die_with_parent else None,
                                    **kwargs)

    def _run_setup(self, argv: list[str], what: str, **kwargs) -> None:
        proc = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              cwd=self.tmpdir, timeout=300, check=False, **kwargs)
        with open(os.path.join(self.tmpdir, what + '.log'), 'w', encoding='utf-8') as handle:
            handle.write(proc.stdout + proc.stderr)
        if proc.returncode != 0:
            raise ServerStartError('%s failed (exit %d): %s\n%s' % (
                what, proc.returncode, ' '.join(argv), (proc.stdout + proc.stderr)[-4000:]))

    def _check_socket_length(self) -> None:
        path = self._socket_path()
        if len(path.encode()) > SOCKET_PATH_MAX:
            raise ServerStartError('unix socket path %s is %d bytes, over the %d-byte limit; pass a shorter '
                                   'base_dir' % (path, len(path.encode()), SOCKET_PATH_MAX))

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.start_timeout
        while True:
            if self._proc.poll() is not None:
                raise ServerStartError('%s exited with %s during start-up; log %s:\n%s' % (
                    self.vendor, self._proc.returncode, self.log_path, self.log_tail()))
            if self._ready():
                return
            if time.monotonic() > deadline:
                tail = self.log_tail()
                self.kill()
                raise ServerStartError('%s did not accept connections on %s:%s within %ss; log %s:\n%s' % (
                    self.vendor, self.host, self.port, self.start_timeout, self.log_path, tail))
            time.sleep(0.1)

    def _lost_port_race(self) -> bool:
        tail = self.log_tail(60)
        if any(marker in tail for marker in _ADDRESS_IN_USE):
            with open(self.log_path, 'a', encoding='utf-8') as log:
                log.write('\n--- port %s was taken, retrying on another port ---\n' % self.port)
            return True
        return False


# --------------------------------------------------------------------------- PostgreSQL

class PostgresServer(_Server):
    """A throwaway PostgreSQL cluster (initdb + postgres) owned by ``cairn`` (superuser).

    Attributes: ``host``, ``port``, ``user``, ``password``, ``database``,
    ``version`` (``SHOW server_version``), ``pid`` (postmaster), ``bindir``,
    ``tmpdir``, ``datadir``, ``socket_dir``, ``log_path``.
    """

    vendor = 'postgres'
    db_client = 'pg'
    _prefix = 'cairn-pg-'
    _stop_signal = signal.SIGINT  # "fast" shutdown: abort sessions, checkpoint, exit

    SERVER_SETTINGS = {
        # throwaway data: trade durability for speed
        'fsync': 'off', 'synchronous_commit': 'off', 'full_page_writes': 'off',
        'timezone': 'UTC', 'log_timezone': 'UTC', 'max_connections': '40',
        'shared_buffers': '32MB', 'logging_collector': 'off', 'log_min_messages': 'warning',
    }

    def __init__(self, *, os_user: str | None = None, bindir: str | None = None, **kwargs):
        super().__init__(**kwargs)
        self.bindir = bindir
        self.os_user = os_user
        self.datadir = self.socket_dir = None
        self._shm_id: str | None = None

    @staticmethod
    def find_bindir() -> str:
        """Directory holding initdb/postgres/psql/pg_dump: $CAIRN_PG_BINDIR, the highest
        /usr/lib/postgresql/<N>/bin (Debian/Ubuntu), `pg_config --bindir`, then PATH."""
        candidates = []
        if os.environ.get('CAIRN_PG_BINDIR'):
            candidates.append(os.environ['CAIRN_PG_BINDIR'])
        debian = glob.glob('/usr/lib/postgresql/*/bin')
        debian.sort(key=lambda path: [int(part) for part in re.findall(r'\d+', path)], reverse=True)
        candidates += debian
        pg_config = shutil.which('pg_config')
        if pg_config:
            try:
                candidates.append(subprocess.run([pg_config, '--bindir'], capture_output=True, text=True,
                                                 check=True, timeout=10).stdout.strip())
            except (subprocess.SubprocessError, OSError):
                pass
        found = shutil.which('postgres') or shutil.which('initdb')
        if found:
            candidates.append(os.path.dirname(os.path.realpath(found)))
        for directory in candidates:
            if all(os.access(os.path.join(directory, tool), os.X_OK) for tool in ('initdb', 'postgres')):
                return directory
        raise ServerUnavailable('PostgreSQL server binaries (initdb, postgres) not found; on Debian/Ubuntu: '
                                'apt-get install postgresql (or set CAIRN_PG_BINDIR)')

    def binary(self, tool: str) -> str:
        """Path of a PostgreSQL tool, preferring the server's own bindir (matching version)."""
        path = os.path.join(self.bindir or self.find_bindir(), tool)
        if os.access(path, os.X_OK):
            return path
        found = shutil.which(tool)
        if not found:
            raise ServerUnavailable('%s not found (apt-get install postgresql-client)' % tool)
        return found

    # -- vendor hooks --------------------------------------------------------------------

    def _locate(self):
        self.bindir = self.bindir or self.find_bindir()
        self._psql = self.binary('psql')
        self._ids = None
        if os.geteuid() == 0:
            name = self.os_user or os.environ.get('CAIRN_PG_OS_USER') or 'postgres'
            try:
                entry = pwd.getpwnam(name)
            except KeyError:
                raise ServerUnavailable('running as root, PostgreSQL needs an unprivileged OS user %r to run as '
                                        '(useradd --system %s, or set CAIRN_PG_OS_USER)' % (name, name)) from None
            self._ids = (entry.pw_uid, entry.pw_gid, entry.pw_dir)

    def _as_server_user(self) -> dict:
        """Popen kwargs dropping root privileges (initdb/postgres refuse to run as root)."""
        if not self._ids:
            return {}
        return {'user': self._ids[0], 'group': self._ids[1], 'extra_groups': []}

    def _server_env(self) -> dict[str, str]:
        env = _clean_environ(('PG', 'LC_', 'LANG'))
        env.update(LC_ALL='C', LANG='C', TZ='UTC')
        if self._ids:
            env['HOME'] = self.tmpdir
        return env

    def _socket_path(self):
        return os.path.join(self.socket_dir, '.s.PGSQL.%d' % self.port)

    def _initialise(self):
        self.datadir = os.path.join(self.tmpdir, 'data')
        self.socket_dir = os.path.join(self.tmpdir, 'run')
        self.log_path = os.path.join(self.tmpdir, 'postgres.log')
        os.mkdir(self.socket_dir, 0o700)
        pwfile = os.path.join(self.tmpdir, 'pwfile')
        with open(os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), 'w') as handle:
            handle.write(self.password + '\n')
        open(self.log_path, 'a').close()
        if self._ids:
            self._check_traversable(self.tmpdir)
            for path in (self.tmpdir, self.socket_dir, pwfile, self.log_path):
                os.chown(path, self._ids[0], self._ids[1])
        try:
            self._run_setup([os.path.join(self.bindir, 'initdb'), '-D', self.datadir, '-U', self.user,
                             '--pwfile=' + pwfile, '--auth=scram-sha-256', '--encoding=UTF8', '--locale=C',
                             '--no-sync'], 'initdb', env=self._server_env(), **self._as_server_user())
        finally:
            os.unlink(pwfile)

    def _check_traversable(self, path: str) -> None:
        """The server user must be able to reach the temp dir (pytest's root-owned 0700 dirs are not)."""
        uid, gid = self._ids[:2]
        parent = os.path.dirname(path)
        while True:
            info = os.stat(parent)
            if not (info.st_mode & 0o001 or (info.st_uid == uid and info.st_mode & 0o100)
                    or (info.st_gid == gid and info.st_mode & 0o010)):
                raise ServerStartError('uid %d cannot traverse %s (mode %o); use a base_dir under /tmp'
                                       % (uid, parent, info.st_mode & 0o7777))
            if parent == '/':
                return
            parent = os.path.dirname(parent)

    def _spawn(self):
        argv = [os.path.join(self.bindir, 'postgres'), '-D', self.datadir, '-p', str(self.port),
                '-h', self.host, '-k', self.socket_dir]
        for key, value in self.SERVER_SETTINGS.items():
            argv += ['-c', '%s=%s' % (key, value)]
        self._proc = self._popen(argv, env=self._server_env(), **self._as_server_user())

    def _client_env(self, database: str) -> dict[str, str]:
        env = _clean_environ(('PG',))
        env.update(PGHOST=self.host, PGPORT=str(self.port), PGUSER=self.user, PGPASSWORD=self.password,
                   PGDATABASE=database, PGCLIENTENCODING='UTF8', PGTZ='UTC', PGCONNECT_TIMEOUT='5',
                   PGSSLMODE='disable', PGPASSFILE=os.devnull, PGSYSCONFDIR=self.tmpdir or '/nonexistent')
        return env

    def _sql_command(self, database):
        return ([self._psql, '-X', '-q', '-A', '-t', '-F', '\t', '-P', 'null=NULL',
                 '-v', 'ON_ERROR_STOP=1', '-f', '-'], self._client_env(database))

    def _ready(self):
        argv, env = self._sql_command('postgres')
        proc = subprocess.run(argv, input='SELECT 1', env=env, capture_output=True, text=True, timeout=15,
                              check=False)
        return proc.returncode == 0 and proc.stdout.strip() == '1'

    def _after_start(self):
        self.version = self.sql('SHOW server_version', 'postgres')
        if self.database != 'postgres':
            self.create_database(self.database)
        try:
            with open(os.path.join(self.datadir, 'postmaster.pid'), encoding='ascii') as handle:
                self._shm_id = handle.read().splitlines()[6].split()[1]
        except (OSError, IndexError):
            self._shm_id = None

    def _after_kill(self):
        # A SIGKILLed postmaster leaves its (tiny) SysV shared memory segment behind.
        ipcrm = shutil.which('ipcrm')
        if self._shm_id and ipcrm:
            subprocess.run([ipcrm, '-m', self._shm_id], capture_output=True, check=False)
            self._shm_id = None

    # -- public ----------------------------------------------------------------------------

    def create_database(self, name):
        name = _check_name(name)
        self.sql('CREATE DATABASE "%s" ENCODING \'UTF8\' TEMPLATE template0' % name, 'postgres')
        return name

    def drop_database(self, name):
        self.sql('DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % _check_name(name), 'postgres')

    def command(self, tool, *args, database=None):
        """e.g. ``command('pg_dump', '-Fc', 'mydb')``: the credentials are in the returned
        environment (PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE=database or the default)."""
        return [self.binary(tool), *args], self._client_env(str(database) if database else self.database)


# --------------------------------------------------------------------------- MariaDB

class MariadbServer(_Server):
    """A throwaway MariaDB server (mariadb-install-db + mariadbd) with a ``cairn``@``%`` superuser.

    Attributes: ``host``, ``port``, ``user``, ``password``, ``database``,
    ``version`` (``SELECT VERSION()``), ``pid`` (mariadbd), ``tmpdir``,
    ``datadir``, ``socket``, ``defaults_file`` (0600 ``[client]`` option file
    holding user/password/host/port), ``log_path``.
    """

    vendor = 'mariadb'
    db_client = 'mysql'
    _prefix = 'cairn-my-'

    SERVER_OPTIONS = (
        '--skip-name-resolve', '--character-set-server=utf8mb4', '--collation-server=utf8mb4_unicode_ci',
        '--default-time-zone=+00:00', '--innodb-buffer-pool-size=64M', '--innodb-log-file-size=16M',
        '--innodb-use-native-aio=0',       # io_setup() limits bite with many servers (xdist, containers)
        '--innodb-flush-log-at-trx-commit=2', '--max-connections=40', '--max-allowed-packet=64M',
        '--skip-log-bin',
    )

    # tool name -> fall-back names (MySQL-era spellings)
    _ALIASES = {'mariadbd': ('mysqld',), 'mariadb-install-db': ('mysql_install_db',), 'mariadb': ('mysql',),
                'mariadb-dump': ('mysqldump',), 'mariadb-admin': ('mysqladmin',)}

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.datadir = self.socket = self.defaults_file = None
        self.binaries: dict[str, str] = {}

    @classmethod
    def binary(cls, tool: str) -> str:
        """Path of a MariaDB program: $CAIRN_MARIADB_BINDIR, PATH, /usr/sbin, /usr/libexec."""
        directories = [os.environ['CAIRN_MARIADB_BINDIR']] if os.environ.get('CAIRN_MARIADB_BINDIR') else []
        directories += os.environ.get('PATH', '').split(os.pathsep) + ['/usr/sbin', '/usr/libexec', '/usr/bin']
        for name in (tool,) + cls._ALIASES.get(tool, ()):
            for directory in directories:
                path = os.path.join(directory, name)
                if directory and os.path.isfile(path) and os.access(path, os.X_OK):
                    return path
        raise ServerUnavailable('%s not found; on Debian/Ubuntu: apt-get install mariadb-server mariadb-client '
                                '(or set CAIRN_MARIADB_BINDIR)' % tool)

    @classmethod
    def find_binaries(cls) -> dict[str, str]:
        return {tool: cls.binary(tool) for tool in ('mariadbd', 'mariadb-install-db', 'mariadb')}

    # -- vendor hooks ----------------------------------------------------------------------

    def _locate(self):
        self.binaries = self.find_binaries()

    def _socket_path(self):
        return self.socket

    def _user_option(self) -> list[str]:
        # mariadbd refuses to run as root unless told to; as non-root --user is ignored with a warning.
        return ['--user=root'] if os.geteuid() == 0 else []

    def _initialise(self):
        self.datadir = os.path.join(self.tmpdir, 'data')
        self.socket = os.path.join(self.tmpdir, 'mariadb.sock')
        self.log_path = os.path.join(self.tmpdir, 'mariadbd.log')
        self.defaults_file = os.path.join(self.tmpdir, 'client.cnf')
        # --no-defaults everywhere: /etc/mysql/my.cnf (Debian: socket in /run/mysqld, datadir
        # /var/lib/mysql) must not leak into the throwaway server.
        self._run_setup([self.binaries['mariadb-install-db'], '--no-defaults', '--datadir=' + self.datadir,
                         *self._user_option(), '--skip-test-db', '--skip-name-resolve',
                         '--auth-root-authentication-method=socket', '--innodb-use-native-aio=0',
                         '--innodb-log-file-size=16M'], 'mariadb-install-db', env=_clean_environ(('MYSQL',)))
        # install-db's --extra-file runs under --bootstrap (skip-grant-tables) where CREATE USER
        # is refused, so the account is created by --init-file on the first start instead.
        quoted = self.password.replace('\\', '\\\\').replace("'", "\\'")
        with open(os.open(os.path.join(self.tmpdir, 'init.sql'), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600),
                  'w', encoding='utf-8') as handle:
            handle.write("CREATE USER IF NOT EXISTS '%s'@'%%' IDENTIFIED BY '%s';\n"
                         "GRANT ALL PRIVILEGES ON *.* TO '%s'@'%%' WITH GRANT OPTION;\n"
                         "CREATE DATABASE IF NOT EXISTS `%s` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;\n"
                         % (self.user, quoted, self.user, self.database))

    def _write_defaults_file(self):
        # Only options every client (mariadb, mariadb-dump, mariadb-admin, ...) knows may go in
        # [client]: mariadb-dump rejects e.g. connect-timeout there ("unknown variable").
        value = self.password.replace('\\', '\\\\').replace('"', '\\"')
        text = ('[client]\nuser=%s\npassword="%s"\nhost=%s\nport=%d\nprotocol=tcp\n'
                'default-character-set=utf8mb4\n' % (self.user, value, self.host, self.port))
        fd = os.open(self.defaults_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with open(fd, 'w', encoding='utf-8') as handle:
            handle.write(text)
        os.chmod(self.defaults_file, 0o600)

    def _spawn(self):
        self._write_defaults_file()
        argv = [self.binaries['mariadbd'], '--no-defaults', *self._user_option(), '--datadir=' + self.datadir,
                '--socket=' + self.socket, '--pid-file=' + os.path.join(self.tmpdir, 'mariadbd.pid'),
                '--port=%d' % self.port, '--bind-address=' + self.host, '--log-error=' + self.log_path,
                '--tmpdir=' + self.tmpdir, '--init-file=' + os.path.join(self.tmpdir, 'init.sql'),
                *self.SERVER_OPTIONS]
        self._proc = self._popen(argv, env=_clean_environ(('MYSQL',)))

    def _client_env(self):
        return _clean_environ(('MYSQL', 'MARIADB'))  # MYSQL_PWD, MYSQL_HOST, MYSQL_TCP_PORT, ...

    def _sql_command(self, database):
        return ([self.binaries['mariadb'], '--defaults-file=' + self.defaults_file, '--batch',
                 '--skip-column-names', '--connect-timeout=5', '--database=' + database], self._client_env())

    def _ready(self):
        argv, env = self._sql_command(self.database)
        proc = subprocess.run(argv, input='SELECT 1', env=env, capture_output=True, text=True, timeout=15,
                              check=False)
        return proc.returncode == 0 and proc.stdout.strip() == '1'

    def _after_start(self):
        self.version = self.sql('SELECT VERSION()')

    # -- public ------------------------------------------------------------------------------

    def create_database(self, name):
        name = _check_name(name)
        self.sql('CREATE DATABASE `%s` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci' % name)
        return name

    def drop_database(self, name):
        self.sql('DROP DATABASE IF EXISTS `%s`' % _check_name(name))

    def command(self, tool, *args):
        """e.g. ``command('mariadb-dump', '--single-transaction', 'mydb')``: ``--defaults-file``
        (which must come first, and makes the client ignore /etc/mysql and ~/.my.cnf) carries
        the credentials."""
        return [self.binary(tool), '--defaults-file=' + self.defaults_file, *args], self._client_env()


# --------------------------------------------------------------------------- CairnCMS schema

MIGRATIONS = [  # a subset of Directus 10's system migrations; CairnCMS forked at 20230401A
    ('20201028A', 'Remove Collection Foreign Keys', '2023-03-01 09:00:00'),
    ('20201029A', 'Remove System Relations', '2023-03-01 09:00:01'),
    ('20201029B', 'Remove System Collections', '2023-03-01 09:00:02'),
    ('20201029C', 'Remove System Fields', '2023-03-01 09:00:03'),
    ('20201105A', 'Add Cascade System Relations', '2023-03-01 09:00:04'),
    ('20210225A', 'Add Relations Sort Field', '2023-03-01 09:00:05'),
    ('20220801A', 'Update Notifications Timestamp Column', '2023-03-01 09:00:06'),
    ('20230401A', 'Update Material Icons', '2023-04-01 12:00:00'),
]

TITLES = [  # deliberately awkward: quotes, backslashes, non-ASCII, 4-byte UTF-8
    "Cairn's first article",
    'Grüße aus Köln – \u201csmart quotes\u201d',  # escaped: sanity's no-smart-quotes
    '山の石塚 (stone cairn)',
    'Ωμέγα & ελληνικά',
    'Emoji 🪨🏔️ on the trail',
    r'Windows path C:\cairn\backup',
    'Plain ASCII title',
]

_NAMESPACE = uuid.UUID('6f1c1d8e-2f0e-4a8e-9c43-3a6f0c2b7d10')
_EXTRA_ARTICLES = 3     # inserted then deleted, so the id sequence is ahead of max(id)
EXPORT_SEQUENCE = 'cairn_export_seq'
EXPORT_SEQUENCE_VALUE = 4242


def _uid(kind: str, number: int) -> str:
    return str(uuid.uuid5(_NAMESPACE, '%s-%d' % (kind, number)))


def blob(number: int) -> bytes:
    """The 256-byte value of articles.attachment for article ``number``: every byte 0-255, rotated."""
    return bytes((number + offset) % 256 for offset in range(256))


@dataclasses.dataclass
class CairnDataset:
    """What ``load_cairn_schema`` put in a database."""

    vendor: str
    database: str
    rows: int
    counts: dict[str, int]            # expected row_counts()
    articles_next_id: int             # id the next article insert must get (sequence carried over)
    export_sequence: str | None       # PostgreSQL only: a standalone sequence ...
    export_sequence_value: int | None  # ... set to this value (nextval() gives value + 1)


_PG_DDL = r"""
SET client_min_messages = warning;
CREATE TABLE directus_migrations (
  version varchar(255) NOT NULL PRIMARY KEY,
  name varchar(255) NOT NULL,
  "timestamp" timestamptz DEFAULT CURRENT_TIMESTAMP
);
CREATE TABLE directus_roles (
  id uuid NOT NULL PRIMARY KEY,
  name varchar(100) NOT NULL,
  icon varchar(30) NOT NULL DEFAULT 'supervised_user_circle',
  description text,
  ip_access text,
  enforce_tfa boolean NOT NULL DEFAULT false,
  admin_access boolean NOT NULL DEFAULT false,
  app_access boolean NOT NULL DEFAULT true
);
CREATE TABLE directus_users (
  id uuid NOT NULL PRIMARY KEY,
  first_name varchar(50), last_name varchar(50),
  email varchar(128) UNIQUE,
  password varchar(255),
  location varchar(255), title varchar(50), description text, tags json,
  avatar uuid,
  language varchar(255), theme varchar(20) DEFAULT 'auto',
  tfa_secret varchar(255),
  status varchar(16) NOT NULL DEFAULT 'active',
  role uuid REFERENCES directus_roles (id) ON DELETE SET NULL,
  token varchar(255) UNIQUE,
  last_access timestamptz, last_page varchar(255),
  provider varchar(128) NOT NULL DEFAULT 'default',
  external_identifier varchar(255) UNIQUE,
  auth_data json,
  email_notifications boolean DEFAULT true
);
CREATE TABLE directus_folders (
  id uuid NOT NULL PRIMARY KEY,
  name varchar(255) NOT NULL,
  parent uuid REFERENCES directus_folders (id)
);
CREATE TABLE directus_files (
  id uuid NOT NULL PRIMARY KEY,
  storage varchar(255) NOT NULL,
  filename_disk varchar(255),
  filename_download varchar(255) NOT NULL,
  title varchar(255),
  type varchar(255),
  folder uuid REFERENCES directus_folders (id) ON DELETE SET NULL,
  uploaded_by uuid REFERENCES directus_users (id),
  uploaded_on timestamptz NOT NULL DEFAULT CURRENT_TIMESTAMP,
  modified_by uuid REFERENCES directus_users (id),
  modified_on timestamptz NOT NULL DEFAULT CURRENT_TIMESTAMP,
  charset varchar(50),
  filesize bigint,
  width integer, height integer, duration integer,
  embed varchar(200),
  description text,
  location text,
  tags text,
  metadata json
);
CREATE TABLE directus_sessions (
  token varchar(64) NOT NULL PRIMARY KEY,
  "user" uuid REFERENCES directus_users (id) ON DELETE CASCADE,
  expires timestamptz NOT NULL,
  ip varchar(255), user_agent varchar(255),
  share uuid,
  origin varchar(255)
);
CREATE TABLE directus_activity (
  id serial PRIMARY KEY,
  action varchar(45) NOT NULL,
  "user" uuid,
  "timestamp" timestamptz NOT NULL DEFAULT CURRENT_TIMESTAMP,
  ip varchar(50), user_agent varchar(255),
  collection varchar(64) NOT NULL,
  item varchar(255) NOT NULL,
  comment text,
  origin varchar(255)
);
CREATE TABLE directus_revisions (
  id serial PRIMARY KEY,
  activity integer NOT NULL REFERENCES directus_activity (id) ON DELETE CASCADE,
  collection varchar(64) NOT NULL,
  item varchar(255) NOT NULL,
  data json, delta json,
  parent integer REFERENCES directus_revisions (id)
);
CREATE TABLE articles (
  id serial PRIMARY KEY,
  status varchar(255) NOT NULL DEFAULT 'draft',
  title varchar(255),
  slug varchar(255),
  body text,
  cover uuid REFERENCES directus_files (id) ON DELETE SET NULL,
  attachment bytea,
  date_created timestamptz
);
CREATE SEQUENCE cairn_export_seq START 100;
CREATE VIEW published_articles AS
  SELECT id, title, slug, date_created FROM articles WHERE status = 'published';
CREATE FUNCTION cairn_articles_slug() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW.slug := trim(both '-' from lower(regexp_replace(coalesce(NEW.title, ''), '[^A-Za-z0-9]+', '-', 'g')));
  RETURN NEW;
END
$$;
CREATE TRIGGER articles_slug BEFORE INSERT OR UPDATE OF title ON articles
  FOR EACH ROW EXECUTE FUNCTION cairn_articles_slug();
"""

_MARIADB_DDL = r"""
CREATE TABLE directus_migrations (
  version varchar(255) NOT NULL PRIMARY KEY,
  name varchar(255) NOT NULL,
  `timestamp` timestamp NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE TABLE directus_roles (
  id char(36) NOT NULL PRIMARY KEY,
  name varchar(100) NOT NULL,
  icon varchar(30) NOT NULL DEFAULT 'supervised_user_circle',
  description text,
  ip_access text,
  enforce_tfa boolean NOT NULL DEFAULT false,
  admin_access boolean NOT NULL DEFAULT false,
  app_access boolean NOT NULL DEFAULT true
);
CREATE TABLE directus_users (
  id char(36) NOT NULL PRIMARY KEY,
  first_name varchar(50), last_name varchar(50),
  email varchar(128) UNIQUE,
  password varchar(255),
  location varchar(255), title varchar(50), description text, tags json,
  avatar char(36),
  language varchar(255), theme varchar(20) DEFAULT 'auto',
  tfa_secret varchar(255),
  status varchar(16) NOT NULL DEFAULT 'active',
  role char(36),
  token varchar(255) UNIQUE,
  last_access timestamp NULL, last_page varchar(255),
  provider varchar(128) NOT NULL DEFAULT 'default',
  external_identifier varchar(255) UNIQUE,
  auth_data json,
  email_notifications boolean DEFAULT true,
  CONSTRAINT directus_users_role_foreign FOREIGN KEY (role) REFERENCES directus_roles (id) ON DELETE SET NULL
);
CREATE TABLE directus_folders (
  id char(36) NOT NULL PRIMARY KEY,
  name varchar(255) NOT NULL,
  parent char(36),
  CONSTRAINT directus_folders_parent_foreign FOREIGN KEY (parent) REFERENCES directus_folders (id)
);
CREATE TABLE directus_files (
  id char(36) NOT NULL PRIMARY KEY,
  storage varchar(255) NOT NULL,
  filename_disk varchar(255),
  filename_download varchar(255) NOT NULL,
  title varchar(255),
  type varchar(255),
  folder char(36),
  uploaded_by char(36),
  uploaded_on timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP,
  modified_by char(36),
  modified_on timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP,
  charset varchar(50),
  filesize bigint,
  width int, height int, duration int,
  embed varchar(200),
  description text,
  location text,
  tags text,
  metadata json,
  CONSTRAINT directus_files_folder_foreign FOREIGN KEY (folder) REFERENCES directus_folders (id) ON DELETE SET NULL,
  CONSTRAINT directus_files_uploaded_by_foreign FOREIGN KEY (uploaded_by) REFERENCES directus_users (id),
  CONSTRAINT directus_files_modified_by_foreign FOREIGN KEY (modified_by) REFERENCES directus_users (id)
);
CREATE TABLE directus_sessions (
  token varchar(64) NOT NULL PRIMARY KEY,
  `user` char(36),
  expires timestamp NOT NULL,
  ip varchar(255), user_agent varchar(255),
  share char(36),
  origin varchar(255),
  CONSTRAINT directus_sessions_user_foreign FOREIGN KEY (`user`) REFERENCES directus_users (id) ON DELETE CASCADE
);
CREATE TABLE directus_activity (
  id int unsigned NOT NULL AUTO_INCREMENT PRIMARY KEY,
  action varchar(45) NOT NULL,
  `user` char(36),
  `timestamp` timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP,
  ip varchar(50), user_agent varchar(255),
  collection varchar(64) NOT NULL,
  item varchar(255) NOT NULL,
  comment text,
  origin varchar(255)
);
CREATE TABLE directus_revisions (
  id int unsigned NOT NULL AUTO_INCREMENT PRIMARY KEY,
  activity int unsigned NOT NULL,
  collection varchar(64) NOT NULL,
  item varchar(255) NOT NULL,
  data json, delta json,
  parent int unsigned,
  CONSTRAINT directus_revisions_activity_foreign FOREIGN KEY (activity) REFERENCES directus_activity (id) ON DELETE CASCADE,
  CONSTRAINT directus_revisions_parent_foreign FOREIGN KEY (parent) REFERENCES directus_revisions (id)
);
CREATE TABLE articles (
  id int unsigned NOT NULL AUTO_INCREMENT PRIMARY KEY,
  status varchar(255) NOT NULL DEFAULT 'draft',
  title varchar(255),
  slug varchar(255),
  body text,
  cover char(36),
  attachment blob,
  date_created timestamp NULL,
  CONSTRAINT articles_cover_foreign FOREIGN KEY (cover) REFERENCES directus_files (id) ON DELETE SET NULL
);
CREATE VIEW published_articles AS
  SELECT id, title, slug, date_created FROM articles WHERE status = 'published';
CREATE TRIGGER articles_slug_insert BEFORE INSERT ON articles FOR EACH ROW
  SET NEW.slug = TRIM(BOTH '-' FROM LOWER(REGEXP_REPLACE(COALESCE(NEW.title, ''), '[^A-Za-z0-9]+', '-')));
CREATE TRIGGER articles_slug_update BEFORE UPDATE ON articles FOR EACH ROW
  SET NEW.slug = TRIM(BOTH '-' FROM LOWER(REGEXP_REPLACE(COALESCE(NEW.title, ''), '[^A-Za-z0-9]+', '-')));
DELIMITER //
CREATE PROCEDURE cairn_publish_article(IN p_id INT UNSIGNED)
MODIFIES SQL DATA
BEGIN
  UPDATE articles SET status = 'published' WHERE id = p_id;
  SELECT ROW_COUNT();
END //
CREATE FUNCTION cairn_article_count() RETURNS INT READS SQL DATA
BEGIN
  RETURN (SELECT COUNT(*) FROM articles);
END //
DELIMITER ;
"""


class _Dialect:
    def __init__(self, vendor: str):
        self.vendor = vendor

    def quote(self, name: str) -> str:
        return '"%s"' % name if self.vendor == 'postgres' else '`%s`' % name

    def literal(self, value) -> str:
        if value is None:
            return 'NULL'
        if isinstance(value, bool):
            return 'TRUE' if value else 'FALSE'
        if isinstance(value, int):
            return str(value)
        if isinstance(value, bytes):
            return ("decode('%s', 'hex')" if self.vendor == 'postgres' else "X'%s'") % value.hex()
        if isinstance(value, (dict, list)):
            value = json.dumps(value, ensure_ascii=False, sort_keys=True)
        text = str(value)
        if self.vendor != 'postgres':  # MariaDB treats backslash as an escape character in literals
            text = text.replace('\\', '\\\\')
        return "'%s'" % text.replace("'", "''")

    def insert(self, table: str, columns: Sequence[str], rows: Sequence[Sequence], chunk: int = 200) -> str:
        head = 'INSERT INTO %s (%s) VALUES\n' % (self.quote(table), ', '.join(self.quote(c) for c in columns))
        parts = []
        for start in range(0, len(rows), chunk):
            values = ',\n'.join('(%s)' % ', '.join(self.literal(v) for v in row) for row in rows[start:start + chunk])
            parts.append(head + values + ';\n')
        return ''.join(parts)


def _stamp(base_hour: int, number: int) -> str:
    """A deterministic UTC timestamp literal (both servers run and talk in UTC)."""
    moment = datetime.datetime(2023, 4, 1) + datetime.timedelta(hours=base_hour, seconds=61 * number)
    return moment.strftime('%Y-%m-%d %H:%M:%S')


def _data_sql(dialect: _Dialect, rows: int) -> tuple[str, dict[str, int]]:
    """Deterministic INSERTs; returns (sql, expected counts)."""
    roles = [(_uid('role', 1), 'Administrator', 'verified', 'Full access', None, False, True, True),
             (_uid('role', 2), 'Rédacteurs', 'edit', 'Editors – may write articles', None, False, False, True)]
    users = [
        (_uid('user', 1), 'Admin', 'User', 'admin@example.com', '$argon2id$v=19$m=65536,t=3,p=4$fake$hash1',
         'active', roles[0][0], 'static-token-admin', ['admin'], None),
        (_uid('user', 2), 'Zoë', 'Ångström', 'zoe@example.com', '$argon2id$v=19$m=65536,t=3,p=4$fake$hash2',
         'active', roles[1][0], None, ['editor', 'ümlaut'], None),
        (_uid('user', 3), 'José', 'Núñez', 'jose@example.com', None, 'suspended', roles[1][0], None, None,
         {'provider': 'none'}),
    ]
    folders = [(_uid('folder', 1), 'Covers', None), (_uid('folder', 2), 'Anhänge', _uid('folder', 1))]
    n_files = rows // 2 + 1
    files = []
    for number in range(1, n_files + 1):
        file_id = _uid('file', number)
        download = ('Übersicht-%d.png' if number % 3 == 0 else 'cover-%d.jpg') % number
        files.append((file_id, 'local', file_id + ('.png' if number % 3 == 0 else '.jpg'), download,
                      'Cover %d' % number, 'image/png' if number % 3 == 0 else 'image/jpeg',
                      folders[number % 2][0], users[number % 2][0], _stamp(0, number),
                      users[0][0] if number % 4 == 0 else None, _stamp(1, number), None, 10000 + number * 7,
                      640, 480, None, None, 'Café photo №%d' % number, None, 'cover,cairn',
                      {'exif': {'Make': 'Cairn', 'ISO': 100 + number}}))
    sessions = [('session-token-1', users[0][0], '2030-01-01 00:00:00', '127.0.0.1', 'pytest', None, None),
                ('session-token-2', users[1][0], '2030-01-02 00:00:00', '::1', 'Mozilla/5.0 (Ünïcode)', None,
                 'http://localhost:8055')]
    statuses = ('published', 'draft', 'archived')
    articles = []
    for number in range(1, rows + _EXTRA_ARTICLES + 1):
        title = '%s #%d' % (TITLES[number % len(TITLES)], number)
        body = 'Line one of article %d.\nZweite Zeile: äöü ß — 🪨\n\tIndented, with a quote \' and a backslash \\.' \
            % number
        cover = None if number % 5 == 0 else _uid('file', 1 + number % n_files)
        articles.append((number, statuses[number % 3], title, body, cover, blob(number), _stamp(2, number)))
    activity, revisions = [], []
    for number in range(1, n_files + 1):
        activity.append((len(activity) + 1, 'create', users[number % 2][0], _stamp(0, number), '127.0.0.1',
                         'pytest', 'directus_files', _uid('file', number), None, 'http://localhost:8055'))
    for number in range(1, rows + 1):
        activity.append((len(activity) + 1, 'create', users[0][0], _stamp(2, number), '10.0.0.%d' % (number % 250),
                         'pytest', 'articles', str(number), 'ça marche' if number % 7 == 0 else None, None))
        revisions.append((number, len(activity), 'articles', str(number),
                          {'title': articles[number - 1][2], 'status': articles[number - 1][1]},
                          {'title': articles[number - 1][2]}, None))
    parts = [
        dialect.insert('directus_migrations', ('version', 'name', 'timestamp'), MIGRATIONS),
        dialect.insert('directus_roles', ('id', 'name', 'icon', 'description', 'ip_access', 'enforce_tfa',
                                          'admin_access', 'app_access'), roles),
        dialect.insert('directus_users', ('id', 'first_name', 'last_name', 'email', 'password', 'status', 'role',
                                          'token', 'tags', 'auth_data'), users),
        dialect.insert('directus_folders', ('id', 'name', 'parent'), folders[:1]),
        dialect.insert('directus_folders', ('id', 'name', 'parent'), folders[1:]),
        dialect.insert('directus_files', ('id', 'storage', 'filename_disk', 'filename_download', 'title', 'type',
                                          'folder', 'uploaded_by', 'uploaded_on', 'modified_by', 'modified_on',
                                          'charset', 'filesize', 'width', 'height', 'duration', 'embed',
                                          'description', 'location', 'tags', 'metadata'), files),
        dialect.insert('directus_sessions', ('token', 'user', 'expires', 'ip', 'user_agent', 'share', 'origin'),
                       sessions),
        # ids are left to the sequence / AUTO_INCREMENT so that it advances like in real life
        dialect.insert('articles', ('status', 'title', 'body', 'cover', 'attachment', 'date_created'),
                       [row[1:] for row in articles]),
        'DELETE FROM articles WHERE id > %d;\n' % rows,
        dialect.insert('directus_activity', ('action', 'user', 'timestamp', 'ip', 'user_agent', 'collection',
                                             'item', 'comment', 'origin'), [row[1:] for row in activity]),
        dialect.insert('directus_revisions', ('activity', 'collection', 'item', 'data', 'delta', 'parent'),
                       [row[1:] for row in revisions]),
    ]
    counts = {'directus_migrations': len(MIGRATIONS), 'directus_roles': len(roles), 'directus_users': len(users),
              'directus_folders': len(folders), 'directus_files': len(files), 'directus_sessions': len(sessions),
              'directus_activity': len(activity), 'directus_revisions': len(revisions), 'articles': rows}
    return ''.join(parts), counts


def load_cairn_schema(server: _Server, database: str, rows: int = 20) -> CairnDataset:
    """Create a CairnCMS (Directus 10 shaped) schema in ``database`` and fill it deterministically.

    System tables directus_migrations (last version '20230401A'), _roles, _users,
    _folders, _files, _sessions, _activity, _revisions plus the content
    collection ``articles`` (``rows`` rows; ``attachment`` is a 256-byte binary
    with every byte value, titles/bodies carry quotes, backslashes, newlines,
    tabs and non-ASCII including 4-byte UTF-8), a view ``published_articles``
    and a slug trigger on ``articles``.  Articles are inserted through the
    sequence / AUTO_INCREMENT and the last three deleted again, so the counter
    is ahead of ``max(id)``: a restore that loses it makes the next insert
    collide or get a different id (see ``CairnDataset.articles_next_id``).

    PostgreSQL also gets the standalone sequence ``cairn_export_seq`` set to
    4242 and a plpgsql trigger function; MariaDB gets two triggers, the
    procedure ``cairn_publish_article(id)`` and the function
    ``cairn_article_count()`` (dump them with --routines / --triggers).
    """
    database = str(database)
    if rows < 1:
        raise ValueError('rows must be >= 1')
    dialect = _Dialect(server.vendor)
    data, counts = _data_sql(dialect, rows)
    if server.vendor == 'postgres':
        script = (_PG_DDL + 'BEGIN;\n' + data + "SELECT setval('%s', %d) \\g /dev/null\nCOMMIT;\nANALYZE;\n"
                  % (EXPORT_SEQUENCE, EXPORT_SEQUENCE_VALUE))
        sequence = (EXPORT_SEQUENCE, EXPORT_SEQUENCE_VALUE)
    else:
        script = _MARIADB_DDL + 'START TRANSACTION;\n' + data + 'COMMIT;\n'
        sequence = (None, None)
    server.sql(script, database)
    return CairnDataset(server.vendor, database, rows, counts, rows + _EXTRA_ARTICLES + 1, *sequence)


def row_counts(server: _Server, database: str) -> dict[str, int]:
    """Exact ``COUNT(*)`` of every base table (views excluded) of ``database``.

    PostgreSQL: all non-system schemas; tables outside ``public`` are keyed
    ``schema.table``.
    """
    database = str(database)
    if server.vendor == 'postgres':
        listing = server.rows("SELECT table_schema, table_name FROM information_schema.tables "
                              "WHERE table_type = 'BASE TABLE' AND table_schema NOT IN ('pg_catalog', "
                              "'information_schema') ORDER BY 1, 2", database)
        names = [(name if schema == 'public' else '%s.%s' % (schema, name),
                  '"%s"."%s"' % (schema.replace('"', '""'), name.replace('"', '""'))) for schema, name in listing]
    else:
        listing = server.rows("SELECT table_name FROM information_schema.tables WHERE table_type = 'BASE TABLE' "
                              "AND table_schema = DATABASE() ORDER BY 1", database)
        names = [(name, '`%s`' % name.replace('`', '``')) for (name,) in listing]
    if not names:
        return {}
    query = '\nUNION ALL '.join("SELECT '%s', COUNT(*) FROM %s" % (key.replace("'", "''"), ref) for key, ref in names)
    return {key: int(count) for key, count in server.rows(query, database)}


def _main(argv: Sequence[str]) -> int:
    """``python _servers.py postgres|mariadb [rows]``: start one, load the schema, print its env, wait."""
    kind = argv[0] if argv else 'postgres'
    server = PostgresServer() if kind.startswith('p') else MariadbServer()
    started = time.monotonic()
    with server:
        dataset = load_cairn_schema(server, server.database, int(argv[1]) if len(argv) > 1 else 20)
        print('%s %s up in %.1fs, pid %s, tmpdir %s'
              % (server.vendor, server.version, time.monotonic() - started, server.pid, server.tmpdir))
        for key, value in server.env().items():
            print('%s=%s' % (key, value))
        print(dataset)
        try:
            signal.pause()
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == '__main__':
    import sys
    raise SystemExit(_main(sys.argv[1:]))
