# -*- coding: utf-8 -*-
# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run the CMS's ``bootstrap`` (private): it brings a database made by an older CMS up to the installed one's
migrations (installing the system tables when there are none). The migrations it ran are read from
``directus_migrations`` before and after, through the instance's database backend.

The CLI runs with its configuration from the instance's .env (``CONFIG_PATH``) and an environment of PATH, HOME,
the locale and TZ only; nothing of the configuration is on its command line. Its output is kept (the end of it),
with every secret value of the configuration masked, for the result and for the error when it fails.
"""

from __future__ import annotations

import os
import re
import sqlite3
import urllib.parse

from ansible_collections.cairncms.ops.plugins.module_utils._cms.services import run_to_file
from ansible_collections.cairncms.ops.plugins.module_utils._common import CairnError, Timer
from ansible_collections.cairncms.ops.plugins.module_utils._db import select_backend
from ansible_collections.cairncms.ops.plugins.module_utils._env import parse_dotenv
from ansible_collections.cairncms.ops.plugins.module_utils._process import mask
from ansible_collections.cairncms.ops.plugins.module_utils._secrets import is_secret

PASSTHROUGH = ('PATH', 'HOME', 'LANG', 'TZ')
OUTPUT_TAIL_LINES = 40
OUTPUT_TAIL_BYTES = 64 * 1024
MIN_MASKED = 4  # shorter values would mask ordinary words of the output
# A new database gets an admin; without ADMIN_PASSWORD the CLI prints the one it made up.
_MADE_UP_PASSWORD = re.compile(r'(Defaulting to ")[^"]*(")')
_URL_PASSWORD = re.compile(r'[A-Za-z][A-Za-z0-9+.-]*://[^:/?#@\s]*:([^@/?#\s]+)@')


def applied_migrations(config):
    """The versions in ``directus_migrations`` of the instance's database, sorted; empty when the database or the
    table does not exist yet."""
    backend = select_backend(config.database())
    try:
        if backend.probe().get('exists') is False or not backend.has_table('directus_migrations'):
            return []
        rows = backend.query('SELECT version FROM directus_migrations ORDER BY version')
    except sqlite3.Error as exc:
        raise CairnError('cannot read the migrations of the SQLite database %s: %s'
                         % (backend.database.options.get('filename'), exc)) from None
    return sorted(str(row[0]) for row in rows if row and row[0] is not None)


def secret_values(config, env_file):
    """The secret values of the configuration (with its overrides; none when ``config`` is None) and of the .env
    file, passwords inside URLs too, longest first."""
    configured = config.values if config is not None else {}
    values = {name: value for name, value in configured.items() if is_secret(name)}
    try:
        with open(env_file, 'rb') as handle:  # odd bytes must not hide the secrets around them
            raw = parse_dotenv(handle.read().decode('utf-8', 'replace'))
    except OSError:
        raw = {}
    values.update(('file:' + name, value) for name, value in raw.items() if is_secret(name))
    found = {str(value) for value in values.values() if value is not None and len(str(value)) >= MIN_MASKED}
    for value in list(configured.values()) + list(raw.values()):  # passwords in URLs (CACHE_REDIS, ...)
        for match in _URL_PASSWORD.finditer(str(value)):
            for password in (match.group(1), urllib.parse.unquote(match.group(1))):
                if len(password) >= MIN_MASKED:
                    found.add(password)
    return sorted(found, key=len, reverse=True)


def masked_tail(data, secrets):
    """The end of the CLI's output, secrets masked."""
    text = mask(data[-OUTPUT_TAIL_BYTES:].decode('utf-8', 'replace'), secrets)
    text = _MADE_UP_PASSWORD.sub(r'\1********\2', text)
    return '\n'.join(text.strip('\n').splitlines()[-OUTPUT_TAIL_LINES:])


def child_environment(env_file):
    env = {name: value for name, value in os.environ.items() if name in PASSTHROUGH or name.startswith('LC_')}
    env['CONFIG_PATH'] = env_file
    return env


def _run(args, chdir, env, timeout):
    """(exit code or None when it ran out of time, its output); the CLI's process group is killed at the end."""
    try:
        return run_to_file(args, timeout, cwd=chdir, env=env, kill_group=True, tail_bytes=OUTPUT_TAIL_BYTES)
    except OSError as exc:
        raise CairnError('cannot run the CMS command %s in %s: %s; set command (cairn_cms_command) to the CMS\'s '
                         'CLI, for example [node, /opt/cairncms/node_modules/cairncms/cli.js]'
                         % (args[0], chdir, exc.strerror)) from None


def run_bootstrap(config, command, chdir, env_file, timeout):
    """Run ``command + ['bootstrap']`` in ``chdir`` for the instance of ``config`` (whose .env is ``env_file``);
    ``{migrations_before_level, migrations_ran, migration_level, duration_s, output_tail}``. A failure or a run
    longer than ``timeout`` seconds is a CairnError with the end of its output, secrets masked, and the migrations
    it ran before it stopped (``migrations_ran``)."""
    if not command:
        raise CairnError('command (cairn_cms_command) is empty; give the CMS\'s CLI, for example '
                         '[node, /opt/cairncms/node_modules/cairncms/cli.js]')
    if not env_file or not os.path.isfile(env_file):
        raise CairnError('the CMS reads its configuration from its .env, and %s; set env_file (cairn_env_file) to '
                         'the instance\'s .env' % ('none was given' if not env_file else '%s is no file' % env_file))
    if not os.path.isdir(chdir):
        raise CairnError('the directory %s to run the CMS\'s bootstrap in does not exist; set chdir' % chdir)
    before = applied_migrations(config)
    timer = Timer()
    code, output = _run([str(part) for part in command] + ['bootstrap'], chdir,
                        child_environment(os.path.abspath(env_file)), timeout)
    duration = timer.seconds
    tail = masked_tail(output, secret_values(config, env_file))
    if code != 0:
        try:
            ran = sorted(set(applied_migrations(config)) - set(before))
        except CairnError:
            ran = None
        reason = ('ran longer than its timeout of %s s and was stopped' % timeout if code is None
                  else 'failed (exit %d)' % code)
        raise CairnError('the CMS\'s bootstrap (%s bootstrap, in %s) %s%s; the end of its output:\n%s'
                         % (' '.join(str(part) for part in command), chdir, reason,
                            '' if not ran else ' after running the migration(s) %s' % ', '.join(ran), tail),
                         migrations_before_level=before[-1] if before else None, migrations_ran=ran,
                         duration_s=duration)
    after = applied_migrations(config)
    return {'migrations_before_level': before[-1] if before else None,
            'migrations_ran': sorted(set(after) - set(before)),
            'migration_level': after[-1] if after else None,
            'duration_s': duration, 'output_tail': tail}
