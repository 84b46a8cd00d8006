# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A local stand-in for Cloudinary, written from its documented APIs (no Cloudinary emulator exists).

An in-memory, threaded ``http.server`` on a free 127.0.0.1 port with clouds of ``upload``-type assets:

* Admin API ``GET {api_url}/v1_1/<cloud>/resources/<type>/upload`` with Basic auth (api_key:api_secret),
  ``prefix``, ``max_results`` capped at ``page_size`` (small, so that clients must follow ``next_cursor``);
* Upload API ``POST {api_url}/v1_1/<cloud>/<type>/upload`` (multipart; the signature over the sorted
  parameters minus file, cloud_name, resource_type and api_key, plus the secret, SHA-1 or SHA-256 in hex;
  stale timestamps refused; chunked with ``X-Unique-Upload-Id`` and ``Content-Range``, at least 5 MB a
  chunk but the last) and ``POST .../<type>/destroy`` (signed, form-encoded);
* delivery ``GET {delivery_url}/<cloud>/<type>/upload/[s--SIG--/][v<version>/]<public_id>[.<format>]``:
  ``authenticated`` assets need a signed URL (8 URL-safe base64 characters of SHA-1 or SHA-256 over what
  follows the signature, plus the secret); a wrong signature is refused with 401 and ``X-Cld-Error``.

Wrong credentials get 401 with Cloudinary's JSON error shape. ``fail_next(n, status)`` makes the next
``n`` requests fail (429 with ``Retry-After``, or 5xx) to exercise retries. What it does not do:
transformations, format conversion (an image is delivered only under its own format), content-based
format detection (the format is the uploaded file name's extension, ``jpeg``/``jpe`` -> ``jpg``,
``tif`` -> ``tiff``), rate limits, any other API.

    with FakeCloudinary() as server:
        server.add_cloud('demo', '123456789012345', 'secret')
        server.api_url, server.delivery_url
        server.put('demo', 'image', 'sample', b'...', 'png')   # seed an asset directly
        server.assets('demo')   # {(resource_type, public_id): Asset}
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.server
import json
import re
import threading
import time
import urllib.parse

from _emulator import InProcessServer

MIN_CHUNK = 5 * 1024 * 1024
FORMAT_ALIASES = {'jpeg': 'jpg', 'jpe': 'jpg', 'tif': 'tiff'}
_SIGNATURE_EXCLUDED = ('file', 'cloud_name', 'resource_type', 'api_key', 'signature')
_DELIVERY = re.compile(r'^/(?P<cloud>[^/]+)/(?P<kind>image|video|raw)/upload/'
                       r'(?:(?P<signature>s--[A-Za-z0-9_-]+--)/)?(?:v\d+/)?(?P<path>.+)$')


class Asset:
    def __init__(self, kind, public_id, data, fmt, access_mode='public', created=None):
        self.kind = kind
        self.public_id = public_id
        self.data = data
        self.format = fmt
        self.access_mode = access_mode
        self.created = int(created if created is not None else time.time())

    def resource(self, cloud, base):
        path = self.public_id + ('.' + self.format if self.format and self.kind != 'raw' else '')
        url = '%s/%s/%s/upload/v%d/%s' % (base, cloud, self.kind, self.created, path)
        return {'public_id': self.public_id, 'format': self.format if self.kind != 'raw' else None,
                'version': self.created, 'resource_type': self.kind, 'type': 'upload',
                'created_at': time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(self.created)),
                'bytes': len(self.data), 'access_mode': self.access_mode, 'url': url, 'secure_url': url}


def _api_signature_ok(params, secret, signature):
    payload = '&'.join('%s=%s' % (key, params[key]) for key in sorted(params) if key not in _SIGNATURE_EXCLUDED)
    digest = hashlib.sha1 if len(signature or '') == 40 else hashlib.sha256
    return hmac.compare_digest(digest((payload + secret).encode('utf-8')).hexdigest(), signature or '')


def _url_signature_ok(path, secret, component):
    for digest in (hashlib.sha1, hashlib.sha256):
        expected = 's--%s--' % base64.urlsafe_b64encode(digest((path + secret).encode('utf-8')).digest()).decode()[:8]
        if hmac.compare_digest(expected, component):
            return True
    return False


class FakeCloudinary(InProcessServer):
    thread_name = 'fake-cloudinary'

    def __init__(self, page_size=2):
        super().__init__()
        self.page_size = page_size
        self.clouds = {}
        self.lock = threading.Lock()
        self.calls = []           # (method, kind of call, cloud)
        self._faults = []         # statuses for the next requests
        self._chunks = {}         # X-Unique-Upload-Id -> {'parts': {offset: bytes}, 'total': int or None}

    # -- control ----------------------------------------------------------------------------------

    def add_cloud(self, name, api_key, api_secret):
        with self.lock:
            self.clouds[name] = {'api_key': api_key, 'api_secret': api_secret, 'assets': {}}

    def put(self, cloud, kind, public_id, data, fmt=None, access_mode='public', created=None):
        with self.lock:
            self.clouds[cloud]['assets'][(kind, public_id)] = Asset(kind, public_id, data, fmt, access_mode, created)

    def assets(self, cloud):
        with self.lock:
            return dict(self.clouds[cloud]['assets'])

    def fail_next(self, count, status=503):
        with self.lock:
            self._faults.extend([status] * count)

    def count(self, kind):
        with self.lock:
            return sum(1 for call in self.calls if call[1] == kind)

    @property
    def base_url(self):
        return self.origin

    @property
    def api_url(self):
        return self.base_url + '/api'

    @property
    def delivery_url(self):
        return self.base_url + '/res'

    def handler(self):
        return type('Handler', (_Handler,), {'server_state': self})


class _Handler(http.server.BaseHTTPRequestHandler):
    server_state = None
    protocol_version = 'HTTP/1.1'

    def log_message(self, *args):
        pass

    # -- responses --------------------------------------------------------------------------------

    def _send(self, status, body, content_type='application/json', headers=None):
        data = json.dumps(body).encode() if content_type == 'application/json' else body
        self.send_response(status)
        self.send_header('Content-Type', content_type)
        self.send_header('Content-Length', str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != 'HEAD':
            self.wfile.write(data)

    def _error(self, status, message, headers=None):
        self._send(status, {'error': {'message': message}}, headers=headers)

    def _fault(self):
        state = self.server_state
        with state.lock:
            status = state._faults.pop(0) if state._faults else None
        if status is None:
            return False
        self._body()
        self._error(status, 'Injected failure', {'Retry-After': '0'} if status == 429 else None)
        return True

    def _body(self):
        length = int(self.headers.get('Content-Length') or 0)
        return self.rfile.read(length) if length else b''

    def _cloud(self, name):
        cloud = self.server_state.clouds.get(name)
        if cloud is None:
            self._error(404, 'Unknown cloud %s' % name)
        return cloud

    # -- routing ----------------------------------------------------------------------------------

    def do_GET(self):
        if self._fault():
            return
        path, _sep, query = self.path.partition('?')
        parts = path.split('/')
        if path.startswith('/api/v1_1/') and len(parts) == 7 and parts[4] == 'resources' and parts[6] == 'upload':
            return self._list(parts[3], parts[5], urllib.parse.parse_qs(query))
        if path.startswith('/res/'):
            return self._deliver(urllib.parse.unquote(path[len('/res'):]))
        self._error(404, 'No route %s' % path)

    def do_POST(self):
        if self._fault():
            return
        parts = self.path.split('?')[0].split('/')
        if self.path.startswith('/api/v1_1/') and len(parts) == 6 and parts[5] in ('upload', 'destroy'):
            if parts[4] not in ('image', 'video', 'raw'):
                self._body()
                return self._error(400, 'Invalid resource type %s' % parts[4])
            return (self._upload if parts[5] == 'upload' else self._destroy)(parts[3], parts[4])
        self._body()
        self._error(404, 'No route %s' % self.path)

    # -- Admin API --------------------------------------------------------------------------------

    def _list(self, cloud_name, kind, query):
        state = self.server_state
        cloud = self._cloud(cloud_name)
        if cloud is None:
            return
        expected = 'Basic ' + base64.b64encode(('%s:%s' % (cloud['api_key'], cloud['api_secret'])).encode()).decode()
        if not hmac.compare_digest(self.headers.get('Authorization') or '', expected):
            return self._error(401, 'Invalid credentials')
        if kind not in ('image', 'video', 'raw'):
            return self._error(400, 'Invalid resource type %s' % kind)
        with state.lock:
            state.calls.append(('GET', 'list', cloud_name))
            prefix = (query.get('prefix') or [''])[0]
            found = sorted((asset for (asset_kind, pid), asset in cloud['assets'].items()
                            if asset_kind == kind and pid.startswith(prefix)), key=lambda asset: asset.public_id)
        size = min(int((query.get('max_results') or ['10'])[0]), state.page_size)
        cursor = (query.get('next_cursor') or [''])[0]
        start = 0
        if cursor:
            after = base64.urlsafe_b64decode(cursor.encode()).decode()
            start = next((index for index, asset in enumerate(found) if asset.public_id > after), len(found))
        page = found[start:start + size]
        body = {'resources': [asset.resource(cloud_name, state.delivery_url) for asset in page]}
        if start + size < len(found):
            body['next_cursor'] = base64.urlsafe_b64encode(page[-1].public_id.encode()).decode()
        self._send(200, body)

    # -- Upload API -------------------------------------------------------------------------------

    def _check_signature(self, cloud, params):
        if params.get('api_key') != cloud['api_key']:
            self._error(401, 'Unknown API key %s' % params.get('api_key'))
            return False
        if not _api_signature_ok(params, cloud['api_secret'], params.get('signature')):
            self._error(401, 'Invalid Signature %s' % params.get('signature'))
            return False
        try:
            stamp = int(params.get('timestamp'))
        except (TypeError, ValueError):
            self._error(400, 'Missing required parameter - timestamp')
            return False
        if abs(time.time() - stamp) > 3600:
            self._error(400, 'Stale request - reported time is %d which is more than 1 hour ago' % stamp)
            return False
        return True

    def _form(self):
        """The fields of a multipart or form-encoded body, and the uploaded (filename, bytes) if any."""
        body = self._body()
        content_type = self.headers.get('Content-Type') or ''
        if not content_type.startswith('multipart/form-data'):
            return {key: values[0] for key, values in urllib.parse.parse_qs(body.decode('utf-8')).items()}, None
        boundary = re.search(r'boundary=("?)([^";]+)\1', content_type).group(2).encode()
        params, upload = {}, None
        for part in body.split(b'--' + boundary)[1:]:
            if part.startswith(b'--'):
                break
            head, _sep, payload = part[2:].partition(b'\r\n\r\n')
            payload = payload[:-2] if payload.endswith(b'\r\n') else payload
            disposition = next(line for line in head.decode('utf-8').split('\r\n')
                               if line.lower().startswith('content-disposition'))
            field = re.search(r'\bname="([^"]*)"', disposition).group(1)
            filename = re.search(r'\bfilename="([^"]*)"', disposition)
            if filename:
                upload = (filename.group(1), payload)
            else:
                params[field] = payload.decode('utf-8')
        return params, upload

    def _upload(self, cloud_name, kind):
        state = self.server_state
        params, upload = self._form()
        cloud = self._cloud(cloud_name)
        if cloud is None or not self._check_signature(cloud, params):
            return
        if upload is None:
            return self._error(400, 'Missing required parameter - file')
        filename, data = upload
        if params.get('type', 'upload') != 'upload':
            return self._error(400, 'This stand-in keeps upload-type assets only')
        if params.get('access_mode', 'public') not in ('public', 'authenticated'):
            return self._error(400, 'Invalid access_mode %s' % params.get('access_mode'))
        content_range = self.headers.get('Content-Range')
        if content_range:
            match = re.match(r'^bytes (\d+)-(\d+)/(\d+|-1)$', content_range)
            upload_id = self.headers.get('X-Unique-Upload-Id')
            if not match or not upload_id:
                return self._error(400, 'Chunked upload needs Content-Range and X-Unique-Upload-Id')
            first, last, total = int(match.group(1)), int(match.group(2)), int(match.group(3))
            if last - first + 1 != len(data):
                return self._error(400, 'Content-Range does not match the chunk size')
            with state.lock:
                state.calls.append(('POST', 'chunk', cloud_name))
                pending = state._chunks.setdefault(upload_id, {'parts': {}, 'total': None})
                pending['parts'][first] = data
                if total >= 0:
                    pending['total'] = total
                received = sum(len(part) for part in pending['parts'].values())
                complete = pending['total'] is not None and received >= pending['total']
                if complete:
                    del state._chunks[upload_id]
            if not complete:
                return self._send(200, {'done': False, 'bytes': received})
            offsets = sorted(pending['parts'])
            data = b''.join(pending['parts'][offset] for offset in offsets)
            if any(len(pending['parts'][offset]) < MIN_CHUNK for offset in offsets[:-1]):
                return self._error(400, 'Chunk size should be at least 5MB except for the last chunk')
            if offsets != sorted(set(offsets)) or len(data) != pending['total']:
                return self._error(400, 'Chunks do not add up to the total')
        else:
            with state.lock:
                state.calls.append(('POST', 'upload', cloud_name))
        if not data:
            return self._error(400, 'Empty file')
        public_id = params.get('public_id') or hashlib.sha1(data).hexdigest()[:20]
        extension = filename.rsplit('.', 1)[-1].lower() if '.' in filename else ''
        fmt = FORMAT_ALIASES.get(extension, extension) if kind != 'raw' else None
        if kind != 'raw' and not fmt:
            return self._error(400, 'Invalid image file')
        asset = Asset(kind, public_id, data, fmt, params.get('access_mode', 'public'))
        with state.lock:
            cloud['assets'][(kind, public_id)] = asset
        self._send(200, asset.resource(cloud_name, state.delivery_url))

    def _destroy(self, cloud_name, kind):
        state = self.server_state
        params, _upload = self._form()
        cloud = self._cloud(cloud_name)
        if cloud is None or not self._check_signature(cloud, params):
            return
        with state.lock:
            state.calls.append(('POST', 'destroy', cloud_name))
            found = cloud['assets'].pop((kind, params.get('public_id')), None)
        self._send(200, {'result': 'ok' if found else 'not found'})

    # -- delivery ---------------------------------------------------------------------------------

    def _deliver(self, path):
        state = self.server_state
        match = _DELIVERY.match(path)
        if not match:
            return self._send(404, b'', 'text/plain', {'X-Cld-Error': 'Resource not found'})
        cloud = state.clouds.get(match.group('cloud'))
        kind, rest = match.group('kind'), match.group('path')
        if cloud is None:
            return self._send(404, b'', 'text/plain', {'X-Cld-Error': 'Unknown cloud'})
        with state.lock:
            state.calls.append(('GET', 'deliver', match.group('cloud')))
            if kind == 'raw':
                asset, fmt = cloud['assets'].get(('raw', rest)), None
            else:
                stem, _dot, fmt = rest.rpartition('.')
                asset = cloud['assets'].get((kind, stem)) if stem else None
        if asset is None:
            return self._send(404, b'', 'text/plain', {'X-Cld-Error': 'Resource not found - %s' % rest})
        signature = match.group('signature')
        if signature and not _url_signature_ok(rest, cloud['api_secret'], signature):
            return self._send(401, b'', 'text/plain', {'X-Cld-Error': 'Invalid signature'})
        if asset.access_mode == 'authenticated' and not signature:
            return self._send(401, b'', 'text/plain', {'X-Cld-Error': 'Authenticated asset: signature required'})
        if kind != 'raw' and FORMAT_ALIASES.get(fmt, fmt) != asset.format:
            return self._send(400, b'', 'text/plain', {'X-Cld-Error': 'This stand-in does not convert formats'})
        self._send(200, asset.data, 'application/octet-stream')
