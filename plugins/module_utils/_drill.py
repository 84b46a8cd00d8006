# -*- coding: utf-8 -*-
# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Restore drills (private): a sandbox to restore a restore point into, the guard that keeps a drill off the
live instance, and the drill record with its RTO and RPO.

A sandbox is a directory the drill owns, marked by ``.cairn-drill.json``. It holds the CMS configuration
(``.env``, written from the restore point's captured configuration with the drill's overrides), the SQLite
database, one local directory per storage location, and the CMS log. Nothing outside it is written, except a
server database the operator names for the drill.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket

from ansible_collections.cairncms.ops.plugins.module_utils import _guard, _secrets, _service
from ansible_collections.cairncms.ops.plugins.module_utils._common import (
    AtomicFile, CairnError, iso, makedirs, parse_time, utc_now, write_json)
from ansible_collections.cairncms.ops.plugins.module_utils._env import InstanceConfig, looks_secret, read_env_text
from ansible_collections.cairncms.ops.plugins.module_utils._manifest import part

MARKER = '.cairn-drill.json'
ENV = '.env'
PID_FILE = _service.PID_FILE
# A sandbox CMS keeps to itself: its caches (the schema cache too), rate limiters and messages stay in its own
# memory, where the live instance may share them through Redis.
ISOLATION = {'CACHE_ENABLED': 'false', 'CACHE_STORE': 'memory', 'RATE_LIMITER_ENABLED': 'false',
             'RATE_LIMITER_GLOBAL_ENABLED': 'false', 'RATE_LIMITER_STORE': 'memory', 'MESSENGER_STORE': 'memory'}


def free_port(host):
    with socket.socket(socket.AF_INET6 if ':' in host else socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def _marker(sandbox):
    return os.path.join(sandbox, MARKER)


def _require_owned(sandbox):
    """Refuse a ``sandbox`` the drill may not empty: one that exists, holds files and has no drill marker."""
    if not os.path.exists(sandbox):
        return
    if not os.path.isdir(sandbox):
        raise CairnError('the drill sandbox %s exists and is not a directory; choose another cairn_drill_dir'
                         % sandbox)
    if os.listdir(sandbox) and not os.path.isfile(_marker(sandbox)):
        raise CairnError('%s holds files but no %s: it is not a drill sandbox, so it is left alone; choose an '
                         'empty or new directory for cairn_drill_dir' % (sandbox, MARKER))


def remove(sandbox, check_mode=False):
    """Delete a drill sandbox; True when there was one. Refuses a directory the drill does not own."""
    if not os.path.exists(sandbox):
        return False
    _require_owned(sandbox)
    if not check_mode:
        _service.stop(os.path.join(sandbox, PID_FILE))
        shutil.rmtree(sandbox)
    return True


def sandbox_overrides(captured_names, manifest, sandbox, host, port, operator):
    """The variables a sandbox CMS runs with: its own address, database file and storage directories,
    isolation from shared services, and then the operator's own ``operator`` overrides, which win.
    ``captured_names``: the storage locations of the captured configuration."""
    overrides = dict(ISOLATION)
    overrides.update({'HOST': host, 'PORT': str(port),
                      'PUBLIC_URL': 'http://%s:%d' % ('[%s]' % host if ':' in host else host, port),
                      'EXTENSIONS_PATH': os.path.join(sandbox, 'extensions')})
    vendor = part(manifest, 'database')['vendor']
    if vendor == 'sqlite':
        overrides['DB_FILENAME'] = os.path.join(sandbox, 'database', 'data.db')
    elif not any(name in operator for name in ('DB_DATABASE', 'DB_CONNECTION_STRING')):
        raise CairnError('restore point %s holds a %s database: a drill restores it into a scratch database you '
                         'name, and replaces that database. Set DB_DATABASE (and DB_HOST, DB_PORT, DB_USER) in '
                         'cairn_drill_env_overrides and DB_PASSWORD in cairn_drill_env_secret_overrides'
                         % (manifest['id'], vendor))
    names = [location['name'] for location in (part(manifest, 'files') or {}).get('locations') or []]
    names += [name for name in captured_names if name not in names]
    for name in names:
        prefix = 'STORAGE_%s_' % name.upper()
        if prefix + 'DRIVER' not in operator:
            overrides[prefix + 'DRIVER'] = 'local'
            overrides[prefix + 'ROOT'] = os.path.join(sandbox, 'storage', name)
    overrides.update({str(key): value for key, value in operator.items()})
    return overrides


def prepare(repository, instance, manifest, sandbox, host='127.0.0.1', port=0, overrides=None,
            secret_overrides=None, live_env_file=None, check_mode=False, diff=False):
    """Make the sandbox for a drill of ``manifest`` and write its .env; returns what the drill needs next (with
    ``diff``, also the .env it writes, secrets masked)."""
    overrides = dict(overrides or {})
    secret_overrides = dict(secret_overrides or {})
    named = sorted(name for name in overrides if looks_secret(str(name)))
    if named:
        raise CairnError('%s look(s) like secrets; pass them in cairn_drill_env_secret_overrides, which is never '
                         'logged' % ', '.join(named))
    _require_owned(sandbox)
    bundle = _secrets.open_bundle(repository, instance, manifest)
    captured_text = bundle[1]['env/.env'].decode('utf-8')
    port = port or free_port(host)
    values = sandbox_overrides(_guard.captured_config(captured_text).location_names(), manifest, sandbox, host, port,
                               dict(overrides, **secret_overrides))
    plan = {'sandbox': sandbox, 'env_file': os.path.join(sandbox, ENV), 'url': values['PUBLIC_URL'], 'port': port,
            'env_overrides': sorted(values), 'started_at': iso(utc_now()),
            'restore_point': {'id': manifest['id'], 'started_at': manifest['started_at']},
            'vendor': part(manifest, 'database')['vendor']}
    text = _secrets.render_env(captured_text, values)
    if diff:
        # the .env of a sandbox an earlier drill left behind is what this one replaces (never through a symlink)
        left = plan['env_file']
        before = read_env_text(left) if os.path.isfile(left) and not os.path.islink(left) else None
        plan['diff'] = _secrets.env_diff(plan['env_file'], before, text,
                                         _secrets.secret_test(manifest, secret_overrides))
    if check_mode:
        return plan
    if os.path.exists(sandbox):
        _service.stop(os.path.join(sandbox, PID_FILE))  # a drill that was killed may have left its CMS running
        shutil.rmtree(sandbox)  # a sandbox left by an earlier drill: this drill starts from nothing
    makedirs(sandbox)
    write_json(_marker(sandbox), {'instance': instance, 'restore_point': manifest['id'],
                                  'created_at': plan['started_at']})
    try:
        for name, value in values.items():
            if name == 'EXTENSIONS_PATH' or (name.startswith('STORAGE_') and name.endswith('_ROOT')):
                if str(value).startswith(sandbox + os.sep):
                    makedirs(str(value))
        if 'DB_FILENAME' in values and str(values['DB_FILENAME']).startswith(sandbox + os.sep):
            makedirs(os.path.dirname(str(values['DB_FILENAME'])))
        with AtomicFile(plan['env_file']) as handle:
            handle.write(text.encode('utf-8'))
        others = [_guard.source_as_captured(manifest, captured_text)]
        if live_env_file and os.path.exists(live_env_file):
            others.append(('the live instance (%s)' % live_env_file, InstanceConfig.load(live_env_file), True))
        _guard.refuse_shared(InstanceConfig.load(plan['env_file']), 'the drill sandbox', 'cairn_drill_env_overrides',
                             others)
    except Exception:
        shutil.rmtree(sandbox, ignore_errors=True)
        raise
    return plan


def record(manifest, started_at, checks, error=None, steps=None, ended_at=None, max_rto_s=None, max_rpo_s=None,
           host=None, disabled=None):
    """The drill record: what was drilled, how it went, and the measured RTO and RPO against their limits."""
    started = parse_time(started_at)
    ended = parse_time(ended_at) if ended_at else utc_now()
    rto = round((ended - started).total_seconds(), 3)
    rpo = round((started - parse_time(manifest['started_at'])).total_seconds(), 3)
    failed_checks = [check['name'] for check in checks or [] if not check.get('ok')]
    problems = []
    if error:
        problems.append(error)
    if failed_checks:
        problems.append('failed checks: %s' % ', '.join(failed_checks))
    if not checks and not error:
        problems.append('no check ran')
    if max_rto_s and rto > max_rto_s:
        problems.append('RTO %.1f s is over the limit of %s s (cairn_drill_max_rto)' % (rto, max_rto_s))
    if max_rpo_s and rpo > max_rpo_s:
        problems.append('RPO %.1f s is over the limit of %s s (cairn_drill_max_rpo): the newest restore point '
                        'is too old' % (rpo, max_rpo_s))
    return {
        'id': started.strftime('%Y%m%dT%H%M%S.') + '%03dZ-%s' % (started.microsecond // 1000, secrets.token_hex(3)),
        'instance': manifest['instance'], 'restore_point': manifest['id'], 'host': host,
        'started_at': started_at, 'ended_at': iso(ended), 'rto_s': rto, 'rpo_s': rpo,
        'max_rto_s': max_rto_s or None, 'max_rpo_s': max_rpo_s or None,
        'ok': not problems, 'problems': problems, 'failed_checks': failed_checks,
        'checks': list(checks or []), 'steps': dict(steps or {}), 'disabled': dict(disabled or {}),
    }
