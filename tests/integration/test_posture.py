# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""cairn_storage_posture and _posture against the session emulators (moto_server, fake-gcs-server, Azurite)
and against a small S3 endpoint of our own that answers AccessDenied, NotImplemented and errors."""

from __future__ import annotations

import http.server
import itertools
import json
import secrets
import threading

import _azure
import _gcs
import _s3
import pytest
from conftest import run_module

from ansible_collections.cairncms.ops.plugins.module_utils import _posture
from ansible_collections.cairncms.ops.plugins.module_utils._common import CairnError
from ansible_collections.cairncms.ops.plugins.module_utils._env import InstanceConfig, Location
from ansible_collections.cairncms.ops.plugins.module_utils._repository import TYPES
from ansible_collections.cairncms.ops.plugins.module_utils._storage.gcs import GcsStorage
from ansible_collections.cairncms.ops.plugins.module_utils._storage.s3 import S3Storage

_COUNTER = itertools.count(1)
SECRETS = (_s3.SECRET_KEY, _azure.ACCOUNT_KEY)


def name(kind):
    return 'cairn-%s-%d-%s' % (kind, next(_COUNTER), secrets.token_hex(3))


def assert_no_secret(*results):
    text = json.dumps(results)
    for secret in SECRETS:
        assert secret not in text


def instance(tmp_path, *env_lines, locations='local'):
    env = tmp_path / '.env'
    env.write_text('KEY=6a1f4e1c-3b0a-4d36-9d8e-6b8f3b7d9c21\nDB_CLIENT=sqlite3\nDB_FILENAME=./data.db\n'
                   'STORAGE_LOCATIONS=%s\nSTORAGE_LOCAL_DRIVER=local\nSTORAGE_LOCAL_ROOT=./uploads\n%s'
                   % (locations, ''.join(env_lines)))
    return str(env)


def s3_store(server, bucket, root=''):
    """The S3Storage of an s3 location on ``server``, built from .env lines as the modules build it."""
    lines = _s3.env_lines('repo', server.endpoint, bucket, root)
    values = dict(line.split('=', 1) for line in lines.splitlines())
    config = InstanceConfig.load(overrides={'STORAGE_LOCATIONS': 'repo'},
                                 secret_overrides=values, instance_dir='/')
    [location] = config.locations()
    return S3Storage(location)


def s3_state(client, bucket):
    """What a run could have changed on an S3 bucket."""
    versioning = client.get_bucket_versioning(Bucket=bucket).get('Status')
    try:
        rules = client.get_bucket_lifecycle_configuration(Bucket=bucket)['Rules']
    except client.exceptions.ClientError as exc:
        assert exc.response['Error']['Code'] == 'NoSuchLifecycleConfiguration'
        rules = None
    return versioning, rules


def harden(client, bucket):
    """Versioning (by Object Lock), a 14-day noncurrent expiry, Object Lock, KMS encryption, replication."""
    client.create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=True)
    client.put_object_lock_configuration(Bucket=bucket, ObjectLockConfiguration={
        'ObjectLockEnabled': 'Enabled', 'Rule': {'DefaultRetention': {'Mode': 'GOVERNANCE', 'Days': 7}}})
    client.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={'Rules': [
        {'ID': 'old-versions', 'Status': 'Enabled', 'Filter': {'Prefix': ''},
         'NoncurrentVersionExpiration': {'NoncurrentDays': 14}}]})
    client.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration={'Rules': [
        {'ApplyServerSideEncryptionByDefault': {'SSEAlgorithm': 'aws:kms', 'KMSMasterKeyID': 'alias/cairn'}}]})
    target = name('replica')
    client.create_bucket(Bucket=target)
    client.put_bucket_versioning(Bucket=target, VersioningConfiguration={'Status': 'Enabled'})
    client.put_bucket_replication(Bucket=bucket, ReplicationConfiguration={
        'Role': 'arn:aws:iam::123456789012:role/replication', 'Rules': [
            {'ID': 'offsite', 'Status': 'Enabled', 'Priority': 1, 'Filter': {},
             'DeleteMarkerReplication': {'Status': 'Disabled'}, 'Destination': {'Bucket': 'arn:aws:s3:::' + target}}]})


# -- S3 through the module ----------------------------------------------------------------------

def test_s3_bare_and_hardened_buckets_as_source_locations(tmp_path, s3_server):
    client = s3_server.client()
    bare = s3_server.create_bucket(name('bare'))
    hardened = name('hard')
    harden(client, hardened)
    env = instance(tmp_path, _s3.env_lines('bare', s3_server.endpoint, bare, 'cms/uploads'),
                   _s3.env_lines('hard', s3_server.endpoint, hardened), locations='local,bare,hard')
    before = (s3_state(client, bare), s3_state(client, hardened))

    result = run_module('cairn_storage_posture', env_file=env)
    assert result['_rc'] == 0 and not result['changed'], result
    assert_no_secret(result)
    local, bare_loc, hard_loc = result['locations']
    assert local == {'name': 'local', 'driver': 'local', 'posture': {'driver': 'local', 'applicable': False}}
    assert result['repository'] is None and result['changes'] == []

    posture = bare_loc['posture']
    assert (posture['url'], posture['bucket'], posture['prefix']) == ('s3://%s/cms/uploads/' % bare, bare, 'cms/uploads/')
    assert posture['versioning'] == 'disabled' and posture['mfa_delete'] == 'disabled'
    assert (posture['lifecycle_rules'], posture['noncurrent_version_expiration_days']) == (0, None)
    assert posture['replication'] is False and posture['unknown'] == []
    assert posture['object_lock'] == {'enabled': False, 'mode': None, 'days': None, 'years': None, 'legal_hold': None}
    assert posture['default_encryption']['enabled'] is False
    [versioning, encryption] = posture['findings']  # a source is not judged on object lock or replication
    assert versioning.startswith('Versioning is disabled on s3://%s/cms/uploads/' % bare)
    assert 'put-bucket-versioning --bucket %s' % bare in versioning and 'enforce' not in versioning
    assert 'no default encryption' in encryption
    assert result['findings'] == ['location bare: ' + versioning, 'location bare: ' + encryption]

    posture = hard_loc['posture']
    assert (posture['versioning'], posture['noncurrent_version_expiration_days'], posture['lifecycle_rules']) == (
        'enabled', 14, 1)
    assert posture['replication'] is True
    assert posture['object_lock'] == {'enabled': True, 'mode': 'GOVERNANCE', 'days': 7, 'years': None,
                                      'legal_hold': None}
    assert posture['default_encryption'] == {'enabled': True, 'algorithm': 'aws:kms', 'kms_key': 'alias/cairn',
                                             'encryption_scope': None}
    assert posture['findings'] == [] and posture['unknown'] == []
    assert (s3_state(client, bare), s3_state(client, hardened)) == before


def test_s3_hardened_bucket_as_repository_has_no_findings(s3_server):
    client = s3_server.client()
    bucket = name('hard')
    harden(client, bucket)
    posture = _posture.report(s3_store(s3_server, bucket, 'backups'), 'repository')
    assert posture['findings'] == [], posture
    bare = _posture.report(s3_store(s3_server, s3_server.create_bucket(name('bare'))), 'repository')
    kinds = [finding.split(' ', 2)[:2] for finding in bare['findings']]
    assert kinds == [['Versioning', 'is'], ['Object', 'Lock'], ['s3://%s/' % bare['bucket'], 'has'],
                     ['s3://%s/' % bare['bucket'], 'is']], bare['findings']
    assert 'enforce: [versioning]' in bare['findings'][0] and 'MFA delete is off' in bare['findings'][1]
    assert 'cairn_repository_copy' in bare['findings'][3]


def test_s3_enforce_check_mode_apply_idempotent_and_merging(s3_server):
    client = s3_server.client()
    bucket = s3_server.create_bucket(name('repo'))
    other = {'ID': 'uploads-abort', 'Status': 'Enabled', 'Filter': {'Prefix': 'incoming/'},
             'AbortIncompleteMultipartUpload': {'DaysAfterInitiation': 3}}
    client.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={'Rules': [other]})
    store = s3_store(s3_server, bucket, 'cairn')

    planned = _posture.enforce(store, versioning=True, noncurrent_days=30, check_mode=True)
    assert len(planned) == 2 and planned[0] == 'enable versioning on s3://%s/cairn/ (was disabled)' % bucket
    assert planned[1].startswith('add lifecycle rule cairncms-noncurrent-versions-') and '(1 other rule(s) kept)' in \
        planned[1]
    assert s3_state(client, bucket) == (None, [other])

    assert _posture.enforce(store, versioning=True, noncurrent_days=30) == planned
    versioning, rules = s3_state(client, bucket)
    assert versioning == 'Enabled' and rules[0] == other
    [ours] = rules[1:]
    assert ours['NoncurrentVersionExpiration'] == {'NoncurrentDays': 30} and ours['Filter'] == {'Prefix': 'cairn/'}
    posture = _posture.report(store)
    assert (posture['versioning'], posture['noncurrent_version_expiration_days'], posture['lifecycle_rules']) == (
        'enabled', 30, 2)
    assert not any('Versioning' in text or 'never expire' in text for text in posture['findings'])

    assert _posture.enforce(store, versioning=True, noncurrent_days=30) == []
    assert _posture.enforce(store, versioning=True, noncurrent_days=30, check_mode=True) == []
    changed = _posture.enforce(store, versioning=True, noncurrent_days=45)
    assert len(changed) == 1 and changed[0].startswith('update lifecycle rule ' + ours['ID']), changed
    _versioning, rules = s3_state(client, bucket)
    assert rules[0] == other and [rule['NoncurrentVersionExpiration'] for rule in rules[1:]] == [
        {'NoncurrentDays': 45}]
    # another repository in the same bucket gets a rule of its own beside the first
    assert len(_posture.enforce(s3_store(s3_server, bucket, 'other'), versioning=False, noncurrent_days=10)) == 1
    assert len(s3_state(client, bucket)[1]) == 3
    assert _posture.report(store)['noncurrent_version_expiration_days'] == 45


def test_s3_suspended_versioning_and_expiring_rule_are_findings(s3_server):
    client = s3_server.client()
    bucket = s3_server.create_bucket(name('susp'))
    client.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={'Status': 'Suspended'})
    client.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={'Rules': [
        {'ID': 'purge', 'Status': 'Enabled', 'Filter': {'Prefix': 'cairn/blog/points/'}, 'Expiration': {'Days': 5}}]})
    posture = _posture.report(s3_store(s3_server, bucket, 'cairn'))
    assert posture['versioning'] == 'suspended' and posture['current_version_expiration_days'] == 5
    assert any(text.startswith('Versioning is suspended') for text in posture['findings'])
    assert any('deletes current objects under s3://%s/cairn/ after 5 day(s): restore points' % bucket in text
               for text in posture['findings'])
    assert _posture.enforce(s3_store(s3_server, bucket, 'cairn'), versioning=True) == [
        'enable versioning on s3://%s/cairn/ (was suspended)' % bucket]
    assert s3_state(client, bucket)[0] == 'Enabled'


def test_s3_missing_bucket_is_one_clear_error(s3_server):
    with pytest.raises(CairnError) as raised:
        _posture.report(s3_store(s3_server, name('nothere')))
    assert raised.value.message.startswith('Failed to read the versioning of s3://cairn-nothere-')
    assert 'NoSuchBucket' in raised.value.message


# -- an S3 endpoint that refuses, lacks calls, and fails ------------------------------------------

ERROR = ('<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>%s</Code><Message>%s</Message>'
         '<RequestId>r</RequestId></Error>')
ANSWERS = {
    'versioning': (200, '<VersioningConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Status>Enabled'
                        '</Status><MfaDelete>Enabled</MfaDelete></VersioningConfiguration>'),
    'lifecycle': (403, ERROR % ('AccessDenied', 'Access Denied to ' + _s3.SECRET_KEY)),
    'replication': (501, ERROR % ('NotImplemented', 'A header you provided implies functionality that is not '
                                                    'implemented')),
    'object-lock': (404, ERROR % ('ObjectLockConfigurationNotFoundError', 'none')),
    'encryption': (403, ERROR % ('AccessDenied', 'Access Denied')),
}


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (the http.server interface)
        path, _sep, query = self.path.partition('?')
        status, body = ANSWERS.get(query.split('&')[0].split('=')[0], (400, ERROR % ('InvalidRequest', 'no')))
        if path.startswith('/broken') and query.startswith('encryption'):
            status, body = 400, ERROR % ('InvalidArgument', 'bad request for ' + _s3.SECRET_KEY)
        data = body.encode()
        self.send_response(status)
        self.send_header('Content-Type', 'application/xml')
        self.send_header('Content-Length', str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def strict_s3():
    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield 'http://127.0.0.1:%d' % server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def test_s3_denied_and_unimplemented_calls_are_unknown_not_errors(tmp_path, strict_s3):
    env = instance(tmp_path, _s3.env_lines('strict', strict_s3, 'locked-down'), locations='strict')
    result = run_module('cairn_storage_posture', env_file=env)
    assert result['_rc'] == 0, result
    assert_no_secret(result)
    posture = result['locations'][0]['posture']
    assert (posture['versioning'], posture['mfa_delete']) == ('enabled', 'enabled')
    assert posture['object_lock']['enabled'] is False
    assert posture['lifecycle_rules'] is None and posture['replication'] is None
    assert posture['default_encryption']['enabled'] is None
    assert posture['unknown'] == ['lifecycle_rules', 'noncurrent_version_expiration_days',
                                  'current_version_expiration_days', 'replication', 'default_encryption']
    lifecycle, replication, encryption = posture['findings']
    assert 'lifecycle configuration' in lifecycle and 's3:GetLifecycleConfiguration' in lifecycle
    assert '********' in lifecycle
    assert 'not implemented' in replication and 'does not offer it' in replication
    assert 's3:GetEncryptionConfiguration' in encryption

    broken = run_module('cairn_storage_posture', env_file=instance(
        tmp_path, _s3.env_lines('strict', strict_s3, 'broken'), locations='strict'))
    assert broken.failed and broken['msg'].startswith('Failed to read the default encryption of s3://broken/: '), broken
    assert 'InvalidArgument' in broken['msg']
    assert_no_secret(broken)


# -- GCS ------------------------------------------------------------------------------------------

def gcs_store(server, bucket, root=''):
    return GcsStorage(Location('repo', 'gcs', {'bucket': bucket, 'api_endpoint': server.endpoint, 'root': root}))


def test_gcs_report_and_enforce(tmp_path, gcs_server):
    client = gcs_server.client()
    bare = gcs_server.create_bucket(name('bare'))
    held = client.bucket(name('held'))
    held.versioning_enabled = True
    held.default_event_based_hold = True
    client.create_bucket(held)
    env = instance(tmp_path, _gcs.env_lines('bare', gcs_server.endpoint, bare),
                   _gcs.env_lines('held', gcs_server.endpoint, held.name), locations='bare,held')
    result = run_module('cairn_storage_posture', env_file=env, enforce=[])
    assert result['_rc'] == 0 and not result['changed'], result
    bare_posture, held_posture = (location['posture'] for location in result['locations'])
    assert (bare_posture['versioning'], bare_posture['mfa_delete'], bare_posture['replication']) == (
        'disabled', 'not_applicable', False)
    assert bare_posture['default_encryption'] == {'enabled': True, 'algorithm': 'google-managed', 'kms_key': None,
                                                  'encryption_scope': None}
    assert bare_posture['findings'][0].startswith('Versioning is disabled on gs://%s/' % bare)
    assert 'gcloud storage buckets update gs://%s --versioning' % bare in bare_posture['findings'][0]
    assert any(text.startswith('Soft delete is off') for text in bare_posture['findings'])
    assert held_posture['versioning'] == 'enabled' and held_posture['object_lock']['legal_hold'] is True
    assert any('never expire' in text for text in held_posture['findings'])

    store = gcs_store(gcs_server, bare, 'cairn')
    assert _posture.enforce(store, versioning=True, check_mode=True) == [
        'enable versioning on gs://%s/cairn/ (was disabled)' % bare]
    assert client.get_bucket(bare).versioning_enabled is False
    assert len(_posture.enforce(store, versioning=True)) == 1
    assert client.get_bucket(bare).versioning_enabled is True
    assert _posture.enforce(store, versioning=True) == []
    assert _posture.report(store)['versioning'] == 'enabled'
    # fake-gcs-server drops lifecycle rules: enforce says so instead of claiming success
    assert 'noncurrent' in _posture.enforce(store, versioning=True, noncurrent_days=30, check_mode=True)[0]
    with pytest.raises(CairnError) as raised:
        _posture.enforce(store, versioning=True, noncurrent_days=30)
    assert raised.value.message.startswith('Failed to enforce the posture of gs://%s/cairn/: ' % bare)


# -- Azure ----------------------------------------------------------------------------------------

def test_azure_report_and_enforce_refusal(tmp_path, azure_server):
    from azure.storage.blob import RetentionPolicy
    container = azure_server.create_container(name('az'))
    env = instance(tmp_path, _azure.env_lines('az', azure_server.endpoint, container, 'cms'), locations='az')
    service = azure_server.service()
    before = service.get_service_properties()['delete_retention_policy']
    try:
        service.set_service_properties(delete_retention_policy=RetentionPolicy(enabled=True, days=9))
        result = run_module('cairn_storage_posture', env_file=env)
    finally:
        service.set_service_properties(delete_retention_policy=before)
    assert result['_rc'] == 0, result
    assert_no_secret(result)
    posture = result['locations'][0]['posture']
    assert (posture['url'], posture['versioning'], posture['soft_delete_days']) == (
        'azure://%s/cms/' % container, 'unknown', 9)
    assert posture['replication'] is True  # Azurite says Standard_RAGRS
    assert posture['object_lock'] == {'enabled': False, 'mode': None, 'days': None, 'years': None,
                                      'legal_hold': False}
    assert posture['unknown'] == ['versioning', 'lifecycle_rules', 'noncurrent_version_expiration_days',
                                  'current_version_expiration_days']
    versioning, lifecycle = posture['findings']
    assert 'az storage account blob-service-properties' in versioning and _azure.ACCOUNT_NAME in versioning
    assert 'az storage account management-policy show' in lifecycle

    from ansible_collections.cairncms.ops.plugins.module_utils._storage.azure import AzureStorage
    store = AzureStorage(Location('repo', 'azure', {
        'container_name': container, 'account_name': _azure.ACCOUNT_NAME, 'account_key': _azure.ACCOUNT_KEY,
        'endpoint': azure_server.endpoint, 'root': ''}))
    with pytest.raises(CairnError) as raised:
        _posture.enforce(store, versioning=True, noncurrent_days=30, check_mode=True)
    assert 'az storage account blob-service-properties update' in raised.value.message
    assert 'management-policy create' in raised.value.message
    assert _azure.ACCOUNT_KEY not in raised.value.message


# -- the repository through the module --------------------------------------------------------------

def test_module_enforce_without_object_repository_refuses(tmp_path, s3_server):
    client = s3_server.client()
    bucket = s3_server.create_bucket(name('src'))
    env = instance(tmp_path, _s3.env_lines('s3', s3_server.endpoint, bucket), locations='s3')
    refused = run_module('cairn_storage_posture', env_file=env, enforce=['versioning'])
    assert refused.failed and 'repository bucket only' in refused['msg'], refused
    local = {'type': 'local', 'path': str(tmp_path / 'repository')}
    refused = run_module('cairn_storage_posture', env_file=env, repository=local, enforce=['versioning'])
    assert refused.failed and 'local repository has no bucket settings' in refused['msg'], refused
    reported = run_module('cairn_storage_posture', env_file=env, repository=local)
    assert reported['repository'] == {'driver': 'local', 'applicable': False}, reported
    assert s3_state(client, bucket) == (None, None)


@pytest.mark.skipif('s3' not in TYPES, reason='select_repository does not take s3 repositories yet')
def test_module_enforces_on_the_s3_repository_only(tmp_path, s3_server):
    client = s3_server.client()
    source = s3_server.create_bucket(name('src'))
    target = s3_server.create_bucket(name('repo'))
    env = instance(tmp_path, _s3.env_lines('s3', s3_server.endpoint, source), locations='s3')
    repository = {'type': 's3', 'bucket': target, 'prefix': 'cairn', 'endpoint': s3_server.endpoint,
                  'region': _s3.REGION, 'force_path_style': True}
    credentials = {'key': _s3.ACCESS_KEY, 'secret': _s3.SECRET_KEY}
    args = dict(env_file=env, repository=repository, repository_credentials=credentials,
                enforce=['versioning', 'lifecycle'], noncurrent_days=21)

    planned = run_module('cairn_storage_posture', check_mode=True, **args)
    assert planned['_rc'] == 0 and planned['changed'] and len(planned['changes']) == 2, planned
    assert planned['repository']['versioning'] == 'disabled'
    assert s3_state(client, target) == (None, None)

    applied = run_module('cairn_storage_posture', **args)
    assert applied['changed'] and applied['changes'] == planned['changes'], applied
    assert (applied['repository']['versioning'], applied['repository']['noncurrent_version_expiration_days']) == (
        'enabled', 21)
    again = run_module('cairn_storage_posture', **args)
    assert not again['changed'] and again['changes'] == [], again
    assert s3_state(client, source) == (None, None)
    assert again['locations'][0]['posture']['versioning'] == 'disabled'
    assert_no_secret(planned, applied, again)
