# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""GCS, Azure Blob and Cloudinary storage locations from a CairnCMS .env."""

from __future__ import annotations

import json

import pytest

from ansible_collections.cairncms.ops.plugins.module_utils._common import CairnError
from ansible_collections.cairncms.ops.plugins.module_utils._env import InstanceConfig, looks_secret
from ansible_collections.cairncms.ops.plugins.module_utils._storage import select_backend
from ansible_collections.cairncms.ops.plugins.module_utils._storage.azure import AzureStorage
from ansible_collections.cairncms.ops.plugins.module_utils._storage.cloudinary import CloudinaryStorage
from ansible_collections.cairncms.ops.plugins.module_utils._storage.gcs import GcsStorage

KEY_JSON = '{"type": "service_account", "private_key": "-----BEGIN PRIVATE KEY-----\\nsecret-pem\\n"}'
ACCOUNT_KEY = 'c2VjcmV0LWF6dXJlLWFjY291bnQta2V5'

FULL = '''STORAGE_LOCATIONS=local,gcs,azure
STORAGE_GCS_DRIVER=gcs
STORAGE_GCS_BUCKET=cms-files
STORAGE_GCS_KEY_FILENAME=./keys/gcs.json
STORAGE_GCS_API_ENDPOINT=http://127.0.0.1:4443/
STORAGE_GCS_ROOT=/sites/blog/
STORAGE_AZURE_DRIVER=azure
STORAGE_AZURE_CONTAINER_NAME=media
STORAGE_AZURE_ACCOUNT_NAME=cairnacct
STORAGE_AZURE_ACCOUNT_KEY=%s
STORAGE_AZURE_ROOT=uploads/
''' % ACCOUNT_KEY


def _load(tmp_path, text, **kwargs):
    path = tmp_path / '.env'
    path.write_text(text)
    (tmp_path / 'keys').mkdir(exist_ok=True)
    (tmp_path / 'keys' / 'gcs.json').write_text(KEY_JSON)
    return InstanceConfig.load(str(path), **kwargs)


def test_gcs_and_azure_options(tmp_path):
    local, gcs, azure = _load(tmp_path, FULL).locations()
    assert (local.driver, gcs.driver, azure.driver) == ('local', 'gcs', 'azure')
    assert gcs.options == {'bucket': 'cms-files', 'key_filename': str(tmp_path / 'keys' / 'gcs.json'),
                           'api_endpoint': 'http://127.0.0.1:4443', 'root': 'sites/blog'}
    assert azure.options == {'container_name': 'media', 'account_name': 'cairnacct', 'account_key': ACCOUNT_KEY,
                             'endpoint': 'https://cairnacct.blob.core.windows.net', 'root': 'uploads'}
    backend = select_backend(gcs)
    assert isinstance(backend, GcsStorage)
    assert (backend.place, backend.prefix, backend.describe()) == (
        'cms-files', 'sites/blog/', 'gs://cms-files/sites/blog/')
    backend = select_backend(azure)
    assert isinstance(backend, AzureStorage)
    assert (backend.place, backend.prefix, backend.describe()) == ('media', 'uploads/', 'azure://media/uploads/')


def test_describe_hides_credentials(tmp_path):
    config = _load(tmp_path, FULL)
    _local, gcs, azure = config.locations()
    assert gcs.describe() == {'name': 'gcs', 'driver': 'gcs', 'root': 'sites/blog', 'bucket': 'cms-files',
                              'api_endpoint': 'http://127.0.0.1:4443',
                              'key_filename': str(tmp_path / 'keys' / 'gcs.json'), 'credentials': 'key file'}
    assert azure.describe() == {'name': 'azure', 'driver': 'azure', 'root': 'uploads', 'container_name': 'media',
                                'account_name': 'cairnacct', 'endpoint': 'https://cairnacct.blob.core.windows.net',
                                'credentials': 'configured'}
    text = json.dumps([location.describe() for location in config.locations()])
    assert ACCOUNT_KEY not in text and 'secret-pem' not in text and 'private_key' not in text


def test_minimal_locations_use_the_environment(tmp_path):
    gcs, azure, emulated = _load(tmp_path, 'STORAGE_LOCATIONS=g,a,e\n'
                                           'STORAGE_G_DRIVER=gcs\nSTORAGE_G_BUCKET=b\n'
                                           'STORAGE_A_DRIVER=azure\nSTORAGE_A_CONTAINER_NAME=c\n'
                                           'STORAGE_A_ACCOUNT_NAME=acct\n'
                                           'STORAGE_E_DRIVER=gcs\nSTORAGE_E_BUCKET=b\n'
                                           'STORAGE_E_API_ENDPOINT=gcs.example.com:4443\n').locations()
    assert gcs.options == {'bucket': 'b', 'key_filename': None, 'api_endpoint': None, 'root': ''}
    assert gcs.describe()['credentials'] == 'environment'
    assert select_backend(gcs).prefix == ''
    assert azure.options == {'container_name': 'c', 'account_name': 'acct', 'account_key': None,
                             'endpoint': 'https://acct.blob.core.windows.net', 'root': ''}
    assert azure.describe()['credentials'] == 'environment'
    assert emulated.options['api_endpoint'] == 'https://gcs.example.com:4443'
    assert emulated.describe()['credentials'] == 'anonymous'


def test_azure_endpoint_without_account_name(tmp_path):
    [azure] = _load(tmp_path, 'STORAGE_LOCATIONS=a\nSTORAGE_A_DRIVER=azure\nSTORAGE_A_CONTAINER_NAME=c\n'
                              'STORAGE_A_ENDPOINT=https://blobs.example.net/\n').locations()
    assert (azure.options['endpoint'], azure.options['account_name']) == ('https://blobs.example.net', None)


@pytest.mark.parametrize('text, message', [
    ('STORAGE_LOCATIONS=g\nSTORAGE_G_DRIVER=gcs\n', 'STORAGE_G_BUCKET is not set'),
    ('STORAGE_LOCATIONS=g\nSTORAGE_G_DRIVER=gcs\nSTORAGE_G_BUCKET=\n', 'STORAGE_G_BUCKET is not set'),
    ('STORAGE_LOCATIONS=a\nSTORAGE_A_DRIVER=azure\nSTORAGE_A_ACCOUNT_NAME=x\n', 'STORAGE_A_CONTAINER_NAME is not set'),
    ('STORAGE_LOCATIONS=a\nSTORAGE_A_DRIVER=azure\nSTORAGE_A_CONTAINER_NAME=c\n', 'STORAGE_A_ACCOUNT_NAME is not set'),
    ('STORAGE_LOCATIONS=a\nSTORAGE_A_DRIVER=azure\nSTORAGE_A_CONTAINER_NAME=c\nSTORAGE_A_ENDPOINT=http://h/x\n'
     'STORAGE_A_ACCOUNT_KEY=k\n', 'STORAGE_A_ACCOUNT_NAME is not set'),
    ('STORAGE_LOCATIONS=pics\nSTORAGE_PICS_DRIVER=ftp\n', 'STORAGE_PICS_DRIVER=ftp is not supported'),
    ('STORAGE_LOCATIONS=pics\nSTORAGE_PICS_DRIVER=cloudinary\n', 'STORAGE_PICS_CLOUD_NAME is not set'),
    ('STORAGE_LOCATIONS=pics\nSTORAGE_PICS_DRIVER=cloudinary\nSTORAGE_PICS_CLOUD_NAME=c\nSTORAGE_PICS_API_SECRET=s\n',
     'STORAGE_PICS_API_KEY is not set'),
    ('STORAGE_LOCATIONS=pics\nSTORAGE_PICS_DRIVER=cloudinary\nSTORAGE_PICS_CLOUD_NAME=c\nSTORAGE_PICS_API_KEY=1\n',
     'STORAGE_PICS_API_SECRET is not set .*cairn_env_secret_overrides'),
    ('STORAGE_LOCATIONS=pics\nSTORAGE_PICS_DRIVER=cloudinary\nSTORAGE_PICS_CLOUD_NAME=c\nSTORAGE_PICS_API_KEY=1\n'
     'STORAGE_PICS_API_SECRET=s\nSTORAGE_PICS_ACCESS_MODE=private\n', 'STORAGE_PICS_ACCESS_MODE=private is not'),
])
def test_errors_name_the_variable(tmp_path, text, message):
    with pytest.raises(CairnError, match=message):
        _load(tmp_path, text).locations()


def test_gcs_relative_key_file_needs_a_base(tmp_path):
    config = InstanceConfig.load(None, overrides={'STORAGE_LOCATIONS': 'g', 'STORAGE_G_DRIVER': 'gcs',
                                                  'STORAGE_G_BUCKET': 'b', 'STORAGE_G_KEY_FILENAME': 'k.json'})
    with pytest.raises(CairnError, match='STORAGE_G_KEY_FILENAME is the relative path'):
        config.locations()


def test_account_key_is_a_secret_variable(tmp_path):
    assert looks_secret('STORAGE_AZURE_ACCOUNT_KEY')
    assert not looks_secret('STORAGE_GCS_KEY_FILENAME') and not looks_secret('STORAGE_AZURE_CONTAINER_NAME')
    with pytest.raises(CairnError, match='STORAGE_AZURE_ACCOUNT_KEY'):
        _load(tmp_path, FULL, overrides={'STORAGE_AZURE_ACCOUNT_KEY': 'x'})
    [_local, _gcs, azure] = _load(tmp_path, FULL, overrides={'STORAGE_AZURE_CONTAINER_NAME': 'other'},
                                  secret_overrides={'STORAGE_AZURE_ACCOUNT_KEY': 'rotated'}).locations()
    assert (azure.options['container_name'], azure.options['account_key']) == ('other', 'rotated')


CLOUDINARY_SECRET = 'cld-Secret-9fQ2xZ7wLm4pR8tV'
CLOUDINARY = """STORAGE_LOCATIONS=local,pics
STORAGE_PICS_DRIVER=cloudinary
STORAGE_PICS_CLOUD_NAME=cairn-demo
STORAGE_PICS_API_KEY=123456789012345
STORAGE_PICS_API_SECRET=%s
STORAGE_PICS_ACCESS_MODE=authenticated
STORAGE_PICS_ROOT=/sites//blog/
""" % CLOUDINARY_SECRET


def test_cloudinary_options(tmp_path):
    _local, pics = _load(tmp_path, CLOUDINARY).locations()
    # API_KEY becomes a number in CairnCMS's env parsing; its digits are what the driver sends.
    assert pics.options == {'cloud_name': 'cairn-demo', 'api_key': '123456789012345', 'api_secret': CLOUDINARY_SECRET,
                            'access_mode': 'authenticated', 'root': 'sites/blog',
                            'api_url': 'https://api.cloudinary.com', 'delivery_url': 'https://res.cloudinary.com'}
    backend = select_backend(pics)
    assert isinstance(backend, CloudinaryStorage)
    assert (backend.place, backend.prefix, backend.describe()) == (
        'cairn-demo', 'sites/blog/', 'cloudinary://cairn-demo/sites/blog/')
    assert backend.api_url == 'https://api.cloudinary.com/v1_1/cairn-demo'
    assert backend.delivery_url == 'https://res.cloudinary.com/cairn-demo'


def test_cloudinary_describe_hides_the_secret_and_key(tmp_path):
    config = _load(tmp_path, CLOUDINARY)
    assert config.locations()[1].describe() == {
        'name': 'pics', 'driver': 'cloudinary', 'root': 'sites/blog', 'cloud_name': 'cairn-demo',
        'access_mode': 'authenticated', 'api_url': 'https://api.cloudinary.com',
        'delivery_url': 'https://res.cloudinary.com', 'credentials': 'configured'}
    text = json.dumps([location.describe() for location in config.locations()])
    assert CLOUDINARY_SECRET not in text and '123456789012345' not in text


def test_cloudinary_minimal_and_overridden_urls(tmp_path):
    [pics] = _load(tmp_path, 'STORAGE_LOCATIONS=pics\nSTORAGE_PICS_DRIVER=cloudinary\nSTORAGE_PICS_CLOUD_NAME=c\n'
                             'STORAGE_PICS_API_KEY=0123\nSTORAGE_PICS_API_SECRET=s\n'
                             'STORAGE_PICS_API_URL=api-eu.cloudinary.com/\n'
                             'STORAGE_PICS_DELIVERY_URL=http://127.0.0.1:9/res/\n').locations()
    assert (pics.options['api_key'], pics.options['access_mode'], pics.options['root']) == ('0123', None, '')
    assert (pics.options['api_url'], pics.options['delivery_url']) == ('https://api-eu.cloudinary.com',
                                                                       'http://127.0.0.1:9/res')
    assert select_backend(pics).prefix == ''


@pytest.mark.parametrize('root, expected', [('cms', 'cms'), ('/cms/', 'cms'), ('a//b/', 'a/b'), ('./a/../b', 'b'),
                                            ('\\\\win\\dir', 'win/dir'), ('/', '')])
def test_cloudinary_root_is_normalised_as_the_driver_does(tmp_path, root, expected):
    [pics] = _load(tmp_path, 'STORAGE_LOCATIONS=pics\nSTORAGE_PICS_DRIVER=cloudinary\nSTORAGE_PICS_CLOUD_NAME=c\n'
                             'STORAGE_PICS_API_KEY=1\nSTORAGE_PICS_API_SECRET=s\n'
                             'STORAGE_PICS_ROOT="%s"\n' % root).locations()
    assert pics.options['root'] == expected


def test_cloudinary_credentials_are_secret_variables(tmp_path):
    assert looks_secret('STORAGE_PICS_API_KEY') and looks_secret('STORAGE_PICS_API_SECRET')
    assert not looks_secret('STORAGE_PICS_CLOUD_NAME') and not looks_secret('STORAGE_PICS_API_URL')
    with pytest.raises(CairnError, match='STORAGE_PICS_API_SECRET'):
        _load(tmp_path, CLOUDINARY, overrides={'STORAGE_PICS_API_SECRET': 'x'})
    _local, pics = _load(tmp_path, CLOUDINARY, overrides={'STORAGE_PICS_CLOUD_NAME': 'other'},
                         secret_overrides={'STORAGE_PICS_API_SECRET': 'rotated'}).locations()
    assert (pics.options['cloud_name'], pics.options['api_secret']) == ('other', 'rotated')
