# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""End to end against a real Directus 10.0.0 server (CairnCMS's fork point) on SQLite:
back up a running instance, restore it into a new home, start the CMS there and check it
over HTTP with cairn_restore_verify."""

from __future__ import annotations

import json
import os

import _directus
import demo_instance
from conftest import part_of, recap, run_module, run_playbook, write_inventory


def test_running_cms_backup_restore_and_http_checks(tmp_path):
    source, target = tmp_path / 'source', tmp_path / 'target'
    settings = _directus.bootstrap(source)
    repo = {'type': 'local', 'path': str(tmp_path / 'repository')}
    with _directus.running(source) as url:
        token = _directus.login(url, settings['ADMIN_EMAIL'], settings['ADMIN_PASSWORD'])
        _directus.create_collection(url, token, 'articles')
        for number in range(3):
            _directus.create_item(url, token, 'articles', {'title': 'Article %d' % number})
        image = _directus.upload_file(url, token, 'cover.png', demo_instance.png(40, 30, 1), 'image/png')
        _directus.upload_file(url, token, 'notes.txt', b'plain text attachment\n' * 100, 'text/plain')
        resized = _directus.get_asset(url, token, image, {'width': 10})
        assert resized.startswith(b'\x89PNG')
        derivatives = [name for name in os.listdir(source / 'uploads') if '__' in name]
        assert len(derivatives) == 1, os.listdir(source / 'uploads')
        # Back up while the CMS runs.
        inventory = write_inventory(str(tmp_path / 'inventory.json'), {
            'cms': {'cairn_env_file': str(source / '.env')},
            'copy': {'cairn_env_file': str(target / '.env'), 'cairn_restore_from': 'cms'},
        }, repo['path'])
        backup = run_playbook('backup.yml', inventory, limit='cms')
        assert backup.returncode == 0, backup.stdout + backup.stderr

    [point] = os.listdir(os.path.join(repo['path'], 'cms', 'points'))
    manifest = json.load(open(os.path.join(repo['path'], 'cms', 'points', point, 'manifest.json')))
    assert manifest['cms']['key'] == settings['KEY']
    assert manifest['cms']['migration_level'] == '20230401A'
    assert part_of(manifest, 'database')['row_counts']['articles'] == 3
    assert part_of(manifest, 'database')['row_counts']['directus_files'] == 2
    inventory_names = open(os.path.join(repo['path'], 'cms', 'points', point, 'files.jsonl')).read()
    assert derivatives[0] not in inventory_names and 'health-' not in inventory_names

    # A new home: same KEY and SECRET, its own database file, uploads and port.
    new_settings = dict(settings, DB_FILENAME=str(target / 'data.db'), STORAGE_LOCAL_ROOT=str(target / 'uploads'),
                        EXTENSIONS_PATH=str(target / 'extensions'))
    target.mkdir()
    (target / 'uploads').mkdir()
    (target / 'extensions').mkdir()
    _directus.write_env(target, new_settings)
    restore = run_playbook('restore.yml', inventory, limit='copy')
    assert restore.returncode == 0, restore.stdout + restore.stderr
    assert recap(restore.stdout, 'copy')['changed'] == 1  # the database and the files: one cairn_restore run

    http = {'email': settings['ADMIN_EMAIL'], 'password': settings['ADMIN_PASSWORD'], 'collections': ['articles']}
    with _directus.running(target) as url:
        verify = run_module('cairn_restore_verify', env_file=str(target / '.env'), repository=repo, instance='cms',
                            http=dict(http, url=url))
        assert not verify.failed, verify
        names = [check['name'] for check in verify['checks'] if check['ok']]
        for wanted in ('http health', 'http login', 'http items articles', 'http assets sha256', 'row counts'):
            assert wanted in names, verify['checks']
        assert settings['ADMIN_PASSWORD'] not in json.dumps(verify)
        # The restored CMS serves the original bytes, and it regenerates derivatives on demand.
        token = _directus.login(url, settings['ADMIN_EMAIL'], settings['ADMIN_PASSWORD'])
        assert _directus.get_asset(url, token, image) == demo_instance.png(40, 30, 1)
        assert _directus.get_asset(url, token, image, {'width': 10}).startswith(b'\x89PNG')
        # The HTTP checks can fail: one item fewer is caught.
        _directus.request('DELETE', '%s/items/articles/1' % url, token)
        drift = run_module('cairn_restore_verify', env_file=str(target / '.env'), repository=repo, instance='cms',
                           checks=[], http=dict(http, url=url))
        assert drift.failed and drift['failed_checks'] == ['http items articles'], drift
