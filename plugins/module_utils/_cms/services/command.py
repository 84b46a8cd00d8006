# -*- coding: utf-8 -*-
# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A CMS run by commands of the operator's own (private): a start and a stop command, optionally a status command
(exit 0 while it runs) and a pid file (the CMS's main pid).

The commands run without a shell, with stdin /dev/null, a time limit and their output captured, in an environment
of only ``PATH``, ``HOME``, the locale (``LANG``, ``LC_*``), ``TZ`` and the spec's ``environment``: nothing of the
module's own environment leaks into them.
"""

from __future__ import annotations

import json
import os

from ansible_collections.cairncms.ops.plugins.module_utils._common import process_start_time
from ansible_collections.cairncms.ops.plugins.module_utils._secrets import is_secret
from ansible_collections.cairncms.ops.plugins.module_utils._cms.services import (
    QUERY_TIMEOUT, SPEC, Key, Kind, checked, execute)

PASSTHROUGH = ('PATH', 'HOME', 'LANG', 'TZ')


def read_pid(path):
    """The pid in ``path`` while that process runs (not a zombie), else None. The file holds the pid as text, or
    the JSON of cairn_cms_process (``pid`` and its kernel ``start_time``, so a reused pid is not taken for it)."""
    try:
        with open(path, 'rb') as handle:
            text = handle.read(4096).decode('utf-8', 'replace').strip()
    except OSError:
        return None
    start_time = None
    if text.startswith('{'):
        try:
            recorded = json.loads(text)
            text, start_time = str(recorded.get('pid')), recorded.get('start_time')
        except (ValueError, AttributeError):
            return None
    if not text.isdigit() or int(text) <= 0:
        return None
    pid = int(text)
    now = process_start_time(pid)
    if now is None or (start_time is not None and now != start_time):
        return None
    return pid


class Command(Kind):
    NAME = 'command'
    KEYS = {
        'start': Key('list', required=True),
        'stop': Key('list', required=True),
        'status': Key('list'),
        'chdir': Key('str'),
        'pid_file': Key('str'),
        'environment': Key('dict', default={}),
    }

    def __init__(self, settings):
        super().__init__(settings)
        self._start_output = ''

    def describe(self):
        return 'the start and stop commands of %s' % SPEC

    def secrets(self):
        return [value for name, value in self.settings['environment'].items() if is_secret(name) and value]

    def env(self):
        found = {name: value for name, value in os.environ.items()
                 if name in PASSTHROUGH or name.startswith('LC_')}
        found.update(self.settings['environment'])
        return found

    def _status(self):
        """Exit code of the status command, None without one."""
        if not self.settings['status']:
            return None
        return execute(self.settings['status'], QUERY_TIMEOUT, 'the status command %s' % self.settings['status'][0],
                       cwd=self.settings['chdir'], env=self.env(), secrets=self.secrets())[0]

    def running(self):
        code = self._status()
        if code is not None:
            return code == 0
        if self.settings['pid_file']:
            return read_pid(self.settings['pid_file']) is not None
        return None  # only the health answer tells

    def state(self):
        parts = []
        code = self._status()
        if code is not None:
            parts.append('the status command exits %d' % code)
        if self.settings['pid_file']:
            pid = read_pid(self.settings['pid_file'])
            parts.append('pid %s from %s runs' % (pid, self.settings['pid_file']) if pid
                         else 'no process of %s runs' % self.settings['pid_file'])
        return ', '.join(parts)

    def leftovers(self):
        found = []
        if self._status() == 0:
            found.append('the status command %s says it runs (exit 0)' % self.settings['status'][0])
        if self.settings['pid_file']:
            pid = read_pid(self.settings['pid_file'])
            if pid is not None:
                found.append('pid %d from %s still runs' % (pid, self.settings['pid_file']))
        return found

    def stop(self, timeout):
        self._checked('stop', timeout)

    def start(self, timeout):
        self._start_output = ''  # a start that fails says its output in its error
        self._start_output = self._checked('start', timeout)

    def _checked(self, which, timeout):
        return checked(self.settings[which], timeout, 'the %s command %s' % (which, self.settings[which][0]),
                       cwd=self.settings['chdir'], env=self.env(), secrets=self.secrets())

    def start_output(self):
        return self._start_output

    def advice(self, action):
        return ('run the %s command by hand to see what it does; raise %s_timeout in %s if it only needs longer'
                % (action, action, SPEC))
