# -*- coding: utf-8 -*-
# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Clear the CMS's Redis cache (private), as the CMS lays it out, and nothing else in that Redis.

CairnCMS (as Directus 10.0.0, ``api/dist/cache.js``) keeps its caches in keyv namespaces on ``CACHE_STORE``:
``<CACHE_NAMESPACE>`` (the data cache), ``<CACHE_NAMESPACE>_system``, ``<CACHE_NAMESPACE>_schema_shared`` and
``<CACHE_NAMESPACE>_lock`` (``_schema`` is always in the process's memory). keyv stores a value at
``<namespace>:<key>`` and @keyv/redis (2.5) lists the keys of a namespace in the set ``namespace:<namespace>``;
ioredis puts its ``keyPrefix`` before both. Those keys are found with SCAN MATCH and removed with UNLINK in
batches, never with FLUSHDB: other keys of the database stay.

The connection is read as the CMS reads it: ``CACHE_REDIS`` (a ``redis://`` or ``rediss://`` URL, or a socket
path), else the ``CACHE_REDIS_*`` variables as ioredis options (``CACHE_REDIS_HOST``, ``_PORT``, ``_PASSWORD``,
``_USERNAME``, ``_DB``, ``_PATH``, ``_KEY_PREFIX``, ``_TLS`` and ``_TLS__*``). The RESP2 client is this file's own,
over a socket (TLS for ``rediss://``); the password never leaves it, not in errors nor results.
"""

from __future__ import annotations

import re
import socket
import ssl
import urllib.parse

from ansible_collections.cairncms.ops.plugins.module_utils._common import CairnError

DEFAULT_NAMESPACE = 'system-cache'  # Directus 10.0.0 api/dist/env.js
SUFFIXES = ('', '_system', '_schema_shared', '_lock')
BATCH = 500
TIMEOUT = 30
MAX_REPLY = 512 * 1024 * 1024
_GLOB = re.compile(r'([\\*?\[\]])')
_SEPARATOR = re.compile(r'[_.\- ]+')


class _RedisError(Exception):
    """An error reply of the server (``-ERR ...``)."""


def _text(value):
    """A configuration value as the CMS would put it in a string (numbers without a trailing ``.0``)."""
    if isinstance(value, bool):
        return 'true' if value else 'false'
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _camel(name):
    """``KEY_PREFIX`` as the ``camelcase`` package makes it: ``keyPrefix``."""
    words = [word for word in _SEPARATOR.split(name.lower()) if word]
    return ''.join(words[:1] + [word[:1].upper() + word[1:] for word in words[1:]])


def _options_from_env(values):
    """The ioredis options the CMS builds from ``CACHE_REDIS_*`` (its ``getConfigFromEnv``)."""
    options = {}
    prefix = 'CACHE_REDIS_'
    for key, value in values.items():
        if not key.upper().startswith(prefix):
            continue
        path = key[len(prefix):].split('__')
        target = options
        for part in path[:-1]:
            target = target.setdefault(_camel(part), {})
            if not isinstance(target, dict):
                break
        else:
            target[_camel(path[-1])] = value
    return options


def _options_from_url(url):
    """The ioredis options of a ``CACHE_REDIS`` URL (its ``parseURL``): user, password, host, port, db (the path)
    or a socket path, and query parameters for what the URL does not say."""
    if isinstance(url, (int, float)) and not isinstance(url, bool):
        return {'port': int(url)}
    if not isinstance(url, str):
        raise CairnError('CACHE_REDIS is %s, not a Redis URL; the cache cannot be cleared (a cluster is not '
                         'supported)' % type(url).__name__)
    tls = url.startswith('rediss://')
    if '//' not in url and not url.startswith('/'):
        url = '//' + url
    parts = urllib.parse.urlsplit(url)
    options = {}
    if parts.username is not None or parts.password is not None:
        options['username'] = urllib.parse.unquote(parts.username or '')
        options['password'] = urllib.parse.unquote(parts.password or '')
    if parts.scheme in ('redis', 'rediss'):
        if len(parts.path) > 1:
            options['db'] = parts.path[1:]
    elif parts.path:
        options['path'] = parts.path
    try:
        if parts.hostname:
            options['host'] = parts.hostname
        if parts.port:
            options['port'] = parts.port
    except ValueError:
        raise CairnError('CACHE_REDIS does not name a valid port; fix the URL') from None
    for key, value in urllib.parse.parse_qsl(parts.query):
        options.setdefault(key, value)
    if tls:
        options['tls'] = options.get('tls') or True
    return options


class Connection:
    """Where the CMS's Redis is and how to log in, from its configuration values."""

    def __init__(self, values):
        url = values.get('CACHE_REDIS')
        options = _options_from_url(url) if url not in (None, '') else _options_from_env(values)
        if options.get('sentinels') or options.get('Connector'):
            raise CairnError('the CMS reaches its Redis through Sentinel (CACHE_REDIS_SENTINELS), which clearing its '
                             'cache does not support; clear the keys of its namespace by hand')
        self.host = _text(options.get('host') or 'localhost')
        try:
            self.port = int(options.get('port') or 6379)
            self.db = int(options.get('db') or 0)
        except (TypeError, ValueError):
            raise CairnError('the CMS\'s Redis port or database number (CACHE_REDIS, CACHE_REDIS_PORT, CACHE_REDIS_DB) '
                             'is not a number') from None
        self.path = _text(options['path']) if options.get('path') else None
        self.username = _text(options['username']) if options.get('username') not in (None, '') else None
        self.password = _text(options['password']) if options.get('password') not in (None, '') else None
        self.key_prefix = _text(options.get('keyPrefix') or '')
        tls = options.get('tls')
        self.tls = bool(tls) and tls != 'false'
        tls = tls if isinstance(tls, dict) else {}
        self.verify = tls.get('rejectUnauthorized') not in (False, 'false')
        self.ca = _text(tls['ca']) if tls.get('ca') else None
        self.server_name = _text(tls.get('servername') or self.host)

    @property
    def where(self):
        """Where it is, for messages: never the password."""
        if self.path:
            return 'unix:%s' % self.path
        return '%s%s:%d/%d' % ('rediss://' if self.tls else 'redis://', self.host, self.port, self.db)


class Client:
    """A RESP2 conversation with one Redis server."""

    def __init__(self, connection, timeout=TIMEOUT):
        self.connection = connection
        try:
            if connection.path:
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                sock.settimeout(timeout)
                sock.connect(connection.path)
            else:
                sock = socket.create_connection((connection.host, connection.port), timeout=timeout)
        except OSError as exc:
            raise CairnError('cannot connect to the CMS\'s Redis at %s (%s); is it running and reachable from this '
                             'host?' % (connection.where, exc.strerror or exc.__class__.__name__)) from None
        if connection.tls:
            context = ssl.create_default_context(cadata=connection.ca)
            if not connection.verify:
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
            try:
                sock = context.wrap_socket(sock, server_hostname=connection.server_name)
            except (ssl.SSLError, OSError) as exc:
                sock.close()
                raise CairnError('TLS with the CMS\'s Redis at %s failed (%s); give the CA that signed its '
                                 'certificate in CACHE_REDIS_TLS__CA' % (connection.where, exc)) from None
        self.sock = sock
        self.reader = sock.makefile('rb')

    def close(self):
        try:
            self.reader.close()
            self.sock.close()
        except OSError:
            pass

    def call(self, *args):
        """Send one command; its reply (bytes, int, None or a list). An error reply raises ``_RedisError``."""
        parts = [arg if isinstance(arg, bytes) else str(arg).encode('utf-8') for arg in args]
        message = b'*%d\r\n' % len(parts) + b''.join(b'$%d\r\n%s\r\n' % (len(part), part) for part in parts)
        try:
            self.sock.sendall(message)
            return self._reply()
        except (OSError, EOFError) as exc:
            raise CairnError('the connection to the CMS\'s Redis at %s failed during %s (%s)'
                             % (self.connection.where, _name(args), getattr(exc, 'strerror', None) or
                                exc.__class__.__name__)) from None

    def _line(self):
        line = self.reader.readline(65536)
        if not line.endswith(b'\r\n'):
            raise EOFError('the connection closed')
        return line[:-2]

    def _reply(self):
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind == b'+':
            return rest
        if kind == b'-':
            raise _RedisError(rest.decode('utf-8', 'replace'))
        if kind == b':':
            return int(rest)
        if kind in (b'$', b'*'):
            size = int(rest)
            if size < 0:
                return None
            if size > MAX_REPLY:
                raise CairnError('the CMS\'s Redis at %s answered a reply of %d bytes; is it Redis?'
                                 % (self.connection.where, size))
            if kind == b'*':
                return [self._reply() for _item in range(size)]
            data = self.reader.read(size + 2)
            if len(data) != size + 2:
                raise EOFError('the connection closed')
            return data[:-2]
        raise CairnError('the CMS\'s Redis at %s answered %r, which is no Redis reply'
                         % (self.connection.where, line[:40]))


def _name(args):
    return str(args[0]).upper() if args else 'a command'


def _masked(text, connection):
    return text.replace(connection.password, '********') if connection.password else text


def _login(client, connection):
    try:
        if connection.password is not None:
            client.call(*(['AUTH'] + ([connection.username] if connection.username else []) + [connection.password]))
        if connection.db:
            client.call('SELECT', connection.db)
        client.call('PING')
    except _RedisError as exc:
        raise CairnError('the CMS\'s Redis at %s refused us (%s); check CACHE_REDIS (or CACHE_REDIS_PASSWORD, '
                         'CACHE_REDIS_USERNAME, CACHE_REDIS_DB) in the instance\'s .env'
                         % (connection.where, _masked(str(exc), connection))) from None


def namespaces(values):
    """The keyv namespaces the CMS keeps in Redis for configuration ``values``."""
    base = _text(values.get('CACHE_NAMESPACE') if values.get('CACHE_NAMESPACE') not in (None, '')
                 else DEFAULT_NAMESPACE)
    return [base + suffix for suffix in SUFFIXES]


def patterns(namespace, key_prefix=''):
    """``(SCAN patterns, exact keys)`` of the keys of the CMS's caches in namespace ``namespace``."""
    names = [namespace + suffix for suffix in SUFFIXES]
    return ([_GLOB.sub(r'\\\1', key_prefix + name).encode('utf-8') + b':*' for name in names],
            [(key_prefix + 'namespace:' + name).encode('utf-8') for name in names])


def _remove(client, keys, check_mode):
    if not keys:
        return 0
    if check_mode:
        return client.call('EXISTS', *keys)
    try:
        return client.call('UNLINK', *keys)
    except _RedisError:  # before Redis 4
        return client.call('DEL', *keys)


def clear(values, check_mode=False, timeout=TIMEOUT):
    """Clear the CMS's cache described by configuration ``values`` (the instance's .env, processed): ``{store,
    namespace, keys_removed}`` (in check mode, the keys that would be removed). A memory store is cleared by the
    restart; memcache is not cleared here (its entries expire)."""
    store = _text(values.get('CACHE_STORE') or 'memory')
    namespace = namespaces(values)[0]
    if store == 'memory':
        return {'store': 'memory', 'namespace': namespace, 'keys_removed': 0, 'note': 'cleared by the restart'}
    if store != 'redis':
        return {'store': store, 'namespace': namespace, 'keys_removed': 0,
                'note': 'a %s cache is not cleared here: its entries stay until they expire (CACHE_TTL, '
                        'CACHE_SYSTEM_TTL)' % store}
    connection = Connection(values)
    scans, exact = patterns(namespace, connection.key_prefix)
    client = Client(connection, timeout)
    removed = 0
    try:
        _login(client, connection)
        seen = set()
        for pattern in scans:
            cursor = b'0'
            while True:
                reply = client.call('SCAN', cursor, 'MATCH', pattern, 'COUNT', BATCH)
                if not (isinstance(reply, list) and len(reply) == 2 and isinstance(reply[1], list)):
                    raise CairnError('the CMS\'s Redis at %s answered SCAN with no cursor and keys'
                                     % connection.where)
                cursor, keys = reply
                if check_mode:  # SCAN may repeat a key; nothing is removed meanwhile
                    keys = [key for key in keys if key not in seen]
                    seen.update(keys)
                removed += _remove(client, keys, check_mode)
                if cursor == b'0':
                    break
        removed += _remove(client, exact, check_mode)
    except _RedisError as exc:
        raise CairnError('the CMS\'s Redis at %s refused to list or remove the keys of namespace %s (%s)'
                         % (connection.where, namespace, _masked(str(exc), connection))) from None
    finally:
        client.close()
    return {'store': 'redis', 'namespace': namespace, 'keys_removed': removed, 'server': connection.where}
