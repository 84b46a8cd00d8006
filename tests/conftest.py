# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Shared test plumbing: the collection on sys.path, real module and playbook runs."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COLLECTIONS = os.path.join(ROOT, '.build', 'collections')
LINK = os.path.join(COLLECTIONS, 'ansible_collections', 'cairncms', 'ops')
if not os.path.exists(LINK):
    os.makedirs(os.path.dirname(LINK), exist_ok=True)
    os.symlink(ROOT, LINK)
sys.path.insert(0, COLLECTIONS)
sys.path.insert(0, os.path.join(ROOT, 'tests', 'support'))
sys.path.insert(0, os.path.join(ROOT, 'tests', 'integration'))

import demo_instance  # noqa: E402

pytest_plugins = ['servers_fixtures']


def _env(extra=None):
    env = dict(os.environ, PYTHONPATH=COLLECTIONS, ANSIBLE_COLLECTIONS_PATH=COLLECTIONS,
               ANSIBLE_FORCE_COLOR='0', ANSIBLE_NOCOLOR='1', ANSIBLE_LOCALHOST_WARNING='0')
    env.update(extra or {})
    return env


class ModuleResult(dict):
    @property
    def failed(self):
        return bool(self.get('failed'))


def module_command(name):
    return [sys.executable, '-m', 'ansible_collections.cairncms.ops.plugins.modules.' + name]


# Where a module run straight from the source tree (run_module, or module_command with module_env) keeps the
# bytecode of the collection's code, so that each run does not compile it again (PYTHONDONTWRITEBYTECODE, which
# some machines set, would make every run compile some 12,000 lines: about 0.2 s of CPU a run). Ansible itself runs
# a module from a zip, which has no bytecode.
PYCACHE = os.path.join(ROOT, '.build', 'pycache')


def module_env(extra=None):
    env = _env(extra)
    env.pop('PYTHONDONTWRITEBYTECODE', None)
    env['PYTHONPYCACHEPREFIX'] = PYCACHE
    return env


def run_module(name, check_mode=False, environ=None, **args):
    """Run a module of the collection for real, as Ansible would on the managed host."""
    if check_mode:
        args['_ansible_check_mode'] = True
    proc = subprocess.run(module_command(name), input=json.dumps({'ANSIBLE_MODULE_ARGS': args}),
                          capture_output=True, text=True, env=module_env(environ), cwd=ROOT, timeout=600,
                          check=False)
    try:
        result = ModuleResult(json.loads(proc.stdout))
    except ValueError:
        raise AssertionError('module %s printed no JSON (rc %d):\n%s\n%s'
                             % (name, proc.returncode, proc.stdout, proc.stderr))
    result['_rc'] = proc.returncode
    return result


def write_inventory(path, hosts, repository):
    inventory = {'all': {'vars': {'ansible_connection': 'local', 'ansible_python_interpreter': sys.executable,
                                  'cairn_repository': {'type': 'local', 'path': repository}},
                         'hosts': hosts}}
    with open(path, 'w', encoding='utf-8') as handle:
        json.dump(inventory, handle)
    return path


def run_playbook(name, inventory, limit=None, extra=(), check=False, environ=None):
    command = [os.path.join(os.path.dirname(sys.executable), 'ansible-playbook'), '-i', inventory,
               os.path.join(ROOT, 'playbooks', name)] + list(extra)
    if limit:
        command += ['--limit', limit]
    if check:
        command.append('--check')
    return subprocess.run(command, capture_output=True, text=True, env=_env(environ), cwd=ROOT, timeout=900,
                          check=False)


# Run a playbook with these and read what it published for AWX (set_stats) with ``custom_stats``.
SHOW_STATS = {'ANSIBLE_SHOW_CUSTOM_STATS': '1'}


def custom_stats(output):
    """The custom stats (set_stats) a playbook run printed with SHOW_STATS, or {}."""
    lines = [line for line in output.splitlines() if line.strip().startswith('RUN: ')]
    return json.loads(lines[-1].split('RUN: ', 1)[1]) if lines else {}


class Gate:
    """A playbook run held at the start of one task (tests/integration/callbacks/cairn_gate.py): ``wait()`` until
    it is there, do something beside it, then ``release()`` it (or ``kill()`` it there) and ``finish()``."""

    def __init__(self, name, inventory, task, directory, limit=None, extra=()):
        self.directory = str(directory)
        os.makedirs(self.directory, exist_ok=True)
        command = [os.path.join(os.path.dirname(sys.executable), 'ansible-playbook'), '-i', inventory,
                   os.path.join(ROOT, 'playbooks', name)] + list(extra)
        if limit:
            command += ['--limit', limit]
        env = _env({'ANSIBLE_CALLBACK_PLUGINS': os.path.join(ROOT, 'tests', 'integration', 'callbacks'),
                    'ANSIBLE_CALLBACKS_ENABLED': 'cairn_gate', 'CAIRN_GATE_TASK': task,
                    'CAIRN_GATE_DIR': self.directory})
        self.proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                                     cwd=ROOT, start_new_session=True)

    def wait(self, timeout=300):
        deadline = time.monotonic() + timeout
        while not os.path.exists(os.path.join(self.directory, 'reached')):
            if self.proc.poll() is not None:
                raise AssertionError('the playbook ended before the gate:\n%s' % self.proc.stdout.read())
            if time.monotonic() > deadline:
                raise AssertionError('the playbook did not reach the gate in %ss' % timeout)
            time.sleep(0.1)

    def release(self):
        open(os.path.join(self.directory, 'go'), 'w').close()

    def hold_when(self, condition, timeout=300):
        """Once ``condition()`` holds (looked at every millisecond), stop every process below the playbook where it
        is (SIGSTOP): a module caught inside its run, after what the condition sees and before it ends. Fails when
        the condition no longer holds once they are stopped (the run got past it first). ``resume()`` lets them go
        on."""
        deadline = time.monotonic() + timeout
        while not condition():
            if self.proc.poll() is not None:
                raise AssertionError('the playbook ended before it could be held:\n%s' % self.proc.stdout.read())
            if time.monotonic() > deadline:
                raise AssertionError('the playbook did not get where it is held in %ss' % timeout)
            time.sleep(0.001)
        self.held = descendants(self.proc.pid)
        for pid in self.held:
            _signal(pid, signal.SIGSTOP)
        if not condition():
            self.kill()
            raise AssertionError('the playbook got past the point where it was to be held before it was stopped')

    def resume(self):
        for pid in getattr(self, 'held', ()):
            _signal(pid, signal.SIGCONT)

    def kill(self):
        """SIGKILL the playbook and everything it started: Ansible's workers run in sessions of their own (setsid),
        and so may a module's children, so its process group alone would leave a module running. Each is stopped
        first, so that none starts another before it is killed."""
        found = descendants(self.proc.pid)
        for pid in found:
            _signal(pid, signal.SIGSTOP)
        os.killpg(self.proc.pid, signal.SIGKILL)
        for pid in found:
            _signal(pid, signal.SIGKILL)
        self.proc.wait()

    def finish(self, timeout=900):
        output = self.proc.communicate(timeout=timeout)[0]
        return subprocess.CompletedProcess(self.proc.args, self.proc.returncode, output, '')


def _signal(pid, number):
    try:
        os.kill(pid, number)
    except ProcessLookupError:
        pass


def descendants(root):
    """Pids of every process below ``root`` (by parent pid), at this moment."""
    children = {}
    for pid in os.listdir('/proc'):
        if pid.isdigit():
            try:
                with open('/proc/%s/stat' % pid, 'rb') as handle:
                    parent = int(handle.read().rsplit(b')', 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            children.setdefault(parent, []).append(int(pid))
    found, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), ()):
            found.append(child)
            todo.append(child)
    return found


def process_argvs(pids=None):
    """The argv (a list of bytes) of every process running now, or of those of ``pids`` still running."""
    for pid in (os.listdir('/proc') if pids is None else [str(pid) for pid in pids]):
        if pid.isdigit():
            try:
                with open('/proc/%s/cmdline' % pid, 'rb') as handle:
                    yield handle.read().split(b'\0')
            except OSError:
                continue


def part_of(manifest, kind):
    """The entry of part ``kind`` of a (format 2) manifest, itself: a test that forges a manifest changes it here."""
    [entry] = [entry for entry in manifest['parts'] if entry['kind'] == kind]
    return entry


def artifacts_of(manifest):
    """Every artifact entry of a (format 2) manifest, themselves (to rewrite a size or checksum)."""
    return [artifact for entry in manifest['parts'] for artifact in entry['artifacts']]


def digest_tree(directory):
    """{relative path: sha256} of every file below ``directory``, hidden ones too."""
    found = {}
    for where, _dirs, files in os.walk(str(directory)):
        for name in files:
            path = os.path.join(where, name)
            with open(path, 'rb') as handle:
                found[os.path.relpath(path, str(directory))] = hashlib.sha256(handle.read()).hexdigest()
    return found


def processes_under(directory):
    """Pids of processes whose working directory is ``directory`` or below it."""
    directory = str(directory)
    found = []
    for pid in os.listdir('/proc'):
        if pid.isdigit():
            try:
                cwd = os.readlink('/proc/%s/cwd' % pid)
            except OSError:
                continue
            if cwd == directory or cwd.startswith(directory + os.sep):
                found.append(int(pid))
    return found


def recap(output, host):
    """The PLAY RECAP counters of one host."""
    for line in output.splitlines():
        if line.startswith(host + ' ') and 'ok=' in line:
            return {key: int(value) for key, value in (part.split('=') for part in line.split(':', 1)[1].split())}
    raise AssertionError('no PLAY RECAP line for %s in:\n%s' % (host, output))


@pytest.fixture
def source(tmp_path):
    directory = tmp_path / 'source'
    demo_instance.populated(str(directory))
    return directory


@pytest.fixture
def target(tmp_path):
    directory = tmp_path / 'target'
    demo_instance.empty(str(directory))
    return directory


@pytest.fixture
def repo(tmp_path):
    return {'type': 'local', 'path': str(tmp_path / 'repository')}
