# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Throwaway hosts over SSH: real ``sshd`` processes on free 127.0.0.1 ports, each in a mount namespace of its
own, so that the same path holds a different instance on every "host", as on real machines.

Each host gets private directories bound over ``/srv`` (the instances, e.g. ``/srv/cairn/blog``) and ``/var/tmp``
(the drill sandboxes, ``/var/tmp/cairn-drill``, and the host's own sshd configuration and keys in
``/var/tmp/.cairn-sshd``). Everything else (the checkout with the venv's python, wherever it is cloned, ``/tmp``,
``/usr``, ``/root``, the network) is shared, so ``ansible_python_interpreter`` is the interpreter running this
file and servers started on 127.0.0.1 (moto, PostgreSQL) are reached from every host.

    with SshFleet(['alpha', 'bravo']) as fleet:
        host = fleet.hosts['alpha']
        host.outside('/srv/cairn/blog')      # the same directory as seen by the controller
        host.read('/srv/cairn/blog/.env')    # read inside the host's namespace
        host.run(['ls', '/srv/cairn'])       # any command inside it (nsenter)
        fleet.write_inventory(path, {'blog': ('alpha', {'cairn_env_file': '/srv/cairn/blog/.env'})}, common)

As a pytest fixture: ``ssh_fleet = fleet_fixture('alpha', 'bravo', scope='module')`` in a test module. Runs as
root (mount namespaces, ``PermitRootLogin``); without ``/usr/sbin/sshd`` (Debian: openssh-server) the fixture
skips, or fails when ``CAIRN_REQUIRE_DB_SERVERS=1`` (CI). The benchmark ``benchmarks/fleet.py`` imports it too.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

from _servers import _die_with_parent, free_port

SSHD = '/usr/sbin/sshd'
# Inside path -> name of the host's private directory bound over it. /tmp stays shared: a checkout (and its venv,
# the hosts' python) is often cloned there, and the modules' scratch space is private per process anyway.
PRIVATE = {'/srv': 'srv', '/var/tmp': 'var-tmp'}
SSHD_DIR = '/var/tmp/.cairn-sshd'   # inside each host: its sshd_config, host key, authorized_keys, pid file
START_TIMEOUT = 30
PYTHON = os.path.abspath(sys.executable)  # a venv's python: its symlink kept, so that its packages are found
_MOUNT_AND_EXEC = ('set -e; for pair in "$@"; do mount --bind "${pair%%=*}" "${pair#*=}"; done; '
                   'exec %s -D -e -f %s/sshd_config' % (SSHD, SSHD_DIR))


class SshUnavailable(Exception):
    """sshd, ssh-keygen, unshare or nsenter is missing, or this is not root (tests skip on this)."""


class SshStartError(RuntimeError):
    """An sshd did not start; the message carries its log."""


def _check_tools():
    if os.geteuid() != 0:
        raise SshUnavailable('the SSH hosts need root (mount namespaces, sshd)')
    if not os.access(SSHD, os.X_OK):
        raise SshUnavailable('%s not found: apt-get install openssh-server openssh-client' % SSHD)
    for tool in ('ssh', 'ssh-keygen', 'unshare', 'nsenter'):
        if not shutil.which(tool):
            raise SshUnavailable('%s not found: apt-get install openssh-client util-linux' % tool)
    hidden = [root for root in PRIVATE if PYTHON.startswith(root + '/')]
    if hidden:
        raise SshUnavailable('%s is under %s, which every SSH host hides; use a venv elsewhere' % (PYTHON, hidden[0]))


def _namespace(pid):
    try:
        return os.readlink('/proc/%d/ns/mnt' % pid)
    except OSError:
        return None


class SshHost:
    """One sshd in its own mount namespace. ``root`` is its directory on the controller."""

    def __init__(self, name, root, client_public_key, host_key):
        self.name = name
        self.root = root
        self.port = None
        self.process = None
        self.namespace = None
        self.log_path = os.path.join(root, 'sshd.log')
        for inside, private in PRIVATE.items():
            os.makedirs(os.path.join(root, private), exist_ok=True)
        os.chmod(self.outside('/var/tmp'), 0o1777)
        config_dir = self.outside(SSHD_DIR)
        os.makedirs(config_dir, mode=0o700, exist_ok=True)
        shutil.copyfile(host_key, os.path.join(config_dir, 'host_key'))
        os.chmod(os.path.join(config_dir, 'host_key'), 0o600)
        shutil.copyfile(client_public_key, os.path.join(config_dir, 'authorized_keys'))

    def __repr__(self):
        return '<SshHost %s 127.0.0.1:%s pid=%s>' % (self.name, self.port, self.pid)

    @property
    def pid(self):
        """The sshd's pid: the process to enter (``nsenter --target``) for the host's view of the files."""
        return self.process.pid if self.process else None

    def outside(self, path):
        """The controller's path of ``path`` as the host sees it (under /srv, /var/tmp or /tmp)."""
        path = os.path.normpath(path)
        for inside in sorted(PRIVATE, key=len, reverse=True):
            if path == inside or path.startswith(inside + '/'):
                return os.path.join(self.root, PRIVATE[inside], os.path.relpath(path, inside))
        raise ValueError('%s is shared by every host, not private to %s' % (path, self.name))

    def run(self, argv, check=True, **options):
        """``argv`` inside the host's mount namespace (a subprocess.run, output captured)."""
        options.setdefault('capture_output', True)
        return subprocess.run(['nsenter', '--target', str(self.pid), '--mount', '--'] + list(argv), check=check,
                              **options)

    def read(self, path):
        """The bytes of ``path`` as the host sees it."""
        return self.run(['cat', path]).stdout

    def exists(self, path):
        return self.run(['test', '-e', path], check=False).returncode == 0

    def _write_config(self):
        with open(self.outside(SSHD_DIR + '/sshd_config'), 'w', encoding='ascii') as handle:
            handle.write('\n'.join([
                'ListenAddress 127.0.0.1', 'Port %d' % self.port, 'HostKey %s/host_key' % SSHD_DIR,
                'PidFile %s/sshd.pid' % SSHD_DIR, 'AuthorizedKeysFile %s/authorized_keys' % SSHD_DIR,
                'PermitRootLogin prohibit-password', 'PubkeyAuthentication yes', 'PasswordAuthentication no',
                'KbdInteractiveAuthentication no', 'UsePAM no', 'StrictModes no', 'UseDNS no', 'PrintMotd no',
                'PrintLastLog no', 'MaxStartups 200', 'MaxSessions 100', 'LogLevel INFO',
                'Subsystem sftp internal-sftp', '']))

    def start(self):
        for attempt in range(3):  # another process may take the free port first
            self.port = free_port()
            self._write_config()
            binds = ['%s=%s' % (os.path.join(self.root, private), inside) for inside, private in PRIVATE.items()]
            with open(self.log_path, 'ab') as log:
                self.process = subprocess.Popen(
                    ['unshare', '--mount', '--propagation', 'private', '--', '/bin/sh', '-c', _MOUNT_AND_EXEC, 'sh']
                    + binds, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                    preexec_fn=_die_with_parent)
            if self._wait_ready():
                namespace = _namespace(self.pid)
                if namespace is None or namespace == _namespace(os.getpid()):
                    self.stop()  # its process group only: self.namespace is not set
                    raise SshStartError('sshd of host %s is not in a mount namespace of its own' % self.name)
                self.namespace = namespace
                return self
            self.stop()
            if attempt < 2 and 'Address already in use' in self.log_tail():
                continue
            break
        raise SshStartError('sshd of host %s did not start on 127.0.0.1:%s:\n%s'
                            % (self.name, self.port, self.log_tail()))

    def _wait_ready(self):
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline and self.process.poll() is None:
            try:
                with socket.create_connection(('127.0.0.1', self.port), timeout=2) as sock:
                    if sock.recv(4).startswith(b'SSH-'):
                        return True
            except OSError:
                pass
            time.sleep(0.05)
        return False

    def log_tail(self, lines=30):
        try:
            with open(self.log_path, encoding='utf-8', errors='replace') as handle:
                return ''.join(handle.readlines()[-lines:])
        except OSError as error:
            return '(no log: %s)' % error

    def stop(self):
        """Kill the sshd and every process left in its namespace (sessions, a CMS a drill started)."""
        if self.process is None:
            return
        namespace = self.namespace if self.namespace != _namespace(os.getpid()) else None  # never our own
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        try:  # what is left of its process group (an sshd that never got ready)
            os.killpg(self.process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        deadline = time.monotonic() + 10
        while namespace and time.monotonic() < deadline:
            left = [int(pid) for pid in os.listdir('/proc') if pid.isdigit() and _namespace(int(pid)) == namespace]
            if not left:
                break
            for pid in left:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.05)
        self.process = None
        self.namespace = None


class SshFleet:
    """``names`` hosts sharing one client key; ``base_dir`` holds everything (removed by ``stop()``)."""

    def __init__(self, names, base_dir=None):
        self.names = list(names)
        if len(set(self.names)) != len(self.names):
            raise ValueError('host names repeat: %s' % self.names)
        self.base_dir = base_dir
        self.hosts = {}
        self.client_key = None
        self._own_base = base_dir is None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.stop()

    def start(self):
        _check_tools()
        # sshd's privilege separation directory (systemd creates it for the system's sshd).
        os.makedirs('/run/sshd', mode=0o755, exist_ok=True)
        for inside in PRIVATE:
            os.makedirs(inside, exist_ok=True)
        if self.base_dir is None:
            self.base_dir = tempfile.mkdtemp(prefix='cairn-ssh-')
        hidden = [root for root in PRIVATE if os.path.realpath(self.base_dir).startswith(root + '/')]
        if hidden:  # the binds would hide their own sources
            raise ValueError('the fleet directory %s must not be under %s' % (self.base_dir, hidden[0]))
        os.makedirs(self.base_dir, exist_ok=True)
        keys = os.path.join(self.base_dir, 'keys')
        os.makedirs(keys, mode=0o700, exist_ok=True)
        os.makedirs(os.path.join(self.base_dir, 'cp'), mode=0o700, exist_ok=True)
        self.client_key = os.path.join(keys, 'client')
        host_key = os.path.join(keys, 'host')
        for path, comment in ((self.client_key, 'cairn-test-client'), (host_key, 'cairn-test-host')):
            subprocess.run(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-C', comment, '-f', path],
                           check=True, capture_output=True)
        try:
            for name in self.names:
                host = SshHost(name, os.path.join(self.base_dir, 'hosts', name), self.client_key + '.pub', host_key)
                self.hosts[name] = host
                host.start()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self):
        for host in self.hosts.values():
            host.stop()
        if self._own_base and self.base_dir:
            shutil.rmtree(self.base_dir, ignore_errors=True)

    def connection_vars(self, name):
        """The inventory variables that reach host ``name`` over SSH as root, with pipelining."""
        host = self.hosts[name]
        return {'ansible_connection': 'ssh', 'ansible_host': '127.0.0.1', 'ansible_port': host.port,
                'ansible_user': 'root', 'ansible_ssh_private_key_file': self.client_key,
                'ansible_ssh_common_args': '-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null '
                                           '-o IdentitiesOnly=yes -o LogLevel=ERROR',
                'ansible_host_key_checking': False, 'ansible_control_path_dir': os.path.join(self.base_dir, 'cp'),
                'ansible_ssh_args': '-o ControlMaster=auto -o ControlPersist=60s',  # no -C: loopback
                'ansible_python_interpreter': PYTHON, 'ansible_pipelining': True}

    def inventory(self, instances, common=None):
        """An inventory whose hosts are ``instances`` (``{inventory name: (fleet host name, variables)}``): several
        instances can live on one fleet host, each reached over that host's sshd."""
        hosts = {}
        for name, (where, variables) in instances.items():
            hosts[name] = dict(self.connection_vars(where), **(variables or {}))
        return {'all': {'vars': dict(common or {}), 'hosts': hosts}}

    def write_inventory(self, path, instances, common=None):
        with open(path, 'w', encoding='utf-8') as handle:
            json.dump(self.inventory(instances, common), handle, indent=1)
        return str(path)


def fleet_fixture(*names, scope='module'):
    """A pytest fixture yielding a started ``SshFleet`` of ``names`` (skipped without sshd, unless
    ``CAIRN_REQUIRE_DB_SERVERS=1``)."""
    import pytest

    @pytest.fixture(scope=scope)
    def ssh_fleet(tmp_path_factory):
        fleet = SshFleet(names, base_dir=str(tmp_path_factory.mktemp('ssh-fleet')))
        try:
            fleet.start()
        except SshUnavailable as error:
            if os.environ.get('CAIRN_REQUIRE_DB_SERVERS', '') not in ('', '0'):
                pytest.fail(str(error), pytrace=False)
            pytest.skip(str(error))
        try:
            yield fleet
        finally:
            fleet.stop()
    return ssh_fleet
