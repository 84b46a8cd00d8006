# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""cairn_cms_service stops, starts and checks the CMS through what runs it, and says what is still up.

The ``command`` kind runs for real: a tiny CMS stand-in (an HTTP server answering ``/server/health`` on a free port,
in a temp dir) started in the background by a control script of the test's own (``start`` returns at once, as
``systemctl start`` does) and stopped by it; the module runs as Ansible runs it (``run_module``).

The ``systemd`` and ``compose`` kinds cannot run here: there is no systemd and no docker on this machine. They are
tested with recording stand-ins of ``systemctl`` and ``docker`` first on PATH (scripts that log their argv and
working directory and answer as the real tools do, starting and stopping the same real stand-in CMS), and a fake
cgroup tree (``systemd.CGROUP_ROOT`` patched) for the unit's processes. Those run the module's action in this
process, since the cgroup root is patched here.
"""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

from conftest import run_module

from ansible_collections.cairncms.ops.plugins.module_utils._common import CairnError
from ansible_collections.cairncms.ops.plugins.module_utils._cms import service as cms_service
from ansible_collections.cairncms.ops.plugins.module_utils._cms.services import systemd
from ansible_collections.cairncms.ops.plugins.modules import cairn_cms_service

SERVER = r'''
import http.server, json, signal, sys, threading, time

port, mode, delay = int(sys.argv[1]), sys.argv[2], float(sys.argv[3])
time.sleep(delay)  # a CMS takes a moment to listen


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path != '/server/health':
            self.send_response(404)
            self.end_headers()
            return
        code, status = (200, 'ok') if mode == 'ok' else (503, 'error')
        body = json.dumps({'status': status}).encode()
        self.send_response(code)
        self.send_header('Content-Type', 'application/health+json')
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


server = http.server.HTTPServer(('127.0.0.1', port), Handler)
# SIGUSR1: stop listening but keep running (a CMS process that hangs on after its server closed)
signal.signal(signal.SIGUSR1, lambda *args: threading.Thread(target=server.shutdown).start())
print('listening on %d' % port, flush=True)
server.serve_forever()
server.server_close()
while True:
    time.sleep(60)
'''

CTL = r'''
import json, os, signal, subprocess, sys, time

action, work = sys.argv[1], sys.argv[2]
with open(os.path.join(work, 'config.json')) as handle:
    config = json.load(handle)
pid_file = os.path.join(work, 'cms.pid')


def pid():
    try:
        with open(pid_file) as handle:
            found = int(handle.read())
        with open('/proc/%d/stat' % found) as handle:
            return None if handle.read().rsplit(')', 1)[1].split()[0] == 'Z' else found
    except (OSError, ValueError):
        return None


if action == 'start':
    with open(os.path.join(work, 'starts.log'), 'a') as handle:
        handle.write('start\n')
    with open(os.path.join(work, 'env.json'), 'w') as handle:
        json.dump(dict(os.environ), handle)
    print('starting the stand-in CMS on port %d' % config['port'])
    if config.get('say'):
        print(config['say'] % os.environ)
    if config.get('fail'):
        print('cannot open the database')
        sys.exit(1)
    if pid():
        sys.exit(0)
    with open(os.path.join(work, 'cms.log'), 'ab') as log:
        # inherit_output: the CMS keeps the start command's output open (a daemon that was not told where to log)
        output = None if config.get('inherit_output') else log
        proc = subprocess.Popen([sys.executable, os.path.join(work, 'server.py'), str(config['port']),
                                 config.get('mode', 'ok'), str(config.get('delay', 0.5))],
                                stdin=subprocess.DEVNULL, stdout=output, stderr=output, start_new_session=True)
    with open(pid_file, 'w') as handle:
        handle.write('%d\n' % proc.pid)
elif action == 'stop':
    found = pid()
    if found:
        os.kill(found, signal.SIGTERM)
        for _ in range(100):
            if not pid():
                break
            time.sleep(0.1)
elif action == 'close':
    os.kill(pid(), signal.SIGUSR1)
elif action == 'status':
    sys.exit(0 if pid() else 3)
'''

# Stand-ins of systemctl and docker: they log their argv and working directory (one JSON line each) and drive the
# same stand-in CMS through CTL; systemctl keeps the unit's cgroup.procs in the fake cgroup tree.
SYSTEMCTL = r'''
import json, os, subprocess, sys

WORK, CTL, CGROUP = %(work)r, %(ctl)r, %(cgroup)r
with open(os.path.join(WORK, 'calls.log'), 'a') as handle:
    handle.write(json.dumps({'argv': sys.argv[1:], 'cwd': os.getcwd()}) + '\n')
args = [arg for arg in sys.argv[1:] if arg != '--user']
ctl = lambda action: subprocess.call([sys.executable, CTL, action, WORK])
if args[0] == 'show':
    unit = args[-1]
    if unit != 'cairncms.service':
        print('LoadState=not-found\nActiveState=inactive\nMainPID=0\nControlGroup=')
        sys.exit(0)
    up = ctl('status') == 0
    pid = open(os.path.join(WORK, 'cms.pid')).read().strip() if up else '0'
    print('LoadState=loaded\nActiveState=%%s\nMainPID=%%s\nControlGroup=%%s'
          %% ('active' if up else 'inactive', pid, '/system.slice/cairncms.service' if up or os.path.isdir(CGROUP)
             else ''))
elif args[0] == 'start':
    ctl('start')
    os.makedirs(CGROUP, exist_ok=True)
    with open(os.path.join(CGROUP, 'cgroup.procs'), 'w') as handle:
        handle.write(open(os.path.join(WORK, 'cms.pid')).read())
elif args[0] == 'stop':
    ctl('stop')
    if not os.path.exists(os.path.join(WORK, 'leave-procs')):  # systemd empties the cgroup and removes it
        for directory, subdirs, files in os.walk(CGROUP, topdown=False):
            for name in files:
                os.unlink(os.path.join(directory, name))
            os.rmdir(directory)
'''

DOCKER = r'''
import json, os, subprocess, sys

WORK, CTL = %(work)r, %(ctl)r
with open(os.path.join(WORK, 'calls.log'), 'a') as handle:
    handle.write(json.dumps({'argv': sys.argv[1:], 'cwd': os.getcwd()}) + '\n')
ctl = lambda action: subprocess.call([sys.executable, CTL, action, WORK])
args = sys.argv[2:]  # after "compose"
while args[0] in ('-f', '-p'):
    args = args[2:]
if args[0] == 'ps':
    if ctl('status') == 0 or os.path.exists(os.path.join(WORK, 'leave-container')):
        print('3f1c2a9b7d0e')
elif args[0] == 'start':
    ctl('start')
elif args[0] == 'stop':
    ctl('stop')
'''

ALLOWED_ENV = {'PATH', 'HOME', 'LANG', 'TZ'}


def free_port():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def health(url):
    """The status code of GET url/server/health, None when nothing answers."""
    try:
        with urllib.request.urlopen(url + '/server/health', timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return None


class StandIn:
    """The stand-in CMS of one test: its work dir, port, control script and the command spec that drives it."""

    def __init__(self, work, **config):
        self.work = str(work)
        self.port = free_port()
        self.url = 'http://127.0.0.1:%d' % self.port
        self.ctl = os.path.join(self.work, 'ctl.py')
        with open(os.path.join(self.work, 'server.py'), 'w', encoding='utf-8') as handle:
            handle.write(SERVER)
        with open(self.ctl, 'w', encoding='utf-8') as handle:
            handle.write(CTL)
        self.configure(**config)

    def configure(self, **config):
        with open(os.path.join(self.work, 'config.json'), 'w', encoding='utf-8') as handle:
            json.dump(dict(config, port=self.port), handle)

    def command(self, action):
        return [sys.executable, self.ctl, action, self.work]

    def spec(self, **changes):
        spec = {'kind': 'command', 'url': self.url, 'start': self.command('start'), 'stop': self.command('stop'),
                'status': self.command('status'), 'pid_file': os.path.join(self.work, 'cms.pid'),
                'stop_timeout': 20, 'start_timeout': 20}
        spec.update(changes)
        return {key: value for key, value in spec.items() if value is not None}

    @property
    def pid(self):
        try:
            with open(os.path.join(self.work, 'cms.pid'), encoding='ascii') as handle:
                pid = int(handle.read())
        except (OSError, ValueError):
            return None
        return pid if cms_service.command.read_pid(os.path.join(self.work, 'cms.pid')) else None

    @property
    def starts(self):
        try:
            with open(os.path.join(self.work, 'starts.log'), encoding='ascii') as handle:
                return len(handle.readlines())
        except OSError:
            return 0

    def start(self):
        subprocess.run(self.command('start'), check=True, capture_output=True)
        deadline = time.monotonic() + 20
        while health(self.url) is None:
            assert time.monotonic() < deadline, 'the stand-in CMS did not come up'
            time.sleep(0.1)

    def stop(self):
        subprocess.run(self.command('stop'), check=False, capture_output=True)


@pytest.fixture
def cms(tmp_path):
    stand_in = StandIn(tmp_path)
    yield stand_in
    stand_in.stop()


def service(state, spec, check_mode=False, **args):
    return run_module('cairn_cms_service', check_mode=check_mode, service=spec, state=state, **args)


# The command kind, for real


def test_started_starts_and_waits_for_health_and_a_second_run_changes_nothing(cms):
    first = service('started', cms.spec())
    assert not first.failed, first
    assert first['changed'] is True and first['was_running'] is False and first['running'] is True
    assert first['health'] == 'ok' and first['kind'] == 'command' and first['stop_s'] is None
    assert first['start_s'] >= 0.5  # the stand-in listens half a second after its start command returned
    assert health(cms.url) == 200 and cms.pid

    again = service('started', cms.spec())
    assert not again.failed, again
    assert again['changed'] is False and again['was_running'] is True and again['running'] is True
    assert again['start_s'] is None and again['health'] == 'ok' and cms.starts == 1


def test_stopped_waits_until_it_is_down_and_a_second_run_changes_nothing(cms):
    cms.start()
    pid = cms.pid
    stopped = service('stopped', cms.spec())
    assert not stopped.failed, stopped
    assert stopped['changed'] is True and stopped['was_running'] is True and stopped['running'] is False
    assert stopped['health'] is None and stopped['stop_s'] >= 0 and stopped['start_s'] is None
    assert health(cms.url) is None and cms.pid is None and pid

    again = service('stopped', cms.spec())
    assert not again.failed, again
    assert again['changed'] is False and again['was_running'] is False and again['stop_s'] is None


def test_restarted_stops_and_starts_a_new_process(cms):
    cms.start()
    before = cms.pid
    restarted = service('restarted', cms.spec())
    assert not restarted.failed, restarted
    assert restarted['changed'] is True and restarted['was_running'] is True and restarted['running'] is True
    assert restarted['stop_s'] is not None and restarted['start_s'] is not None and restarted['health'] == 'ok'
    assert cms.pid and cms.pid != before and health(cms.url) == 200


def test_restarted_starts_a_stopped_cms_and_reports_a_change(cms):
    restarted = service('restarted', cms.spec())
    assert not restarted.failed, restarted
    assert restarted['changed'] is True and restarted['was_running'] is False and restarted['stop_s'] is None
    assert health(cms.url) == 200


def test_checked_and_check_mode_only_report(cms):
    down = service('checked', cms.spec())
    assert not down.failed, down
    assert down['changed'] is False and down['was_running'] is False and down['running'] is False
    assert down['health'] is None

    would_start = service('started', cms.spec(), check_mode=True)
    assert would_start['changed'] is True and would_start['running'] is True and would_start['was_running'] is False
    assert cms.starts == 0 and health(cms.url) is None

    cms.start()
    pid = cms.pid
    up = service('checked', cms.spec())
    assert up['changed'] is False and up['was_running'] is True and up['running'] is True and up['health'] == 'ok'
    for state in ('stopped', 'restarted'):
        would = service(state, cms.spec(), check_mode=True)
        assert not would.failed and would['changed'] is True and would['was_running'] is True, would
        assert would['stop_s'] is None and would['start_s'] is None
    assert cms.pid == pid and health(cms.url) == 200 and cms.starts == 1


def test_the_module_url_is_used_when_the_spec_has_none(cms):
    started = service('started', cms.spec(url=None), url=cms.url + '/')
    assert not started.failed and started['health'] == 'ok', started
    missing = service('checked', cms.spec(url=None))
    assert missing.failed and 'needs the url' in missing['msg'] and 'http://127.0.0.1:8055' in missing['msg']


def test_the_instance_public_url_is_used_when_neither_gives_one(cms, tmp_path):
    env_file = tmp_path / 'instance.env'
    env_file.write_text('DB_CLIENT=sqlite3\nDB_FILENAME=./data.db\nPUBLIC_URL=%s\n' % cms.url)
    started = service('started', cms.spec(url=None), env_file=str(env_file))
    assert not started.failed and started['health'] == 'ok', started


def test_a_stop_that_leaves_the_cms_answering_fails_after_stop_timeout_saying_what_is_up(cms):
    cms.start()
    began = time.monotonic()
    failed = service('stopped', cms.spec(stop=[sys.executable, '-c', 'pass'], stop_timeout=2))
    took = time.monotonic() - began
    assert failed.failed, failed
    message = failed['msg']
    assert 'is not down 2 s after it was stopped' in message, message
    assert 'GET %s/server/health still answers (HTTP 200, status ok)' % cms.url in message
    assert 'the status command %s says it runs' % sys.executable in message
    assert 'pid %d from %s still runs' % (cms.pid, os.path.join(cms.work, 'cms.pid')) in message
    assert 'raise stop_timeout in cairn_cms_service' in message
    assert 2 <= took < 15
    assert health(cms.url) == 200


def test_a_process_left_after_the_health_url_went_quiet_is_not_down(cms):
    """Without a status command, the pid file alone tells that the CMS process hangs on."""
    cms.start()
    failed = service('stopped', cms.spec(stop=cms.command('close'), status=None, stop_timeout=2))
    assert failed.failed, failed
    assert 'pid %d from %s still runs' % (cms.pid, os.path.join(cms.work, 'cms.pid')) in failed['msg'], failed
    assert 'still answers' not in failed['msg'] and health(cms.url) is None


def test_a_health_url_that_something_else_serves_is_named(cms):
    """The service reports nothing left, yet the URL answers: the url is not this service's CMS."""
    cms.start()
    os.makedirs(os.path.join(cms.work, 'other'))
    other = StandIn(os.path.join(cms.work, 'other'))  # its own stand-in, never started
    failed = service('stopped', other.spec(url=cms.url, stop_timeout=1))
    expected = 'the service reports nothing of the CMS left, so what answers at %s is not run by it' % cms.url
    assert failed.failed and expected in failed['msg'], failed


def test_a_start_whose_cms_never_gets_healthy_fails_with_the_last_status_and_the_output(cms):
    cms.configure(mode='error', delay=0)
    began = time.monotonic()
    failed = service('started', cms.spec(start_timeout=3))
    assert failed.failed, failed
    message = failed['msg']
    assert 'did not become healthy within 3 s' in message, message
    assert 'the last answer of GET %s/server/health was HTTP 503, status error' % cms.url in message
    assert "the end of the start command's output:\nstarting the stand-in CMS on port %d" % cms.port in message
    assert '; the status command exits 0, pid %d from' % cms.pid in message
    assert 3 <= time.monotonic() - began < 15


def test_a_cms_answering_503_error_is_up_but_not_healthy_and_is_not_started_twice(cms):
    cms.configure(mode='error', delay=0)
    cms.start()
    checked = service('checked', cms.spec())
    assert checked['was_running'] is True and checked['health'] == 'error', checked
    stopped_in_check = service('stopped', cms.spec(status=None, pid_file=None), check_mode=True)
    assert stopped_in_check['changed'] is True, stopped_in_check  # a 503 is an answer: the CMS is up
    failed = service('started', cms.spec(start_timeout=2))
    assert failed.failed and 'HTTP 503, status error' in failed['msg'], failed
    assert cms.starts == 1  # it ran already: waited for, never started a second time


def test_a_failing_start_command_fails_at_once_with_its_output_and_no_secret(cms):
    cms.configure(fail=True, say='connecting with %(DB_PASSWORD)s')
    began = time.monotonic()
    failed = service('started', cms.spec(environment={'DB_PASSWORD': 'sup3r-s3cret-pw', 'NODE_ENV': 'production'}))
    assert failed.failed, failed
    message = failed['msg']
    assert 'the start command %s failed (exit 1)' % sys.executable in message, message
    assert 'cannot open the database' in message and 'connecting with ********' in message
    assert 'sup3r-s3cret-pw' not in json.dumps(failed)  # nor in the invocation's arguments
    assert time.monotonic() - began < 10
    with pytest.raises(CairnError) as raised:  # the kind masks it itself, not only Ansible's no_log
        act('started', cms.spec(environment={'DB_PASSWORD': 'sup3r-s3cret-pw'}))
    assert 'connecting with ********' in raised.value.message and 'sup3r' not in raised.value.message


def test_commands_get_only_the_path_home_locale_tz_and_the_spec_environment(cms):
    started = service('started', cms.spec(environment={'NODE_ENV': 'production'}),
                      environ={'CAIRN_LEAK_TEST': 'leaked', 'AWS_SECRET_ACCESS_KEY': 'not-for-the-cms',
                               'LC_TIME': 'C', 'TZ': 'UTC'})
    assert not started.failed, started
    with open(os.path.join(cms.work, 'env.json'), encoding='utf-8') as handle:
        env = json.load(handle)
    assert env['NODE_ENV'] == 'production' and env['LC_TIME'] == 'C' and env['TZ'] == 'UTC'
    assert set(env) - {'NODE_ENV', 'LC_CTYPE'} <= ALLOWED_ENV | {name for name in env if name.startswith('LC_')}, env
    assert 'CAIRN_LEAK_TEST' not in env and 'AWS_SECRET_ACCESS_KEY' not in env and 'PYTHONPATH' not in env


def test_a_cms_that_keeps_the_start_command_output_open_does_not_hold_up_the_start(cms):
    """The start command returns while the CMS it left behind still holds its stdout and stderr: the start is
    over when the command is, not when the CMS closes them."""
    cms.configure(inherit_output=True)
    began = time.monotonic()
    started = service('started', cms.spec(start_timeout=30))
    assert not started.failed and started['health'] == 'ok', started
    assert time.monotonic() - began < 15 and cms.pid


def test_a_start_command_that_hangs_is_killed_at_start_timeout(cms):
    began = time.monotonic()
    failed = service('started', cms.spec(start=[sys.executable, '-c', 'import time; print("waiting", flush=True); '
                                                'time.sleep(60)'], start_timeout=2))
    assert failed.failed and 'did not finish within 2 s and was killed' in failed['msg'], failed
    assert 'waiting' in failed['msg'] and time.monotonic() - began < 15


# Bad specs


@pytest.mark.parametrize('spec, expected', [
    ({'unit': 'cairncms.service'}, 'has no kind; set kind to one of command, compose, systemd'),
    ({'kind': 'supervisord', 'unit': 'x'}, "kind 'supervisord' is not known; the kinds are command, compose, systemd"),
    ({'kind': 'systemd', 'unit': 'cairncms.service', 'url': 'http://127.0.0.1:8055', 'timeout': 5},
     'of kind systemd has the unknown key timeout; the keys of kind systemd are kind, scope, start_timeout, '
     'stop_timeout, unit, url, validate_certs'),
    ({'kind': 'compose', 'project_dir': '/opt/cms', 'url': 'http://127.0.0.1:8055'},
     'of kind compose needs the key service; the keys of kind compose are kind, command, files, project_dir, '
     'project_name, service, start_timeout, stop_timeout, url, validate_certs'),
    ({'kind': 'command', 'start': 'cmsctl start', 'stop': ['cmsctl', 'stop'], 'url': 'http://127.0.0.1:8055'},
     'start must be a non-empty list of strings'),
    ({'kind': 'systemd', 'unit': 'cairncms.service', 'scope': 'session', 'url': 'http://127.0.0.1:8055'},
     'scope must be one of system, user'),
    ({'kind': 'systemd', 'unit': 'cairncms.service', 'url': 'http://127.0.0.1:8055', 'stop_timeout': 0},
     'stop_timeout must be a whole number of seconds above 0'),
    ({'kind': 'systemd', 'unit': 'cairncms.service', 'url': '127.0.0.1:8055'}, "'127.0.0.1:8055' is not an http(s)"),
    ([], 'must be a mapping with a kind (command, compose, systemd)'),
])
def test_a_bad_spec_is_refused_naming_the_key_and_the_valid_ones(spec, expected):
    with pytest.raises(CairnError) as raised:
        cms_service.load(spec)
    assert expected in raised.value.message and raised.value.message.startswith('cairn_cms_service')


def test_a_bad_spec_fails_the_task_before_anything_runs(tmp_path):
    marker = tmp_path / 'ran'
    failed = service('started', {'kind': 'command', 'start': ['touch', str(marker)], 'stop': ['true'],
                                 'url': 'http://127.0.0.1:1', 'satus': ['true']})
    assert failed.failed and 'unknown key satus' in failed['msg'] and 'status' in failed['msg'], failed
    assert not marker.exists()


def test_spec_values_are_taken_as_the_inventory_gives_them():
    loaded = cms_service.load({'kind': 'compose', 'project_dir': '/opt/cms', 'service': 'cms', 'stop_timeout': '30',
                               'validate_certs': 'no', 'files': ['a.yml', 'b.yml']}, url='https://cms.example/')
    assert loaded.stop_timeout == 30 and loaded.start_timeout == 180 and loaded.validate_certs is False
    assert loaded.url == 'https://cms.example' and loaded.settings['command'] == ['docker', 'compose']


# systemd and compose, through stand-ins of their tools


class FakeModule:
    """Just what the module's action reads: params, check mode and the values to mask."""

    def __init__(self, check_mode=False, **params):
        self.params = dict({'url': None, 'state': 'checked'}, **params)
        self.check_mode = check_mode
        self.no_log_values = set()


def install_tool(directory, name, source, **values):
    path = os.path.join(str(directory), name)
    with open(path, 'w', encoding='utf-8') as handle:
        handle.write('#!%s\n%s' % (sys.executable, source % dict(values)))
    os.chmod(path, os.stat(path).st_mode | stat.S_IXUSR)
    return path


def calls(cms):
    try:
        with open(os.path.join(cms.work, 'calls.log'), encoding='utf-8') as handle:
            return [json.loads(line) for line in handle]
    except FileNotFoundError:
        return []


def act(state, spec, check_mode=False):
    return cairn_cms_service.action(FakeModule(check_mode=check_mode, service=spec, state=state))


@pytest.fixture
def tools(tmp_path, monkeypatch, cms):
    """systemctl and docker stand-ins first on PATH, a fake cgroup tree for the unit; returns the cgroup dir."""
    bin_dir = tmp_path / 'bin'
    bin_dir.mkdir()
    root = tmp_path / 'cgroup'
    cgroup = root / 'system.slice' / 'cairncms.service'
    install_tool(bin_dir, 'systemctl', SYSTEMCTL, work=cms.work, ctl=cms.ctl, cgroup=str(cgroup))
    install_tool(bin_dir, 'docker', DOCKER, work=cms.work, ctl=cms.ctl)
    monkeypatch.setenv('PATH', '%s%s%s' % (bin_dir, os.pathsep, os.environ['PATH']))
    monkeypatch.setattr(systemd, 'CGROUP_ROOT', str(root))
    return cgroup


SHOW = ['show', '-p', 'LoadState', '-p', 'ActiveState', '-p', 'MainPID', '-p', 'ControlGroup', 'cairncms.service']


def test_systemd_runs_systemctl_start_and_stop_of_the_unit(cms, tools):
    spec = {'kind': 'systemd', 'unit': 'cairncms.service', 'url': cms.url, 'stop_timeout': 10, 'start_timeout': 10}
    started = act('started', spec)
    assert started['changed'] is True and started['health'] == 'ok' and started['kind'] == 'systemd', started
    assert (tools / 'cgroup.procs').read_text().strip() == str(cms.pid)
    argv = [call['argv'] for call in calls(cms)]
    assert argv[0] == SHOW and ['start', 'cairncms.service'] in argv
    assert [args for args in argv if args[0] != 'show'] == [['start', 'cairncms.service']]
    assert all(args == SHOW for args in argv if args[0] == 'show')

    stopped = act('stopped', spec)
    assert stopped['changed'] is True and stopped['running'] is False, stopped
    assert [call['argv'] for call in calls(cms) if call['argv'][0] != 'show'] == [
        ['start', 'cairncms.service'], ['stop', 'cairncms.service']]
    assert not tools.exists() and health(cms.url) is None
    assert act('stopped', spec)['changed'] is False


def test_systemd_user_scope_passes_user_to_every_call(cms, tools):
    spec = {'kind': 'systemd', 'unit': 'cairncms.service', 'scope': 'user', 'url': cms.url}
    assert act('restarted', spec)['changed'] is True
    argv = [call['argv'] for call in calls(cms)]
    assert argv and all(args[0] == '--user' for args in argv), argv
    assert [args[1:] for args in argv if args[1] != 'show'] == [['start', 'cairncms.service']]  # it did not run
    assert ['--user'] + SHOW in argv


def test_systemd_processes_left_in_the_unit_cgroup_mean_it_is_not_down(cms, tools):
    spec = {'kind': 'systemd', 'unit': 'cairncms.service', 'url': cms.url, 'stop_timeout': 2}
    act('started', spec)
    worker = tools / 'worker'
    worker.mkdir()
    (worker / 'cgroup.procs').write_text('4242\n')  # a child cgroup of the unit (a worker it forked)
    open(os.path.join(cms.work, 'leave-procs'), 'w').close()  # systemctl stop leaves processes behind
    pid = cms.pid
    with pytest.raises(CairnError) as raised:
        act('stopped', spec)
    message = raised.value.message
    assert '2 processes in the cgroup /system.slice/cairncms.service of cairncms.service (pid %d, 4242)' % pid \
        in message, message
    assert 'still answers' not in message and 'see systemctl status cairncms.service' in message
    (tools / 'cgroup.procs').write_text('')
    (worker / 'cgroup.procs').write_text('')
    assert act('stopped', spec)['changed'] is False  # an empty cgroup is down


def test_systemd_a_unit_inactive_with_a_process_left_is_stopped(cms, tools):
    """Down is also nothing left in the cgroup: a unit that says inactive but holds a process is stopped."""
    spec = {'kind': 'systemd', 'unit': 'cairncms.service', 'url': cms.url, 'stop_timeout': 5}
    tools.mkdir(parents=True)
    (tools / 'cgroup.procs').write_text('4242\n')
    result = act('stopped', spec)
    assert result['changed'] is True and result['was_running'] is False, result
    assert ['stop', 'cairncms.service'] in [call['argv'] for call in calls(cms)]


def test_systemd_an_unknown_unit_is_named(cms, tools):
    with pytest.raises(CairnError, match='systemd knows no system unit cairnsms.service .LoadState=not-found.'):
        act('stopped', {'kind': 'systemd', 'unit': 'cairnsms.service', 'url': cms.url})


def test_compose_runs_stop_and_start_of_the_service_in_the_project_dir(cms, tools, tmp_path):
    project = tmp_path / 'project'
    project.mkdir()
    spec = {'kind': 'compose', 'project_dir': str(project), 'service': 'cms', 'files': ['compose.yml', 'prod.yml'],
            'project_name': 'blog', 'url': cms.url}
    started = act('started', spec)
    assert started['changed'] is True and started['health'] == 'ok' and started['kind'] == 'compose', started
    stopped = act('stopped', spec)
    assert stopped['changed'] is True and health(cms.url) is None, stopped
    options = ['compose', '-f', 'compose.yml', '-f', 'prod.yml', '-p', 'blog']
    seen = calls(cms)
    assert all(call['cwd'] == str(project) for call in seen), seen
    actions = [call['argv'] for call in seen if 'ps' not in call['argv']]
    assert actions == [options + ['start', 'cms'], options + ['stop', 'cms']]
    assert options + ['ps', '-q', '--status', 'running', 'cms'] in [call['argv'] for call in seen]


def test_compose_a_container_still_running_is_not_down(cms, tools, tmp_path):
    spec = {'kind': 'compose', 'project_dir': str(tmp_path), 'service': 'cms', 'url': cms.url, 'stop_timeout': 2,
            'command': ['docker', 'compose']}
    act('started', spec)
    open(os.path.join(cms.work, 'leave-container'), 'w').close()
    with pytest.raises(CairnError) as raised:
        act('stopped', spec)
    assert '1 running container of the compose service cms (3f1c2a9b7d0e)' in raised.value.message, raised.value
    assert 'see docker compose logs cms in %s' % tmp_path in raised.value.message


def test_a_missing_tool_is_named_with_what_to_install(cms, monkeypatch):
    monkeypatch.setenv('PATH', '/nonexistent')
    with pytest.raises(CairnError, match='systemctl is needed on this host'):
        act('checked', {'kind': 'systemd', 'unit': 'cairncms.service', 'url': cms.url})
