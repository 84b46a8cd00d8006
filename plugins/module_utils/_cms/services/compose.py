# -*- coding: utf-8 -*-
# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A CMS run as a service of a Docker Compose project (private): ``docker compose stop|start SERVICE`` in the
project directory; it runs, and something of it is left, while ``ps -q --status running SERVICE`` lists a
container."""

from __future__ import annotations

from ansible_collections.cairncms.ops.plugins.module_utils._process import find_tool
from ansible_collections.cairncms.ops.plugins.module_utils._cms.services import (
    QUERY_TIMEOUT, SPEC, Key, Kind, checked)


class Compose(Kind):
    NAME = 'compose'
    KEYS = {
        'project_dir': Key('str', required=True),
        'service': Key('str', required=True),
        'files': Key('list'),
        'project_name': Key('str'),
        'command': Key('list', default=['docker', 'compose']),
    }

    def describe(self):
        return 'compose service %s in %s' % (self.settings['service'], self.settings['project_dir'])

    def _compose(self, *args):
        command = list(self.settings['command'])
        command[0] = find_tool([command[0]], ' '.join(command), 'Docker with its compose plugin, or set command in '
                               '%s (for example [docker-compose])' % SPEC)
        for name in self.settings['files'] or ():
            command += ['-f', name]
        if self.settings['project_name']:
            command += ['-p', self.settings['project_name']]
        return command + list(args) + [self.settings['service']]

    def _run(self, action, timeout):
        return checked(self._compose(*action), timeout, '%s %s' % (' '.join(self.settings['command'] + action),
                                                                   self.settings['service']),
                       cwd=self.settings['project_dir'])

    def containers(self):
        """Ids of the service's running containers."""
        return self._run(['ps', '-q', '--status', 'running'], QUERY_TIMEOUT).split()

    def running(self):
        return bool(self.containers())

    def state(self):
        found = self.containers()
        return 'compose lists %d running container%s' % (len(found), '' if len(found) == 1 else 's')

    def leftovers(self):
        found = self.containers()
        if not found:
            return []
        return ['%d running container%s of the compose service %s (%s)' % (
            len(found), '' if len(found) == 1 else 's', self.settings['service'], ', '.join(found[:10]))]

    def stop(self, timeout):
        self._run(['stop'], timeout)

    def start(self, timeout):
        # ``start``, not ``up -d``: the stop before left the container in place, and ``start`` runs that very
        # container again - the same image and configuration the CMS had before the restore, whose migrations were
        # checked against the restore point. ``up -d`` would recreate it when the image or compose file changed
        # meanwhile (a pulled update: another CMS version than the one checked), and start its stopped dependencies
        # too. A container that was removed is an error naming the fix (``up -d``), never a silent recreate.
        self._run(['start'], timeout)

    def advice(self, action):
        base = ' '.join(self.settings['command'])
        hint = 'see %s logs %s in %s' % (base, self.settings['service'], self.settings['project_dir'])
        if action == 'start':
            hint += ('; when the container was removed (compose down), create it once with %s up -d --no-start %s'
                     % (base, self.settings['service']))
        return '%s; raise %s_timeout in %s if it only needs longer' % (hint, action, SPEC)
