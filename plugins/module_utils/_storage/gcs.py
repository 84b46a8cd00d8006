# -*- coding: utf-8 -*-
# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Google Cloud Storage (STORAGE_<LOC>_DRIVER=gcs) through google-cloud-storage (private).

Object names are relative to the location's root prefix (``STORAGE_<LOC>_ROOT``).
Credentials: a service account key given as its content (option
``service_account_info``: a repository's ``service_account_json`` credential, or
a storage location's ``_CREDENTIALS`` override), parsed in memory and never
written or quoted; else the service account key file (``_KEY_FILENAME``); else,
with a custom ``_API_ENDPOINT`` (an emulator), no credentials at all; else
Google application default credentials. A staged write keeps its bytes in a
local temporary file and uploads the object only on ``commit()``. Every SDK
error becomes one ``CairnError`` ("Failed to <verb> gs://bucket/key: <cause>")
in ``_errors``.
"""

from __future__ import annotations

import base64
import calendar
import json
import mimetypes
import re
import traceback

from ansible_collections.cairncms.ops.plugins.module_utils import _posture
from ansible_collections.cairncms.ops.plugins.module_utils._common import CairnError
from ansible_collections.cairncms.ops.plugins.module_utils._storage._base import (
    Entry, ObjectStore, SdkReader, UploadOnCommit)

# google-cloud-storage, imported by load_sdk() when the first GCS backend is made (reading a .env needs no SDK)
google = requests = _InvalidResponse = None
HAS_GCS = None
GCS_IMPORT_ERROR = None
RETRY = None

# STORAGE_<LOC>_* variables of a gcs location, by option name.
VARIABLES = {'bucket': 'BUCKET', 'key_filename': 'KEY_FILENAME', 'api_endpoint': 'API_ENDPOINT', 'root': 'ROOT',
             'credentials': 'CREDENTIALS'}


def load_sdk():
    """Import google-cloud-storage once; whether it is there (else ``GCS_IMPORT_ERROR`` says why)."""
    # pylint: disable-next=global-statement
    global google, requests, _InvalidResponse, HAS_GCS, GCS_IMPORT_ERROR, RETRY
    if HAS_GCS is None:
        # pylint: disable=import-outside-toplevel,redefined-outer-name
        try:
            import google.api_core.exceptions
            import google.auth.credentials
            import google.auth.exceptions
            import google.cloud.storage
            import google.cloud.storage.retry
            import requests.exceptions
        except ImportError:
            GCS_IMPORT_ERROR = traceback.format_exc()
            HAS_GCS = False
            return HAS_GCS
        try:
            from google.cloud.storage.exceptions import InvalidResponse as _InvalidResponse  # 3.x
        except ImportError:
            try:
                from google.resumable_media.common import InvalidResponse as _InvalidResponse  # 2.x
            except ImportError:
                _InvalidResponse = None
        RETRY = _retry_policy()
        HAS_GCS = True
    return HAS_GCS


def service_account_info(value, what):
    """The service account key ``value`` (the key file's content: JSON text, optionally with CairnCMS's ``json:``
    type prefix, or already parsed), named ``what`` in errors. Its content is never quoted."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith('json:'):
            text = text[len('json:'):]
        try:
            value = json.loads(text)
        except ValueError:
            raise CairnError('%s is not JSON: give the whole content of the service account\'s key file (the value '
                             'is not shown)' % what) from None
    if isinstance(value, list):
        raise CairnError('%s is a list, not a service account key (a JSON object that needs client_email and '
                         'private_key); in a .env variable write it with the json: prefix (json:{...}), as CairnCMS '
                         'reads a value with commas as a list (the value is not shown)' % what)
    if not isinstance(value, dict) or not all(isinstance(value.get(key), str) and value.get(key)
                                              for key in ('client_email', 'private_key')):
        raise CairnError('%s is not a service account key: it needs client_email and private_key, as in the JSON key '
                         'file Google Cloud makes for a service account (the value is not shown)' % what)
    return value


READ_CHUNK = 8 * 1024 * 1024
# The SDK retries transient errors (429, 5xx, resets) until a deadline rather than a number of
# attempts: the first wait is up to RETRY_INITIAL_S at random, doubling up to RETRY_MAXIMUM_S.
RETRY_INITIAL_S = 0.25
RETRY_MAXIMUM_S = 4.0
RETRY_DEADLINE_S = 10.0


def _retry_policy():
    """Passed to every call: the SDK's default keeps trying for 2 minutes, and 2.x retries no upload without
    a generation precondition (uploading the whole object again is safe here)."""
    policy = google.cloud.storage.retry.DEFAULT_RETRY.with_delay(
        initial=RETRY_INITIAL_S, maximum=RETRY_MAXIMUM_S, multiplier=2.0)
    limit = policy.with_timeout if hasattr(policy, 'with_timeout') else policy.with_deadline  # older api-core
    return limit(RETRY_DEADLINE_S)


_REQUEST = re.compile(r'^[A-Z]+ [a-z]+://\S+: ')


def _sdk_errors():
    found = (google.api_core.exceptions.GoogleAPIError, google.auth.exceptions.GoogleAuthError,
             requests.exceptions.RequestException)
    if _InvalidResponse is not None:
        found = found + (_InvalidResponse,)
    return found


def _cause(exc):
    if isinstance(exc, google.api_core.exceptions.RetryError) and exc.cause is not None:
        return '%s; retried until the deadline (%s)' % (_cause(exc.cause), exc.message)  # the last error says why
    response = getattr(exc, 'response', None)
    # _InvalidResponse is None or, once load_sdk() found it, a class
    # pylint: disable-next=isinstance-second-argument-not-valid-type
    if _InvalidResponse is not None and isinstance(exc, _InvalidResponse) and response is not None:
        text = (getattr(response, 'text', '') or '').strip()  # a media request's error: its status and body
        return '%s (%s)' % (text.splitlines()[0][:200] if text else getattr(response, 'reason', 'error'),
                            response.status_code)
    message = getattr(exc, 'message', None)
    code = getattr(exc, 'code', None)
    if isinstance(message, str) and message:
        message = _REQUEST.sub('', message, count=1)  # "GET https://...: " says nothing the URL doesn't
        return '%s (%s)' % (message, code) if code else message
    return str(exc) or exc.__class__.__name__


class GcsStorage(ObjectStore):
    driver = 'gcs'
    scheme = 'gs'
    place_option = 'bucket'

    # -- the driver's configuration ---------------------------------------------------------------

    @classmethod
    def options_from_env(cls, config, prefix):
        """As CairnCMS's GCS driver reads them. Without KEY_FILENAME the credentials are Google application
        default credentials (GOOGLE_APPLICATION_CREDENTIALS, the metadata server), or none at all with a custom
        API_ENDPOINT (an emulator). CREDENTIALS (the key file's content, given to cairncms.ops as a secret
        override, e.g. from an AWX credential) wins over KEY_FILENAME."""
        options = config.texts(prefix, VARIABLES)
        if not options['bucket']:
            raise config.missing(prefix + 'BUCKET', 'gcs', 'bucket')
        options.pop('credentials')
        credentials = config.values.get(prefix + 'CREDENTIALS')  # as read: JSON text, or parsed already (json:)
        if credentials not in (None, ''):
            options['service_account_info'] = service_account_info(credentials, prefix + 'CREDENTIALS')
            options['key_filename'] = None  # the key given as a secret wins over the file the .env names
        elif options['key_filename']:
            options['key_filename'] = config.path(prefix + 'KEY_FILENAME')
        endpoint = options['api_endpoint']
        if endpoint and '://' not in endpoint:
            endpoint = 'https://' + endpoint
        options['api_endpoint'] = endpoint.rstrip('/') if endpoint else None
        options['root'] = (options['root'] or '').strip('/')
        return options

    @classmethod
    def describe_options(cls, options):
        described = {key: options.get(key) for key in ('bucket', 'api_endpoint', 'key_filename')}
        if options.get('service_account_info'):
            described['credentials'] = 'service account key'
        elif options.get('key_filename'):
            described['credentials'] = 'key file'
        else:
            described['credentials'] = 'anonymous' if options.get('api_endpoint') else 'environment'
        return described

    identity_options = ('bucket', 'api_endpoint', 'root')

    repository_spec = {'place': 'bucket', 'options': {'api_endpoint': 'api_endpoint', 'key_filename': 'key_filename'},
                       'credentials': {'service_account_json': 'service_account_info'}}

    @classmethod
    def repository_options(cls, options):
        if options.get('service_account_info'):
            options['service_account_info'] = service_account_info(
                options['service_account_info'], 'cairn_repository_credentials.service_account_json')
            if options.get('key_filename'):
                raise CairnError('cairn_repository of type gcs takes its service account key once: as '
                                 'cairn_repository_credentials.service_account_json or as key_filename, not both')
        if options.get('api_endpoint'):
            options['api_endpoint'] = options['api_endpoint'].rstrip('/')
        return options

    # -- bucket posture ---------------------------------------------------------------------------

    posture_fixes = {
        'versioning': 'gcloud storage buckets update gs://{bucket} --versioning',
        'lifecycle': 'a lifecycle rule with a Delete action on daysSinceNoncurrentTime (gcloud storage buckets update '
                     'gs://{bucket} --lifecycle-file=rules.json)',
        'object_lock': 'versioning with soft delete, and an offsite copy (cairn_repository_copy) to a bucket in '
                       'another project whose credentials the backup host does not hold; a bucket retention policy '
                       '(gcloud storage buckets update gs://{bucket} --retention-period=30d) protects too, but forbids '
                       'replacing or deleting any object younger than the period, which the repository\'s lock file '
                       'and prune need',
        'replication': 'a dual-region or multi-region bucket',
        'soft_delete': 'gcloud storage buckets update gs://{bucket} --soft-delete-duration=7d',
    }

    def read_posture(self, posture):
        _gcs_report(self, posture)

    def enforce_posture(self, versioning, noncurrent_days, check_mode):
        return _gcs_enforce(self, versioning, noncurrent_days, check_mode)

    # -- the backend ------------------------------------------------------------------------------

    def __init__(self, location):
        load_sdk()
        super().__init__(location)
        self._client = None
        self._bucket = None

    # -- plumbing ---------------------------------------------------------------------------------

    def is_sdk_error(self, exc):
        return HAS_GCS and isinstance(exc, _sdk_errors())

    def cause(self, exc):
        return _cause(exc)

    @property
    def bucket(self):
        if self._bucket is None:
            if not HAS_GCS:
                raise CairnError('the Python library google-cloud-storage is needed for the GCS storage location %s '
                                 'on this host: pip install "google-cloud-storage>=2.10.0" for the Python Ansible '
                                 'uses here' % self.location.name, exception=GCS_IMPORT_ERROR)
            options = self.location.options
            client_options = {'api_endpoint': options['api_endpoint']} if options.get('api_endpoint') else None
            with self._errors('connect to'):
                if options.get('service_account_info'):
                    try:
                        self._client = google.cloud.storage.Client.from_service_account_info(
                            options['service_account_info'], client_options=client_options)
                    except (ValueError, TypeError, KeyError) as exc:  # the SDK's word for a key it cannot use
                        raise CairnError('the service account key for %s cannot be used (%s): its private_key is not '
                                         'a PEM private key, or a field the key file has is missing; give the whole '
                                         'key file (the value is not shown)'
                                         % (self.describe(), exc.__class__.__name__)) from None
                elif options.get('key_filename'):
                    self._client = google.cloud.storage.Client.from_service_account_json(
                        options['key_filename'], client_options=client_options)
                elif client_options:
                    self._client = google.cloud.storage.Client(
                        project='<none>', credentials=google.auth.credentials.AnonymousCredentials(),
                        client_options=client_options)
                else:
                    self._client = google.cloud.storage.Client(client_options=client_options)
                self._bucket = self._client.bucket(self.place)
        return self._bucket

    # -- the interface ----------------------------------------------------------------------------

    def list(self, under=''):
        bucket = self.bucket
        with self._errors('list', under):
            for blob in bucket.client.list_blobs(bucket, prefix=(self.prefix + under) or None, retry=RETRY):
                name = blob.name[len(self.prefix):]
                if not name or name.endswith('/'):
                    continue  # folder markers made by consoles
                yield Entry(name, int(blob.size or 0), _mtime_ns(blob.updated), _b64_hex(blob.md5_hash))

    def stat(self, name):
        bucket = self.bucket
        with self._errors('stat', name):
            blob = bucket.get_blob(self._key(name), retry=RETRY)
        if blob is None:
            return None
        return Entry(name, int(blob.size or 0), _mtime_ns(blob.updated))

    def open_read(self, name):
        bucket = self.bucket
        with self._errors('read', name):
            blob = bucket.get_blob(self._key(name), retry=RETRY)
            if blob is None:
                raise self.missing(name)
            reader = blob.open('rb', chunk_size=READ_CHUNK, retry=RETRY)
        return SdkReader(self, name, _reading(self, name, reader), reader.close)

    def begin_write(self, name, mtime_ns=None):
        return UploadOnCommit(self, name)

    def delete(self, name):
        bucket = self.bucket
        with self._errors('delete', name):
            try:
                bucket.blob(self._key(name)).delete(retry=RETRY)
            except google.api_core.exceptions.NotFound:
                pass

    def put_bytes(self, name, data, if_absent=False):
        bucket = self.bucket
        with self._errors('write', name):
            try:
                bucket.blob(self._key(name)).upload_from_string(
                    data, content_type=mimetypes.guess_type(name)[0] or 'application/octet-stream',
                    if_generation_match=0 if if_absent else None, retry=RETRY)
            except google.api_core.exceptions.PreconditionFailed:
                if if_absent:
                    return False
                raise
        return True

    def upload_fileobj(self, name, handle, size):
        bucket = self.bucket
        with self._errors('upload', name):
            bucket.blob(self._key(name)).upload_from_file(
                handle, size=size, content_type=mimetypes.guess_type(name)[0] or 'application/octet-stream',
                retry=RETRY)


def _b64_hex(value):
    try:
        return base64.b64decode(value).hex() if value else None
    except (ValueError, TypeError):
        return None


def _mtime_ns(value):
    """``updated`` as nanoseconds, to the microsecond (listings and metadata agree on it)."""
    if value is None:
        return 0
    return calendar.timegm(value.utctimetuple()) * 1000000000 + value.microsecond * 1000


def _reading(storage, name, reader):
    """``reader.read``, saying so clearly when the object is deleted while it is read."""
    def read(size):
        try:
            return reader.read(size)
        except google.api_core.exceptions.NotFound:
            raise CairnError('file %s vanished from storage location %s while it was read'
                             % (name, storage.location.name))
    return read


# -- bucket posture (see _posture) ----------------------------------------------------------------

DAY = 86400


def _days(seconds):
    if not seconds:
        return None
    days = int(seconds) / DAY
    return int(days) if days == int(days) else round(days, 2)


def _gcs_prefixes(condition):
    return condition.get('matchesPrefix') or ['']


def gcs_noncurrent_days(rule, prefix):
    """The days after which ``rule`` deletes every noncurrent version under ``prefix``, or None."""
    condition = rule.get('condition') or {}
    if (rule.get('action') or {}).get('type') != 'Delete' or not condition.get('daysSinceNoncurrentTime'):
        return None
    if set(condition) - {'daysSinceNoncurrentTime', 'isLive', 'matchesPrefix'} or condition.get('isLive') is True:
        return None  # only some objects (by age, class, suffix...), or live ones: not the noncurrent versions
    if not any(prefix.startswith(rule_prefix) for rule_prefix in _gcs_prefixes(condition)):
        return None
    return int(condition['daysSinceNoncurrentTime'])


def gcs_lifecycle_facts(rules, prefix):
    """(noncurrent expiration days, current expiration days) under ``prefix`` for GCS lifecycle rules."""
    noncurrent, current = [], []
    for rule in rules:
        days = gcs_noncurrent_days(rule, prefix)
        if days is not None:
            noncurrent.append(days)
        condition = rule.get('condition') or {}
        if (rule.get('action') or {}).get('type') == 'Delete' and condition.get('age') is not None \
                and condition.get('isLive') is not False and not condition.get('numNewerVersions') \
                and not condition.get('daysSinceNoncurrentTime') \
                and any(_posture.overlaps(rule_prefix, prefix) for rule_prefix in _gcs_prefixes(condition)):
            current.append(int(condition['age']))
    return (min(noncurrent) if noncurrent else None), (min(current) if current else None)


def gcs_posture(posture, resource, prefix):
    """Fill ``posture`` from a GCS bucket resource (the JSON of buckets.get)."""
    posture['versioning'] = 'enabled' if (resource.get('versioning') or {}).get('enabled') else 'disabled'
    rules = (resource.get('lifecycle') or {}).get('rule') or []
    posture['lifecycle_rules'] = len(rules)
    noncurrent, current = gcs_lifecycle_facts(rules, prefix)
    posture['noncurrent_version_expiration_days'] = noncurrent
    posture['current_version_expiration_days'] = current
    posture['soft_delete_days'] = _days((resource.get('softDeletePolicy') or {}).get('retentionDurationSeconds'))
    location_type = resource.get('locationType')
    if location_type:
        posture['replication'] = location_type.lower() in ('dual-region', 'multi-region')
    else:
        _posture.unknown(posture, ('replication',), 'The location type of %s is not reported, so whether it is '
                         'replicated is unknown: check it with gcloud storage buckets describe gs://%s.'
                         % (posture['url'], posture['bucket']))
    retention = resource.get('retentionPolicy') or {}
    object_retention = (resource.get('objectRetention') or {}).get('mode') == 'Enabled'
    if retention.get('retentionPeriod'):
        mode = 'locked' if retention.get('isLocked') else 'unlocked'
    else:
        mode = 'object_retention' if object_retention else None
    posture['object_lock'].update({'enabled': bool(retention.get('retentionPeriod')) or object_retention,
                                   'mode': mode, 'days': _days(retention.get('retentionPeriod')),
                                   'legal_hold': bool(resource.get('defaultEventBasedHold'))})
    key = (resource.get('encryption') or {}).get('defaultKmsKeyName')
    posture['default_encryption'].update({'enabled': True, 'algorithm': 'cloud-kms' if key else 'google-managed',
                                          'kms_key': key})
    return posture


def _gcs_status(exc):
    return getattr(exc, 'code', None)


def _gcs_reload(store):
    """The bucket, reloaded; or None with the reason when the service does not let us (403, 501)."""
    bucket = store.bucket
    with store._errors('read the settings of'):
        try:
            bucket.reload()
        except Exception as exc:  # only answers of the service are judged; the rest goes to _errors
            if not store.is_sdk_error(exc) or _gcs_status(exc) not in (403, 405, 501):
                raise
            return None, _posture.masked(store, store.cause(exc))
    return bucket, None


def _gcs_report(store, posture):
    bucket, cause = _gcs_reload(store)
    if bucket is None:
        _posture.unknown(posture, ('versioning', 'lifecycle_rules', 'noncurrent_version_expiration_days',
                                   'current_version_expiration_days', 'soft_delete_days', 'replication', 'object_lock',
                                   'default_encryption'),
                         'Could not read the settings of %s (%s): grant storage.buckets.get to these credentials to '
                         'have them checked.' % (posture['url'], cause))
        return
    gcs_posture(posture, bucket._properties, store.prefix)


def _gcs_same_rule(rule, ours):
    """Whether ``rule`` is ``ours`` but for its days (to be replaced, not kept beside)."""
    def without_days(condition):
        return {key: value for key, value in (condition or {}).items() if key != 'daysSinceNoncurrentTime'}
    return rule.get('action') == ours['action'] and without_days(rule.get('condition')) == without_days(
        ours['condition'])


def _gcs_enforce(store, versioning, noncurrent_days, check_mode):
    bucket, cause = _gcs_reload(store)
    if bucket is None:
        raise CairnError('Failed to read the settings of %s: %s' % (store.describe(), cause))
    changes = []
    if versioning and not bucket.versioning_enabled:
        changes.append('enable versioning on %s (was disabled)' % store.describe())
        bucket.versioning_enabled = True
    if noncurrent_days is not None:
        rules = [dict(rule) for rule in (bucket._properties.get('lifecycle') or {}).get('rule') or []]
        if not any(gcs_noncurrent_days(rule, store.prefix) == noncurrent_days for rule in rules):
            condition = {'daysSinceNoncurrentTime': noncurrent_days}
            if store.prefix:
                condition['matchesPrefix'] = [store.prefix]
            ours = {'action': {'type': 'Delete'}, 'condition': condition}

            merged = [rule for rule in rules if not _gcs_same_rule(rule, ours)] + [ours]
            changes.append('%s lifecycle rule on %s: noncurrent versions are deleted %d day(s) after they became '
                           'noncurrent (%d other rule(s) kept)' % ('update a' if len(merged) == len(rules) else 'add a',
                                                                   store.describe(), noncurrent_days, len(merged) - 1))
            bucket.lifecycle_rules = merged
    if changes and not check_mode:
        with store._errors('update the settings of'):
            bucket.patch()
        bucket, cause = _gcs_reload(store)
        kept = bucket is not None and (not versioning or bucket.versioning_enabled) and (
            noncurrent_days is None or gcs_lifecycle_facts(
                (bucket._properties.get('lifecycle') or {}).get('rule') or [], store.prefix)[0] == noncurrent_days)
        if not kept:
            raise CairnError('Failed to enforce the posture of %s: the service accepted the settings but does not keep '
                             'them (fake-gcs-server, for one, drops lifecycle rules)' % store.describe())
    return changes


BACKEND = GcsStorage
