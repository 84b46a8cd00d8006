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

import datetime
import os
import secrets
import shutil
import socket

from ansible_collections.cairncms.ops.plugins.module_utils import _secrets
from ansible_collections.cairncms.ops.plugins.module_utils._common import (
    AtomicFile, CairnError, iso, makedirs, utc_now, write_json)
from ansible_collections.cairncms.ops.plugins.module_utils._env import (
    DEFAULTS, InstanceConfig, looks_secret, parse_dotenv, process_values)

MARKER = '.cairn-drill.json'
SOURCE_DIR = os.path.join(os.sep, '.cairn-source-instance')
ENV = '.env'
DEFAULT_PORTS = {'postgres': 5432, 'mysql': 3306}
LOOPBACK = ('localhost', '127.0.0.1', '::1', '')
# What identifies a storage location's objects, by driver.
LOCATION_KEYS = {'s3': ('bucket', 'endpoint', 'root'), 'gcs': ('bucket', 'api_endpoint', 'root'),
                 'azure': ('container_name', 'account_name', 'endpoint', 'root'), 'cloudinary': ('cloud_name', 'root')}
# A sandbox CMS keeps to itself: its caches (the schema cache too), rate limiters and messages stay in its own
# memory, where the live instance may share them through Redis.
ISOLATION = {'CACHE_ENABLED': 'false', 'CACHE_STORE': 'memory', 'RATE_LIMITER_ENABLED': 'false',
             'RATE_LIMITER_GLOBAL_ENABLED': 'false', 'RATE_LIMITER_STORE': 'memory', 'MESSENGER_STORE': 'memory'}


def free_port(host):
    with socket.socket(socket.AF_INET6 if ':' in host else socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def parse_time(text):
    return datetime.datetime.strptime(text, '%Y-%m-%dT%H:%M:%S.%fZ').replace(tzinfo=datetime.timezone.utc)


def _marker(sandbox):
    return os.path.join(sandbox, MARKER)


def _owned(sandbox):
    """Whether ``sandbox`` may be emptied: it does not exist, is empty, or carries the drill marker."""
    if not os.path.exists(sandbox):
        return True
    if not os.path.isdir(sandbox):
        raise CairnError('the drill sandbox %s exists and is not a directory; choose another cairn_drill_dir'
                         % sandbox)
    return not os.listdir(sandbox) or os.path.isfile(_marker(sandbox))


def remove(sandbox, check_mode=False):
    """Delete a drill sandbox; True when there was one. Refuses a directory the drill does not own."""
    if not os.path.exists(sandbox):
        return False
    if not _owned(sandbox):
        raise CairnError('%s holds files but no %s: it is not a drill sandbox, so it is left alone; choose an '
                         'empty or new directory for cairn_drill_dir' % (sandbox, MARKER))
    if not check_mode:
        shutil.rmtree(sandbox)
    return True


def sandbox_overrides(captured, manifest, sandbox, host, port, operator):
    """The variables a sandbox CMS runs with: its own address, database file and storage directories,
    isolation from shared services, and then the operator's own ``operator`` overrides, which win."""
    overrides = dict(ISOLATION)
    overrides.update({'HOST': host, 'PORT': str(port),
                      'PUBLIC_URL': 'http://%s:%d' % ('[%s]' % host if ':' in host else host, port),
                      'EXTENSIONS_PATH': os.path.join(sandbox, 'extensions')})
    vendor = manifest['database']['vendor']
    if vendor == 'sqlite':
        overrides['DB_FILENAME'] = os.path.join(sandbox, 'database', 'data.db')
    elif not any(name in operator for name in ('DB_DATABASE', 'DB_CONNECTION_STRING')):
        raise CairnError('restore point %s holds a %s database: a drill restores it into a scratch database you '
                         'name, and replaces that database. Set DB_DATABASE (and DB_HOST, DB_PORT, DB_USER) in '
                         'cairn_drill_env_overrides and DB_PASSWORD in cairn_drill_env_secret_overrides'
                         % (manifest['id'], vendor))
    names = [location['name'] for location in (manifest.get('storage') or {}).get('locations') or []]
    listed = captured.get('STORAGE_LOCATIONS')
    if listed:
        names += [name.strip() for name in str(listed).split(',') if name.strip() and name.strip() not in names]
    for name in names:
        prefix = 'STORAGE_%s_' % name.upper()
        if prefix + 'DRIVER' not in operator:
            overrides[prefix + 'DRIVER'] = 'local'
            overrides[prefix + 'ROOT'] = os.path.join(sandbox, 'storage', name)
    overrides.update({str(key): value for key, value in operator.items()})
    return overrides


def _database_identity(config):
    """What a database is, for comparison; None when the configuration does not say."""
    try:
        database = config.database()
    except CairnError:
        return None
    if database.vendor == 'sqlite':
        return ('sqlite', os.path.realpath(database.options['filename']))
    options = database.options
    host = str(options.get('host') or '').lower()
    return (database.vendor, 'loopback' if host in LOOPBACK else host,
            options.get('port') or DEFAULT_PORTS[database.vendor], options.get('database'))


def _location_identity(location):
    options = location.options
    if location.driver == 'local':
        return ('local', os.path.realpath(options['root']))
    if location.driver not in LOCATION_KEYS:
        return (location.driver, location.name)
    return (location.driver,) + tuple(str(options.get(key) or '').strip('/') for key in LOCATION_KEYS[location.driver])


def _locations(config):
    """The locations of ``config``; none when they cannot be read (the guard then relies on the other configs)."""
    try:
        return config.locations()
    except CairnError:
        return []


def guard(sandbox_config, live_configs):
    """Refuse a sandbox whose database or storage is one of a live instance's (the configuration captured in the
    restore point, and the live .env where the drill runs): a drill restores with replace, so it must only
    ever touch what it owns."""
    database = _database_identity(sandbox_config)
    locations = {_location_identity(location): location.name for location in sandbox_config.locations()}
    for what, live in live_configs:
        if database is not None and _database_identity(live) == database:
            raise CairnError('the drill sandbox would use the database of %s (%s); give the drill its own '
                             'database in cairn_drill_env_overrides' % (what, ', '.join(map(str, database))))
        for location in _locations(live):
            identity = _location_identity(location)
            if identity in locations:
                raise CairnError('storage location %s of the drill sandbox is location %s of %s (%s); leave '
                                 'STORAGE_%s_* out of cairn_drill_env_overrides (the sandbox then keeps the files '
                                 'on its own disk) or name a scratch bucket'
                                 % (locations[identity], location.name, what, ', '.join(identity),
                                    locations[identity].upper()))


def prepare(repository, instance, manifest, sandbox, host='127.0.0.1', port=0, overrides=None,
            secret_overrides=None, live_env_file=None, check_mode=False):
    """Make the sandbox for a drill of ``manifest`` and write its .env; returns what the drill needs next."""
    overrides = dict(overrides or {})
    secret_overrides = dict(secret_overrides or {})
    named = sorted(name for name in overrides if looks_secret(str(name)))
    if named:
        raise CairnError('%s look(s) like secrets; pass them in cairn_drill_env_secret_overrides, which is never '
                         'logged' % ', '.join(named))
    if not _owned(sandbox):
        raise CairnError('%s holds files but no %s: it is not a drill sandbox, so it is left alone; choose an '
                         'empty or new directory for cairn_drill_dir' % (sandbox, MARKER))
    bundle = _secrets.open_bundle(repository, instance, manifest)
    captured_text = bundle[1]['env/.env'].decode('utf-8')
    captured = parse_dotenv(captured_text)
    port = port or free_port(host)
    values = sandbox_overrides(captured, manifest, sandbox, host, port, dict(overrides, **secret_overrides))
    plan = {'sandbox': sandbox, 'env_file': os.path.join(sandbox, ENV), 'url': values['PUBLIC_URL'], 'port': port,
            'env_overrides': sorted(values), 'started_at': iso(utc_now()),
            'restore_point': {'id': manifest['id'], 'started_at': manifest['started_at']},
            'vendor': manifest['database']['vendor']}
    if check_mode:
        return plan
    if os.path.exists(sandbox):
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
            handle.write(_secrets.render_env(captured_text, values).encode('utf-8'))
        sandbox_config = InstanceConfig.load(plan['env_file'])
        lives = [('the instance as captured in restore point %s' % manifest['id'],
                  _captured_config(captured_text))]
        if live_env_file and os.path.exists(live_env_file):
            lives.append(('the live instance (%s)' % live_env_file, InstanceConfig.load(live_env_file)))
        guard(sandbox_config, lives)
    except Exception:
        shutil.rmtree(sandbox, ignore_errors=True)
        raise
    return plan


def _captured_config(text):
    """The captured configuration as CairnCMS reads it, without ``*_FILE`` indirections (their files belong to
    the source host). Relative paths resolve below a directory that exists nowhere: where the source kept them
    is not known here, and the live .env covers that case."""
    raw = dict(DEFAULTS)
    raw.update((name, value) for name, value in parse_dotenv(text).items() if not name.endswith('_FILE'))
    return InstanceConfig(process_values(raw, SOURCE_DIR), SOURCE_DIR)


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
