# -*- coding: utf-8 -*-
# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Cloudinary storage (STORAGE_<LOC>_DRIVER=cloudinary) over Cloudinary's HTTP APIs (private).

Names are ``filename_disk`` values, mapped to Cloudinary assets exactly as
CairnCMS's driver (``@directus/storage-driver-cloudinary`` 10.0.0) maps them:

* the resource type comes from the extension, case-sensitively: one of the
  driver's image extensions -> ``image``, video extensions -> ``video``, anything
  else (no extension, ``.JPG``, ``.txt``) -> ``raw``;
* the full path is ``STORAGE_<LOC>_ROOT`` joined with the name; a ``raw`` asset's
  public_id is that full path (extension included), an image's or video's is the
  last part of it without the extension: the driver drops both the root and the
  extension there, so ``<root>/<id>.png`` is the image ``<id>`` at the top level.

A listing (Admin API, ``next_cursor`` pages, Basic auth) therefore yields
``<public_id>`` for raw assets under the root and ``<public_id>.<format>`` for
top-level images and videos; assets CairnCMS cannot address (nested images, a
format outside the driver's lists, raw assets outside the root) are not part of
the location. A restore uploads every file (Upload API, signed, in chunks when
large) under the public_id and resource type CairnCMS derives from its
``filename_disk``, which is what makes the restored ``directus_files`` rows find
their assets again. Reads go to the delivery URL with a URL signature, as
CairnCMS reads. Requests are retried on 429, 5xx and connection errors; every
failure becomes one ``CairnError`` ("Failed to <verb> cloudinary://cloud/name:
<cause>") without the API secret.
"""

from __future__ import annotations

import base64
import calendar
import hashlib
import http.client
import json
import os
import posixpath
import secrets
import socket
import time
import urllib.error
import urllib.parse
import urllib.request

from ansible_collections.cairncms.ops.plugins.module_utils._common import CairnError
from ansible_collections.cairncms.ops.plugins.module_utils._storage._base import (
    Entry, ObjectStore, SdkReader, UploadOnCommit)

# The driver's constants (dist/constants.js of @directus/storage-driver-cloudinary 10.0.0).
IMAGE_EXTENSIONS = frozenset((
    '.ai', '.avif', '.png', '.webp', '.bmp', '.bw', '.dfvu', '.ps', '.ept', '.eps', '.eps3', '.fbx', '.flif', '.gif',
    '.glb', '.gltf', '.heif', '.heic', '.ico', '.indd', '.jpg', '.jpe', '.jpeg', '.jp2', '.wdp', '.jxr', '.hdp', '.obj',
    '.pdf', '.ply', '.psd', '.arw', '.cr2', '.svg', '.tga', '.tif', '.tiff', '.u3ma', '.usdz'))
VIDEO_EXTENSIONS = frozenset((
    '.3g2', '.3gp', '.avi', '.flv', '.m3u8', '.ts', '.m2ts', '.mts', '.mov', '.mkv', '.mp4', '.mpeg', '.mpd', '.mxf',
    '.ogv', '.webm', '.wmv'))
RESOURCE_TYPES = ('image', 'video', 'raw')

PAGE_SIZE = 500                    # the Admin API's maximum max_results
CHUNK_BYTES = 8 * 1024 * 1024      # larger files go in chunks (Cloudinary wants at least 5 MB per chunk)
RETRY_ATTEMPTS = 4
RETRY_DELAY_S = 0.5                # doubled after every attempt
RETRY_AFTER_MAX_S = 30
TIMEOUT_S = 120
_TRANSIENT = (urllib.error.URLError, http.client.HTTPException, ConnectionError, socket.timeout)

# STORAGE_<LOC>_* variables of a cloudinary location, by option name; API_URL and DELIVERY_URL are read by
# cairncms.ops only (CairnCMS always talks to api.cloudinary.com and res.cloudinary.com): for private CNAMEs,
# proxies and the tests.
VARIABLES = {'cloud_name': 'CLOUD_NAME', 'api_key': 'API_KEY', 'api_secret': 'API_SECRET',
             'access_mode': 'ACCESS_MODE', 'root': 'ROOT', 'api_url': 'API_URL', 'delivery_url': 'DELIVERY_URL'}
ACCESS_MODES = ('public', 'authenticated')


def resource_type(path):
    extension = posixpath.splitext(path)[1]
    if extension in IMAGE_EXTENSIONS:
        return 'image'
    if extension in VIDEO_EXTENSIONS:
        return 'video'
    return 'raw'


def public_id(path):
    """The public_id CairnCMS gives the asset at ``path`` (root included)."""
    if resource_type(path) == 'raw':
        return path
    return posixpath.splitext(posixpath.basename(path))[0]


def api_signature(params, secret):
    """The Upload API signature: the parameters sorted by name as ``k=v`` joined by ``&``, the secret
    appended, SHA-256 in hex (CairnCMS's choice; Cloudinary accepts SHA-1 and SHA-256)."""
    payload = '&'.join('%s=%s' % (key, params[key]) for key in sorted(params))
    return hashlib.sha256((payload + secret).encode('utf-8')).hexdigest()


def url_signature(path, secret):
    """The ``s--XXXXXXXX--`` component of a signed delivery URL, over what follows it, as CairnCMS signs."""
    digest = hashlib.sha256((path + secret).encode('utf-8')).digest()
    return 's--%s--' % base64.urlsafe_b64encode(digest).decode('ascii')[:8]


class CloudinaryHttpError(Exception):
    def __init__(self, status, message, attempts=1):
        super().__init__('%s (HTTP %d%s)' % (message, status, ', after %d attempts' % attempts if attempts > 1 else ''))
        self.status = status


def _message(exc):
    """Cloudinary's own words for an HTTP error: the JSON error message, else X-Cld-Error, else the reason."""
    try:
        body = exc.read(64 * 1024)
        message = json.loads(body.decode('utf-8'))['error']['message']
        if message:
            return str(message)
    except Exception:  # not JSON, or not Cloudinary's error shape
        pass
    return exc.headers.get('X-Cld-Error') or exc.reason or 'HTTP error'


def _retry_after(exc):
    try:
        return min(float(exc.headers.get('Retry-After')), RETRY_AFTER_MAX_S)
    except (TypeError, ValueError):
        return None


def _mtime_ns(created_at):
    """``created_at`` (ISO 8601, UTC, to the second) as nanoseconds."""
    if not created_at:
        return 0
    return calendar.timegm(time.strptime(str(created_at)[:19], '%Y-%m-%dT%H:%M:%S')) * 1000000000


def _multipart(fields, filename, data):
    boundary = 'cairn-%s' % secrets.token_hex(16)
    parts = []
    for key, value in fields.items():
        parts.append(('--%s\r\nContent-Disposition: form-data; name="%s"\r\n\r\n%s\r\n'
                      % (boundary, key, value)).encode('utf-8'))
    parts.append(('--%s\r\nContent-Disposition: form-data; name="file"; filename="%s"\r\n'
                  'Content-Type: application/octet-stream\r\n\r\n' % (boundary, filename.replace('"', '_'))).encode('utf-8'))
    parts.append(data)
    parts.append(('\r\n--%s--\r\n' % boundary).encode('ascii'))
    return b''.join(parts), 'multipart/form-data; boundary=%s' % boundary


class CloudinaryStorage(ObjectStore):
    driver = 'cloudinary'
    scheme = 'cloudinary'
    place_option = 'cloud_name'
    secret_option = 'api_secret'

    # -- the driver's configuration ---------------------------------------------------------------

    @classmethod
    def options_from_env(cls, config, prefix):
        """As CairnCMS's Cloudinary driver (Directus 10.0.0) reads them: CLOUD_NAME, API_KEY and API_SECRET are
        needed (the driver has no other way to authenticate), ROOT is normalised as the driver does (no leading,
        trailing or doubled slashes), ACCESS_MODE is sent with every upload. API_URL and DELIVERY_URL replace
        https://api.cloudinary.com and https://res.cloudinary.com."""
        options = config.texts(prefix, VARIABLES)
        for option, what, overrides in (('cloud_name', 'cloud name', 'cairn_env_overrides'),
                                        ('api_key', 'API key', 'cairn_env_secret_overrides'),
                                        ('api_secret', 'API secret', 'cairn_env_secret_overrides')):
            if not options[option]:
                raise CairnError('%s%s is not set in %s; a cloudinary storage location needs its %s (the Cloudinary '
                                 'console shows it under Settings > API Keys); set it there or in %s'
                                 % (prefix, VARIABLES[option], config.where, what, overrides))
        if options['access_mode'] is not None and options['access_mode'] not in ACCESS_MODES:
            raise CairnError('%sACCESS_MODE=%s is not a Cloudinary access mode; set it to public or authenticated'
                             % (prefix, options['access_mode']))
        for option, default in (('api_url', 'https://api.cloudinary.com'),
                                ('delivery_url', 'https://res.cloudinary.com')):
            url = options[option] or default
            if '://' not in url:
                url = 'https://' + url
            options[option] = url.rstrip('/')
        root = posixpath.normpath('/' + (options['root'] or '').replace('\\', '/'))
        options['root'] = root.strip('/')
        return options

    @classmethod
    def describe_options(cls, options):
        described = {key: options.get(key) for key in ('cloud_name', 'access_mode', 'api_url', 'delivery_url')}
        described['credentials'] = 'configured'
        return described

    identity_options = ('cloud_name', 'root')

    # -- the backend ------------------------------------------------------------------------------

    def __init__(self, location):
        super().__init__(location)
        options = location.options
        self.root = (options.get('root') or '').strip('/')
        self.api_url = '%s/v1_1/%s' % (options['api_url'], urllib.parse.quote(self.place, safe=''))
        self.delivery_url = '%s/%s' % (options['delivery_url'], urllib.parse.quote(self.place, safe=''))
        self._index = None
        self._opener = urllib.request.build_opener()

    # -- the mapping ------------------------------------------------------------------------------

    def full_path(self, name):
        path = posixpath.normpath(posixpath.join(self.root, name)) if self.root else posixpath.normpath(name)
        return path.lstrip('/')

    def address(self, name):
        """(resource_type, public_id) of the asset CairnCMS keeps ``name`` in."""
        path = self.full_path(name)
        return resource_type(path), public_id(path)

    def name_of(self, kind, resource):
        """The ``filename_disk`` of a listed asset, or None when CairnCMS cannot address it."""
        asset = resource.get('public_id') or ''
        if kind == 'raw':
            if not asset.startswith(self.prefix):
                return None
            name = asset[len(self.prefix):]
        else:
            if not resource.get('format'):
                return None
            name = '%s.%s' % (asset, resource['format'])
        if not name or self.address(name) != (kind, asset):
            return None
        return name

    # -- plumbing ---------------------------------------------------------------------------------

    def is_sdk_error(self, exc):
        return isinstance(exc, (CloudinaryHttpError,) + _TRANSIENT)

    def cause(self, exc):
        if isinstance(exc, urllib.error.URLError) and not isinstance(exc, urllib.error.HTTPError):
            return str(exc.reason)
        return str(exc) or exc.__class__.__name__

    def _send(self, method, url, data=None, headers=None, accept=(), auth=False):
        """One HTTP exchange, retried on 429, 5xx and connection errors. Returns the open response;
        statuses in ``accept`` come back as responses too, other errors raise."""
        headers = dict(headers or {})
        if auth:
            options = self.location.options
            token = base64.b64encode(('%s:%s' % (options['api_key'], options['api_secret'])).encode('utf-8'))
            headers['Authorization'] = 'Basic ' + token.decode('ascii')
        delay = RETRY_DELAY_S
        for attempt in range(1, RETRY_ATTEMPTS + 1):
            wait = delay
            request = urllib.request.Request(url, data=data, headers=headers, method=method)
            try:
                return self._opener.open(request, timeout=TIMEOUT_S)
            except urllib.error.HTTPError as exc:
                if exc.code in accept:
                    return exc
                transient = exc.code == 429 or exc.code >= 500
                error = CloudinaryHttpError(exc.code, _message(exc), attempt)
                wait = _retry_after(exc) if _retry_after(exc) is not None else delay
                exc.close()
                if not transient or attempt == RETRY_ATTEMPTS:
                    raise error
            except _TRANSIENT as exc:
                if attempt == RETRY_ATTEMPTS:
                    reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
                    raise urllib.error.URLError('%s (after %d attempts)' % (reason, attempt))
            time.sleep(wait)
            delay *= 2
        raise AssertionError('unreachable')

    def _json(self, method, url, **kwargs):
        with self._send(method, url, **kwargs) as response:
            return json.loads(response.read().decode('utf-8'))

    def _signed(self, params):
        params = dict(params, timestamp=str(int(time.time())))
        options = self.location.options
        signed = dict(params, signature=api_signature(params, options['api_secret']))
        signed['api_key'] = options['api_key']
        return signed

    def _resources(self, kind):
        """Every ``upload``-type asset of one resource type, page by page."""
        query = {'max_results': PAGE_SIZE}
        if kind == 'raw' and self.prefix:
            query['prefix'] = self.prefix
        while True:
            page = self._json('GET', '%s/resources/%s/upload?%s' % (self.api_url, kind, urllib.parse.urlencode(query)),
                              auth=True)
            yield from page.get('resources') or ()
            if not page.get('next_cursor'):
                return
            query['next_cursor'] = page['next_cursor']

    # -- the interface ----------------------------------------------------------------------------

    def list(self, under=''):
        for entry in self._listing().values():
            if entry.name.startswith(under):
                yield entry

    def _listing(self):
        """``{(resource_type, public_id): Entry}`` of every asset of the location."""
        index = {}
        with self._errors('list'):
            for kind in RESOURCE_TYPES:
                for resource in self._resources(kind):
                    name = self.name_of(kind, resource)
                    if name is not None:
                        index[(kind, resource['public_id'])] = Entry(
                            name, int(resource.get('bytes') or 0), _mtime_ns(resource.get('created_at')))
        self._index = index
        return index

    def stat(self, name):
        """From one listing of the location (a few Admin API calls, not one per file: the Admin API is
        rate-limited per hour), kept until this backend writes or deletes. A name resolves to its asset
        whatever its extension spelling (``x.jpeg`` finds the image ``x`` listed as ``x.jpg``)."""
        index = self._index
        if index is None:
            index = self._listing()
        found = index.get(self.address(name))
        return None if found is None else Entry(name, found.size, found.mtime_ns)

    def open_read(self, name):
        kind, asset = self.address(name)
        path = asset if kind == 'raw' else asset + posixpath.splitext(name)[1]
        signature = url_signature(path, self.location.options['api_secret'])
        url = '%s/%s/upload/%s/%s' % (self.delivery_url, kind, signature, urllib.parse.quote(path, safe='/'))
        with self._errors('read', name):
            response = self._send('GET', url, accept=(404,))
        if response.getcode() == 404:
            response.close()
            raise self.missing(name)
        return SdkReader(self, name, response.read, response.close)

    def begin_write(self, name, mtime_ns=None):
        return UploadOnCommit(self, name)

    def upload(self, name, path):
        kind, asset = self.address(name)
        params = {'public_id': asset, 'type': 'upload'}
        if self.location.options.get('access_mode'):
            params['access_mode'] = self.location.options['access_mode']
        url = '%s/%s/upload' % (self.api_url, kind)
        filename = posixpath.basename(name)
        self._index = None
        with self._errors('upload', name):
            size = os.path.getsize(path)
            fields = self._signed(params)
            with open(path, 'rb') as handle:
                if size <= CHUNK_BYTES:
                    body, content_type = _multipart(fields, filename, handle.read())
                    result = self._json('POST', url, data=body, headers={'Content-Type': content_type})
                else:
                    upload_id = secrets.token_hex(16)
                    offset = 0
                    while offset < size:
                        chunk = handle.read(CHUNK_BYTES)
                        body, content_type = _multipart(fields, filename, chunk)
                        result = self._json('POST', url, data=body, headers={
                            'Content-Type': content_type, 'X-Unique-Upload-Id': upload_id,
                            'Content-Range': 'bytes %d-%d/%d' % (offset, offset + len(chunk) - 1, size)})
                        offset += len(chunk)
        if (result.get('public_id'), result.get('resource_type', kind)) != (asset, kind):
            raise CairnError('Failed to upload %s: Cloudinary stored it as %s %r, not as %s %r'
                             % (self._url(name), result.get('resource_type'), result.get('public_id'), kind, asset))

    def delete(self, name):
        kind, asset = self.address(name)
        self._index = None
        body = urllib.parse.urlencode(self._signed({'public_id': asset, 'type': 'upload', 'invalidate': 'true'}))
        with self._errors('delete', name):
            result = self._json('POST', '%s/%s/destroy' % (self.api_url, kind), data=body.encode('utf-8'),
                                headers={'Content-Type': 'application/x-www-form-urlencoded;charset=UTF-8'})
        if result.get('result') not in ('ok', 'not found'):
            raise CairnError('Failed to delete %s: Cloudinary answered %r' % (self._url(name), result.get('result')))


BACKEND = CloudinaryStorage
