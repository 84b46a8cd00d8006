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

from ansible_collections.cairncms.ops.plugins.module_utils import _posture
from ansible_collections.cairncms.ops.plugins.module_utils._common import CairnError
from ansible_collections.cairncms.ops.plugins.module_utils._storage._base import (
    Entry, ObjectStore, SdkReader, UploadOnCommit)

# azure-storage-blob and azure-identity, imported by load_sdk() when the first Azure backend is made (reading a
# .env needs no SDK)
azure = None
HAS_AZURE_BLOB = HAS_AZURE_IDENTITY = None
AZURE_BLOB_IMPORT_ERROR = AZURE_IDENTITY_IMPORT_ERROR = None

# STORAGE_<LOC>_* variables of an azure location, by option name.
VARIABLES = {'container_name': 'CONTAINER_NAME', 'account_name': 'ACCOUNT_NAME', 'account_key': 'ACCOUNT_KEY',
             'endpoint': 'ENDPOINT', 'root': 'ROOT'}


def load_sdk():
    """Import azure-storage-blob and azure-identity once; whether the first is there (else
    ``AZURE_BLOB_IMPORT_ERROR`` says why; ``HAS_AZURE_IDENTITY`` says whether the second is)."""
    # pylint: disable-next=global-statement
    global azure, HAS_AZURE_BLOB, HAS_AZURE_IDENTITY, AZURE_BLOB_IMPORT_ERROR, AZURE_IDENTITY_IMPORT_ERROR
    if HAS_AZURE_BLOB is None:
        # pylint: disable=import-outside-toplevel,redefined-outer-name
        try:
            import azure.core.exceptions
            import azure.storage.blob
        except ImportError:
            AZURE_BLOB_IMPORT_ERROR = traceback.format_exc()
            HAS_AZURE_BLOB = False
        else:
            HAS_AZURE_BLOB = True
        try:
            import azure.identity
        except ImportError:
            AZURE_IDENTITY_IMPORT_ERROR = traceback.format_exc()
            HAS_AZURE_IDENTITY = False
        else:
            HAS_AZURE_IDENTITY = True
    return HAS_AZURE_BLOB


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

    # -- the driver's configuration ---------------------------------------------------------------

    @classmethod
    def options_from_env(cls, config, prefix):
        """As CairnCMS's Azure driver reads them. Without ACCOUNT_KEY the credentials come from azure-identity's
        DefaultAzureCredential (AZURE_* variables, managed identity, Azure CLI login)."""
        options = config.texts(prefix, VARIABLES)
        if not options['container_name']:
            raise config.missing(prefix + 'CONTAINER_NAME', 'azure', 'container')
        if not options['account_name'] and (options['account_key'] or not options['endpoint']):
            raise config.missing(prefix + 'ACCOUNT_NAME', 'azure', 'storage account name')
        endpoint = options['endpoint'] or 'https://%s.blob.core.windows.net' % options['account_name']
        if '://' not in endpoint:
            endpoint = 'https://' + endpoint
        options['endpoint'] = endpoint.rstrip('/')
        options['root'] = (options['root'] or '').strip('/')
        return options

    @classmethod
    def describe_options(cls, options):
        described = {key: options.get(key) for key in ('container_name', 'account_name', 'endpoint')}
        described['credentials'] = 'configured' if options.get('account_key') else 'environment'
        return described

    identity_options = ('container_name', 'account_name', 'endpoint', 'root')

    repository_spec = {'place': 'container', 'options': {'account_name': 'account_name', 'endpoint': 'endpoint'},
                       'credentials': {'account_key': 'account_key'}}

    @classmethod
    def repository_options(cls, options):
        if not options.get('account_name') and not options.get('endpoint'):
            raise CairnError('cairn_repository of type azure needs account_name (or endpoint)')
        endpoint = options.get('endpoint') or 'https://%s.blob.core.windows.net' % options['account_name']
        options['endpoint'] = (endpoint if '://' in endpoint else 'https://' + endpoint).rstrip('/')
        return options

    # -- bucket posture ---------------------------------------------------------------------------

    posture_fixes = {
        'object_lock': 'version-level immutability with a default time-based policy (az storage container-rm '
                       'create --storage-account ACCOUNT --name {bucket} --enable-vlw true, then az storage blob '
                       'immutability-policy or a container default policy); try a backup and a prune on it first, '
                       'since an immutable current version cannot be deleted',
        'replication': 'a geo-redundant account (GRS, RA-GRS, GZRS)',
        'soft_delete': 'az storage account blob-service-properties update --account-name ACCOUNT '
                       '--enable-delete-retention true --delete-retention-days 14',
    }

    def read_posture(self, posture):
        _azure_report(self, posture)

    def enforce_posture(self, versioning, noncurrent_days, check_mode):
        return _azure_enforce(self, versioning, noncurrent_days, check_mode)

    # -- the backend ------------------------------------------------------------------------------

    def __init__(self, location):
        load_sdk()
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


# -- bucket posture (see _posture) ----------------------------------------------------------------

_AZURE_MANAGEMENT = ('az storage account blob-service-properties show --account-name {account} '
                     '--query "{{versioning: isVersioningEnabled, changeFeed: changeFeed.enabled}}"')
_AZURE_POLICY = 'az storage account management-policy show --account-name {account} --resource-group GROUP'


def _azure_status(exc):
    status = getattr(exc, 'status_code', None)
    code = getattr(exc, 'error_code', None)
    return status, str(getattr(code, 'value', code) or '')


def _azure_read(store, label, call):
    """``('ok', answer)`` or ``('unknown', cause)`` (403, 405, 501); other errors become a CairnError."""
    with store._errors('read the %s of' % label):
        try:
            return 'ok', call()
        except Exception as exc:  # only answers of the service are judged; the rest goes to _errors
            if not store.is_sdk_error(exc):
                raise
            status, code = _azure_status(exc)
            if status == 403 or code in ('AuthorizationPermissionMismatch', 'AuthorizationFailure'):
                return 'unknown', 'denied: %s' % _posture.masked(store, store.cause(exc))
            if status in (405, 501) or code in ('NotImplemented', 'FeatureNotSupported'):
                return 'unknown', 'not implemented: %s' % _posture.masked(store, store.cause(exc))
            raise


def azure_replication(sku_name):
    """Whether an account SKU (Standard_LRS, Standard_RAGRS...) keeps a copy in a second region."""
    if not sku_name:
        return None
    redundancy = str(sku_name).rsplit('_', maxsplit=1)[-1].upper()
    return redundancy in ('GRS', 'RAGRS', 'GZRS', 'RAGZRS')


def _azure_report(store, posture):
    container = store.container
    account = store.location.options.get('account_name') or 'ACCOUNT'
    state, props = _azure_read(store, 'properties', container.get_container_properties)
    if state == 'ok':
        version_level = bool(props.get('immutable_storage_with_versioning_enabled'))
        policy, hold = bool(props.get('has_immutability_policy')), bool(props.get('has_legal_hold'))
        mode = 'version_level' if version_level else 'container_policy' if policy else 'legal_hold' if hold else None
        posture['object_lock'].update({'enabled': version_level or policy or hold, 'mode': mode, 'legal_hold': hold})
        scope = props.get('encryption_scope')
        posture['default_encryption'].update({
            'enabled': True, 'algorithm': 'AES256',
            'encryption_scope': getattr(scope, 'default_encryption_scope', None) if scope else None})
        if version_level:
            posture['versioning'] = 'enabled'  # version-level immutability needs versioning
    else:
        _posture.unknown(posture, ('object_lock', 'default_encryption'),
                         'Could not read the properties of %s (%s): give these credentials read access to the '
                         'container to have them checked.' % (posture['url'], props))
    if posture['versioning'] == 'unknown':
        _posture.unknown(posture, ('versioning',),
                         'Blob versioning of %s is a storage account setting that the Blob service does not show: '
                         'check it with %s, and turn it on with az storage account blob-service-properties update '
                         '--account-name %s --enable-versioning true.'
                         % (posture['url'], _AZURE_MANAGEMENT.format(account=account), account))
    _posture.unknown(posture, ('lifecycle_rules', 'noncurrent_version_expiration_days',
                               'current_version_expiration_days'),
                     'Lifecycle management of %s is a storage account setting that the Blob service does not show: '
                     'check that a rule deletes previous versions (actions.version.delete) with %s.'
                     % (posture['url'], _AZURE_POLICY.format(account=account)))

    state, info = _azure_read(store, 'account information', container.get_account_information)
    if state == 'ok':
        posture['replication'] = azure_replication(info.get('sku_name'))
        info = 'no SKU in the answer'
    if posture['replication'] is None:
        _posture.unknown(posture, ('replication',), 'Could not read the redundancy (SKU) of the account of %s (%s): '
                         'check it with az storage account show --name %s --query sku.name.'
                         % (posture['url'], info, account))

    service = _azure_service(store, container)
    state, properties = _azure_read(store, 'service properties', service.get_service_properties)
    if state == 'ok':
        retention = properties.get('delete_retention_policy')
        posture['soft_delete_days'] = retention.days if retention is not None and retention.enabled else None
    else:
        _posture.unknown(posture, ('soft_delete_days',), 'Could not read the blob soft delete setting of the account '
                         'of %s (%s): it needs the account key or an account-level role; check it with %s.'
                         % (posture['url'], properties, _AZURE_MANAGEMENT.format(account=account)))


def _azure_service(store, container):
    return azure.storage.blob.BlobServiceClient(account_url=store.location.options['endpoint'],
                                                credential=container.credential)


def _azure_enforce(store, versioning, noncurrent_days, check_mode):
    account = store.location.options.get('account_name') or 'ACCOUNT'
    wanted = []
    if versioning:
        wanted.append('az storage account blob-service-properties update --account-name %s --resource-group GROUP '
                      '--enable-versioning true' % account)
    if noncurrent_days is not None:
        wanted.append('az storage account management-policy create --account-name %s --resource-group GROUP '
                      '--policy @policy.json with a rule whose actions.version.delete.daysAfterCreationGreaterThan '
                      'is %d' % (account, noncurrent_days))
    if not wanted:
        return []
    raise CairnError('Failed to enforce the posture of %s: versioning and lifecycle management are settings of the '
                     'storage account in Azure Resource Manager, which the Blob service these backups use cannot '
                     'change; set them with: %s' % (store.describe(), '; '.join(wanted)))


BACKEND = AzureStorage
