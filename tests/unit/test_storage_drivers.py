# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A storage driver is one file of _storage: the registry, the interface every driver provides, and a driver
added by registering its backend alone (reading a .env, describing, selecting, posture, repository spec)."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys

import pytest

from ansible_collections.cairncms.ops.plugins.module_utils import _guard, _posture, _storage
from ansible_collections.cairncms.ops.plugins.module_utils._common import CairnError
from ansible_collections.cairncms.ops.plugins.module_utils._env import InstanceConfig, Location
from ansible_collections.cairncms.ops.plugins.module_utils._repository import objects
from ansible_collections.cairncms.ops.plugins.module_utils._storage._base import ObjectStore, StorageBackend

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODULE_UTILS = os.path.join(ROOT, 'plugins', 'module_utils')
FIXES = {'versioning', 'lifecycle', 'object_lock', 'replication', 'soft_delete', 'default_encryption'}


def test_the_registry_lists_every_driver_file_in_order():
    assert _storage.drivers() == ('local', 's3', 'gcs', 'azure', 'cloudinary')
    files = {name[:-3] for name in os.listdir(os.path.join(MODULE_UTILS, '_storage'))
             if name.endswith('.py') and not name.startswith('_')}
    assert files == set(_storage.drivers())
    assert _storage.backend_class('ftp') is None and _storage.backend_class(['s3']) is None
    assert objects.repository_types() == ('s3', 'gcs', 'azure')


@pytest.mark.parametrize('driver', ['local', 's3', 'gcs', 'azure', 'cloudinary'])
def test_every_driver_provides_the_whole_interface(driver):
    backend = _storage.backend_class(driver)
    assert issubclass(backend, StorageBackend) and backend.driver == driver
    assert backend.options_from_env.__func__ is not StorageBackend.options_from_env.__func__
    for method in ('describe', 'list', 'stat', 'open_read', 'begin_write', 'delete'):
        assert getattr(backend, method) is not getattr(StorageBackend, method), method
    assert (backend.read_posture is None) == (backend.enforce_posture is None)
    if backend.read_posture is not None:
        assert issubclass(backend, ObjectStore)
        assert {'object_lock', 'replication'} <= set(backend.posture_fixes) <= FIXES
    if backend.repository_spec is not None:
        assert issubclass(backend, ObjectStore) and backend.place_option
        assert set(backend.repository_spec) == {'place', 'options', 'credentials'}
    if issubclass(backend, ObjectStore):
        assert backend.scheme and backend.place_option and backend.identity_options
    known = getattr(_guard, 'LOCATION_KEYS', None)  # _guard's own table, while it keeps one, agrees
    if known is not None:
        assert known.get(driver) == backend.identity_options


def test_the_generic_code_names_no_driver():
    """What is a driver's is in its file: _env, _posture and _repository.objects name none of them."""
    for path in ('_env.py', '_posture.py', os.path.join('_repository', 'objects.py')):
        with open(os.path.join(MODULE_UTILS, path), encoding='utf-8') as handle:
            tree = ast.parse(handle.read())
        texts = {node.value for node in ast.walk(tree)
                 if isinstance(node, ast.Constant) and isinstance(node.value, str)}
        assert not texts & {'s3', 'gcs', 'azure', 'cloudinary'}, path


class ShelfStorage(ObjectStore):
    """A driver of this test only: what a new driver's file holds."""
    driver = 'shelf'
    scheme = 'shelf'
    place_option = 'shelf'
    secret_option = 'token'
    posture_fixes = {'versioning': 'shelfctl version {bucket}', 'object_lock': 'shelfctl lock {bucket}',
                     'replication': 'a second shelf', 'soft_delete': 'shelfctl bin {bucket}'}
    repository_spec = {'place': 'shelf', 'options': {'zone': 'zone'}, 'credentials': {'token': 'token'}}

    @classmethod
    def options_from_env(cls, config, prefix):
        options = config.texts(prefix, {'shelf': 'SHELF', 'zone': 'ZONE', 'token': 'TOKEN', 'root': 'ROOT'})
        if not options['shelf']:
            raise config.missing(prefix + 'SHELF', 'shelf', 'shelf')
        options['root'] = (options['root'] or '').strip('/')
        return options

    @classmethod
    def describe_options(cls, options):
        return {'shelf': options['shelf'], 'zone': options.get('zone'),
                'credentials': 'configured' if options.get('token') else 'environment'}

    @classmethod
    def repository_options(cls, options):
        if options.get('zone') == 'nowhere':
            raise CairnError('a shelf repository needs a real zone')
        return options

    def read_posture(self, posture):
        posture['versioning'] = 'disabled'
        posture['object_lock']['enabled'] = False
        posture['replication'] = False

    def enforce_posture(self, versioning, noncurrent_days, check_mode):
        return ['version shelf %s' % self.place] if versioning else []


@pytest.fixture
def shelf(monkeypatch):
    """The shelf driver registered, as its name on the registry's import line would."""
    monkeypatch.setitem(_storage._registry(), 'shelf', ShelfStorage)


ENV = {'DB_CLIENT': 'sqlite3', 'DB_FILENAME': 'data.db',
       'STORAGE_LOCATIONS': 'files,books', 'STORAGE_FILES_DRIVER': 'local', 'STORAGE_FILES_ROOT': 'uploads',
       'STORAGE_BOOKS_DRIVER': 'shelf', 'STORAGE_BOOKS_SHELF': 'tall', 'STORAGE_BOOKS_ROOT': '/cms/',
       'STORAGE_BOOKS_TOKEN': 'shelf-token-value'}


def test_a_registered_driver_needs_no_other_file(shelf, tmp_path):
    config = InstanceConfig.from_dotenv(ENV, str(tmp_path), str(tmp_path / '.env'))
    files, books = config.locations()
    assert (files.driver, books.driver) == ('local', 'shelf')
    assert books.options == {'shelf': 'tall', 'zone': None, 'token': 'shelf-token-value', 'root': 'cms'}
    assert books.describe() == {'name': 'books', 'driver': 'shelf', 'root': 'cms', 'shelf': 'tall', 'zone': None,
                                'credentials': 'configured'}
    assert 'shelf-token-value' not in json.dumps(config.describe()['locations'])
    store = _storage.select_backend(books)
    assert isinstance(store, ShelfStorage) and store.describe() == 'shelf://tall/cms/'

    posture = _posture.report(store, 'repository')
    assert (posture['driver'], posture['mfa_delete'], posture['versioning']) == ('shelf', 'not_applicable', 'disabled')
    assert [finding.split(': ', 1)[0] for finding in posture['findings']] == [
        'Versioning is disabled on shelf://tall/cms/', 'Object Lock (immutability) is off on shelf://tall/cms/',
        'shelf://tall/cms/ is not replicated', 'Soft delete is off on shelf://tall/cms/']
    assert 'shelfctl version tall' in posture['findings'][0] and 'shelfctl bin tall' in posture['findings'][3]
    assert _posture.enforce(store, versioning=True) == ['version shelf tall']

    location = objects.location_of({'type': 'shelf', 'shelf': 'low', 'prefix': '/p/', 'zone': 'z'}, {'token': 't'})
    assert (location.driver, location.options) == ('shelf', {'shelf': 'low', 'root': 'p', 'zone': 'z', 'token': 't'})
    assert isinstance(objects.ObjectRepository(location).store, ShelfStorage)
    assert objects.repository_types() == ('s3', 'gcs', 'azure', 'shelf')
    with pytest.raises(CairnError, match='needs a real zone'):
        objects.location_of({'type': 'shelf', 'shelf': 'low', 'zone': 'nowhere'})
    with pytest.raises(CairnError, match=r'takes prefix, shelf, zone; unknown: region'):
        objects.location_of({'type': 'shelf', 'shelf': 'low', 'region': 'eu'})


def test_a_registered_driver_is_checked_and_named_like_the_others(shelf, tmp_path):
    config = InstanceConfig.from_dotenv(dict(ENV, STORAGE_BOOKS_SHELF=''), str(tmp_path), str(tmp_path / '.env'))
    with pytest.raises(CairnError, match=r'STORAGE_BOOKS_SHELF is not set in .*/\.env; a shelf storage location '
                                         r'needs its shelf'):
        config.locations()
    config = InstanceConfig.from_dotenv(dict(ENV, STORAGE_BOOKS_DRIVER='ftp'), str(tmp_path))
    with pytest.raises(CairnError, match='STORAGE_BOOKS_DRIVER=ftp is not supported by this version of cairncms.ops; '
                                         'local, s3, gcs, azure, cloudinary and shelf are'):
        config.locations()
    with pytest.raises(CairnError, match="use one of: local, s3, gcs, azure, cloudinary, shelf"):
        _storage.select_backend(Location('x', 'ftp', {}))


def test_a_store_without_bucket_settings_has_no_posture():
    store = _storage.select_backend(Location('pics', 'cloudinary', {
        'cloud_name': 'demo', 'api_key': 'k', 'api_secret': 's', 'root': '',
        'api_url': 'https://api.cloudinary.com', 'delivery_url': 'https://res.cloudinary.com'}))
    assert _posture.report(store) == {'driver': 'cloudinary', 'applicable': False}
    with pytest.raises(CairnError, match='driver cloudinary has no bucket settings'):
        _posture.enforce(store)


def test_reading_a_configuration_loads_no_sdk():
    """The SDKs are imported when a backend of their driver is made, not when a .env names the driver."""
    code = '''if True:
        import json, sys
        from ansible_collections.cairncms.ops.plugins.module_utils._env import InstanceConfig
        values = {'STORAGE_LOCATIONS': 'a,b,c,d', 'STORAGE_A_DRIVER': 's3', 'STORAGE_A_BUCKET': 'x',
                  'STORAGE_B_DRIVER': 'gcs', 'STORAGE_B_BUCKET': 'y', 'STORAGE_C_DRIVER': 'azure',
                  'STORAGE_C_CONTAINER_NAME': 'z', 'STORAGE_C_ACCOUNT_NAME': 'acct', 'STORAGE_D_DRIVER': 'cloudinary',
                  'STORAGE_D_CLOUD_NAME': 'c', 'STORAGE_D_API_KEY': 'k', 'STORAGE_D_API_SECRET': 's'}
        config = InstanceConfig.from_dotenv(values, '/srv')
        described = [location.describe() for location in config.locations()]
        before = sorted(name for name in ('boto3', 'google.cloud.storage', 'azure.storage.blob') if name in sys.modules)
        from ansible_collections.cairncms.ops.plugins.module_utils._storage import select_backend
        select_backend(config.location('a'))
        after = sorted(name for name in ('boto3', 'google.cloud.storage', 'azure.storage.blob') if name in sys.modules)
        print(json.dumps([len(described), before, after]))
    '''
    env = dict(os.environ, PYTHONPATH=os.path.join(ROOT, '.build', 'collections'))
    proc = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, env=env, check=False,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == [4, [], ['boto3']]


@pytest.mark.parametrize('driver, sdk, attribute, message', [
    ('s3', 'boto3', 'client', 'the Python library boto3 is needed for the S3 storage location x on this host'),
    ('gcs', 'google.cloud.storage', 'bucket',
     'the Python library google-cloud-storage is needed for the GCS storage location x on this host'),
    ('azure', 'azure.storage.blob', 'container',
     'the Python library azure-storage-blob is needed for the Azure storage location x on this host'),
])
def test_a_missing_sdk_is_one_clear_error_when_the_store_is_used(monkeypatch, driver, sdk, attribute, message):
    module = sys.modules[_storage.backend_class(driver).__module__]
    for name in ('boto3', 'botocore', 'google', 'requests', '_InvalidResponse', 'azure', 'RETRY', '_BROKEN_OFF',
                 'HAS_BOTO3', 'HAS_GCS', 'HAS_AZURE_BLOB', 'HAS_AZURE_IDENTITY', 'BOTO3_IMPORT_ERROR',
                 'GCS_IMPORT_ERROR', 'AZURE_BLOB_IMPORT_ERROR', 'AZURE_IDENTITY_IMPORT_ERROR'):
        if hasattr(module, name):
            monkeypatch.setattr(module, name, None)  # restored after the test, SDK and all
    monkeypatch.setitem(sys.modules, sdk, None)  # import fails
    location = Location('x', driver, {'bucket': 'b', 'container_name': 'c', 'account_name': 'a', 'account_key': 'k',
                                      'endpoint': 'http://127.0.0.1:9', 'api_endpoint': 'http://127.0.0.1:9'})
    store = _storage.select_backend(location)
    with pytest.raises(CairnError, match=message) as raised:
        getattr(store, attribute)
    assert 'import of %s halted' % sdk in raised.value.details['exception']  # the traceback, for -vvv
    assert store.is_sdk_error(ValueError('x')) is False
