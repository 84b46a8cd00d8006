# -*- coding: utf-8 -*-
# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Requests to a running CairnCMS instance's HTTP API (private)."""

from __future__ import annotations

import json

from ansible.module_utils.urls import open_url

from ansible_collections.cairncms.ops.plugins.module_utils._common import CairnError


class HTTPStatusError(CairnError):
    """The instance answered with an HTTP error status (``status``), so callers can tell a refusal from a failure
    to connect without reading the message; ``body`` is the start of the answer (up to 64 KiB, b'' when unread)."""

    def __init__(self, message, status, body=b''):
        super().__init__(message)
        self.status = status
        self.body = body


def _error_body(exc):
    """The start of an error answer's body, b'' when there is none to read."""
    try:
        return exc.read(65536) or b''
    except Exception:  # pylint: disable=broad-except
        # no body (a closed or odd response): the status tells
        return b''


def exchange(method, url, token=None, body=None, timeout=30, validate_certs=True, accept='application/json'):
    """``(content_type, body)`` of the answer to ``method url``; any failure is one CairnError naming the request
    (never its query string, its body or the token), an HTTPStatusError for an error status."""
    headers = {'Accept': accept}
    data = None
    if body is not None:
        headers['Content-Type'] = 'application/json'
        data = json.dumps(body)
    if token:
        headers['Authorization'] = 'Bearer %s' % token
    try:
        response = open_url(url, method=method, data=data, headers=headers, timeout=timeout,
                            validate_certs=validate_certs)
        return response.headers.get('Content-Type') or '', response.read()
    except Exception as exc:  # urllib errors, timeouts, refused connections: one message each
        code = getattr(exc, 'code', None)
        message = '%s %s failed: %s' % (method, url.split('?')[0], 'HTTP %s' % code if code else exc)
        if code:
            raise HTTPStatusError(message, code, _error_body(exc))
        raise CairnError(message)


def request(method, url, token=None, body=None, timeout=30, validate_certs=True):
    """The response body of ``method url`` (see ``exchange``)."""
    return exchange(method, url, token, body, timeout=timeout, validate_certs=validate_certs)[1]


def health(base_url, timeout=30, validate_certs=True):
    """The status of ``GET /server/health`` (``ok`` or ``warn`` when the instance serves); CairnError otherwise."""
    raw = request('GET', base_url.rstrip('/') + '/server/health', timeout=timeout, validate_certs=validate_certs)
    try:
        status = json.loads(raw).get('status')
    except (ValueError, AttributeError):
        raise CairnError('GET %s/server/health did not return JSON' % base_url.rstrip('/'))
    if status not in ('ok', 'warn'):
        raise CairnError('GET %s/server/health says status %s' % (base_url.rstrip('/'), status))
    return status
