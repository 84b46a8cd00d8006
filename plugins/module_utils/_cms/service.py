# -*- coding: utf-8 -*-
# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The CMS as a service on its host (private): stop it and check that it is down, start it and wait until it is
healthy, whatever runs it.

The service spec (``cairn_cms_service``) names a kind of service manager (``KINDS``: one file each in
``_cms/services/``) with its keys, plus the keys every kind has (``COMMON``); ``load`` checks it and returns the
kind. ``ensure`` brings the CMS to a state and says what it found and did.

"Down" is two things at once: ``<url>/server/health`` gets no HTTP answer (the connection is refused or times
out; any answer of the CMS, a 503 too, means it still runs) and the kind reports nothing of the CMS left (no
process in a unit's cgroup, no running container, the pid file's process gone). "Healthy" is ``GET
<url>/server/health`` answering status ``ok`` or ``warn``; the CMS's own 503 with status ``error`` is not.
"""

from __future__ import annotations

import json
import ssl
import time

from ansible_collections.cairncms.ops.plugins.module_utils import _http
from ansible_collections.cairncms.ops.plugins.module_utils._common import CairnError, Timer
from ansible_collections.cairncms.ops.plugins.module_utils._cms.services import SPEC, Key
from ansible_collections.cairncms.ops.plugins.module_utils._cms.services import command, compose, systemd

KINDS = {
    'command': command.Command,
    'compose': compose.Compose,
    'systemd': systemd.Systemd,
}
COMMON = {
    'url': Key('str'),
    'stop_timeout': Key('int', default=60),
    'start_timeout': Key('int', default=180),
    'validate_certs': Key('bool', default=True),
}
STATES = ('stopped', 'started', 'restarted', 'checked')
HEALTHY = ('ok', 'warn')
# A reverse proxy in front of a stopped CMS answers for it with these ("bad gateway", "gateway time-out"); the CMS
# itself never does, so they count as no answer of the CMS.
GATEWAY_ERRORS = (502, 504)
POLL = 0.5  # seconds between two looks while waiting
PROBE_TIMEOUT = 5  # seconds one health request may take


def load(spec, url=None):
    """The kind object for the service ``spec`` (a dict), with the common keys as attributes (``url``,
    ``stop_timeout``, ``start_timeout``, ``validate_certs``); ``url`` is the base URL to use when the spec has
    none. CairnError naming the key, and the valid ones, for an unknown kind or key or a missing required key."""
    kinds = ', '.join(sorted(KINDS))
    if not isinstance(spec, dict) or not spec:
        raise CairnError('%s must be a mapping with a kind (%s) and its keys, not %r; see docs/cms-service.md'
                         % (SPEC, kinds, spec))
    name = spec.get('kind')
    if name is None:
        raise CairnError('%s has no kind; set kind to one of %s' % (SPEC, kinds))
    if name not in KINDS:
        raise CairnError('%s: kind %r is not known; the kinds are %s' % (SPEC, name, kinds))
    cls = KINDS[name]
    rules = dict(COMMON, **cls.KEYS)
    valid = 'the keys of kind %s are %s' % (name, ', '.join(['kind'] + sorted(rules)))
    unknown = sorted(str(key) for key in spec if key != 'kind' and key not in rules)
    if unknown:
        raise CairnError('%s of kind %s has the unknown key%s %s; %s'
                         % (SPEC, name, 's' if len(unknown) > 1 else '', ', '.join(unknown), valid))
    settings = {}
    for key, rule in rules.items():
        value = spec.get(key)
        if value is None:  # absent, or null (a default(omit) of the inventory)
            if rule.required:
                raise CairnError('%s of kind %s needs the key %s; %s' % (SPEC, name, key, valid))
            value = rule.default.copy() if isinstance(rule.default, (dict, list)) else rule.default
        else:
            value = rule.check(key, value, 'of kind %s' % name)
        settings[key] = value
    service = cls({key: value for key, value in settings.items() if key in cls.KEYS})
    service.url = (settings['url'] or url or '').rstrip('/')
    if not service.url.startswith(('http://', 'https://')):
        raise CairnError('%s needs the url the CMS answers at, for its health (%s/server/health), and %s; set url '
                         'in %s (or the module option url) to the address the CMS itself listens on, for example '
                         'http://127.0.0.1:8055'
                         % (SPEC, '<url>', 'it has none' if not service.url else '%r is not an http(s) URL'
                            % service.url, SPEC))
    service.stop_timeout = settings['stop_timeout']
    service.start_timeout = settings['start_timeout']
    service.validate_certs = settings['validate_certs']
    return service


class Health:
    """One look at ``/server/health``: whether the CMS answered at all, with which HTTP status and which status in
    its body."""

    def __init__(self, answered, status=None, code=None, detail=''):
        self.answered = answered
        self.status = status
        self.code = code
        self.detail = detail

    @property
    def healthy(self):
        return self.answered and self.code == 200 and self.status in HEALTHY

    def __str__(self):
        if self.code is not None:
            text = 'HTTP %d, status %s' % (self.code, self.status)
            return '%s (%s)' % (text, self.detail) if self.detail else text
        return '%s (%s)' % ('an answer' if self.answered else 'no answer', self.detail)


def _status(body):
    try:
        found = json.loads(body).get('status')
    except (ValueError, AttributeError, TypeError):
        return None
    return found if isinstance(found, str) else None


def probe(url, validate_certs=True, timeout=PROBE_TIMEOUT):
    """What ``GET <url>/server/health`` answers now (a ``Health``); never raises for the CMS's sake."""
    try:
        body = _http.request('GET', url + '/server/health', timeout=timeout, validate_certs=validate_certs)
        code = 200
    except _http.HTTPStatusError as exc:
        code, body = exc.status, exc.body  # the CMS's 503 says status "error" in its body
    except CairnError as exc:
        cause = getattr(exc.__context__, 'reason', exc.__context__)
        if isinstance(cause, ssl.SSLError):  # a TLS handshake took place: something serves there
            return Health(True, detail='TLS failed: %s' % cause)
        return Health(False, detail=str(cause or exc.message))
    if code in GATEWAY_ERRORS:
        return Health(False, code=code, detail='a proxy in front of the CMS answers for it')
    return Health(True, _status(body), code)


def _look(service, deadline=None):
    timeout = PROBE_TIMEOUT if deadline is None else max(1, min(PROBE_TIMEOUT, deadline - time.monotonic()))
    return probe(service.url, service.validate_certs, timeout)


def what_is_up(service, health=None):
    """What of the CMS is still up, one line each; empty when it is down."""
    health = health or _look(service)
    found = []
    if health.answered:
        found.append('GET %s/server/health still answers (%s)' % (service.url, health))
    return found + service.leftovers()


def _state(service):
    try:
        return service.state()
    except CairnError as exc:
        return exc.message


def stop(service):
    """Run the stop action and wait until the CMS is down, within ``stop_timeout``; the seconds it took."""
    timer = Timer()
    deadline = time.monotonic() + service.stop_timeout
    try:
        service.stop(max(1.0, deadline - time.monotonic()))
    except CairnError as exc:
        raise CairnError('stopping the CMS (%s) failed: %s; %s'
                         % (service.describe(), exc.message, service.advice('stop')))
    while True:
        up = what_is_up(service, _look(service, deadline))
        if not up:
            return timer.seconds
        if time.monotonic() >= deadline:
            break
        time.sleep(min(POLL, max(0, deadline - time.monotonic())))
    hint = service.advice('stop')
    if len(up) == 1 and up[0].startswith('GET '):
        hint = ('the service reports nothing of the CMS left, so what answers at %s is not run by it (a CMS started '
                'by hand?): set url in %s to the address this CMS itself listens on' % (service.url, SPEC))
    raise CairnError('the CMS (%s) is not down %d s after it was stopped: %s; %s'
                     % (service.describe(), service.stop_timeout, '; '.join(up), hint))


def start(service, run_start=True):
    """Run the start action (unless ``run_start`` is false: it runs already) and wait until the CMS is healthy,
    within ``start_timeout``; ``(seconds, last Health)``."""
    timer = Timer()
    deadline = time.monotonic() + service.start_timeout
    if run_start:
        try:
            service.start(max(1.0, deadline - time.monotonic()))
        except CairnError as exc:
            raise CairnError('starting the CMS (%s) failed: %s; %s'
                             % (service.describe(), exc.message, service.advice('start')))
    while True:
        health = _look(service, deadline)
        if health.healthy:
            return timer.seconds, health
        if time.monotonic() >= deadline:
            break
        time.sleep(min(POLL, max(0, deadline - time.monotonic())))
    state = _state(service)
    output = service.start_output()
    raise CairnError('the CMS (%s) did not become healthy within %d s: the last answer of GET %s/server/health was '
                     '%s%s; %s%s' % (service.describe(), service.start_timeout, service.url, health,
                                     '; %s' % state if state else '',
                                     service.advice('start'),
                                     '; the end of the start command\'s output:\n%s' % output if output else ''))


def ensure(service, state, check_mode=False):
    """Bring the CMS of ``service`` to ``state`` (``STATES``) and return the module's result: ``kind``,
    ``was_running``, ``running`` (afterwards; in check mode what it would be), ``health`` (the status of the last
    health answer, None without one), ``stop_s``, ``start_s`` (None when not stopped or started) and ``changed``.
    In check mode only the read-only probes run."""
    if state not in STATES:
        raise CairnError('state must be one of %s, not %r' % (', '.join(STATES), state))
    health = _look(service)
    runs = service.running()
    was_running = bool(runs) or health.answered
    result = {'kind': service.NAME, 'was_running': was_running, 'running': was_running, 'health': health.status,
              'stop_s': None, 'start_s': None, 'changed': False}
    if state == 'checked':
        return result
    if state in ('stopped', 'restarted'):
        # Down is also nothing of it left: a unit that says inactive with a process left in its cgroup is stopped
        if was_running or service.leftovers():
            result['changed'] = True
            if not check_mode:
                result['stop_s'] = stop(service)
                health = Health(False)
        result.update(running=False, health=None if not check_mode else health.status)
        runs = False
    if state in ('started', 'restarted'):
        if health.healthy:
            return dict(result, running=True)
        # Up but not (yet) healthy: wait for it, do not start it a second time
        up = state == 'started' and (bool(runs) or health.answered)
        result.update(changed=result['changed'] or not up, running=True)
        if not check_mode:
            result['start_s'], health = start(service, run_start=not up)
            result['health'] = health.status
    return result
