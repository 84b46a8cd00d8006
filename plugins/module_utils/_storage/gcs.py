# -*- coding: utf-8 -*-
# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Google Cloud Storage (STORAGE_<LOC>_DRIVER=gcs) through google-cloud-storage (private).

Object names are relative to the location's root prefix (``STORAGE_<LOC>_ROOT``).
Credentials: the service account key file (``_KEY_FILENAME``) when given; else,
with a custom ``_API_ENDPOINT`` (an emulator), no credentials at all; else
Google application default credentials. A staged write keeps its bytes in a
local temporary file and uploads the object only on ``commit()``. Every SDK
error becomes one ``CairnError`` ("Failed to <verb> gs://bucket/key: <cause>")
in ``_errors``.
"""

from __future__ import annotations

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
_REQUEST = re.compile(r'^[A-Z]+ [a-z]+://\S+: ')


def _sdk_errors():
    found = (google.api_core.exceptions.GoogleAPIError, google.auth.exceptions.GoogleAuthError,
             requests.exceptions.RequestException)
    if _InvalidResponse is not None:
        found = found + (_InvalidResponse,)
    return found


def _cause(exc):
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
                if options.get('key_filename'):
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

    def list(self):
        bucket = self.bucket
        with self._errors('list'):
            for blob in bucket.client.list_blobs(bucket, prefix=self.prefix or None):
                name = blob.name[len(self.prefix):]
                if not name or name.endswith('/'):
                    continue  # folder markers made by consoles
                yield Entry(name, int(blob.size or 0), _mtime_ns(blob.updated))

    def stat(self, name):
        bucket = self.bucket
        with self._errors('stat', name):
            blob = bucket.get_blob(self._key(name))
        if blob is None:
            return None
        return Entry(name, int(blob.size or 0), _mtime_ns(blob.updated))

    def open_read(self, name):
        bucket = self.bucket
        with self._errors('read', name):
            blob = bucket.get_blob(self._key(name))
            if blob is None:
                raise CairnError('file %s vanished from storage location %s while it was read'
                                 % (name, self.location.name))
            reader = blob.open('rb', chunk_size=READ_CHUNK)
        return SdkReader(self, name, _reading(self, name, reader), reader.close)

    def begin_write(self, name, mtime_ns=None):
        return UploadOnCommit(self, name)

    def delete(self, name):
        bucket = self.bucket
        with self._errors('delete', name):
            try:
                bucket.blob(self._key(name)).delete()
            except google.api_core.exceptions.NotFound:
                pass

    def upload(self, name, path):
        bucket = self.bucket
        with self._errors('upload', name):
            bucket.blob(self._key(name)).upload_from_filename(
                path, content_type=mimetypes.guess_type(name)[0] or 'application/octet-stream')


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
