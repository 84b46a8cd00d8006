# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A throwaway Azure Blob endpoint for the tests: Azurite's blob service on a free 127.0.0.1 port.

Azurite comes from npm, pinned in ``tests/integration/azurite`` (package.json and
package-lock.json); ``ensure_installed()`` runs ``npm ci`` there when it is missing.
The account is a test account of our own (``AZURITE_ACCOUNTS``), so its key is
one the tests can look for in every result.

    with AzuriteServer() as server:
        server.endpoint                # http://127.0.0.1:PORT/<account>
        server.create_container('c')   # a fresh container
        server.service()               # an azure-storage-blob BlobServiceClient for it
"""

from __future__ import annotations

import os
import shutil
import tempfile

import _npm
from _emulator import Emulator

PACKAGE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'azurite')
CLI_RELPATH = os.path.join('node_modules', 'azurite', 'dist', 'src', 'blob', 'main.js')
INSTALL_TIMEOUT = 600
ACCOUNT_NAME = 'cairnacct'
# dummy, base64 as Azure account keys are; the tests check that it never leaks
ACCOUNT_KEY = 'Y2Fpcm4tYXp1cml0ZS1hY2NvdW50LWtleS1ReDdQbTJ2TjlrTDR0Ujh3'


class AzureUnavailable(Exception):
    pass


def ensure_installed(base_dir=PACKAGE_DIR):
    """Install the pinned Azurite if needed (``npm ci``, once, see ``_npm``) and return the path of its blob
    service entry."""
    return _npm.ensure_npm_ci(base_dir, CLI_RELPATH, AzureUnavailable, timeout=INSTALL_TIMEOUT)


class AzuriteServer(Emulator):
    name = 'Azurite'
    unavailable = AzureUnavailable
    probe_path = '/%s?comp=list' % ACCOUNT_NAME
    http_error_is_ready = True  # it answers 403 without a signature

    def __init__(self):
        super().__init__()
        self.workdir = None
        self._cli = self._node = None

    @property
    def endpoint(self):
        return '%s/%s' % (self.base_url, ACCOUNT_NAME)

    def start(self, timeout=60):
        self._cli = ensure_installed()
        self._node = shutil.which('node')
        if self._node is None:
            raise AzureUnavailable('`node` not found on PATH; it is needed to run Azurite')
        self.workdir = tempfile.mkdtemp(prefix='cairn-azurite-')
        return super().start(timeout)

    def launch(self, port):
        return [self._node, self._cli, '--skipApiVersionCheck', '--inMemoryPersistence', '--blobHost', '127.0.0.1',
                '--blobPort', str(port), '--silent'], {
                    'cwd': self.workdir, 'env': dict(os.environ, AZURITE_ACCOUNTS='%s:%s' % (ACCOUNT_NAME, ACCOUNT_KEY))}

    def stop(self):
        self.terminate()
        if self.workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None

    def service(self):
        from azure.storage.blob import BlobServiceClient
        return BlobServiceClient(account_url=self.endpoint,
                                 credential={'account_name': ACCOUNT_NAME, 'account_key': ACCOUNT_KEY})

    def create_container(self, name):
        self.service().create_container(name)
        return name


def env_lines(location, endpoint, container, root='', account_key=ACCOUNT_KEY):
    """The .env lines of an azure storage location pointing at ``endpoint``."""
    prefix = 'STORAGE_%s_' % location.upper()
    lines = ['%sDRIVER=azure' % prefix, '%sCONTAINER_NAME=%s' % (prefix, container),
             '%sACCOUNT_NAME=%s' % (prefix, ACCOUNT_NAME), '%sENDPOINT=%s' % (prefix, endpoint)]
    if root:
        lines.append('%sROOT=%s' % (prefix, root))
    if account_key:
        lines.append('%sACCOUNT_KEY=%s' % (prefix, account_key))
    return '\n'.join(lines) + '\n'
