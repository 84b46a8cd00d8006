# -*- coding: utf-8 -*-
# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""S3 storage (STORAGE_<LOC>_DRIVER=s3) through boto3 (private).

Object names are keys relative to the location's root prefix
(``STORAGE_<LOC>_ROOT``), as CairnCMS stores them. A staged write keeps its
bytes in a local temporary file and uploads the object only on
``commit()`` (multipart when large), so nothing is visible
in the bucket before that. Every SDK error becomes one ``CairnError``
("Failed to <verb> s3://bucket/key: <cause>") in ``_errors``.
"""

from __future__ import annotations

import calendar
import datetime
import hashlib
import time
import mimetypes
import traceback

from ansible_collections.cairncms.ops.plugins.module_utils import _posture
from ansible_collections.cairncms.ops.plugins.module_utils._common import CairnError
from ansible_collections.cairncms.ops.plugins.module_utils._storage._base import (
    Entry, ObjectStore, SdkReader, UploadOnCommit)

# boto3, imported by load_sdk() when the first S3 backend is made (reading a .env needs no SDK)
boto3 = botocore = None
HAS_BOTO3 = None
BOTO3_IMPORT_ERROR = None

RETRY_ATTEMPTS = 5  # requests in all, the first included; standard mode backs off 50 ms x 2^n (1 s x 2^n if throttled)
MULTIPART_THRESHOLD = 64 * 1024 * 1024
MULTIPART_CHUNK = 16 * 1024 * 1024
_NOT_FOUND = ('404', 'NoSuchKey', 'NotFound')
_BROKEN_OFF = ()
_EXISTS = ('412', 'PreconditionFailed', '409', 'ConditionalRequestConflict')

# STORAGE_<LOC>_* variables of an s3 location, by option name.
VARIABLES = {'key': 'KEY', 'secret': 'SECRET', 'bucket': 'BUCKET', 'region': 'REGION',
             'endpoint': 'ENDPOINT', 'root': 'ROOT', 'server_side_encryption': 'SERVER_SIDE_ENCRYPTION',
             'acl': 'ACL'}
DESCRIBED = ('bucket', 'region', 'endpoint', 'force_path_style', 'server_side_encryption', 'acl')


def load_sdk():
    """Import boto3 once; whether it is there (else ``BOTO3_IMPORT_ERROR`` says why)."""
    # pylint: disable-next=global-statement
    global boto3, botocore, HAS_BOTO3, BOTO3_IMPORT_ERROR, _BROKEN_OFF
    if HAS_BOTO3 is None:
        try:
            # pylint: disable=import-outside-toplevel,redefined-outer-name
            import boto3
            import boto3.exceptions
            import boto3.s3.transfer
            import botocore.config
            import botocore.exceptions
        except ImportError:
            BOTO3_IMPORT_ERROR = traceback.format_exc()
            HAS_BOTO3 = False
        else:
            _BROKEN_OFF = (botocore.exceptions.ResponseStreamingError, botocore.exceptions.IncompleteReadError,
                           botocore.exceptions.ReadTimeoutError, botocore.exceptions.ConnectionClosedError)
            HAS_BOTO3 = True
    return HAS_BOTO3


def _cause(exc):
    response = getattr(exc, 'response', None)
    if isinstance(response, dict) and response.get('Error'):
        error = response['Error']
        code, message = error.get('Code'), error.get('Message')
        return ('%s (%s)' % (message, code) if message and code else message or code) or str(exc)
    return str(exc) or exc.__class__.__name__


class S3Storage(ObjectStore):
    driver = 's3'
    scheme = 's3'
    place_option = 'bucket'
    secret_option = 'secret'

    # -- the driver's configuration ---------------------------------------------------------------

    @classmethod
    def options_from_env(cls, config, prefix):
        """As CairnCMS's S3 driver reads them. Without KEY and SECRET the credentials come from the standard
        AWS chain (AWS_* variables, profiles, instance roles)."""
        options = config.texts(prefix, VARIABLES)
        if not options['bucket']:
            raise CairnError('%sBUCKET is not set in %s; an s3 storage location needs its bucket'
                             % (prefix, config.where))
        if bool(options['key']) != bool(options['secret']):
            raise CairnError('%sKEY and %sSECRET must be set together (or neither, to use the AWS credential '
                             'chain)' % (prefix, prefix))
        endpoint = options['endpoint']
        if endpoint and '://' not in endpoint:
            endpoint = 'https://' + endpoint  # as CairnCMS: no scheme means https
        options['endpoint'] = endpoint
        options['root'] = (options['root'] or '').strip('/')
        force = config.values.get(prefix + 'FORCE_PATH_STYLE')
        options['force_path_style'] = force is True or str(force).lower() == 'true'
        return options

    @classmethod
    def describe_options(cls, options):
        described = {key: options.get(key) for key in DESCRIBED}
        described['credentials'] = 'configured' if options.get('key') else 'environment'
        return described

    identity_options = ('bucket', 'endpoint', 'root')

    repository_spec = {'place': 'bucket',
                       'options': {'region': 'region', 'endpoint': 'endpoint', 'profile': 'profile',
                                   'force_path_style': 'force_path_style',
                                   'server_side_encryption': 'server_side_encryption'},
                       'credentials': {'key': 'key', 'secret': 'secret'}}

    @classmethod
    def repository_options(cls, options):
        options['force_path_style'] = bool(options.get('force_path_style'))
        if bool(options.get('key')) != bool(options.get('secret')):
            raise CairnError('cairn_repository_credentials needs key and secret together (or neither, to use the '
                             'AWS credential chain)')
        if options.get('endpoint') and '://' not in options['endpoint']:
            options['endpoint'] = 'https://' + options['endpoint']
        return options

    # -- bucket posture ---------------------------------------------------------------------------

    posture_fixes = {
        'versioning': 'aws s3api put-bucket-versioning --bucket {bucket} --versioning-configuration Status=Enabled',
        'lifecycle': 'a lifecycle rule with NoncurrentVersionExpiration (aws s3api put-bucket-lifecycle-configuration '
                     '--bucket {bucket}, keeping the rules already there)',
        'object_lock': 'aws s3api put-object-lock-configuration --bucket {bucket} --object-lock-configuration '
                       '\'{{"ObjectLockEnabled": "Enabled", "Rule": {{"DefaultRetention": {{"Mode": "GOVERNANCE", '
                       '"Days": 30}}}}}}\' (it needs versioning; COMPLIANCE mode cannot be shortened or removed by '
                       'anyone)',
        'replication': 'S3 Replication to a bucket in another region or account',
        'default_encryption': 'aws s3api put-bucket-encryption --bucket {bucket} '
                              '--server-side-encryption-configuration \'{{"Rules": [{{"ApplyServerSideEncryption'
                              'ByDefault": {{"SSEAlgorithm": "aws:kms"}}}}]}}\'',
    }
    mfa_delete = True
    lock_retention = True

    def read_posture(self, posture):
        _s3_report(self, posture)

    def enforce_posture(self, versioning, noncurrent_days, check_mode):
        return _s3_enforce(self, versioning, noncurrent_days, check_mode)

    # -- the backend ------------------------------------------------------------------------------

    def __init__(self, location):
        load_sdk()
        super().__init__(location)
        self._client = None

    # -- plumbing ---------------------------------------------------------------------------------

    def is_sdk_error(self, exc):
        return HAS_BOTO3 and isinstance(exc, (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError,
                                              boto3.exceptions.Boto3Error))

    def cause(self, exc):
        return _cause(exc)

    @property
    def client(self):
        if self._client is None:
            if not HAS_BOTO3:
                raise CairnError('the Python library boto3 is needed for the S3 storage location %s on this host: '
                                 'pip install "boto3>=1.26.0" for the Python Ansible uses here'
                                 % self.location.name, exception=BOTO3_IMPORT_ERROR)
            options = self.location.options
            config = botocore.config.Config(
                retries={'mode': 'standard', 'total_max_attempts': RETRY_ATTEMPTS},
                s3={'addressing_style': 'path' if options.get('force_path_style') else 'auto'})
            with self._errors('connect to'):
                session = boto3.session.Session(aws_access_key_id=options.get('key'),
                                                aws_secret_access_key=options.get('secret'),
                                                region_name=options.get('region'),
                                                profile_name=options.get('profile'))
                self._client = session.client('s3', endpoint_url=options.get('endpoint'), config=config)
        return self._client

    # -- the interface ----------------------------------------------------------------------------

    def list(self, under=''):
        paginator = self.client.get_paginator('list_objects_v2')
        with self._errors('list', under):
            for page in paginator.paginate(Bucket=self.place, Prefix=self.prefix + under):
                for item in page.get('Contents') or ():
                    name = item['Key'][len(self.prefix):]
                    if not name or name.endswith('/'):
                        continue  # folder markers made by consoles
                    yield Entry(name, item['Size'], _mtime_ns(item['LastModified']), _etag_md5(item.get('ETag')))

    def stat(self, name):
        with self._errors('stat', name):
            try:
                head = self.client.head_object(Bucket=self.place, Key=self._key(name))
            except botocore.exceptions.ClientError as exc:
                if str(exc.response.get('Error', {}).get('Code')) in _NOT_FOUND:
                    return None
                raise
        return Entry(name, head['ContentLength'], _mtime_ns(head['LastModified']))

    def open_read(self, name):
        with self._errors('read', name):
            try:
                response = self.client.get_object(Bucket=self.place, Key=self._key(name))
            except botocore.exceptions.ClientError as exc:
                if str(exc.response.get('Error', {}).get('Code')) in _NOT_FOUND:
                    raise self.missing(name)
                raise
        reader = _ResumingBody(self, name, response)
        return SdkReader(self, name, reader.read, reader.close)

    def begin_write(self, name, mtime_ns=None):
        return UploadOnCommit(self, name)

    def delete(self, name):
        with self._errors('delete', name):
            self.client.delete_object(Bucket=self.place, Key=self._key(name))

    def _extra(self, name):
        options = self.location.options
        extra = {}
        content_type = mimetypes.guess_type(name)[0]
        if content_type:
            extra['ContentType'] = content_type
        if options.get('server_side_encryption'):
            extra['ServerSideEncryption'] = options['server_side_encryption']
        if options.get('acl'):
            extra['ACL'] = options['acl']
        return extra

    def put_bytes(self, name, data, if_absent=False):
        extra = self._extra(name)
        if if_absent:
            extra['IfNoneMatch'] = '*'
        with self._errors('write', name):
            try:
                self.client.put_object(Bucket=self.place, Key=self._key(name), Body=data, **extra)
            except botocore.exceptions.ClientError as exc:
                if if_absent and str(exc.response.get('Error', {}).get('Code')) in _EXISTS:
                    return False
                raise
        return True

    def upload_fileobj(self, name, handle, size):
        transfer = boto3.s3.transfer.TransferConfig(multipart_threshold=MULTIPART_THRESHOLD,
                                                    multipart_chunksize=MULTIPART_CHUNK, use_threads=False)
        with self._errors('upload', name):
            self.client.upload_fileobj(handle, self.place, self._key(name), ExtraArgs=self._extra(name),
                                       Config=transfer)


class _ResumingBody:
    """An object's body that, when the connection breaks off mid-body (botocore retries requests, not
    reads under way), asks for the rest with a ranged GET of the same version (``If-Match`` its ETag),
    up to ``RETRY_ATTEMPTS`` times in all."""

    def __init__(self, storage, name, response):
        self._storage = storage
        self._name = name
        self._body = response['Body']
        self._etag = response.get('ETag')
        self._offset = 0
        self._resumed = 0

    def read(self, size):
        while True:
            try:
                data = self._body.read(None if size < 0 else size)
            except _BROKEN_OFF:
                if self._resumed >= RETRY_ATTEMPTS - 1:
                    raise
                self._resumed += 1
                self._resume()
                continue
            self._offset += len(data)
            return data

    def _resume(self):
        self._body.close()
        time.sleep(0.05 * 2 ** self._resumed)
        storage = self._storage
        extra = {'IfMatch': self._etag} if self._etag else {}
        response = storage.client.get_object(Bucket=storage.place, Key=storage._key(self._name),
                                             Range='bytes=%d-' % self._offset, **extra)
        self._body = response['Body']

    def close(self):
        self._body.close()


def _etag_md5(etag):
    """The MD5 an ETag is, for single-part uploads ("<32 hex>"); multipart ETags ("<hex>-<parts>") are not.
    (SSE-KMS ETags look like one and are not: a mismatch only means the bytes are compared instead.)"""
    etag = (etag or '').strip('"').lower()
    return etag if len(etag) == 32 and all(c in '0123456789abcdef' for c in etag) else None


def _mtime_ns(value):
    """LastModified as nanoseconds, to the second (listings carry milliseconds, HEAD only seconds)."""
    return calendar.timegm(value.utctimetuple()) * 1000000000


# -- bucket posture (see _posture) ----------------------------------------------------------------

RULE_ID = 'cairncms-noncurrent-versions'
VERSIONING = {'Enabled': 'enabled', 'Suspended': 'suspended'}
# S3 error codes: "nothing configured", "not allowed to look", "the service cannot say"
_S3_DENIED = ('AccessDenied', 'AllAccessDisabled', 'Forbidden', 'UnauthorizedAccess')
_S3_UNSUPPORTED = ('NotImplemented', 'XNotImplemented', 'MethodNotAllowed', 'UnsupportedOperation')
# fact -> (boto3 call, the code that means "none configured", IAM action, what it is)
_S3_READS = {
    'versioning': ('get_bucket_versioning', None, 's3:GetBucketVersioning', 'versioning'),
    'lifecycle': ('get_bucket_lifecycle_configuration', 'NoSuchLifecycleConfiguration',
                  's3:GetLifecycleConfiguration', 'lifecycle configuration'),
    'replication': ('get_bucket_replication', 'ReplicationConfigurationNotFoundError',
                    's3:GetReplicationConfiguration', 'replication configuration'),
    'object_lock': ('get_object_lock_configuration', 'ObjectLockConfigurationNotFoundError',
                    's3:GetBucketObjectLockConfiguration', 'Object Lock configuration'),
    'default_encryption': ('get_bucket_encryption', 'ServerSideEncryptionConfigurationNotFoundError',
                           's3:GetEncryptionConfiguration', 'default encryption'),
}
_FACTS_OF = {'versioning': ('versioning', 'mfa_delete'),
             'lifecycle': ('lifecycle_rules', 'noncurrent_version_expiration_days', 'current_version_expiration_days')}


def _s3_code(exc):
    response = getattr(exc, 'response', None)
    if not isinstance(response, dict) or 'Error' not in response:
        return None, None
    return str(response['Error'].get('Code') or ''), response.get('ResponseMetadata', {}).get('HTTPStatusCode')


def _s3_read(store, what):
    """``('ok', response)``, ``('none', None)`` or ``('unknown', cause)`` for one of ``_S3_READS``;
    any other error becomes a CairnError."""
    call, none_code, _action, label = _S3_READS[what]
    client = store.client
    with store._errors('read the %s of' % label):
        try:
            return 'ok', getattr(client, call)(Bucket=store.place)
        except Exception as exc:  # only S3 answers are judged here; the rest goes to _errors
            code, status = _s3_code(exc)
            if code is None:
                raise
            if none_code and code == none_code:
                return 'none', None
            if code in _S3_DENIED or status == 403:
                return 'unknown', 'denied: %s' % _posture.masked(store, store.cause(exc))
            if code in _S3_UNSUPPORTED or status in (405, 501):
                return 'unknown', 'not implemented: %s' % _posture.masked(store, store.cause(exc))
            raise


def _s3_unknown(store, posture, what, cause):
    _call, _none, action, label = _S3_READS[what]
    hint = ('grant %s to these credentials to have it checked' % action if cause.startswith('denied')
            else 'the service does not offer it (an S3-compatible store or an emulator); check it in its console')
    _posture.unknown(posture, _FACTS_OF.get(what, (what,)),
                     'Could not read the %s of %s (%s): %s.' % (label, posture['url'], cause, hint))


def _s3_filter_prefix(rule):
    """The key prefix a lifecycle or replication rule applies to, and whether it applies to every object
    under that prefix (no tag or size condition)."""
    rule_filter = rule.get('Filter')
    if rule_filter is None:
        return rule.get('Prefix') or '', True
    if set(rule_filter) <= {'Prefix'}:
        return rule_filter.get('Prefix') or '', True
    conditions = rule_filter.get('And') or {}
    return conditions.get('Prefix') or rule_filter.get('Prefix') or '', False


def s3_lifecycle_facts(rules, prefix, today=None):
    """(noncurrent expiration days, current expiration days) that apply to the keys under ``prefix``:
    the shortest noncurrent expiration of an enabled rule covering all of them, the shortest expiration
    of current objects of an enabled rule touching any of them (a date counts as the days left)."""
    today = today or datetime.datetime.now(datetime.timezone.utc)
    noncurrent, current = [], []
    for rule in rules:
        if rule.get('Status') != 'Enabled':
            continue
        rule_prefix, whole = _s3_filter_prefix(rule)
        days = (rule.get('NoncurrentVersionExpiration') or {}).get('NoncurrentDays')
        if days and whole and prefix.startswith(rule_prefix):
            noncurrent.append(int(days))
        expiration = rule.get('Expiration') or {}
        if _posture.overlaps(rule_prefix, prefix):
            if expiration.get('Days'):
                current.append(int(expiration['Days']))
            elif isinstance(expiration.get('Date'), datetime.datetime):
                current.append(max(0, (expiration['Date'] - today).days))
    return (min(noncurrent) if noncurrent else None), (min(current) if current else None)


def _s3_report(store, posture):
    state, answer = _s3_read(store, 'versioning')
    if state == 'ok':
        posture['versioning'] = VERSIONING.get(answer.get('Status'), 'disabled')
        posture['mfa_delete'] = 'enabled' if answer.get('MFADelete') == 'Enabled' else 'disabled'
    else:
        _s3_unknown(store, posture, 'versioning', answer)

    state, answer = _s3_read(store, 'lifecycle')
    if state == 'unknown':
        _s3_unknown(store, posture, 'lifecycle', answer)
    else:
        rules = (answer or {}).get('Rules') or []
        posture['lifecycle_rules'] = len(rules)
        noncurrent, current = s3_lifecycle_facts(rules, store.prefix)
        posture['noncurrent_version_expiration_days'] = noncurrent
        posture['current_version_expiration_days'] = current

    state, answer = _s3_read(store, 'replication')
    if state == 'unknown':
        _s3_unknown(store, posture, 'replication', answer)
    else:
        rules = ((answer or {}).get('ReplicationConfiguration') or {}).get('Rules') or []
        posture['replication'] = any(rule.get('Status') == 'Enabled'
                                     and _posture.overlaps(_s3_filter_prefix(rule)[0], store.prefix) for rule in rules)

    state, answer = _s3_read(store, 'object_lock')
    if state == 'unknown':
        _s3_unknown(store, posture, 'object_lock', answer)
    else:
        config = (answer or {}).get('ObjectLockConfiguration') or {}
        retention = (config.get('Rule') or {}).get('DefaultRetention') or {}
        posture['object_lock'].update({'enabled': config.get('ObjectLockEnabled') == 'Enabled',
                                       'mode': retention.get('Mode'), 'days': retention.get('Days') or None,
                                       'years': retention.get('Years') or None})

    state, answer = _s3_read(store, 'default_encryption')
    if state == 'unknown':
        _s3_unknown(store, posture, 'default_encryption', answer)
    else:
        rules = ((answer or {}).get('ServerSideEncryptionConfiguration') or {}).get('Rules') or []
        default = (rules[0].get('ApplyServerSideEncryptionByDefault') or {}) if rules else {}
        posture['default_encryption'].update({'enabled': bool(default.get('SSEAlgorithm')),
                                              'algorithm': default.get('SSEAlgorithm'),
                                              'kms_key': default.get('KMSMasterKeyID')})


def _rule_id(prefix):
    """The ID of the rule cairncms.ops manages for the repository under ``prefix``."""
    if not prefix:
        return RULE_ID
    return '%s-%s' % (RULE_ID, hashlib.sha256(prefix.encode('utf-8')).hexdigest()[:12])


def _s3_has_rule(rules, prefix, days):
    """Whether an enabled rule expires every noncurrent version under ``prefix`` after ``days``."""
    for rule in rules:
        rule_prefix, whole = _s3_filter_prefix(rule)
        if rule.get('Status') == 'Enabled' and whole and prefix.startswith(rule_prefix) \
                and (rule.get('NoncurrentVersionExpiration') or {}).get('NoncurrentDays') == days:
            return True
    return False


def _s3_must(store, what):
    state, answer = _s3_read(store, what)
    if state == 'unknown':
        raise CairnError('Failed to read the %s of %s: %s' % (_S3_READS[what][3], store.describe(), answer))
    return answer


def _s3_enforce(store, versioning, noncurrent_days, check_mode):
    changes = []
    client = store.client
    if versioning:
        status = (_s3_must(store, 'versioning') or {}).get('Status')
        if status != 'Enabled':
            changes.append('enable versioning on %s (was %s)' % (store.describe(), VERSIONING.get(status, 'disabled')))
            if not check_mode:
                with store._errors('enable versioning on'):
                    client.put_bucket_versioning(Bucket=store.place, VersioningConfiguration={'Status': 'Enabled'})
    if noncurrent_days is not None:
        answer = _s3_must(store, 'lifecycle') or {}
        rules = answer.get('Rules') or []
        if not _s3_has_rule(rules, store.prefix, noncurrent_days):
            rule_id = _rule_id(store.prefix)
            ours = {'ID': rule_id, 'Status': 'Enabled', 'Filter': {'Prefix': store.prefix},
                    'NoncurrentVersionExpiration': {'NoncurrentDays': noncurrent_days}}
            merged = [ours if rule.get('ID') == rule_id else rule for rule in rules]
            if ours not in merged:
                merged.append(ours)
            changes.append('%s lifecycle rule %s on %s: noncurrent versions expire after %d day(s) (%d other rule(s) '
                           'kept)' % ('update' if len(merged) == len(rules) else 'add', rule_id, store.describe(),
                                      noncurrent_days, len(merged) - 1))
            if not check_mode:
                extra = {}
                if answer.get('TransitionDefaultMinimumObjectSize'):
                    extra['TransitionDefaultMinimumObjectSize'] = answer['TransitionDefaultMinimumObjectSize']
                with store._errors('write the lifecycle configuration of'):
                    client.put_bucket_lifecycle_configuration(Bucket=store.place,
                                                              LifecycleConfiguration={'Rules': merged}, **extra)
    if changes and not check_mode:
        _s3_confirm(store, versioning, noncurrent_days)
    return changes


def _s3_confirm(store, versioning, noncurrent_days):
    """Read back what was set: a service that answers yes and keeps nothing is an error, not a success."""
    kept = True
    if versioning:
        kept = (_s3_must(store, 'versioning') or {}).get('Status') == 'Enabled'
    if kept and noncurrent_days is not None:
        rules = (_s3_must(store, 'lifecycle') or {}).get('Rules') or []
        kept = _s3_has_rule(rules, store.prefix, noncurrent_days)
    if not kept:
        raise CairnError('Failed to enforce the posture of %s: the service accepted the settings but does not keep '
                         'them (an emulator or an S3-compatible store without them?)' % store.describe())


BACKEND = S3Storage
