# -*- coding: utf-8 -*-
# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""HTTP checks of a running instance as a logged-in user, beyond counts and bytes (private): the admin app is
served, the login is in the activity log, flows run. ``_verify.check_http`` calls them; each returns the detail of
its check or raises CairnError with the reason it failed. The flow checks write into the instance (a flow made
and removed, a flow's status): they are meant for a drill's sandbox."""

from __future__ import annotations

import datetime
import json
import re
import secrets
import time

from ansible.module_utils.six.moves.urllib.parse import urlencode

from ansible_collections.cairncms.ops.plugins.module_utils._common import CairnError
from ansible_collections.cairncms.ops.plugins.module_utils._http import HTTPStatusError, exchange

# The admin app's page as the CMS serves it (Directus 10 and CairnCMS alike): the API writes the app's base path
# (PUBLIC_URL's path + /admin) into its <base />, and the page has the app's mount point.
APP_BASE = re.compile(r'<base\s+href="[^"]*/admin/"')
APP_MOUNT = re.compile(r'<div\s+id="app"')
# A flow is loaded in the background after it is saved; its trigger is refused (403) until then.
FLOW_LOAD_WAIT = 15
SHOWN = 200  # characters of an answer shown in a detail
_TIME = re.compile(r'^(\d{4})-(\d\d)-(\d\d)[T ](\d\d):(\d\d):(\d\d)(?:\.(\d+))?\s*(Z|[+-]\d\d:?\d\d)?$')
_UUID = re.compile(r'^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$')


class Client:
    """Requests of one logged-in user to ``base``; answers parsed from JSON."""

    def __init__(self, base, token, timeout=30, validate_certs=True):
        self.base = base.rstrip('/')
        self._token = token
        self.timeout = timeout
        self.validate_certs = validate_certs

    def fetch(self, method, path, body=None, query=None, accept='application/json'):
        """``(content_type, raw body)`` of ``method path``."""
        url = self.base + path + ('?' + urlencode(query) if query else '')
        return exchange(method, url, self._token, body, timeout=self.timeout, validate_certs=self.validate_certs,
                        accept=accept)

    def call(self, method, path, body=None, query=None):
        """The answer of ``method path`` parsed from JSON (None for an empty one)."""
        raw = self.fetch(method, path, body, query)[1]
        return parse_answer(raw, '%s %s' % (method, path))


def parse_answer(raw, what):
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        raise CairnError('%s did not answer JSON: %s' % (what, shown(raw)))


def shown(value):
    """``value`` (an answer, raw or parsed) cut to a length a detail can hold."""
    if isinstance(value, bytes):
        text = value.decode('utf-8', 'replace')
    elif isinstance(value, str):
        text = value
    else:
        text = json.dumps(value, sort_keys=True)
    return text if len(text) <= SHOWN else text[:SHOWN] + '...'


def _as_json(value):
    return shown(json.dumps(value, sort_keys=True))


def guarded(action):
    """``action`` with an answer of an unexpected shape (a missing key, a list for an object) as a CairnError."""
    def run():
        try:
            return action()
        except (KeyError, TypeError, IndexError) as exc:
            raise CairnError('the instance answered in an unexpected shape (%s: %s)' % (type(exc).__name__, exc))
    return run


# --- the admin app -------------------------------------------------------------------------------------------

def app_page(content_type, body):
    """The detail of an answer that is the admin app's page; CairnError naming what is missing otherwise."""
    kind = content_type.split(';')[0].strip().lower() or 'no content type'
    if kind != 'text/html':
        raise CairnError('GET /admin answered %s, not the admin app\'s HTML page: %s' % (kind, shown(body)))
    text = body.decode('utf-8', 'replace')
    missing = [name for name, marker in (('<base href=".../admin/">', APP_BASE), ('<div id="app">', APP_MOUNT))
               if not marker.search(text)]
    if missing:
        raise CairnError('GET /admin answered an HTML page without the admin app\'s shell (no %s): %s'
                         % (' and no '.join(missing), shown(text)))
    return 'the admin app\'s page (%s, %d bytes, <base href=".../admin/"> and <div id="app">)' % (kind, len(body))


def check_app(client):
    try:
        content_type, body = client.fetch('GET', '/admin', accept='text/html')
    except HTTPStatusError as exc:
        if exc.status == 404:
            raise CairnError('%s: the instance does not serve its admin app (SERVE_APP=false?)' % exc.message)
        raise
    return app_page(content_type, body)


# --- the activity log ----------------------------------------------------------------------------------------

def activity_time(text):
    """The UTC time of an activity timestamp as the databases give it (``2026-11-28T12:03:22.438Z``,
    ``2026-11-28 12:03:22``, ``...+01:00``; no zone is UTC)."""
    found = _TIME.match(text or '') if isinstance(text, str) else None
    if not found:
        raise CairnError('activity timestamp %r is not a date and time' % (text,))
    year, month, day, hour, minute, second, fraction, zone = found.groups()
    micro = int((fraction or '0')[:6].ljust(6, '0'))
    offset = datetime.timedelta(0)
    if zone and zone != 'Z':
        digits = zone.replace(':', '')
        offset = datetime.timedelta(hours=int(digits[1:3]), minutes=int(digits[3:5]))
        offset = -offset if digits[0] == '-' else offset
    local = datetime.datetime(int(year), int(month), int(day), int(hour), int(minute), int(second), micro,
                              tzinfo=datetime.timezone.utc)
    return local - offset


def check_activity(client, email, since):
    """The newest login of the logged-in user in the activity log was made at ``since`` (the login began) or
    later; ``since`` counts from its whole second, as databases that keep whole seconds store it."""
    user = client.call('GET', '/users/me', query={'fields': 'id'})['data']['id']
    records = client.call('GET', '/activity', query={
        'filter': json.dumps({'action': {'_eq': 'login'}, 'user': {'_eq': user}}), 'sort': '-timestamp',
        'limit': 1, 'fields': 'id,action,user,timestamp'})['data']
    if not records:
        raise CairnError('the activity log has no login of %s' % email)
    record = records[0]
    when = activity_time(record['timestamp'])
    if record['action'] != 'login' or record['user'] != user:
        raise CairnError('GET /activity answered a record that is not a login of %s: %s' % (email, shown(record)))
    if when < since.replace(microsecond=0):
        raise CairnError('the newest login of %s in the activity log is from %s, before the drill logged in at %s'
                         % (email, record['timestamp'], since.strftime('%Y-%m-%dT%H:%M:%SZ')))
    return 'login of %s recorded at %s (activity %s)' % (email, record['timestamp'], record['id'])


# --- flows ---------------------------------------------------------------------------------------------------

def trigger(client, flow, method, payload):
    """The answer of the webhook trigger of ``flow``, once the instance has loaded it."""
    path = '/flows/trigger/%s' % flow
    body, query = (payload, None) if method == 'POST' else (None, payload or None)
    waited = time.monotonic() + FLOW_LOAD_WAIT
    while True:
        try:
            return client.fetch(method, path, body, query)
        except HTTPStatusError as exc:
            if exc.status != 403 or time.monotonic() > waited:
                if exc.status == 403:
                    raise CairnError('%s, still after %d s: the flow did not load, or it refused the request'
                                     % (exc.message, FLOW_LOAD_WAIT))
                raise
        time.sleep(0.25)


def check_flow(client):
    """A throwaway webhook flow (one transform operation that answers the trigger body's nonce) runs and answers
    the nonce it was sent; it is removed again."""
    nonce = secrets.token_hex(16)
    flow = client.call('POST', '/flows', {
        'name': 'cairncms.ops drill check', 'icon': 'bolt', 'status': 'active', 'trigger': 'webhook',
        'accountability': None, 'options': {'method': 'POST', 'async': False, 'return': '$last'}})['data']['id']
    try:
        operation = client.call('POST', '/operations', {
            'flow': flow, 'key': 'answer_nonce', 'name': 'Answer the nonce', 'type': 'transform',
            'position_x': 19, 'position_y': 1,
            'options': {'json': {'nonce': '{{ $trigger.body.nonce }}'}}})['data']['id']
        client.call('PATCH', '/flows/%s' % flow, {'operation': operation})
        raw = trigger(client, flow, 'POST', {'nonce': nonce})[1]
    finally:
        try:
            client.fetch('DELETE', '/flows/%s' % flow)
        except CairnError:
            pass  # best effort: the sandbox goes away with it
    answer = parse_answer(raw, 'POST /flows/trigger/%s' % flow)
    if not isinstance(answer, dict) or answer.get('nonce') != nonce:
        raise CairnError('the flow answered %s, not the nonce it was sent' % shown(raw or '(nothing)'))
    return 'a webhook flow ran and answered the nonce it was sent'


def difference(answer, expect, raw, where='the answer'):
    """Why ``answer`` (parsed; ``raw`` as received) does not meet ``expect``, or None when it does.

    A dict: the answer is a JSON object with every key of ``expect``, dict values met the same way (the answer may
    hold more), any other value equal (``true`` is not ``1``). A string: the answer contains it - the value of a JSON
    string answer, else the answer's text."""
    if isinstance(expect, dict):
        if not isinstance(answer, dict):
            return '%s is %s, not an object' % (where, _as_json(answer) if raw is None else shown(raw or '(nothing)'))
        for key, wanted in expect.items():
            here = '%s.%s' % (where, key) if where != 'the answer' else key
            if key not in answer:
                return '%s has no key %s' % (where, key)
            got = answer[key]
            if isinstance(wanted, dict):
                problem = difference(got, wanted, None, here)
                if problem:
                    return problem
            elif got != wanted or isinstance(got, bool) != isinstance(wanted, bool):
                return '%s is %s, expected %s' % (here, _as_json(got), _as_json(wanted))
        return None
    text = answer if isinstance(answer, str) else (raw or b'').decode('utf-8', 'replace')
    if expect not in text:
        return '%s does not contain %s: %s' % (where, json.dumps(expect), shown(text or '(nothing)'))
    return None


def check_named_flow(client, spec):
    """The operator's flow ``spec['id']`` - activated for the check, then set back - answers ``spec['payload']``
    with what ``spec['expect']`` asks for (see ``difference``)."""
    flow, payload, expect = spec.get('id') or '', spec.get('payload') or {}, spec.get('expect')
    if not _UUID.match(flow):
        raise CairnError('the flow id %r is not a flow id (a UUID like 6f1c9d2e-0000-4000-8000-00000000f10a)' % flow)
    if not isinstance(expect, (dict, str)) or expect in ('', {}):
        raise CairnError('the expected answer of flow %s must be a non-empty dict or string, not %s'
                         % (flow, _as_json(expect)))
    try:
        found = client.call('GET', '/flows/%s' % flow, query={'fields': 'id,name,status,trigger,options'})['data']
    except HTTPStatusError as exc:
        if exc.status in (403, 404):
            raise CairnError('the restored instance has no flow %s (%s)' % (flow, exc.message))
        raise
    name, options = found.get('name') or flow, found.get('options') or {}
    if found['trigger'] not in ('webhook', 'manual'):
        raise CairnError('flow %s has trigger %s: only a webhook (or manual) flow can be triggered over HTTP'
                         % (name, found['trigger']))
    if options.get('async'):
        raise CairnError('flow %s runs asynchronously: its trigger answers before it ends, so there is no answer to '
                         'check; name a synchronous flow' % name)
    method = 'POST' if found['trigger'] == 'manual' else (options.get('method') or 'GET').upper()
    if method == 'GET' and any(isinstance(value, (dict, list)) for value in payload.values()):
        raise CairnError('flow %s is triggered with GET: its payload goes into the query string, so give it plain '
                         'values (no dicts or lists)' % name)
    if found['status'] != 'active':
        client.call('PATCH', '/flows/%s' % flow, {'status': 'active'})
    try:
        content_type, raw = trigger(client, flow, method, payload)
    finally:
        if found['status'] != 'active':
            try:
                client.fetch('PATCH', '/flows/%s' % flow, {'status': found['status']})
            except CairnError:
                pass  # best effort: the sandbox goes away with it
    answer = parse_answer(raw, '%s /flows/trigger/%s' % (method, flow)) if 'json' in content_type else None
    problem = difference(answer, expect, raw)
    if problem:
        raise CairnError('flow %s answered something else than expected: %s' % (name, problem))
    return 'flow %s answered as expected' % name
