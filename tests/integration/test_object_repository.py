# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Repositories in object storage (S3 via moto, GCS via fake-gcs-server, Azure Blob via Azurite), driven
through the real modules: the same restore points as a local repository, visible only once complete."""

from __future__ import annotations

import hashlib
import json
import uuid

import _azure
import _s3
import pytest
from conftest import artifacts_of, recap, run_module, run_playbook, write_inventory
from demo import digests
from test_modules import dump_sql, originals
from test_playbooks import hosts

INSTANCE = 'blog'


class S3Repo:
    kind = 's3'

    def __init__(self, server):
        self.server = server
        self.client = server.client()
        self.bucket = server.create_bucket('repo-%s' % uuid.uuid4().hex[:10])
        self.prefix = 'cairn/prod'
        self.spec = {'type': 's3', 'bucket': self.bucket, 'prefix': self.prefix, 'endpoint': server.endpoint,
                     'region': _s3.REGION, 'force_path_style': True}
        self.credentials = {'key': _s3.ACCESS_KEY, 'secret': _s3.SECRET_KEY}
        self.secrets = (_s3.SECRET_KEY,)

    def keys(self):
        paginator = self.client.get_paginator('list_objects_v2')
        return sorted(item['Key'][len(self.prefix) + 1:] for page in paginator.paginate(Bucket=self.bucket)
                      for item in page.get('Contents') or ())

    def read(self, key):
        return self.client.get_object(Bucket=self.bucket, Key=self.prefix + '/' + key)['Body'].read()

    def put(self, key, data):
        self.client.put_object(Bucket=self.bucket, Key=self.prefix + '/' + key, Body=data)


class GcsRepo(S3Repo):
    kind = 'gcs'

    def __init__(self, server):  # pylint: disable=super-init-not-called
        self.client = server.client()
        self.bucket = server.create_bucket('repo-%s' % uuid.uuid4().hex[:10])
        self.prefix = 'cairn'
        self.spec = {'type': 'gcs', 'bucket': self.bucket, 'prefix': self.prefix, 'api_endpoint': server.endpoint}
        self.credentials = {}
        self.secrets = ()

    def keys(self):
        return sorted(blob.name[len(self.prefix) + 1:] for blob in self.client.list_blobs(self.bucket))

    def read(self, key):
        return self.client.bucket(self.bucket).blob(self.prefix + '/' + key).download_as_bytes()

    def put(self, key, data):
        self.client.bucket(self.bucket).blob(self.prefix + '/' + key).upload_from_string(data)


class AzureRepo(S3Repo):
    kind = 'azure'

    def __init__(self, server):  # pylint: disable=super-init-not-called
        self.container = server.create_container('repo-%s' % uuid.uuid4().hex[:10])
        self.client = server.service().get_container_client(self.container)
        self.prefix = 'cairn'
        self.spec = {'type': 'azure', 'container': self.container, 'prefix': self.prefix,
                     'account_name': _azure.ACCOUNT_NAME, 'endpoint': server.endpoint}
        self.credentials = {'account_key': _azure.ACCOUNT_KEY}
        self.secrets = (_azure.ACCOUNT_KEY,)

    def keys(self):
        return sorted(blob.name[len(self.prefix) + 1:] for blob in self.client.list_blobs())

    def read(self, key):
        return self.client.get_blob_client(self.prefix + '/' + key).download_blob().readall()

    def put(self, key, data):
        self.client.get_blob_client(self.prefix + '/' + key).upload_blob(data, overwrite=True)


@pytest.fixture(params=['s3', 'gcs', 'azure'])
def store(request):
    if request.param == 's3':
        return S3Repo(request.getfixturevalue('s3_server'))
    if request.param == 'gcs':
        return GcsRepo(request.getfixturevalue('gcs_server'))
    return AzureRepo(request.getfixturevalue('azure_server'))


def module(store, name, **args):
    result = run_module(name, repository=store.spec, repository_credentials=store.credentials, instance=INSTANCE,
                        **args)
    text = json.dumps(result)
    for secret in store.secrets:
        assert secret not in text, name
    return result


def backup(store, env_file, point_args=None, **extra):
    """As the backup role runs it: the passphrase goes only to the steps that write data."""
    point = module(store, 'cairn_restore_point', **(point_args or {}))
    assert point['changed'] and not point.failed, point
    pid = point['restore_point']
    dump = module(store, 'cairn_db_dump', env_file=str(env_file), restore_point=pid, **extra)
    assert not dump.failed, dump
    files = module(store, 'cairn_storage_sync', env_file=str(env_file), restore_point=pid, direction='backup',
                   **extra)
    assert not files.failed, files
    final = module(store, 'cairn_restore_point', env_file=str(env_file), restore_point=pid, state='complete')
    assert not final.failed, final
    return final['manifest'], files


def test_backup_restore_in_an_object_repository(store, source, target):
    manifest, files = backup(store, source / '.env')
    assert files['transferred'] == 6, files
    keys = store.keys()
    point = 'blog/points/%s/' % manifest['id']
    assert point + 'manifest.json' in keys
    assert not [key for key in keys if key.startswith(('blog/staging/', 'blog/lock.json'))], keys
    for artifact in artifacts_of(manifest):  # the artifacts are what the manifest says, byte for byte
        data = store.read(point + artifact['path'])
        assert (len(data), hashlib.sha256(data).hexdigest()) == (artifact['size_bytes'], artifact['sha256'])
    blobs = [key for key in keys if key.startswith('blog/blobs/')]
    assert len(blobs) == 6
    for key in blobs:
        assert hashlib.sha256(store.read(key)).hexdigest() == key.rsplit('/', 1)[1]

    # an unchanged re-run transfers nothing and stores no new blob
    second, files = backup(store, source / '.env')
    assert (files['transferred'], files['reused']) == (0, 6), files
    assert len([key for key in store.keys() if key.startswith('blog/blobs/')]) == 6
    info = module(store, 'cairn_backup_info')
    assert [p['id'] for p in info['restore_points']] == [manifest['id'], second['id']], info

    db = module(store, 'cairn_db_restore', env_file=str(target / '.env'), restore_point=manifest['id'])
    sync = module(store, 'cairn_storage_sync', env_file=str(target / '.env'), restore_point=manifest['id'],
                  direction='restore')
    assert not db.failed and not sync.failed and sync['transferred'] == 6, (db, sync)
    assert dump_sql(source / 'data.db') == dump_sql(target / 'data.db')
    assert digests(target / 'uploads') == originals(source / 'uploads')
    verify = module(store, 'cairn_restore_verify', env_file=str(target / '.env'),
                    checks=['repository', 'database', 'files'])
    assert not verify.failed and all(check['ok'] for check in verify['checks']), verify
    check = module(store, 'cairn_repository_check')
    assert not check.failed and check['problems'] == [] and check['checked_items'] > 6, check


def test_a_restore_point_is_visible_only_once_complete(store, source):
    point = module(store, 'cairn_restore_point')
    pid = point['restore_point']
    dump = module(store, 'cairn_db_dump', env_file=str(source / '.env'), restore_point=pid)
    assert not dump.failed, dump
    # the dump is in the bucket, but no restore point exists yet
    assert any(key.startswith('blog/points/%s/' % pid) for key in store.keys())
    info = module(store, 'cairn_backup_info')
    assert info['restore_points'] == [], info
    # another run cannot take the instance meanwhile
    other = module(store, 'cairn_restore_point')
    assert other.failed and 'is locked' in other['msg'] and pid in other['msg'], other
    # the run fails: its data goes, an error log stays, and the lock is free again
    failed = module(store, 'cairn_restore_point', restore_point=pid, state='failed', error={'msg': 'disk on fire'})
    assert not failed.failed, failed
    keys = store.keys()
    assert not [key for key in keys if key.startswith(('blog/points/', 'blog/staging/', 'blog/lock.json'))], keys
    record = json.loads(store.read('blog/failed/%s/error.json' % pid))
    assert record['error']['msg'] == 'disk on fire'
    manifest, _files = backup(store, source / '.env')
    assert module(store, 'cairn_backup_info')['restore_points'][0]['id'] == manifest['id']


def test_a_dead_runs_leftovers_are_cleaned_by_the_next_run(store, source):
    point = module(store, 'cairn_restore_point')
    pid = point['restore_point']
    assert not module(store, 'cairn_db_dump', env_file=str(source / '.env'), restore_point=pid).failed
    # the run dies; its lock goes stale
    lock = json.loads(store.read('blog/lock.json'))
    lock['beat'] = 0
    store.put('blog/lock.json', json.dumps(lock).encode())
    manifest, _files = backup(store, source / '.env', point_args={'lock_stale_after': 60})
    keys = store.keys()
    assert not [key for key in keys if key.startswith(('blog/points/%s/' % pid, 'blog/staging/'))], keys
    assert 'blog/failed/%s/error.json' % pid in keys
    assert [p['id'] for p in module(store, 'cairn_backup_info')['restore_points']] == [manifest['id']]


def test_encrypted_restore_points_and_offsite_copy_from_a_local_repository(s3_server, source, target, repo):
    store = S3Repo(s3_server)
    passphrase = 'correct horse battery staple %s' % uuid.uuid4().hex
    manifest, _files = backup(store, source / '.env', encryption_passphrase=passphrase)
    for key in store.keys():  # nothing readable: every blob and the dump are age files
        if key.startswith(('blog/blobs', 'blog/points/')) and not key.endswith(('manifest.json', '.jsonl')):
            assert store.read(key).startswith(b'age-encryption.org/v1'), key
    assert not [key for key in store.keys() if key.startswith('blog/blobs/')]
    restored = module(store, 'cairn_storage_sync', env_file=str(target / '.env'), direction='restore',
                      encryption_passphrase=passphrase)
    assert not restored.failed and restored['transferred'] == 6, restored
    assert digests(target / 'uploads') == originals(source / 'uploads')
    assert passphrase not in json.dumps(restored)

    # an offsite copy from a local repository into the bucket, incremental
    local = run_module('cairn_restore_point', repository=repo, instance=INSTANCE)
    pid = local['restore_point']
    for name, args in (('cairn_db_dump', {}), ('cairn_storage_sync', {'direction': 'backup'}),
                       ('cairn_restore_point', {'state': 'complete'})):
        assert not run_module(name, env_file=str(source / '.env'), repository=repo, instance=INSTANCE,
                              restore_point=pid, **args).failed
    other = S3Repo(s3_server)
    copy = run_module('cairn_repository_copy', repository=repo, instance=INSTANCE, target=other.spec,
                      target_credentials=other.credentials)
    assert not copy.failed and copy['copied'] == [pid], copy
    assert _s3.SECRET_KEY not in json.dumps(copy)
    again = run_module('cairn_repository_copy', repository=repo, instance=INSTANCE, target=other.spec,
                       target_credentials=other.credentials)
    assert not again.failed and not again['changed'], again
    assert [p['id'] for p in module(other, 'cairn_backup_info')['restore_points']] == [pid]


def test_bad_repository_specs_are_refused_clearly(s3_server):
    cases = [
        ({'type': 's3', 'prefix': 'x'}, {}, 'needs its bucket'),
        ({'type': 's3', 'bucket': 'b', 'secret': 'oops'}, {}, 'credentials go in cairn_repository_credentials'),
        ({'type': 's3', 'bucket': 'b'}, {'key': 'AKIAEXAMPLE'}, 'key and secret together'),
        ({'type': 'ftp', 'bucket': 'b'}, {}, 'not supported'),
        ({'type': 'local', 'path': '/tmp/x'}, {'key': 'AKIAEXAMPLE', 'secret': 'example-secret'}, 'takes no credentials'),
    ]
    for spec, credentials, message in cases:
        result = run_module('cairn_backup_info', repository=spec, repository_credentials=credentials,
                            instance=INSTANCE)
        assert result.failed and message in result['msg'], (spec, result)
    # a bucket that does not exist: the URL and the cause, not a traceback
    spec = {'type': 's3', 'bucket': 'no-such-bucket-here', 'endpoint': s3_server.endpoint, 'region': _s3.REGION,
            'force_path_style': True}
    result = run_module('cairn_backup_info', repository=spec,
                        repository_credentials={'key': _s3.ACCESS_KEY, 'secret': _s3.SECRET_KEY}, instance=INSTANCE)
    assert result.failed and 's3://no-such-bucket-here/' in result['msg'] and 'NoSuchBucket' in result['msg'], result
    assert _s3.SECRET_KEY not in json.dumps(result)


def test_backup_and_restore_roles_with_a_bucket_repository(s3_server, source, target, tmp_path):
    """The roles take cairn_repository_credentials and cairn_storage_parallel; the secret stays out of the
    output even at -vvv, and a re-run of the restore changes nothing."""
    store = S3Repo(s3_server)
    inventory = str(tmp_path / 'inventory.json')
    write_inventory(inventory, hosts(source, target), '/unused')
    with open(inventory, encoding='utf-8') as handle:
        data = json.load(handle)
    data['all']['vars'].update({'cairn_repository': store.spec, 'cairn_repository_credentials': store.credentials,
                                'cairn_storage_parallel': 3, 'cairn_posture_enforce': ['versioning', 'lifecycle']})
    with open(inventory, 'w', encoding='utf-8') as handle:
        json.dump(data, handle)
    backup = run_playbook('backup.yml', inventory, limit='blog', extra=['-vvv'])
    assert backup.returncode == 0, backup.stdout[-3000:] + backup.stderr[-3000:]
    restore = run_playbook('restore.yml', inventory, limit='clone', extra=['-vvv'])
    assert restore.returncode == 0, restore.stdout[-3000:] + restore.stderr[-3000:]
    for run in (backup, restore):
        assert _s3.SECRET_KEY not in run.stdout + run.stderr
    assert digests(target / 'uploads') == originals(source / 'uploads')
    assert dump_sql(source / 'data.db') == dump_sql(target / 'data.db')
    # the backup enforced versioning and noncurrent expiry on the repository bucket, and reported the posture
    assert store.client.get_bucket_versioning(Bucket=store.bucket)['Status'] == 'Enabled'
    rules = store.client.get_bucket_lifecycle_configuration(Bucket=store.bucket)['Rules']
    assert [rule['NoncurrentVersionExpiration']['NoncurrentDays'] for rule in rules] == [30], rules
    assert '"posture_findings"' in backup.stdout
    points = [key for key in store.keys() if key.endswith('/manifest.json')]
    assert len(points) == 1, store.keys()
    again = run_playbook('restore.yml', inventory, limit='clone')
    assert again.returncode == 0 and recap(again.stdout, 'clone')['changed'] == 0, again.stdout[-3000:]
