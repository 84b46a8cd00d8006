# -*- coding: utf-8 -*-
# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A CMS run by a systemd unit (private): ``systemctl stop|start UNIT``; it runs while the unit is active, and
nothing of it is left when the unit's cgroup holds no process."""

from __future__ import annotations

import os

from ansible_collections.cairncms.ops.plugins.module_utils._common import CairnError
from ansible_collections.cairncms.ops.plugins.module_utils._process import find_tool
from ansible_collections.cairncms.ops.plugins.module_utils._cms.services import (
    QUERY_TIMEOUT, SPEC, Key, Kind, checked)

CGROUP_ROOT = '/sys/fs/cgroup'
# Where a unit's cgroup (systemd's ControlGroup) is: the unified hierarchy (cgroup v2) at the root, or in a hybrid
# or v1 layout under unified/ or systemd/; each has a cgroup.procs listing the processes in it.
HIERARCHIES = ('', 'unified', 'systemd')
RUNNING = ('active', 'activating', 'reloading')


class Systemd(Kind):
    NAME = 'systemd'
    KEYS = {
        'unit': Key('str', required=True),
        'scope': Key('str', default='system', choices=('system', 'user')),
    }

    @property
    def unit(self):
        return self.settings['unit']

    def describe(self):
        return 'systemd %sunit %s' % ('user ' if self.settings['scope'] == 'user' else '', self.unit)

    def _systemctl(self, *args):
        command = [find_tool(['systemctl'], 'systemctl', 'systemd (or set kind in %s to how the CMS runs)' % SPEC)]
        if self.settings['scope'] == 'user':
            command.append('--user')
        return command + list(args)

    def show(self):
        """The unit's ``LoadState``, ``ActiveState``, ``MainPID`` and ``ControlGroup``; CairnError when systemd
        does not know the unit."""
        text = checked(self._systemctl('show', '-p', 'LoadState', '-p', 'ActiveState', '-p', 'MainPID',
                                       '-p', 'ControlGroup', self.unit),
                       QUERY_TIMEOUT, 'systemctl show %s' % self.unit)
        found = dict(line.split('=', 1) for line in text.splitlines() if '=' in line)
        if found.get('LoadState') == 'not-found':
            raise CairnError('systemd knows no %s unit %s (LoadState=not-found); set unit in %s to the unit that '
                             'runs the CMS (systemctl list-units --type=service%s)'
                             % (self.settings['scope'], self.unit, SPEC,
                                ' --user' if self.settings['scope'] == 'user' else ''))
        return found

    def running(self):
        return self.show().get('ActiveState') in RUNNING

    def state(self):
        found = self.show()
        return 'systemd says ActiveState=%s, MainPID=%s' % (found.get('ActiveState'), found.get('MainPID'))

    def leftovers(self):
        group = self.show().get('ControlGroup') or ''
        if not group:
            return []  # a unit without a cgroup has no process
        for hierarchy in HIERARCHIES:
            top = os.path.join(CGROUP_ROOT, hierarchy, group.lstrip('/'))
            if not os.path.isfile(os.path.join(top, 'cgroup.procs')):
                continue
            pids = []
            for directory, _subdirs, _files in os.walk(top):  # the unit's cgroup and any below it
                procs = os.path.join(directory, 'cgroup.procs')
                try:
                    with open(procs, encoding='ascii') as handle:
                        pids.extend(line.strip() for line in handle if line.strip())
                except FileNotFoundError:
                    continue  # removed meanwhile
                except OSError as exc:
                    raise CairnError('cannot read %s (%s) to see whether the CMS is down; run the task as a user '
                                     'who may read it' % (procs, exc.strerror))
            if not pids:
                return []
            return ['%d process%s in the cgroup %s of %s (pid %s)' % (
                len(pids), 'es' if len(pids) > 1 else '', group, self.unit, ', '.join(pids[:10]))]
        return []  # the cgroup is gone: nothing is left in it

    def stop(self, timeout):
        checked(self._systemctl('stop', self.unit), timeout, 'systemctl stop %s' % self.unit)

    def start(self, timeout):
        checked(self._systemctl('start', self.unit), timeout, 'systemctl start %s' % self.unit)

    def advice(self, action):
        user = ' --user' if self.settings['scope'] == 'user' else ''
        return ('see systemctl%s status %s and journalctl%s -u %s; raise %s_timeout in %s if it only needs longer'
                % (user, self.unit, user, self.unit, action, SPEC))
