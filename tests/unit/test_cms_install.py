# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which CMS an install holds (_cms.install): its name, version and migrations from install layouts made here (npm,
a global install, pnpm, CairnCMS beside Directus), found from a command too; its files read as untrusted input (no
symlink out of the install, no oversized or garbage package.json); a running CMS's /server/info (a server of the
test's own) when there is no install to read; which migrations of a restore point an install does not know; and
what a backup records of the CMS in the manifest and its listing."""

from __future__ import annotations

import http.server
import json
import os
import types

import pytest

from _emulator import InProcessServer

from ansible_collections.cairncms.ops.plugins.module_utils import _backup, _manifest
from ansible_collections.cairncms.ops.plugins.module_utils._cms import install
from ansible_collections.cairncms.ops.plugins.module_utils._common import CairnError

DIRECTUS_MIGRATIONS = ['20201028A', '20201029A', '20201029B', '20230401A']
CAIRN_MIGRATIONS = ['20201028A', '20230401A', '20260417A', '20260909A']


def _package(directory, name, version, migrations=None):
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, 'package.json'), 'w', encoding='utf-8') as handle:
        json.dump({'name': name, 'version': version, 'type': 'module'}, handle)
    if migrations is not None:
        folder = os.path.join(directory, 'dist', 'database', 'migrations')
        os.makedirs(folder)
        for version_ in migrations:
            for suffix in ('.js', '.d.ts'):  # the CMS runs the .js; its type declarations are no migration
                open(os.path.join(folder, '%s-some-change%s' % (version_, suffix)), 'w').close()
        for other in ('run.js', 'run.d.ts', 'run.test.d.ts', 'README.md', '2020A.js'):
            open(os.path.join(folder, other), 'w').close()
    return directory


def directus(root, version='10.0.0', migrations=tuple(DIRECTUS_MIGRATIONS)):
    """An npm install of directus: the product package and, beside it, its API package with the migrations."""
    modules = os.path.join(str(root), 'node_modules')
    _package(os.path.join(modules, 'directus'), 'directus', version)
    open(os.path.join(modules, 'directus', 'cli.js'), 'w').close()
    _package(os.path.join(modules, '@directus', 'api'), '@directus/api', version, migrations)
    os.makedirs(os.path.join(modules, '.bin'), exist_ok=True)
    os.symlink('../directus/cli.js', os.path.join(modules, '.bin', 'directus'))
    return str(root)


def test_an_npm_install_of_directus(tmp_path):
    root = directus(tmp_path / 'cms')
    found = install.describe(install_dir=root)
    assert (found['name'], found['version'], found['source'], found['install_dir']) == (
        'directus', '10.0.0', 'package.json', root)
    assert found['migrations'] == DIRECTUS_MIGRATIONS


@pytest.mark.parametrize('command', [
    ['node', '{root}/node_modules/directus/cli.js'],
    ['{root}/node_modules/.bin/directus'],
    ['/usr/bin/env', 'node', '{root}/node_modules/directus/cli.js', 'start'],
])
def test_the_install_is_found_from_the_command_that_runs_the_cms(tmp_path, command):
    root = directus(tmp_path / 'cms')
    found = install.describe(command=[part.format(root=root) for part in command])
    assert found['install_dir'] == root and found['version'] == '10.0.0'


def test_a_global_bin_link_leads_to_the_install(tmp_path):
    root = directus(tmp_path / 'lib')
    os.makedirs(tmp_path / 'bin')
    os.symlink(os.path.join(root, 'node_modules', 'directus', 'cli.js'), tmp_path / 'bin' / 'directus')
    assert install.install_dir_of([str(tmp_path / 'bin' / 'directus')]) == root


def test_a_command_without_an_install_path_asks_for_install_dir():
    with pytest.raises(CairnError, match='no part of the command directus start is a path inside a node_modules.*'
                                         'set install_dir'):
        install.describe(command=['directus', 'start'])
    with pytest.raises(CairnError, match='nothing says where the CMS is'):
        install.describe()


def test_cairncms_installed_globally_has_its_api_below_it(tmp_path):
    product = _package(tmp_path / 'node_modules' / 'cairncms', 'cairncms', '1.2.0')
    _package(os.path.join(product, 'node_modules', '@cairncms', 'api'), '@cairncms/api', '1.2.0', CAIRN_MIGRATIONS)
    found = install.describe(install_dir=str(tmp_path))
    assert (found['name'], found['version'], found['migrations']) == ('cairncms', '1.2.0', CAIRN_MIGRATIONS)


def test_a_pnpm_install_has_the_api_beside_the_real_package_directory(tmp_path):
    store = tmp_path / 'node_modules' / '.pnpm' / 'cairncms@1.2.0' / 'node_modules'
    _package(store / 'cairncms', 'cairncms', '1.2.0')
    _package(store / '@cairncms' / 'api', '@cairncms/api', '1.2.0', CAIRN_MIGRATIONS)
    os.symlink('.pnpm/cairncms@1.2.0/node_modules/cairncms', tmp_path / 'node_modules' / 'cairncms')
    found = install.describe(install_dir=str(tmp_path))
    assert (found['name'], found['migrations']) == ('cairncms', CAIRN_MIGRATIONS)


def test_the_api_package_alone_names_the_cms_and_cairncms_comes_first(tmp_path):
    directus(tmp_path)
    _package(tmp_path / 'node_modules' / '@cairncms' / 'api', '@cairncms/api', '1.1.0', CAIRN_MIGRATIONS)
    found = install.describe(install_dir=str(tmp_path))
    assert (found['name'], found['version'], found['migrations']) == ('@cairncms/api', '1.1.0', CAIRN_MIGRATIONS)


def test_an_install_without_migration_files_knows_none_for_sure(tmp_path):
    _package(tmp_path / 'node_modules' / 'directus', 'directus', '10.0.0')
    found = install.describe(install_dir=str(tmp_path))
    assert found['version'] == '10.0.0' and found['migrations'] is None
    assert install.unknown_migrations('20230401A', found['migrations']) is None


def test_custom_migrations_of_the_extensions_count_as_known(tmp_path):
    root = directus(tmp_path / 'cms')
    extensions = tmp_path / 'extensions' / 'migrations'
    os.makedirs(extensions)
    for name in ('20240101A-add-index.js', '20240102A-more.mjs', 'notes.txt'):
        open(extensions / name, 'w').close()
    found = install.describe(install_dir=root, extensions_dir=str(tmp_path / 'extensions'))
    assert found['migrations'] == sorted(DIRECTUS_MIGRATIONS + ['20240101A', '20240102A'])
    assert install.describe(install_dir=root)['migrations'] == DIRECTUS_MIGRATIONS


def test_nothing_is_followed_out_of_the_install(tmp_path):
    outside = directus(tmp_path / 'elsewhere')
    root = tmp_path / 'cms'
    os.makedirs(root / 'node_modules')
    os.symlink(os.path.join(outside, 'node_modules', 'directus'), root / 'node_modules' / 'directus')
    with pytest.raises(CairnError, match='outside the install directory %s; refusing to read it' % root):
        install.describe(install_dir=str(root))

    # a package file that is a link to a file of the host
    root = directus(tmp_path / 'cms2')
    package = os.path.join(root, 'node_modules', 'directus', 'package.json')
    os.unlink(package)
    os.symlink(os.path.join(outside, 'node_modules', 'directus', 'package.json'), package)
    with pytest.raises(CairnError, match='the package file .*package.json leads to .*elsewhere.*outside'):
        install.describe(install_dir=root)

    # a migrations directory that is a link elsewhere
    root = directus(tmp_path / 'cms3')
    migrations = os.path.join(root, 'node_modules', '@directus', 'api', 'dist', 'database', 'migrations')
    os.rename(migrations, str(tmp_path / 'moved'))
    os.symlink(str(tmp_path / 'moved'), migrations)
    with pytest.raises(CairnError, match='the migrations directory .* outside the install directory'):
        install.describe(install_dir=root)

    # links that stay inside are followed (pnpm)
    root = directus(tmp_path / 'cms4')
    assert install.describe(install_dir=os.path.join(root, 'node_modules', '..'))['install_dir'] == root


@pytest.mark.parametrize('content, problem', [
    (b'{"name": "directus", "version": ', 'is not JSON'),
    (b'\xff\xfe{}', 'is not JSON'),
    (b'["directus", "10.0.0"]', 'holds a JSON list, not an object'),
    (b'{"name": "directus"}', 'has no valid version'),
    (b'{"name": "directus", "version": "10.0.0; rm -rf /"}', 'has no valid version'),
    (b'{"name": "directus", "version": 10}', 'has no valid version'),
    (b'{"name": "../../etc", "version": "10.0.0"}', 'has no valid package name'),
    (b'{"name": "directus", "version": "10.0.0", "x": "' + b'a' * (2 * 1024 * 1024) + b'"}', 'is larger than'),
])
def test_a_garbage_package_file_is_one_clear_error(tmp_path, content, problem):
    root = directus(tmp_path / 'cms')
    with open(os.path.join(root, 'node_modules', 'directus', 'package.json'), 'wb') as handle:
        handle.write(content)
    with pytest.raises(CairnError, match=problem) as caught:
        install.describe(install_dir=root)
    assert 'reinstall the CMS (npm ci)' in caught.value.message and len(caught.value.message) < 500


def test_a_package_file_that_is_no_file_is_refused(tmp_path):
    root = directus(tmp_path / 'cms')
    package = os.path.join(root, 'node_modules', 'directus', 'package.json')
    os.unlink(package)
    os.mkfifo(package)  # a reader would wait forever
    with pytest.raises(CairnError, match='is not a regular file'):
        install.describe(install_dir=root)


class _Info(InProcessServer):
    """A CMS's /server/info: the version to the bearer of ``admin`` only, as Directus 10.0.0 answers it."""

    def __init__(self, answer):
        super().__init__()
        self.answer = answer
        self.seen = []

    def handler(self):
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                server.seen.append((self.path, self.headers.get('Authorization')))
                admin = self.headers.get('Authorization') == 'Bearer admin'
                body = server.answer(admin)
                self.send_response(200)
                self.send_header('Content-Type', 'application/json')
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass
        return Handler


def _info(version_key='directus'):
    return lambda admin: json.dumps({'data': dict({'project': {'project_name': 'x'}}, **(
        {version_key: {'version': '10.0.0'}} if admin else {}))}).encode()


def test_a_running_cms_says_its_version_when_there_is_no_install_to_read(tmp_path):
    server = _Info(_info()).start()
    try:
        found = install.describe(install_dir=str(tmp_path), url=server.origin + '/', token='admin')
        assert (found['name'], found['version'], found['source'], found['migrations']) == (
            'directus', '10.0.0', 'server/info', None)
        assert 'no CMS package' in found['note']
        assert server.seen == [('/server/info', 'Bearer admin')]
        with pytest.raises(CairnError, match='tells the version to an administrator only.*none was given'):
            install.describe(url=server.origin)
        with pytest.raises(CairnError, match='tells the version to an administrator only; give the token of an '
                                             'admin user$'):
            install.describe(url=server.origin, token='editor')
        # the package file wins when there is one
        assert install.describe(install_dir=directus(tmp_path / 'cms'), url=server.origin)['source'] == 'package.json'
    finally:
        server.stop()
    server = _Info(_info('cairncms')).start()
    try:
        assert install.describe(url=server.origin, token='admin')['name'] == 'cairncms'
    finally:
        server.stop()


@pytest.mark.parametrize('answer', [b'<html>', b'{"data": []}', b'{"data": {"directus": {"version": ["x"]}}}',
                                    b'{"errors": []}'])
def test_a_garbage_server_answer_is_one_clear_error(answer):
    server = _Info(lambda admin: answer).start()
    try:
        with pytest.raises(CairnError, match='server/info'):
            install.describe(url=server.origin, token='admin')
    finally:
        server.stop()


def test_unknown_migrations():
    known = DIRECTUS_MIGRATIONS
    assert install.unknown_migrations('20230401A', known) == []
    assert install.unknown_migrations('20201029A', known) == []      # older: bootstrap brings it up
    assert install.unknown_migrations('20991231A', known) == ['20991231A']  # newer: the install cannot
    assert install.unknown_migrations('20210101A', known) == ['20210101A']  # another fork's, though older
    assert install.unknown_migrations(['20201028A', '20260417A', '20260909A'], known) == ['20260417A', '20260909A']
    assert install.unknown_migrations(None, known) == [] and install.unknown_migrations('', known) == []
    assert install.unknown_migrations('20230401A', None) is None


def test_the_refusal_says_what_and_how():
    described = {'name': 'directus', 'version': '10.0.0', 'install_dir': '/opt/cms', 'migrations': DIRECTUS_MIGRATIONS}
    assert install.refusal(described, ['20991231A'], 'p1') == (
        'restore point p1 is at migration 20991231A, which directus 10.0.0 at /opt/cms does not know (newest it '
        'knows: 20230401A); upgrade the target CMS first, then restore')
    assert install.refusal(described, ['20991231A']).startswith('the restore point is at migration 20991231A')


RUN = {'id': 'p1', 'instance': 'blog', 'started_at': '2026-01-01T00:00:00.000000Z'}
PARTS = {
    'database': {'vendor': 'sqlite', 'client': 'sqlite3', 'server_version': '3.40.1', 'format': 'sqlite3',
                 'compression': 'zstd', 'artifact': 'database.sqlite3.zst', 'size_bytes': 10, 'sha256': 'a' * 64,
                 'raw_size_bytes': 20, 'row_counts': {'t': 1}, 'migration_level': '20230401A', 'duration_s': 0.1},
    'storage': {'inventory': 'files.jsonl', 'inventory_size_bytes': 5, 'inventory_sha256': 'c' * 64,
                'locations': [], 'files': 0, 'bytes': 0, 'include_regenerable': False, 'duration_s': 0.1},
}


def _stat(name):
    return types.SimpleNamespace(st_size={'database.sqlite3.zst': 10, 'files.jsonl': 5}[name])


def test_the_manifest_records_the_cms_and_the_listing_shows_it(tmp_path):
    facts, warning = _backup.cms_facts({'command': ['node', os.path.join(directus(tmp_path), 'node_modules',
                                                                         'directus', 'cli.js')],
                                        'token': 'tok-Secret-99', 'window': 'stopped'})
    assert warning is None
    assert facts == {'name': 'directus', 'version': '10.0.0', 'source': 'package.json', 'window': 'stopped'}
    manifest = _manifest.build(RUN, PARTS, {'key': 'k'}, _stat, cms=facts)
    assert manifest['cms'] == {'key': 'k', 'public_url': None, 'instance_dir': None, 'migration_level': '20230401A',
                               'name': 'directus', 'version': '10.0.0', 'source': 'package.json', 'window': 'stopped'}
    assert 'tok-Secret-99' not in json.dumps(manifest)
    listed = _manifest.summary(manifest)
    assert (listed['cms_name'], listed['cms_version'], listed['migration_level']) == (
        'directus', '10.0.0', '20230401A')
    # restore points of older releases, and forged values
    assert _manifest.summary(dict(manifest, cms={'migration_level': 'x'}))['cms_name'] is None
    assert _manifest.summary(dict(manifest, cms={'name': ['x'], 'version': 'v' * 500}))['cms_version'] == 'v' * 64
    assert set(_manifest.build(RUN, PARTS, {}, _stat)['cms']) == {'key', 'public_url', 'instance_dir',
                                                                  'migration_level'}


def test_a_cms_that_cannot_be_described_is_a_warning_of_the_backup(tmp_path):
    facts, warning = _backup.cms_facts({'install_dir': str(tmp_path), 'token': 'tok-Secret-99'})
    assert facts == {'window': 'running'}
    assert warning.startswith("the CMS's name and version are not recorded in the restore point: no CMS package")
    assert _backup.cms_facts({'window': 'stopped'}) == ({'window': 'stopped'}, None)
    with pytest.raises(CairnError, match='cms.window must be one of running, stopped'):
        _backup.cms_facts({'window': 'paused'})
