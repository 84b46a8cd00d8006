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
import mimetypes
import re
import traceback

from ansible_collections.cairncms.ops.plugins.module_utils._common import CairnError
from ansible_collections.cairncms.ops.plugins.module_utils._storage._base import (
    Entry, ObjectStore, SdkReader, UploadOnCommit)

try:
    import google.api_core.exceptions
    import google.auth.credentials
    import google.auth.exceptions
    import google.cloud.storage
    import google.cloud.storage.retry
    import requests.exceptions
    HAS_GCS = True
    GCS_IMPORT_ERROR = None
except ImportError:
    HAS_GCS = False
    GCS_IMPORT_ERROR = traceback.format_exc()

try:
    from google.cloud.storage.exceptions import InvalidResponse as _InvalidResponse  # 3.x
except ImportError:
    try:
        from google.resumable_media.common import InvalidResponse as _InvalidResponse  # 2.x
    except ImportError:
        _InvalidResponse = None

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


RETRY = _retry_policy() if HAS_GCS else None
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

    def __init__(self, location):
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
