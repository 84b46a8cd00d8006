# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reading a CairnCMS .env the way CairnCMS does."""

from __future__ import annotations

import pytest

from ansible_collections.cairncms.ops.plugins.module_utils._common import CairnError
from ansible_collections.cairncms.ops.plugins.module_utils._env import InstanceConfig, convert, parse_dotenv


def test_dotenv_syntax():
    text = '''# comment
KEY=abc   # trailing comment
export PUBLIC_URL = http://cms.example.com/path#frag
SINGLE='it''s # not a comment'
DOUBLE="line1\\nline2"
MULTI="first
second"
COLON: value
EMPTY=
  INDENTED=yes
BACK=`tick # kept`
# OLD=1
KEY=later
'''
    values = parse_dotenv(text)
    assert values['KEY'] == 'later'
    assert values['PUBLIC_URL'] == 'http://cms.example.com/path'
    assert values['DOUBLE'] == 'line1\nline2'
    assert values['MULTI'] == 'first\nsecond'
    assert values['COLON'] == 'value'
    assert values['EMPTY'] == ''
    assert values['INDENTED'] == 'yes'
    assert values['BACK'] == 'tick # kept'
    assert 'OLD' not in values


def test_crlf_and_quotes_keep_hash():
    values = parse_dotenv('A="x # y"\r\nB=\'z\'\r\n')
    assert values == {'A': 'x # y', 'B': 'z'}


@pytest.mark.parametrize('raw, expected', [
    ('string:123', '123'),
    ('number:42', 42),
    ('number:1.5', 1.5),
    ('array:a,b, c', ['a', 'b', 'c']),
    ('json:{"a": [1, 2]}', {'a': [1, 2]}),
    ('true', True),
    ('false', False),
    ('null', None),
    ('8055', 8055),
    ('0123', '0123'),
    ('local,s3', ['local', 's3']),
    ('./data.db', './data.db'),
    ('{"x": 1}', {'x': 1}),
    ('http://example.com:8055', 'http://example.com:8055'),
])
def test_value_conversion(raw, expected):
    assert convert(raw) == expected


def test_bad_prefixed_values_name_the_problem():
    with pytest.raises(CairnError, match='number: prefix'):
        convert('number:abc')
    with pytest.raises(CairnError, match='json: prefix'):
        convert('json:{oops')


def _write(path, text):
    path.write_text(text)
    return str(path)


def test_relative_paths_resolve_against_env_dir(tmp_path):
    env = _write(tmp_path / '.env', 'DB_CLIENT=sqlite3\nDB_FILENAME=./db/data.db\n')
    config = InstanceConfig.load(env)
    assert config.database().options['filename'] == str(tmp_path / 'db' / 'data.db')
    # CairnCMS's defaults: one local location with ./uploads
    [location] = config.locations()
    assert (location.name, location.driver, location.options['root']) == ('local', 'local', str(tmp_path / 'uploads'))


def test_instance_dir_and_overrides_win(tmp_path):
    env = _write(tmp_path / '.env', 'DB_CLIENT=sqlite3\nDB_FILENAME=data.db\nKEY=from-file\n')
    config = InstanceConfig.load(env, {'DB_FILENAME': '/srv/other.db', 'KEY': 'from-inventory'},
                                 instance_dir='/srv/app')
    assert config.database().options['filename'] == '/srv/other.db'
    assert config.key == 'from-inventory'
    assert InstanceConfig.load(env, instance_dir='/srv/app').database().options['filename'] == '/srv/app/data.db'


def test_file_indirection(tmp_path):
    (tmp_path / 'key.txt').write_text('secret-key-value')
    (tmp_path / 'url.txt').write_text('http://cms\n')
    env = _write(tmp_path / '.env', 'DB_CLIENT=sqlite3\nDB_FILENAME=x.db\nKEY_FILE=key.txt\nPUBLIC_URL_FILE=url.txt\n')
    config = InstanceConfig.load(env)
    assert config.key == 'secret-key-value'
    assert config.public_url == 'http://cms\n'  # CairnCMS does not trim what it reads


def test_file_indirection_errors(tmp_path):
    env = _write(tmp_path / '.env', 'KEY=a\nKEY_FILE=key.txt\n')
    with pytest.raises(CairnError, match='KEY and KEY_FILE are both set'):
        InstanceConfig.load(env)
    env = _write(tmp_path / '.env', 'KEY_FILE=missing.txt\n')
    with pytest.raises(CairnError, match='KEY_FILE names .*missing.txt'):
        InstanceConfig.load(env)


def test_override_replaces_file_indirection(tmp_path):
    env = _write(tmp_path / '.env', 'KEY_FILE=missing.txt\n')
    assert InstanceConfig.load(env, {'KEY': 'direct'}).key == 'direct'


def test_several_locations(tmp_path):
    env = _write(tmp_path / '.env', 'STORAGE_LOCATIONS="local, archive"\nSTORAGE_LOCAL_ROOT=/u\n'
                                    'STORAGE_ARCHIVE_DRIVER=local\nSTORAGE_ARCHIVE_ROOT=string:old\n')
    config = InstanceConfig.load(env)
    assert [(l.name, l.options['root']) for l in config.locations()] == [('local', '/u'), ('archive', str(tmp_path / 'old'))]
    assert config.location('archive').options['root'] == str(tmp_path / 'old')
    with pytest.raises(CairnError, match='storage location .nope. is not configured'):
        config.location('nope')


@pytest.mark.parametrize('text, message', [
    ('DB_CLIENT=pg\n', 'DB_HOST is not set \\(DB_CLIENT=pg\\)'),
    ('DB_CLIENT=mysql\nDB_HOST=h\n', 'DB_DATABASE is not set'),
    ('DB_CLIENT=pg\nDB_CONNECTION_STRING=mysql://x\n', 'must be a postgres:// or postgresql:// URL'),
    ('DB_CLIENT=oracledb\n', 'DB_CLIENT=oracledb is not supported'),
    ('DB_FILENAME=x\n', 'DB_CLIENT is not set'),
    ('DB_CLIENT=sqlite3\n', 'DB_FILENAME is not set'),
])
def test_database_errors_name_the_variable(tmp_path, text, message):
    env = _write(tmp_path / '.env', text)
    with pytest.raises(CairnError, match=message):
        InstanceConfig.load(env).database()


def test_unsupported_driver_names_the_variable(tmp_path):
    env = _write(tmp_path / '.env', 'STORAGE_LOCATIONS=pics\nSTORAGE_PICS_DRIVER=ftp\n')
    with pytest.raises(CairnError, match='STORAGE_PICS_DRIVER=ftp is not supported'):
        InstanceConfig.load(env).locations()
    env = _write(tmp_path / '.env', 'STORAGE_LOCATIONS=other\n')
    with pytest.raises(CairnError, match='STORAGE_OTHER_DRIVER is not set'):
        InstanceConfig.load(env).locations()


def test_relative_path_without_base(tmp_path):
    config = InstanceConfig.load(None, {'DB_CLIENT': 'sqlite3', 'DB_FILENAME': 'data.db'})
    with pytest.raises(CairnError, match='cairn_instance_dir'):
        config.database()


def test_missing_env_file(tmp_path):
    with pytest.raises(CairnError, match='cannot read the instance .env file'):
        InstanceConfig.load(str(tmp_path / 'nope.env'))


def test_secrets_are_refused_in_plain_overrides(tmp_path):
    with pytest.raises(CairnError, match='DB_PASSWORD, SECRET look.* env_secret_overrides'):
        InstanceConfig.load(None, {'SECRET': 'x', 'DB_PASSWORD': 'y', 'PUBLIC_URL': 'z'})
    config = InstanceConfig.load(None, {'PUBLIC_URL': 'z'}, secret_overrides={'SECRET': 'x'})
    assert config.get('SECRET') == 'x' and config.public_url == 'z'


def test_server_database_options(tmp_path):
    (tmp_path / 'pw').write_text('file-password')
    env = _write(tmp_path / '.env', 'DB_CLIENT=pg\nDB_CONNECTION_STRING=postgresql://u%40x:p%2Fw@db.local:6543/cms'
                                    '?sslmode=require\nDB_DATABASE=override\nDB_SSL__REJECT_UNAUTHORIZED=false\n')
    database = InstanceConfig.load(env).database()
    assert database.vendor == 'postgres'
    assert {k: database.options[k] for k in ('host', 'port', 'database', 'user', 'password')} == {
        'host': 'db.local', 'port': 6543, 'database': 'override', 'user': 'u@x', 'password': 'p/w'}
    assert database.options['ssl'] == {'mode': 'require', 'reject_unauthorized': False}
    described = database.describe()
    assert described['password_set'] is True and 'p/w' not in repr(described)
    env = _write(tmp_path / '.env', 'DB_CLIENT=mysql\nDB_HOST=127.0.0.1\nDB_PORT=3307\nDB_DATABASE=cms\n'
                                    'DB_USER=cms\nDB_PASSWORD_FILE=pw\n')
    database = InstanceConfig.load(env).database()
    assert (database.vendor, database.options['port'], database.options['password']) == ('mysql', 3307, 'file-password')
