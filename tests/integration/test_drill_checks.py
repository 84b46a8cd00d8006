# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The drill's deeper HTTP checks (module_utils/_http_checks) on answers a real CMS does not give on purpose: a
small local HTTP server answers /admin with a JSON body, an error page, a page without the app's shell, and the
activity log with a login older than the drill's. The checks against a real Directus are in test_drill.py."""

from __future__ import annotations

import datetime
import http.server
import json

import pytest
from _emulator import InProcessServer

from ansible_collections.cairncms.ops.plugins.module_utils._common import CairnError
from ansible_collections.cairncms.ops.plugins.module_utils._http_checks import (
    Client, activity_time, check_activity, check_app, check_named_flow, difference)

APP_PAGE = (b'<!DOCTYPE html><html><head><base href="/cms/admin/" /><title>Loading</title></head>'
            b'<body><div id="app"></div></body></html>')
USER = '3322db94-daa3-48f6-84ea-c7c23cde6d04'


class _Answers(http.server.BaseHTTPRequestHandler):
    answers = {}  # path -> (status, content type, body)

    def do_GET(self):  # noqa: N802 (the name http.server calls)
        status, content_type, body = self.answers.get(self.path.split('?')[0], (404, 'text/plain', b'no route'))
        self.send_response(status)
        self.send_header('Content-Type', content_type)
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class _AnswerServer(InProcessServer):
    def handler(self):
        return _Answers


@pytest.fixture
def server():
    answering = _AnswerServer().start()
    try:
        yield answering.origin
    finally:
        answering.stop()
        _Answers.answers = {}


def _answer(path, status, content_type, body):
    _Answers.answers[path] = (status, content_type, body if isinstance(body, bytes) else json.dumps(body).encode())


def test_the_app_check_passes_only_on_the_app_page(server):
    client = Client(server, 'not-a-secret-token', timeout=5)
    _answer('/admin', 200, 'text/html; charset=utf-8', APP_PAGE)
    assert 'the admin app\'s page (text/html' in check_app(client)
    for status, content_type, body, wanted in (
            (200, 'application/json', {'data': {'project': 'x'}}, 'answered application/json, not the admin app'),
            (200, 'text/html', b'<html><body><h1>Welcome to nginx!</h1></body></html>',
             'without the admin app\'s shell (no <base href=".../admin/"> and no <div id="app">)'),
            (200, 'text/html', APP_PAGE.replace(b'<div id="app">', b'<div id="main">'), '(no <div id="app">)'),
            (404, 'application/json', {'errors': [{'message': 'Route /admin does not exist.'}]},
             'HTTP 404: the instance does not serve its admin app'),
            (502, 'text/html', b'<html><body>Bad Gateway</body></html>', 'GET %s/admin failed: HTTP 502' % server)):
        _answer('/admin', status, content_type, body)
        with pytest.raises(CairnError) as failed:
            check_app(client)
        assert wanted in failed.value.message, failed.value.message
        assert 'not-a-secret-token' not in failed.value.message


def test_the_activity_check_wants_a_login_of_this_drill(server):
    client = Client(server, 'token', timeout=5)
    since = datetime.datetime(2026, 11, 28, 12, 3, 22, 900000, tzinfo=datetime.timezone.utc)
    _answer('/users/me', 200, 'application/json', {'data': {'id': USER}})
    record = {'id': 7, 'action': 'login', 'user': USER, 'timestamp': '2026-11-28T12:03:22Z'}  # whole seconds
    _answer('/activity', 200, 'application/json', {'data': [record]})
    assert check_activity(client, 'admin@example.com', since) == \
        'login of admin@example.com recorded at 2026-11-28T12:03:22Z (activity 7)'
    for answer, wanted in (
            ({'data': [dict(record, timestamp='2026-11-28T12:03:21.999Z')]}, 'is from 2026-11-28T12:03:21.999Z, '
             'before the drill logged in at 2026-11-28T12:03:22Z'),
            ({'data': []}, 'the activity log has no login of admin@example.com'),
            ({'data': [dict(record, user='someone-else')]}, 'not a login of admin@example.com')):
        _answer('/activity', 200, 'application/json', answer)
        with pytest.raises(CairnError) as failed:
            check_activity(client, 'admin@example.com', since)
        assert wanted in failed.value.message, failed.value.message


def test_activity_times_as_the_databases_give_them():
    utc = datetime.timezone.utc
    assert activity_time('2026-11-28T12:03:22.438Z') == datetime.datetime(2026, 11, 28, 12, 3, 22, 438000, tzinfo=utc)
    assert activity_time('2026-11-28 12:03:22') == datetime.datetime(2026, 11, 28, 12, 3, 22, tzinfo=utc)
    assert activity_time('2026-11-28T13:03:22.1234567+01:00') == \
        datetime.datetime(2026, 11, 28, 12, 3, 22, 123456, tzinfo=utc)
    with pytest.raises(CairnError):
        activity_time('yesterday')


def test_the_expected_answer_rule():
    answer = {'status': 'accepted', 'order': {'id': 42, 'lines': [1, 2]}, 'paid': True, 'extra': 'x'}
    raw = json.dumps(answer).encode()
    assert difference(answer, {'status': 'accepted'}, raw) is None
    assert difference(answer, {'order': {'id': 42}, 'paid': True}, raw) is None  # a dict matches a part
    assert difference(answer, {'order': {'lines': [1, 2]}}, raw) is None
    assert difference(answer, {'order': {'lines': [1]}}, raw) == 'order.lines is [1, 2], expected [1]'
    assert difference(answer, {'order': {'id': 43}}, raw) == 'order.id is 42, expected 43'
    assert difference(answer, {'paid': 1}, raw) == 'paid is true, expected 1'
    assert difference(answer, {'missing': None}, raw) == 'the answer has no key missing'
    assert difference(answer, {'order': {'gone': 1}}, raw) == 'order has no key gone'
    assert difference(['a'], {'a': 1}, b'["a"]') == 'the answer is ["a"], not an object'
    assert difference(None, {'a': 1}, b'') == 'the answer is (nothing), not an object'
    # A string is looked for in a JSON string answer's value, else in the answer's text.
    assert difference('order 42 accepted', 'accepted', b'"order 42 accepted"') is None
    assert difference(answer, '"status": "accepted"', raw) is None
    assert difference(None, 'ok', b'all ok') is None
    assert difference(answer, 'refused', raw).startswith('the answer does not contain "refused": {')


def test_a_named_flow_with_bad_input_fails_its_check_before_any_request():
    client = Client('http://127.0.0.1:9', 'token', timeout=1)  # nothing listens: a request would fail otherwise
    for spec, wanted in (({'id': 'echo', 'expect': {'a': 1}}, "the flow id 'echo' is not a flow id"),
                         ({'id': '6f1c9d2e-0000-4000-8000-00000000f10a', 'expect': 42},
                          'must be a non-empty dict or string, not 42'),
                         ({'id': '6f1c9d2e-0000-4000-8000-00000000f10a', 'expect': ''},
                          'must be a non-empty dict or string')):
        with pytest.raises(CairnError) as failed:
            check_named_flow(client, spec)
        assert wanted in failed.value.message, failed.value.message
