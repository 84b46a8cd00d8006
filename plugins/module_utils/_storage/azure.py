# -*- coding: utf-8 -*-
# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Azure Blob storage (STORAGE_<LOC>_DRIVER=azure) through azure-storage-blob (private).

Object names are blob names relative to the location's root prefix
(``STORAGE_<LOC>_ROOT``). Credentials: the account key (``_ACCOUNT_KEY``)
when given, else azure-identity's ``DefaultAzureCredential`` (``AZURE_*``
variables, managed identity, Azure CLI login). A staged write keeps its bytes
in a local temporary file and uploads the blob only on ``commit()``. Every
SDK error becomes one ``CairnError`` ("Failed to <verb> azure://container/key:
<cause>") in ``_errors``; the account key never appears.
"""

from __future__ import annotations

import calendar
import mimetypes
import traceback

from ansible_collections.cairncms.ops.plugins.module_utils._common import CairnError
from ansible_collections.cairncms.ops.plugins.module_utils._storage._base import (
    Entry, ObjectStore, SdkReader, UploadOnCommit)

try:
    import azure.core.exceptions
    import azure.storage.blob
    HAS_AZURE_BLOB = True
    AZURE_BLOB_IMPORT_ERROR = None
except ImportError:
    HAS_AZURE_BLOB = False
    AZURE_BLOB_IMPORT_ERROR = traceback.format_exc()

try:
    import azure.identity
    HAS_AZURE_IDENTITY = True
    AZURE_IDENTITY_IMPORT_ERROR = None
except ImportError:
    HAS_AZURE_IDENTITY = False
    AZURE_IDENTITY_IMPORT_ERROR = traceback.format_exc()

RETRY_ATTEMPTS = 5       # requests in all, the first included (status, connection and read errors alike)
RETRY_INITIAL_S = 0.2    # the wait before retry n is RETRY_INITIAL_S + RETRY_BASE_S ** n, +/- RETRY_JITTER_S
RETRY_BASE_S = 1.4       # (the SDK's default, 15 + 3 ** n seconds, waits minutes on a persistent failure)
RETRY_JITTER_S = 0.2


def _cause(exc):
    message = getattr(exc, 'message', None) or str(exc) or exc.__class__.__name__
    message = str(message).strip().splitlines()[0] if str(message).strip() else exc.__class__.__name__
    code = getattr(exc, 'error_code', None)
    code = getattr(code, 'value', code)  # a StorageErrorCode enum member
    if code and str(code) not in message:
        return '%s (%s)' % (message, code)
    return message


class AzureStorage(ObjectStore):
    driver = 'azure'
    scheme = 'azure'
    place_option = 'container_name'
    secret_option = 'account_key'

    def __init__(self, location):
        super().__init__(location)
        self._container = None

    # -- plumbing ---------------------------------------------------------------------------------

    def is_sdk_error(self, exc):
        return HAS_AZURE_BLOB and isinstance(exc, azure.core.exceptions.AzureError)

    def cause(self, exc):
        return _cause(exc)

    @property
    def container(self):
        if self._container is None:
            if not HAS_AZURE_BLOB:
                raise CairnError('the Python library azure-storage-blob is needed for the Azure storage location %s '
                                 'on this host: pip install "azure-storage-blob>=12.19.0" for the Python Ansible '
                                 'uses here' % self.location.name, exception=AZURE_BLOB_IMPORT_ERROR)
            options = self.location.options
            if options.get('account_key'):
                credential = {'account_name': options['account_name'], 'account_key': options['account_key']}
            else:
                if not HAS_AZURE_IDENTITY:
                    raise CairnError('the Python library azure-identity is needed for the Azure storage location %s '
                                     'without STORAGE_%s_ACCOUNT_KEY on this host: pip install '
                                     '"azure-identity>=1.15.0" for the Python Ansible uses here'
                                     % (self.location.name, self.location.name.upper()),
                                     exception=AZURE_IDENTITY_IMPORT_ERROR)
                credential = None
            with self._errors('connect to'):
                if credential is None:
                    credential = azure.identity.DefaultAzureCredential()
                retry = azure.storage.blob.ExponentialRetry(
                    initial_backoff=RETRY_INITIAL_S, increment_base=RETRY_BASE_S, random_jitter_range=RETRY_JITTER_S,
                    retry_total=RETRY_ATTEMPTS - 1, retry_status=RETRY_ATTEMPTS - 1,
                    retry_connect=RETRY_ATTEMPTS - 1, retry_read=RETRY_ATTEMPTS - 1)
                service = azure.storage.blob.BlobServiceClient(account_url=options['endpoint'], credential=credential,
                                                               retry_policy=retry)
                self._container = service.get_container_client(self.place)
        return self._container

    # -- the interface ----------------------------------------------------------------------------

    def list(self, under=''):
        container = self.container
        with self._errors('list', under):
            for blob in container.list_blobs(name_starts_with=(self.prefix + under) or None):
                name = blob.name[len(self.prefix):]
                if not name or name.endswith('/'):
                    continue  # folder markers
                md5 = blob.content_settings.content_md5 if blob.content_settings else None
                yield Entry(name, int(blob.size or 0), _mtime_ns(blob.last_modified), bytes(md5).hex() if md5 else None)

    def stat(self, name):
        container = self.container
        with self._errors('stat', name):
            try:
                props = container.get_blob_client(self._key(name)).get_blob_properties()
            except azure.core.exceptions.ResourceNotFoundError:
                return None
        return Entry(name, int(props.size or 0), _mtime_ns(props.last_modified))

    def open_read(self, name):
        container = self.container
        with self._errors('read', name):
            try:
                downloader = container.get_blob_client(self._key(name)).download_blob()
            except azure.core.exceptions.ResourceNotFoundError:
                raise self.missing(name)
        return SdkReader(self, name, downloader.read)

    def begin_write(self, name, mtime_ns=None):
        return UploadOnCommit(self, name)

    def delete(self, name):
        container = self.container
        with self._errors('delete', name):
            try:
                container.get_blob_client(self._key(name)).delete_blob()
            except azure.core.exceptions.ResourceNotFoundError:
                pass

    def _settings(self, name):
        return azure.storage.blob.ContentSettings(
            content_type=mimetypes.guess_type(name)[0] or 'application/octet-stream')

    def put_bytes(self, name, data, if_absent=False):
        container = self.container
        with self._errors('write', name):
            try:
                container.get_blob_client(self._key(name)).upload_blob(
                    data, overwrite=not if_absent, content_settings=self._settings(name))
            except azure.core.exceptions.ResourceExistsError:
                if if_absent:
                    return False
                raise
        return True

    def upload_fileobj(self, name, handle, size):
        container = self.container
        with self._errors('upload', name):
            container.get_blob_client(self._key(name)).upload_blob(
                handle, length=size, overwrite=True, content_settings=self._settings(name))


def _mtime_ns(value):
    """Last-Modified as nanoseconds, to the second (what the service keeps)."""
    if value is None:
        return 0
    return calendar.timegm(value.utctimetuple()) * 1000000000
