# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""GCS (fake-gcs-server) and Azure Blob (Azurite) storage locations, backed up and restored by the real modules.

The same scenario as test_s3_storage.py's main test, once per backend, through a small
adapter that puts and reads objects with the backend's own SDK.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import uuid

import _azure
import _gcs
import demo_instance
import pytest
from conftest import run_module
from test_modules import backup, restore
from test_s3_storage import KEPT, OBJECTS, ORIGINAL, inventory

_COUNTER = itertools.count(1)


class Gcs:
    location = 'gcs'
    driver = 'gcs'
    scheme = 'gs'
    secrets = ()

    def __init__(self, server):
        self.server = server
        self.client = server.client()

    def create(self, name):
        return self.server.create_bucket('%s-%d-%s' % (name, next(_COUNTER), uuid.uuid4().hex[:6]))

    def put(self, bucket, key, data):
        self.client.bucket(bucket).blob(key).upload_from_string(data)

    def objects(self, bucket):
        return {blob.name: blob.download_as_bytes() for blob in self.client.list_blobs(bucket)}

    def content_type(self, bucket, key):
        return self.client.bucket(bucket).get_blob(key).content_type

    def env_lines(self, bucket, root):
        return _gcs.env_lines(self.location, self.server.endpoint, bucket, root)

    def described(self, bucket, root):
        return {'name': 'gcs', 'driver': 'gcs', 'root': root, 'bucket': bucket, 'api_endpoint': self.server.endpoint,
                'key_filename': None, 'credentials': 'anonymous'}


class Azure:
    location = 'azure'
    driver = 'azure'
    scheme = 'azure'
    secrets = (_azure.ACCOUNT_KEY,)

    def __init__(self, server):
        self.server = server
        self.service = server.service()

    def create(self, name):
        return self.server.create_container('%s-%d-%s' % (name, next(_COUNTER), uuid.uuid4().hex[:6]))

    def put(self, container, key, data):
        self.service.get_blob_client(container, key).upload_blob(data, overwrite=True)

    def objects(self, container):
        client = self.service.get_container_client(container)
        return {blob.name: client.download_blob(blob.name).readall() for blob in client.list_blobs()}

    def content_type(self, container, key):
        return self.service.get_blob_client(container, key).get_blob_properties().content_settings.content_type

    def env_lines(self, container, root):
        return _azure.env_lines(self.location, self.server.endpoint, container, root)

    def described(self, container, root):
        return {'name': 'azure', 'driver': 'azure', 'root': root, 'container_name': container,
                'account_name': _azure.ACCOUNT_NAME, 'endpoint': self.server.endpoint, 'credentials': 'configured'}


@pytest.fixture(params=['gcs', 'azure'])
def cloud(request):
    if request.param == 'gcs':
        return Gcs(request.getfixturevalue('gcs_server'))
    return Azure(request.getfixturevalue('azure_server'))


def add_location(directory, cloud, bucket, root):
    """Turn a demo instance into one with STORAGE_LOCATIONS=local,<cloud>."""
    env = directory / '.env'
    text = env.read_text().replace('STORAGE_LOCATIONS=local\n', 'STORAGE_LOCATIONS=local,%s\n' % cloud.location)
    env.write_text(text + cloud.env_lines(bucket, root))
    return env


def test_cloud_location_backup_restore_verify(tmp_path, cloud, repo):
    results = []
    source_bucket = cloud.create('cairn-source')
    for name, data in OBJECTS.items():
        cloud.put(source_bucket, 'cms/uploads/' + name, data)
    cloud.put(source_bucket, 'elsewhere/not-ours.txt', b'outside the root prefix')
    source = tmp_path / 'source'
    demo_instance.populated(str(source))
    source_env = add_location(source, cloud, source_bucket, 'cms/uploads')
    demo_instance.register(source, cloud.location, {name: OBJECTS[name] for name in KEPT})

    info = run_module('cairn_instance_info', env_file=str(source_env))
    results.append(info)
    assert info['instance']['locations'][1] == cloud.described(source_bucket, 'cms/uploads'), info

    manifest, dump, files = backup(source_env, repo)
    results += [manifest, dump, files]
    [summary] = [loc for loc in files['locations'] if loc['name'] == cloud.location]
    assert (summary['files'], summary['skipped_regenerable'], summary['transferred_files']) == (3, 2, 3), files
    rows = {row['filename_disk']: row for row in inventory(repo, manifest) if row['location'] == cloud.location}
    assert sorted(rows) == KEPT
    for name in KEPT:
        assert rows[name]['size'] == len(OBJECTS[name])
        assert rows[name]['sha256'] == hashlib.sha256(OBJECTS[name]).hexdigest()

    # Nothing changed: nothing is read again.
    second, _dump, files = backup(source_env, repo)
    results += [second, files]
    assert (files['transferred'], files['reused']) == (0, 9), files

    # Restore into a second instance whose location is another bucket/container under another prefix.
    target_bucket = cloud.create('cairn-target')
    target = tmp_path / 'target'
    demo_instance.empty(str(target))
    target_env = add_location(target, cloud, target_bucket, 'restored')
    db, files = restore(target_env, repo, check_mode=True)
    results += [db, files]
    assert files['changed'] and files['transferred'] == 9 and cloud.objects(target_bucket) == {}, files
    db, files = restore(target_env, repo)
    results += [db, files]
    assert not db.failed and files['changed'] and files['transferred'] == 9, (db, files)
    assert cloud.objects(target_bucket) == {'restored/' + name: OBJECTS[name] for name in KEPT}
    assert cloud.content_type(target_bucket, 'restored/' + ORIGINAL) == 'image/png'

    db, files = restore(target_env, repo)
    results += [db, files]
    assert (db['changed'], files['changed'], files['unchanged'], files['transferred']) == (False, False, 9, 0), files
    # the listing's MD5 (md5Hash, Content-MD5) proves the objects equal: none is downloaded to compare
    assert {loc['target']: loc['read_to_compare'] for loc in files['locations']} == {'local': 6, cloud.location: 0}, files

    verify = run_module('cairn_restore_verify', env_file=str(target_env), repository=repo, instance='blog',
                        checks=['repository', 'database', 'files'])
    results.append(verify)
    assert not verify.failed and all(check['ok'] for check in verify['checks']), verify
    checks = {check['name']: check for check in verify['checks']}
    assert checks['file bytes sha256']['detail'] == '9 file(s) equal', checks

    # A changed object is caught by verify.
    cloud.put(target_bucket, 'restored/docs/report.txt', b'tampered')
    verify = run_module('cairn_restore_verify', env_file=str(target_env), repository=repo, instance='blog',
                        checks=['files'])
    results.append(verify)
    assert verify.failed and 'file bytes sha256' in verify['failed_checks'], verify

    # A bucket/container holding something else is refused without replace, and nothing changes.
    foreign_bucket = cloud.create('cairn-foreign')
    cloud.put(foreign_bucket, 'restored/foreign.bin', b'not from the restore point')
    other = tmp_path / 'other'
    demo_instance.empty(str(other))
    other_env = add_location(other, cloud, foreign_bucket, 'restored')
    for check_mode in (True, False):
        files = run_module('cairn_storage_sync', env_file=str(other_env), repository=repo, instance='blog',
                           direction='restore', check_mode=check_mode)
        results.append(files)
        assert files.failed and 'nothing was changed' in files['msg'], files
    assert cloud.objects(foreign_bucket) == {'restored/foreign.bin': b'not from the restore point'}
    assert os.listdir(other / 'uploads') == []
    files = run_module('cairn_storage_sync', env_file=str(other_env), repository=repo, instance='blog',
                       direction='restore', replace=True)
    results.append(files)
    assert files['changed'] and files['removed'] == 1, files
    assert cloud.objects(foreign_bucket) == {'restored/' + name: OBJECTS[name] for name in KEPT}

    text = json.dumps(results)
    for secret in cloud.secrets:
        assert secret not in text


def test_cloud_errors_are_one_clear_message(tmp_path, cloud, repo):
    source = tmp_path / 'source'
    demo_instance.populated(str(source))
    env = add_location(source, cloud, 'no-such-bucket', 'cms')
    point = run_module('cairn_restore_point', repository=repo, instance='blog')
    files = run_module('cairn_storage_sync', env_file=str(env), repository=repo, instance='blog',
                       restore_point=point['restore_point'], direction='backup')
    assert files.failed, files
    assert files['msg'].startswith('Failed to list %s://no-such-bucket/cms/: ' % cloud.scheme), files
    assert '404' in files['msg'] or 'ContainerNotFound' in files['msg'], files
    text = json.dumps(files)
    for secret in cloud.secrets:
        assert secret not in text
