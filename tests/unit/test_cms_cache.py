# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Clearing the CMS's Redis cache (_cms.cache) against a real redis-server started here (a free port, a temporary
directory, nothing saved, a password; tests/integration/_redis.py), reached as the CMS's configuration says
(CACHE_REDIS URLs, CACHE_REDIS_* variables, a key prefix, another database, TLS with rediss:// and a CA of the
test's own): the keys of the instance's namespaces go (keyv's values and namespace sets, in batches), every other
key stays (another namespace, one sharing its first letters, one a glob would match, another app's); check mode
removes nothing; the password never shows; what is no Redis is one clear error."""

from __future__ import annotations

import datetime
import ipaddress
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import urllib.parse

import pytest

import _redis

from ansible_collections.cairncms.ops.plugins.module_utils._cms import cache
from ansible_collections.cairncms.ops.plugins.module_utils._common import CairnError


@pytest.fixture(scope='module')
def redis():
    with _redis.Redis() as server:
        yield server


@pytest.fixture(autouse=True)
def empty(redis):
    redis.command('FLUSHALL')
    yield


def keyv(redis, namespace, key, value='v', prefix=''):
    """What keyv with @keyv/redis writes for ``set(key)`` in ``namespace``: the value, and the key in the
    namespace's set."""
    redis.command('SET', prefix + '%s:%s' % (namespace, key), value)
    redis.command('SADD', prefix + 'namespace:%s' % namespace, '%s:%s' % (namespace, key))


def directus_like(redis, namespace='system-cache', prefix=''):
    """The keys a CMS with CACHE_NAMESPACE=``namespace`` leaves: data cache entries, system cache entries, the
    shared schema hash and a system cache lock; their number."""
    keyv(redis, namespace, 'c1f2a-items-articles', prefix=prefix)
    keyv(redis, namespace, 'c1f2a-items-pages', prefix=prefix)
    keyv(redis, namespace + '_system', 'permissions-admin', prefix=prefix)
    keyv(redis, namespace + '_schema_shared', 'hash', prefix=prefix)
    keyv(redis, namespace + '_lock', 'system-cache-lock', prefix=prefix)
    return 5 + 4  # five values, four namespace sets


FOREIGN = ['system-cache2:x', 'namespace:system-cache2', 'system-cache-old:y', 'other-app:system-cache:z',
           'system-cache', 'namespace:system-cache_other', 'session:1']


def foreign(redis):
    for key in FOREIGN:
        redis.command('SET', key, 'keep')


def keys(redis):
    return sorted(redis.command('KEYS', '*'))


def test_only_the_keys_of_the_namespace_go(redis):
    count = directus_like(redis)
    foreign(redis)
    values = {'CACHE_STORE': 'redis', 'CACHE_REDIS': redis.url}
    planned = cache.clear(values, check_mode=True)
    assert planned['keys_removed'] == count and len(keys(redis)) == count + len(FOREIGN)
    done = cache.clear(values)
    assert done == {'store': 'redis', 'namespace': 'system-cache', 'keys_removed': count,
                    'server': 'redis://127.0.0.1:%d/0' % redis.port}
    assert keys(redis) == sorted(FOREIGN)
    assert cache.clear(values)['keys_removed'] == 0  # idempotent


def test_many_keys_go_in_batches(redis):
    script = "for i=1,2400 do redis.call('SET', 'cms:k' .. i, 'v') end return 1"
    redis.command('EVAL', script, '0')
    redis.command('SET', 'cmsx:keep', '1')
    assert cache.clear({'CACHE_STORE': 'redis', 'CACHE_REDIS': redis.url, 'CACHE_NAMESPACE': 'cms'},
                       check_mode=True)['keys_removed'] == 2400
    assert cache.clear({'CACHE_STORE': 'redis', 'CACHE_REDIS': redis.url, 'CACHE_NAMESPACE': 'cms'})[
        'keys_removed'] == 2400
    assert keys(redis) == ['cmsx:keep']


def test_a_namespace_with_glob_characters_matches_only_itself(redis):
    count = directus_like(redis, 'a*[b]?')
    for key in ('aXbc:1', 'a*[b]?x:2', 'ab:3', 'a*b?:4'):
        redis.command('SET', key, 'keep')
    assert cache.clear({'CACHE_STORE': 'redis', 'CACHE_REDIS': redis.url, 'CACHE_NAMESPACE': 'a*[b]?'})[
        'keys_removed'] == count
    assert keys(redis) == sorted(['aXbc:1', 'a*[b]?x:2', 'ab:3', 'a*b?:4'])


def test_the_connection_from_cache_redis_variables_with_a_key_prefix_and_another_database(redis):
    def in_db3(*args):
        return redis.command('EVAL', "redis.call('SELECT', 3) return redis.call(unpack(ARGV))", '0', *args)

    for args in (('SET', 'app:site-cache:k', 'v'), ('SADD', 'app:namespace:site-cache', 'site-cache:k'),
                 ('SET', 'app:site-cache_system:s', 'v'), ('SET', 'site-cache:unprefixed', 'keep'),
                 ('SET', 'app:other:k', 'keep')):
        in_db3(*args)
    redis.command('SET', 'app:site-cache:in-db-0', 'keep')
    values = {'CACHE_STORE': 'redis', 'CACHE_NAMESPACE': 'site-cache', 'CACHE_REDIS_HOST': '127.0.0.1',
              'CACHE_REDIS_PORT': redis.port, 'CACHE_REDIS_PASSWORD': redis.password, 'CACHE_REDIS_DB': 3,
              'CACHE_REDIS_KEY_PREFIX': 'app:'}
    assert cache.clear(values)['keys_removed'] == 3
    assert sorted(in_db3('KEYS', '*')) == ['app:other:k', 'site-cache:unprefixed']
    assert keys(redis) == ['app:site-cache:in-db-0']


def test_a_password_with_url_characters_and_a_username(redis):
    password = 'p@ss:w/rd%?#1'
    redis.command('ACL', 'SETUSER', 'cms', 'on', '>' + password, '~*', '+@all')
    try:
        directus_like(redis)
        url = 'redis://cms:%s@127.0.0.1:%d' % (urllib.parse.quote(password, safe=''), redis.port)
        assert cache.clear({'CACHE_STORE': 'redis', 'CACHE_REDIS': url})['keys_removed'] == 9
    finally:
        redis.command('ACL', 'DELUSER', 'cms')


@pytest.mark.parametrize('password', ['Wrong-Secret-Pw-77', None])
def test_a_refused_login_never_shows_the_password(redis, password):
    values = {'CACHE_STORE': 'redis', 'CACHE_REDIS_HOST': '127.0.0.1', 'CACHE_REDIS_PORT': redis.port}
    if password:
        values['CACHE_REDIS_PASSWORD'] = password
    with pytest.raises(CairnError) as caught:
        cache.clear(values)
    assert "the CMS's Redis at redis://127.0.0.1:%d/0 refused us" % redis.port in caught.value.message
    assert ('WRONGPASS' if password else 'NOAUTH') in caught.value.message
    assert 'Wrong-Secret-Pw-77' not in caught.value.message
    url = 'redis://:%s@127.0.0.1:%d/0' % ('Wrong-Secret-Pw-77', redis.port)
    with pytest.raises(CairnError) as caught:
        cache.clear({'CACHE_STORE': 'redis', 'CACHE_REDIS': url})
    assert 'Wrong-Secret-Pw-77' not in caught.value.message


def test_a_redis_that_is_not_there_or_is_no_redis(tmp_path):
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        port = sock.getsockname()[1]
    with pytest.raises(CairnError, match=r"cannot connect to the CMS's Redis at redis://127.0.0.1:%d/0 \(Connection "
                                         r"refused\)" % port):
        cache.clear({'CACHE_STORE': 'redis', 'CACHE_REDIS': 'redis://:Pw-Secret-1@127.0.0.1:%d' % port})

    listener = socket.socket()
    listener.bind(('127.0.0.1', 0))
    listener.listen(1)

    def answer():
        conn, _addr = listener.accept()
        conn.recv(1024)
        conn.sendall(b'HTTP/1.1 400 Bad Request\r\n\r\n')
        conn.close()
    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    try:
        with pytest.raises(CairnError, match='answered .*HTTP/1.1 400.*which is no Redis reply'):
            cache.clear({'CACHE_STORE': 'redis', 'CACHE_REDIS_HOST': '127.0.0.1',
                         'CACHE_REDIS_PORT': listener.getsockname()[1], 'CACHE_REDIS_PASSWORD': 'Pw-Secret-1'})
    finally:
        thread.join(10)
        listener.close()


def test_other_stores_are_not_touched():
    assert cache.clear({}) == {'store': 'memory', 'namespace': 'system-cache', 'keys_removed': 0,
                               'note': 'cleared by the restart'}
    memcache = cache.clear({'CACHE_STORE': 'memcache', 'CACHE_NAMESPACE': 'blog'})
    assert memcache['keys_removed'] == 0 and 'not cleared here' in memcache['note']
    with pytest.raises(CairnError, match='Sentinel'):
        cache.clear({'CACHE_STORE': 'redis', 'CACHE_REDIS_SENTINELS': 'json:[{"host": "a"}]',
                     'CACHE_REDIS_SENTINELS__0': 'x'})


def test_the_connection_is_read_as_ioredis_reads_it():
    connection = cache.Connection({'CACHE_REDIS': 'rediss://user:p%40ss@cache.example.com:6380/2?keyPrefix=x:'})
    assert (connection.host, connection.port, connection.db, connection.username, connection.password,
            connection.key_prefix, connection.tls, connection.verify) == (
        'cache.example.com', 6380, 2, 'user', 'p@ss', 'x:', True, True)
    assert 'p@ss' not in connection.where and connection.where == 'rediss://cache.example.com:6380/2'
    connection = cache.Connection({'CACHE_REDIS': 'localhost:7000'})
    assert (connection.host, connection.port, connection.password, connection.tls) == ('localhost', 7000, None, False)
    assert cache.Connection({'CACHE_REDIS': '/run/redis.sock'}).where == 'unix:/run/redis.sock'
    connection = cache.Connection({'CACHE_REDIS_HOST': 'r1', 'CACHE_REDIS_TLS__REJECT_UNAUTHORIZED': False,
                                   'CACHE_REDIS_TLS__SERVERNAME': 'cache.internal', 'CACHE_REDIS_PASSWORD': 12345})
    assert (connection.host, connection.port, connection.tls, connection.verify, connection.server_name,
            connection.password) == ('r1', 6379, True, False, 'cache.internal', '12345')
    assert cache.namespaces({'CACHE_NAMESPACE': 42}) == ['42', '42_system', '42_schema_shared', '42_lock']
    with pytest.raises(CairnError, match='not a number'):
        cache.Connection({'CACHE_REDIS_PORT': 'six'})


def _certificates(directory):
    """A CA and a certificate for 127.0.0.1 signed by it (PEM files in ``directory``)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.timezone.utc)

    def made(subject, issuer, key, signer, ca, san=None):
        builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(key.public_key())
                   .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(hours=1))
                   .not_valid_after(now + datetime.timedelta(days=1))
                   .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
        if san:
            builder = builder.add_extension(x509.SubjectAlternativeName(san), critical=False)
        return builder.sign(signer, hashes.SHA256())

    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, 'cairn test CA')])
    ca = made(ca_name, ca_name, ca_key, ca_key, True)
    cert = made(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, '127.0.0.1')]), ca_name, key, ca_key, False,
                [x509.IPAddress(ipaddress.ip_address('127.0.0.1'))])
    paths = {name: os.path.join(directory, name + '.pem') for name in ('ca', 'cert', 'key')}
    for name, data in (('ca', ca.public_bytes(serialization.Encoding.PEM)),
                       ('cert', cert.public_bytes(serialization.Encoding.PEM)),
                       ('key', key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                 serialization.NoEncryption()))):
        with open(paths[name], 'wb') as handle:
            handle.write(data)
    return paths


def test_rediss_checks_the_certificate_against_the_ca_it_is_given():
    binary = shutil.which('redis-server')
    if binary is None:
        pytest.skip('redis-server is not installed')
    directory = tempfile.mkdtemp(prefix='cairn-redis-tls-')
    server = None
    try:
        paths = _certificates(directory)
        with socket.socket() as sock:
            sock.bind(('127.0.0.1', 0))
            port = sock.getsockname()[1]
        server = subprocess.Popen([binary, '--port', '0', '--tls-port', str(port), '--bind', '127.0.0.1',
                                   '--tls-cert-file', paths['cert'], '--tls-key-file', paths['key'],
                                   '--tls-ca-cert-file', paths['ca'], '--tls-auth-clients', 'no', '--save', '',
                                   '--appendonly', 'no', '--dir', directory, '--requirepass', 'Tls-Secret-Pw-5'],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        values = {'CACHE_STORE': 'redis', 'CACHE_REDIS': 'rediss://:Tls-Secret-Pw-5@127.0.0.1:%d' % port}
        deadline = time.monotonic() + 20
        while True:  # up once it answers (over TLS, with the certificate not yet trusted)
            try:
                cache.clear(dict(values, CACHE_REDIS=None, CACHE_REDIS_HOST='127.0.0.1', CACHE_REDIS_PORT=port,
                                 CACHE_REDIS_PASSWORD='Tls-Secret-Pw-5', CACHE_REDIS_TLS__REJECT_UNAUTHORIZED=False))
                break
            except CairnError:
                assert time.monotonic() < deadline and server.poll() is None, 'redis-server with TLS did not start'
                time.sleep(0.1)
        # the system's CAs do not know the test's CA
        with pytest.raises(CairnError, match='TLS with the CMS\'s Redis at rediss://127.0.0.1:%d/0 failed.*'
                                             'CERTIFICATE_VERIFY_FAILED' % port) as caught:
            cache.clear(values)
        assert 'Tls-Secret-Pw-5' not in caught.value.message
        with open(paths['ca'], encoding='ascii') as handle:
            ca = handle.read()
        trusted = {'CACHE_STORE': 'redis', 'CACHE_REDIS_HOST': '127.0.0.1', 'CACHE_REDIS_PORT': port,
                   'CACHE_REDIS_PASSWORD': 'Tls-Secret-Pw-5', 'CACHE_REDIS_TLS__CA': ca}
        assert cache.clear(trusted)['server'] == 'rediss://127.0.0.1:%d/0' % port
    finally:
        if server is not None:
            server.kill()
            server.wait()
        shutil.rmtree(directory, ignore_errors=True)
