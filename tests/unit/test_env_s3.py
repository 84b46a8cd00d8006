# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""S3 storage locations from a CairnCMS .env."""

from __future__ import annotations

import json

import pytest

from ansible_collections.cairncms.ops.plugins.module_utils._common import CairnError
from ansible_collections.cairncms.ops.plugins.module_utils._env import InstanceConfig, looks_secret
from ansible_collections.cairncms.ops.plugins.module_utils._storage import select_backend
from ansible_collections.cairncms.ops.plugins.module_utils._storage.s3 import S3Storage

FULL = '''STORAGE_LOCATIONS=local,s3
STORAGE_S3_DRIVER=s3
STORAGE_S3_KEY=AKIAEXAMPLE
STORAGE_S3_SECRET=very-secret-value
STORAGE_S3_BUCKET=cms-files
STORAGE_S3_REGION=eu-central-1
STORAGE_S3_ENDPOINT=http://127.0.0.1:9000
STORAGE_S3_ROOT=/sites/blog/
STORAGE_S3_FORCE_PATH_STYLE=true
STORAGE_S3_SERVER_SIDE_ENCRYPTION=AES256
STORAGE_S3_ACL=private
'''


def _load(tmp_path, text, **kwargs):
    path = tmp_path / '.env'
    path.write_text(text)
    return InstanceConfig.load(str(path), **kwargs)


def test_s3_options(tmp_path):
    local, s3 = _load(tmp_path, FULL).locations()
    assert (local.driver, s3.name, s3.driver) == ('local', 's3', 's3')
    assert s3.options == {
        'key': 'AKIAEXAMPLE', 'secret': 'very-secret-value', 'bucket': 'cms-files', 'region': 'eu-central-1',
        'endpoint': 'http://127.0.0.1:9000', 'root': 'sites/blog', 'force_path_style': True,
        'server_side_encryption': 'AES256', 'acl': 'private'}
    backend = select_backend(s3)
    assert isinstance(backend, S3Storage)
    assert (backend.place, backend.prefix, backend.describe()) == (
        'cms-files', 'sites/blog/', 's3://cms-files/sites/blog/')


def test_s3_describe_hides_credentials(tmp_path):
    config = _load(tmp_path, FULL)
    described = config.locations()[1].describe()
    assert described == {'name': 's3', 'driver': 's3', 'root': 'sites/blog', 'bucket': 'cms-files',
                         'region': 'eu-central-1', 'endpoint': 'http://127.0.0.1:9000', 'force_path_style': True,
                         'server_side_encryption': 'AES256', 'acl': 'private', 'credentials': 'configured'}
    text = json.dumps([location.describe() for location in config.locations()])
    assert 'very-secret-value' not in text and 'AKIAEXAMPLE' not in text


def test_s3_minimal_uses_the_aws_chain(tmp_path):
    [s3] = _load(tmp_path, 'STORAGE_LOCATIONS=files\nSTORAGE_FILES_DRIVER=s3\nSTORAGE_FILES_BUCKET=b\n'
                           'STORAGE_FILES_ENDPOINT=minio.example.com:9000\n').locations()
    assert s3.options['key'] is None and s3.options['secret'] is None
    assert (s3.options['root'], s3.options['force_path_style']) == ('', False)
    assert s3.options['endpoint'] == 'https://minio.example.com:9000'  # CairnCMS: no scheme is https
    assert s3.describe()['credentials'] == 'environment'
    assert select_backend(s3).prefix == ''


@pytest.mark.parametrize('text, message', [
    ('STORAGE_LOCATIONS=s3\nSTORAGE_S3_DRIVER=s3\n', 'STORAGE_S3_BUCKET is not set'),
    ('STORAGE_LOCATIONS=s3\nSTORAGE_S3_DRIVER=s3\nSTORAGE_S3_BUCKET=\n', 'STORAGE_S3_BUCKET is not set'),
    ('STORAGE_LOCATIONS=s3\nSTORAGE_S3_DRIVER=s3\nSTORAGE_S3_BUCKET=b\nSTORAGE_S3_KEY=k\n',
     'STORAGE_S3_KEY and STORAGE_S3_SECRET must be set together'),
    ('STORAGE_LOCATIONS=pics\nSTORAGE_PICS_DRIVER=ftp\n', 'STORAGE_PICS_DRIVER=ftp is not supported'),
])
def test_s3_errors_name_the_variable(tmp_path, text, message):
    with pytest.raises(CairnError, match=message):
        _load(tmp_path, text).locations()


def test_s3_credentials_are_secret_variables(tmp_path):
    assert looks_secret('STORAGE_S3_KEY') and looks_secret('STORAGE_ARCHIVE_SECRET')
    assert not looks_secret('STORAGE_S3_BUCKET') and not looks_secret('STORAGE_S3_ENDPOINT')
    with pytest.raises(CairnError, match='STORAGE_S3_SECRET'):
        _load(tmp_path, FULL, overrides={'STORAGE_S3_SECRET': 'x'})
    [_local, s3] = _load(tmp_path, FULL, overrides={'STORAGE_S3_BUCKET': 'other'},
                         secret_overrides={'STORAGE_S3_SECRET': 'rotated'}).locations()
    assert (s3.options['bucket'], s3.options['secret']) == ('other', 'rotated')
