# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""pytest plugin: throwaway PostgreSQL / MariaDB servers with a CairnCMS schema.

Register with ``pytest_plugins = ['servers_fixtures']`` (this directory must be
importable, as it is for the tests in it).  Fixtures:

``postgres_server`` / ``mariadb_server`` (session)
    One server per test session, i.e. per xdist worker.  Do not ``kill()`` or
    ``stop()`` them; use the ``disposable_*`` fixtures for that.
``pg_database`` / ``mariadb_database`` (function)
    A fresh, uniquely named database with ``load_cairn_schema`` applied,
    dropped afterwards.  It is a ``CairnDatabase``: ``str(db)`` / ``db.name``
    is the database name, plus ``server``, ``dataset`` (expected counts, next
    article id, ...), ``env(prefix)``, ``sql()``, ``rows()``, ``row_counts()``.
    Row count: 20 articles, or ``@pytest.mark.cairn_rows(500)``, or indirect
    parametrization ``@pytest.mark.parametrize('pg_database', [500], indirect=True)``.
``disposable_postgres_server`` / ``disposable_mariadb_server`` (function)
    A server of the test's own (~0.5 s to start), for tests that kill it.
``s3_server`` (session) / ``s3_endpoint`` (function)
    A ``moto_server`` S3 endpoint on a free 127.0.0.1 port (``_s3.MotoServer``);
    ``s3_endpoint`` is its URL, ``s3_bucket`` a fresh bucket on it.
``gcs_server`` (session)
    A fake-gcs-server GCS endpoint on a free 127.0.0.1 port (``_gcs.FakeGcsServer``).
``azure_server`` (session)
    An Azurite blob endpoint on a free 127.0.0.1 port (``_azure.AzuriteServer``),
    installed from npm into ``tests/integration/azurite`` on first use.

Missing server binaries make these fixtures skip, unless
``CAIRN_REQUIRE_DB_SERVERS=1`` is set (CI), in which case they fail.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import secrets
import sys

import pytest

_HERE = os.path.dirname(os.path.abspath(__file__))
if _HERE not in sys.path:  # loaded via pytest_plugins from elsewhere: make `import _servers` work
    sys.path.insert(0, _HERE)

import _azure  # noqa: E402
import _gcs  # noqa: E402
import _s3  # noqa: E402
import _servers  # noqa: E402

DEFAULT_ROWS = 20
_COUNTER = itertools.count(1)


def pytest_configure(config):
    config.addinivalue_line('markers', 'cairn_rows(n): number of articles loaded by pg_database / '
                                       'mariadb_database (default %d)' % DEFAULT_ROWS)


@dataclasses.dataclass
class CairnDatabase:
    """A database holding the CairnCMS test schema on one of the throwaway servers."""

    server: _servers.PostgresServer | _servers.MariadbServer
    name: str
    dataset: _servers.CairnDataset

    def __str__(self):
        return self.name

    def env(self, prefix: str = '') -> dict[str, str]:
        return self.server.env(prefix, database=self.name)

    def sql(self, statement: str) -> str:
        return self.server.sql(statement, self.name)

    def rows(self, statement: str) -> list[list[str]]:
        return self.server.rows(statement, self.name)

    def row_counts(self) -> dict[str, int]:
        return _servers.row_counts(self.server, self.name)


def _start(cls):
    server = cls()
    try:
        return server.start()
    except _servers.ServerUnavailable as error:
        if os.environ.get('CAIRN_REQUIRE_DB_SERVERS', '') not in ('', '0'):
            pytest.fail(str(error), pytrace=False)
        pytest.skip(str(error))


def _serve(cls):
    server = _start(cls)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope='session')
def postgres_server():
    yield from _serve(_servers.PostgresServer)


@pytest.fixture(scope='session')
def mariadb_server():
    yield from _serve(_servers.MariadbServer)


@pytest.fixture
def disposable_postgres_server():
    yield from _serve(_servers.PostgresServer)


@pytest.fixture
def disposable_mariadb_server():
    yield from _serve(_servers.MariadbServer)


def _database(request, server):
    if not server.running:
        pytest.fail('%r is no longer running (did a test kill() the session server? use disposable_*)' % server)
    marker = request.node.get_closest_marker('cairn_rows')
    rows = getattr(request, 'param', None) or (marker.args[0] if marker else DEFAULT_ROWS)
    name = 'cairn_t%d_%s' % (next(_COUNTER), secrets.token_hex(3))
    server.create_database(name)
    try:
        dataset = _servers.load_cairn_schema(server, name, rows=rows)
        yield CairnDatabase(server, name, dataset)
    finally:
        if server.running:
            server.drop_database(name)


@pytest.fixture
def pg_database(request, postgres_server):
    yield from _database(request, postgres_server)


@pytest.fixture
def mariadb_database(request, mariadb_server):
    yield from _database(request, mariadb_server)


@pytest.fixture
def pg_pair(postgres_server):
    """Two empty databases on the session's PostgreSQL server, for a dev and a staging instance: their .env settings
    (dropped afterwards)."""
    names = ['cairn_pair_%s_%d_%s' % (role, next(_COUNTER), secrets.token_hex(3)) for role in ('dev', 'staging')]
    for name in names:
        postgres_server.create_database(name)
    try:
        yield [postgres_server.env(database=name) for name in names]
    finally:
        if postgres_server.running:
            for name in names:
                postgres_server.drop_database(name)


def _emulator(server, unavailable):
    try:
        server.start()
    except unavailable as error:
        if os.environ.get('CAIRN_REQUIRE_DB_SERVERS', '') not in ('', '0'):
            pytest.fail(str(error), pytrace=False)
        pytest.skip(str(error))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope='session')
def s3_server():
    yield from _emulator(_s3.MotoServer(), _s3.S3Unavailable)


@pytest.fixture(scope='session')
def gcs_server():
    yield from _emulator(_gcs.FakeGcsServer(), _gcs.GcsUnavailable)


@pytest.fixture(scope='session')
def azure_server():
    yield from _emulator(_azure.AzuriteServer(), _azure.AzureUnavailable)


@pytest.fixture
def s3_endpoint(s3_server):
    return s3_server.endpoint


@pytest.fixture
def s3_bucket(s3_server):
    return s3_server.create_bucket('cairn-t%d-%s' % (next(_COUNTER), secrets.token_hex(3)))
