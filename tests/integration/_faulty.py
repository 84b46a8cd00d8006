# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A fault-injecting HTTP reverse proxy for the tests, in front of an object-store emulator.

It forwards every request faithfully (method, path and query, headers, the body streamed both
ways; one request per connection) and answers some of them with a fault instead, by rules:

    with FaultyProxy(s3_server.endpoint) as proxy:
        rule = proxy.add(Rule('GET', r'^/bucket/cms/', after=3, times=2, action=503))
        ...                       # the 4th and 5th matching GET get a 503, the rest pass
        rule.matched, rule.faulted

``Rule(method, path, after=N, times=K, action=A)``: of the requests whose method and request
target (path with query) match the regular expressions, the first N pass, the next K are
answered with A, the rest pass again; ``times=None`` faults forever (a persistent failure).
A is an HTTP status (503, 500, ...), ``'reset'`` (the connection is reset before any
answer) or ``'reset-mid-body'`` (the real answer starts, half of its body is sent, then the
connection is reset). The first rule that faults a request wins; every rule counts every
request it matches.

The Host header is passed as the client sent it (clients sign it). fake-gcs-server puts its
own address into the links it returns (mediaLink, the Location of a resumable upload); with
``rewrite_links=True`` the proxy rewrites the emulator's address to its own in Location headers
and in JSON answers (object media, ``alt=media``, is never touched), so that the client keeps
coming back through the proxy. Every request's Authorization header is kept, in order, in
``proxy.authorizations``.
"""

from __future__ import annotations

import http
import http.client
import http.server
import re
import socket
import struct
import sys
import threading
import urllib.parse

from _emulator import InProcessServer

CHUNK = 64 * 1024
HOP_BY_HOP = {'connection', 'keep-alive', 'proxy-authenticate', 'proxy-authorization', 'te', 'trailer',
              'transfer-encoding', 'upgrade', 'proxy-connection'}
RESET, RESET_MID_BODY = 'reset', 'reset-mid-body'


class Rule:
    def __init__(self, method='.*', path='.*', after=0, times=None, action=503):
        if not (isinstance(action, int) or action in (RESET, RESET_MID_BODY)):
            raise ValueError('action must be an HTTP status, %r or %r' % (RESET, RESET_MID_BODY))
        self.method = re.compile(method)
        self.path = re.compile(path)
        self.after = after
        self.times = times
        self.action = action
        self.matched = 0   # requests that matched
        self.faulted = 0   # of those, the ones answered with the fault
        self.targets = []  # (method, target, faulted) of every matching request, in order

    def matches(self, method, target):
        return bool(self.method.fullmatch(method) and self.path.search(target))

    def count(self, method, target, taken):
        """Count a matching request; whether this rule faults it (``taken``: an earlier rule does)."""
        self.matched += 1
        fault = (not taken and self.matched > self.after
                 and (self.times is None or self.matched <= self.after + self.times))
        if fault:
            self.faulted += 1
        self.targets.append((method, target, fault))
        return fault

    def __repr__(self):
        return 'Rule(%s %s after=%d times=%s action=%s: matched %d, faulted %d)' % (
            self.method.pattern, self.path.pattern, self.after, self.times, self.action, self.matched, self.faulted)


class _Server(http.server.ThreadingHTTPServer):
    def handle_error(self, request, client_address):  # a client gone mid-request: keep it, print nothing
        self.RequestHandlerClass.proxy.errors.append(repr(sys.exc_info()[1]))


class FaultyProxy(InProcessServer):
    server_class = _Server
    thread_name = 'faulty-proxy'

    def __init__(self, upstream, rewrite_links=False):
        super().__init__()
        parsed = urllib.parse.urlsplit(upstream)
        if parsed.scheme != 'http':
            raise ValueError('only http upstreams: %s' % upstream)
        self.upstream_host, self.upstream_port = parsed.hostname, parsed.port or 80
        self.upstream_path = parsed.path.rstrip('/')  # e.g. Azurite's /<account>
        self.upstream_origin = 'http://%s:%d' % (self.upstream_host, self.upstream_port)
        self.rewrite_links = rewrite_links
        self.rules = []
        self.requests = []  # (method, target, status or action) of every request
        self.authorizations = []  # the Authorization header of every request (None where it had none)
        self.errors = []    # exceptions in the proxy's handlers (clients that went away)
        self._lock = threading.Lock()

    # -- set-up ----------------------------------------------------------------------------------

    @property
    def endpoint(self):
        """The upstream URL with the proxy's origin (keeps a path such as Azurite's /<account>)."""
        return self.origin + self.upstream_path

    def add(self, rule):
        with self._lock:
            self.rules.append(rule)
        return rule

    def clear(self):
        with self._lock:
            self.rules = []

    def handler(self):
        return type('Handler', (_Handler,), {'proxy': self})

    # -- decisions -------------------------------------------------------------------------------

    def decide(self, method, target):
        """The fault for this request, or None to forward it."""
        with self._lock:
            fault = None
            for rule in self.rules:
                if rule.matches(method, target) and rule.count(method, target, fault is not None):
                    fault = rule.action
            return fault

    def record(self, method, target, outcome):
        with self._lock:
            self.requests.append((method, target, outcome))

    def rewrite(self, data):
        return data.replace(self.upstream_origin.encode(), self.origin.encode())


class _Handler(http.server.BaseHTTPRequestHandler):
    proxy = None  # set per proxy
    protocol_version = 'HTTP/1.1'

    def log_message(self, *args):  # quiet: no request lines on stderr
        pass

    def finish(self):
        try:
            super().finish()
        except (OSError, ValueError):  # the connection was reset on purpose, or by the client
            pass

    def _any(self):
        self.close_connection = True
        method, target = self.command, self.path
        with self.proxy._lock:
            self.proxy.authorizations.append(self.headers.get('Authorization'))
        fault = self.proxy.decide(method, target)
        if fault == RESET:
            self.proxy.record(method, target, RESET)
            self._reset()
            return
        body = self._request_body()
        if isinstance(fault, int):
            for _data in body:  # read the whole request first, so the client gets to see the answer
                pass
            message = ('%s: fault injected by the test proxy\n' % http.HTTPStatus(fault).phrase).encode()
            self.send_response(fault)
            self.send_header('Content-Type', 'text/plain')
            self.send_header('Content-Length', str(len(message)))
            self.send_header('Connection', 'close')
            self.end_headers()
            if method != 'HEAD':
                self.wfile.write(message)
            self.proxy.record(method, target, fault)
            return
        upstream = http.client.HTTPConnection(self.proxy.upstream_host, self.proxy.upstream_port, timeout=60)
        try:
            self._forward(upstream, method, target, body, fault == RESET_MID_BODY)
        finally:
            upstream.close()

    do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = do_PATCH = do_OPTIONS = _any

    # -- request ---------------------------------------------------------------------------------

    def _request_body(self):
        """The request body as an iterator of byte strings (chunked framing kept as sent)."""
        if 'chunked' in (self.headers.get('Transfer-Encoding') or '').lower():
            return self._chunked_raw()
        length = int(self.headers.get('Content-Length') or 0)
        if not length:
            return iter(())
        # The body must be read off the socket even for a fault answer; it is small or streamed.
        return self._exactly(length)

    def _exactly(self, length):
        while length:
            data = self.rfile.read(min(CHUNK, length))
            if not data:
                raise ConnectionError('client closed the request body early')
            length -= len(data)
            yield data

    def _chunked_raw(self):
        while True:
            line = self.rfile.readline()
            yield line
            size = int(line.split(b';', 1)[0].strip() or b'0', 16)
            if size == 0:
                while True:  # trailers, up to the empty line
                    line = self.rfile.readline()
                    yield line
                    if line in (b'\r\n', b'\n', b''):
                        return
            yield from self._exactly(size + 2)  # data and its CRLF

    def _forward(self, upstream, method, target, body, reset_mid_body):
        upstream.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
        for name, value in self.headers.items():
            lower = name.lower()
            if lower in HOP_BY_HOP and lower != 'transfer-encoding':
                continue
            if lower == 'accept-encoding' and self.proxy.rewrite_links:
                continue  # answers to rewrite must not come compressed
            upstream.putheader(name, value)
        upstream.putheader('Connection', 'close')
        upstream.endheaders()
        for data in body:  # raw: chunked framing is passed through unchanged
            upstream.send(data)
        response = upstream.getresponse()
        headers = [(name, value) for name, value in response.getheaders() if name.lower() not in HOP_BY_HOP]
        rewrite = (self.proxy.rewrite_links and 'alt=media' not in target
                   and 'json' in (response.getheader('Content-Type') or ''))
        if self.proxy.rewrite_links:
            headers = [(name, self.proxy.rewrite(value.encode('latin-1')).decode('latin-1')
                        if name.lower() == 'location' else value) for name, value in headers]
        if rewrite:
            data = self.proxy.rewrite(response.read())
            headers = [(name, value) for name, value in headers if name.lower() != 'content-length']
            headers.append(('Content-Length', str(len(data))))
            pieces = iter([data])
        else:
            pieces = iter(lambda: response.read(CHUNK), b'')
        self.send_response_only(response.status, response.reason)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header('Connection', 'close')
        self.end_headers()
        if method == 'HEAD':
            self.proxy.record(method, target, response.status)
            return
        length = int(response.getheader('Content-Length') or 0) if not rewrite else len(data)
        if reset_mid_body:
            half = max(1, length // 2)
            sent = 0
            for data in pieces:
                self.wfile.write(data[:half - sent])
                sent += min(len(data), half - sent)
                if sent >= half:
                    break
            self.wfile.flush()
            self.proxy.record(method, target, RESET_MID_BODY)
            self._reset()
            return
        for data in pieces:
            self.wfile.write(data)
        self.proxy.record(method, target, response.status)

    def _reset(self):
        """Abort the connection with a TCP reset (SO_LINGER 0), not an orderly close."""
        try:
            self.wfile.flush()
        except OSError:
            pass
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0))
        self.connection.close()
