# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A real Directus 10.0.0 (CairnCMS's fork point) in a work directory, run by the tests' own service manager
(``_cmsctl.py``, driven the way cairn_cms_service's ``command`` kind drives a service), for the tests that restore
or migrate a running CMS through ansible-playbook."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import _directus

CMSCTL = os.path.join(os.path.dirname(os.path.abspath(__file__)), '_cmsctl.py')


def health(url):
    """The CMS's health status, or None when nothing answers."""
    try:
        with urllib.request.urlopen(url + '/server/health', timeout=5) as answer:
            return json.load(answer).get('status')
    except urllib.error.HTTPError as exc:
        return 'HTTP %d' % exc.code
    except OSError:
        return None


def ctl(action, workdir):
    return subprocess.run([sys.executable, CMSCTL, action, str(workdir)], check=False).returncode


def pid(workdir):
    with open(os.path.join(workdir, 'cms.pid'), encoding='ascii') as handle:
        return int(handle.read())


def wait_healthy(url, timeout=120):
    deadline = time.monotonic() + timeout
    while health(url) not in ('ok', 'warn'):
        assert time.monotonic() < deadline, 'the CMS on %s did not become healthy' % url
        time.sleep(0.25)


class Site:
    """A Directus in ``workdir``: bootstrapped with ``env`` over the default .env, or (``bootstrap=False``) only its
    .env written, for a migration that makes its database."""

    def __init__(self, workdir, env=None, bootstrap=True):
        self.workdir = Path(workdir)
        if bootstrap:
            self.settings = _directus.bootstrap(workdir, env)
        else:
            self.workdir.mkdir(parents=True, exist_ok=True)
            self.settings = _directus.default_env(workdir)
            self.settings.update({key: str(value) for key, value in (env or {}).items()})
            _directus.write_env(workdir, self.settings)
            for key in ('STORAGE_LOCAL_ROOT', 'EXTENSIONS_PATH'):
                (self.workdir / self.settings[key]).mkdir(parents=True, exist_ok=True)
        self.url = self.settings['PUBLIC_URL']
        self.token = None

    def start(self):
        assert ctl('start', self.workdir) == 0
        wait_healthy(self.url)
        self.token = _directus.login(self.url, self.settings['ADMIN_EMAIL'], self.settings['ADMIN_PASSWORD'])
        return self

    def stop(self):
        ctl('stop', self.workdir)

    @property
    def running(self):
        return ctl('status', self.workdir) == 0

    def service(self, **changes):
        """The cairn_cms_service of this instance."""
        command = [sys.executable, CMSCTL]
        spec = {'kind': 'command', 'url': self.url, 'start': command + ['start', str(self.workdir)],
                'stop': command + ['stop', str(self.workdir)], 'status': command + ['status', str(self.workdir)],
                'pid_file': str(self.workdir / 'cms.pid'), 'stop_timeout': 60, 'start_timeout': 120}
        spec.update(changes)
        return spec
