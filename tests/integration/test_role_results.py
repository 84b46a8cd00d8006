# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the restore, clone, restore_drill and status roles report, through ansible-playbook: their result, published
for AWX with set_stats on success and on failure (outcome, duration, bytes, RPO, error); in check mode what would
happen; their alerts to a heartbeat monitor and a webhook, like the backup role's; a step over its timeout fails the
run naming the step. The key that reads the restore points is handed over as text only (no key file anywhere), and
the module_defaults of the clone role do not reach the tasks of the restore role it includes."""

from __future__ import annotations

import http.server
import json
import os
import socket
import sys
import threading
import time

import pyrage
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

import demo_instance
from conftest import SHOW_STATS, custom_stats, part_of, run_module, run_playbook

# A stand-in for the CMS a drill starts: it reads the sandbox .env (CONFIG_PATH) and answers /server/health.
STAND_IN_CMS = '''
import http.server, json, os
env = {}
for line in open(os.environ['CONFIG_PATH'], encoding='utf-8'):
    if '=' in line and not line.lstrip().startswith('#'):
        name, value = line.split('=', 1)
        env[name.strip()] = value.split('#')[0].strip().strip('"\\'')
class Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200 if self.path == '/server/health' else 404)
        self.end_headers()
        self.wfile.write(b'{"status": "ok"}')
    def log_message(self, *args):
        pass
http.server.HTTPServer((env['HOST'], int(env['PORT'])), Health).serve_forever()
'''


class Receiver:
    """A webhook and heartbeat monitor on 127.0.0.1: every POST it gets, as (path, body)."""

    def __init__(self):
        received = self.received = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get('Content-Length') or 0)).decode('utf-8')
                received.append((self.path, json.loads(body) if body.startswith('{') else body))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass
        self.server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, path):
        return 'http://127.0.0.1:%d%s' % (self.server.server_address[1], path)

    def take(self):
        taken, self.received[:] = list(self.received), []
        return taken


@pytest.fixture(scope='module')
def receiver():
    monitor = Receiver()
    yield monitor
    monitor.server.shutdown()


@pytest.fixture(scope='module')
def world(tmp_path_factory, receiver):
    """An encrypted backup of blog (configuration captured); the key that reads it is only ever given as text."""
    base = tmp_path_factory.mktemp('results')
    source = base / 'source'
    demo_instance.populated(str(source))
    identity = pyrage.x25519.Identity.generate()
    (base / 'cms.py').write_text(STAND_IN_CMS)
    common = {'ansible_connection': 'local', 'ansible_python_interpreter': sys.executable,
              'cairn_repository': {'type': 'local', 'path': str(base / 'repository')},
              'cairn_encryption_recipients': [str(identity.to_public())], 'cairn_encryption_identity': str(identity),
              'cairn_alert_webhook_url': receiver.url('/hook'), 'cairn_alert_on_success': True}
    world = {'base': base, 'source': source, 'common': common, 'identity': str(identity)}
    run, _stats = play(world, 'backup.yml', {'blog': {'cairn_env_file': str(source / '.env')}})
    assert run.returncode == 0, run.stdout + run.stderr
    receiver.take()
    [point] = os.listdir(base / 'repository' / 'blog' / 'points')
    manifest = json.load(open(base / 'repository' / 'blog' / 'points' / point / 'manifest.json'))
    [database] = part_of(manifest, 'database')['artifacts']
    uploads = sum(os.path.getsize(source / 'uploads' / name) for name in os.listdir(source / 'uploads')
                  if '__' not in name)  # a thumbnail is regenerable: not in the restore point
    world.update(point=point, bytes=database['size_bytes'] + uploads)
    assert part_of(manifest, 'files')['bytes'] == uploads
    return world


def play(world, playbook, hosts, check=False, extra=()):
    """Run ``playbook`` on ``hosts``; (the run, the custom stats it published)."""
    inventory = world['base'] / 'inventory.json'
    inventory.write_text(json.dumps({'all': {'vars': world['common'], 'hosts': hosts}}))
    run = run_playbook(playbook, str(inventory), check=check, extra=extra, environ=SHOW_STATS)
    return run, custom_stats(run.stdout)


def blackhole():
    """A port that accepts connections and never answers."""
    sock = socket.socket()
    sock.bind(('127.0.0.1', 0))
    sock.listen(8)
    return sock


def test_restore_result_check_mode_alerts_and_a_step_timeout(world, receiver):
    target = world['base'] / 'target'
    demo_instance.empty(str(target))
    host = {'cairn_env_file': str(target / '.env'), 'cairn_restore_from': 'blog',
            'cairn_restore_alert_heartbeat_url': receiver.url('/beat/restore')}
    planned, stats = play(world, 'restore.yml', {'copy': host}, check=True)
    assert planned.returncode == 0, planned.stdout + planned.stderr
    result = stats['cairn_restore']['copy']
    assert result['check_mode'] is True and result['outcome'] == 'succeeded' and result['bytes'] == world['bytes']
    assert 'Would restore %s of blog into copy: database would be restored, 6 files would be written' % world['point'] \
        in planned.stdout and 'Restored ' not in planned.stdout, planned.stdout
    assert receiver.take() == [] and not (target / 'data.db').exists()

    run, stats = play(world, 'restore.yml', {'copy': host})
    assert run.returncode == 0, run.stdout + run.stderr
    result = stats['cairn_restore']['copy']
    assert (result['outcome'], result['check_mode'], result['error'], result['restore_point'], result['host']) == (
        'succeeded', False, None, world['point'], 'copy'), result
    assert result['bytes'] == world['bytes'] and result['duration_s'] > 0 and 0 <= result['rpo_s'] < 900, result
    assert len(result['checks']) == 5 and all(check['ok'] for check in result['checks'])
    sent = receiver.take()
    assert [path for path, _body in sent] == ['/beat/restore/start', '/beat/restore', '/hook'], sent
    assert sent[1][1] == world['point']
    assert sent[2][1]['event'] == 'restore_succeeded' and sent[2][1]['bytes'] == world['bytes'], sent

    # A step over its time limit fails the restore, naming the step; the failure is a result and an alert. The module
    # stopped on the host: the HTTP check it was waiting on (an answer that never comes, for up to 120 s) is closed
    # when the task fails, not left running beside the next run.
    hole = blackhole()
    try:
        started = time.monotonic()
        failed, stats = play(world, 'restore.yml', {'copy': dict(host, cairn_restore_timeouts={'verify': 1},
                                                                 cairn_verify_http={'url': 'http://127.0.0.1:%d' % hole.getsockname()[1], 'timeout': 120})})
        assert time.monotonic() - started < 60
        hole.settimeout(5)
        waiting, _address = hole.accept()
        with waiting:
            waiting.settimeout(5)
            while waiting.recv(65536):  # the request, then the end: the check's connection is gone with its module
                pass
    finally:
        hole.close()
    assert failed.returncode != 0
    assert "failed in 'Verify the restored instance against the restore point'" in failed.stdout, failed.stdout
    stopped = ('cairn_restore stopped verifying the restored instance against the restore point: it ran longer than '
               'its time limit of 1 s (cairn_restore_timeouts.verify)')
    assert stopped in failed.stdout, failed.stdout
    result = stats['cairn_restore']['copy']
    assert result['outcome'] == 'failed' and stopped in result['error'], failed.stdout
    assert result['failed_step'] == 'Verify the restored instance against the restore point'
    sent = receiver.take()
    assert [path for path, _body in sent] == ['/beat/restore/start', '/beat/restore/fail', '/hook'], sent
    assert 'time limit' in sent[1][1] and sent[2][1]['event'] == 'restore_failed', sent
    assert world['identity'] not in run.stdout + planned.stdout + failed.stdout + failed.stderr


def test_the_key_as_text_is_parsed_in_memory_and_never_quoted(world):
    ssh_key = ed25519.Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()).decode()
    args = {'repository': world['common']['cairn_repository'], 'instance': 'blog', 'restore_point': world['point'],
            'checks': ['repository']}
    # An SSH private key is an identity too; this one is not a recipient of the restore point.
    other = run_module('cairn_restore_verify', encryption_identity=ssh_key, **args)
    assert other.failed and 'cannot decrypt' in json.dumps(other), other
    for text, wanted in (('AGE-SECRET-KEY-1QQQQ-not-a-key', 'holds a malformed age secret key'),
                         ('a note, no key', 'holds no age secret key (AGE-SECRET-KEY-1...) and no SSH private key')):
        refused = run_module('cairn_restore_verify', encryption_identity=text, **args)
        assert refused.failed and 'the encryption identity given as text (cairn_encryption_identity) ' + wanted in (
            json.dumps(refused)), refused
        assert text not in json.dumps(refused)
    assert ssh_key.splitlines()[1] not in json.dumps(other)
    right = run_module('cairn_restore_verify', encryption_identity='# a comment\n%s\n' % world['identity'], **args)
    assert not right.failed and all(check['ok'] for check in right['checks']), right


def _invocations(output, task):
    """The module arguments of every run of ``task`` (as ansible-playbook -vvv prints them)."""
    found = []
    for section in output.split('\nTASK [')[1:]:
        if not section.startswith(task + ']'):
            continue
        at = section.find('=> {')
        while at != -1:
            result, _end = json.JSONDecoder().raw_decode(section[at + 3:])
            found.append(result.get('invocation', {}).get('module_args'))
            at = section.find('=> {', at + 4)
    return found


def test_clone_result_and_its_module_defaults_stay_out_of_the_restore(world, receiver):
    staging = world['base'] / 'staging'
    host = {'cairn_env_file': str(staging / '.env'), 'cairn_clone_from': 'blog',
            'cairn_clone_env_overrides': {'PUBLIC_URL': 'https://staging.example.com', 'PORT': 8066},
            'cairn_clone_alert_heartbeat_url': receiver.url('/beat/clone')}
    planned, stats = play(world, 'clone.yml', {'staging': host}, check=True)
    assert planned.returncode == 0, planned.stdout + planned.stderr
    result = stats['cairn_clone']['staging']
    assert result['check_mode'] is True and result['bytes'] == world['bytes'] and result['configuration_written']
    assert 'staging would become a clone of blog at %s' % world['point'] in planned.stdout, planned.stdout
    assert receiver.take() == [] and not staging.exists()

    run, stats = play(world, 'clone.yml', {'staging': host}, extra=['-vvv'])
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr
    result = stats['cairn_clone']['staging']
    assert (result['outcome'], result['bytes'], result['restore_point'], result['error']) == (
        'succeeded', world['bytes'], world['point'], None), result
    assert result['database_changed'] and result['files_written'] == 6 and result['duration_s'] > 0
    # The restore inside the clone is the clone's: no result of its own for AWX, no alerts of its own.
    assert 'cairn_restore' not in stats
    sent = receiver.take()
    assert [path for path, _body in sent] == ['/beat/clone/start', '/beat/clone', '/hook'], sent
    assert sent[2][1]['event'] == 'clone_succeeded'
    # The clone's module_defaults (its .env overrides) do not reach the tasks of the restore role.
    [discovered] = _invocations(run.stdout, 'cairncms.ops.restore : Restore the database and the file bytes')
    assert discovered['env_file'] == str(staging / '.env') and discovered['env_overrides'] == {}, discovered
    # The restore module claims the restore point itself (no CMS is stopped first): no claim task of its own.
    assert [args for args in _invocations(run.stdout, 'cairncms.ops.restore : Claim the restore point, so that no '
                                                      'prune removes it while it is read') if args] == []
    assert discovered['instance'] == 'blog' and discovered['take_claim']['purpose'] == 'restore into staging'
    assert discovered['encryption_identity'] == 'VALUE_SPECIFIED_IN_NO_LOG_PARAMETER'
    assert world['identity'] not in run.stdout + run.stderr


def test_drill_result_alerts_and_a_drill_that_cannot_begin(world, receiver):
    sandbox = world['base'] / 'sandbox'
    host = {'cairn_env_file': str(world['source'] / '.env'), 'cairn_drill_dir': str(sandbox),
            'cairn_drill_cms_command': [sys.executable, str(world['base'] / 'cms.py')],
            'cairn_drill_alert_heartbeat_url': receiver.url('/beat/drill')}
    planned, stats = play(world, 'restore_drill.yml', {'blog': host}, check=True)
    assert planned.returncode == 0, planned.stdout + planned.stderr
    result = stats['cairn_restore_drill']['blog']
    assert result['check_mode'] is True and result['bytes'] == world['bytes'] and result['outcome'] == 'succeeded'
    assert 'Would drill %s (blog) in %s' % (world['point'], sandbox) in planned.stdout, planned.stdout
    assert receiver.take() == [] and not sandbox.exists()

    run, stats = play(world, 'restore_drill.yml', {'blog': host})
    assert run.returncode == 0, run.stdout + run.stderr
    result = stats['cairn_restore_drill']['blog']
    assert (result['outcome'], result['ok'], result['bytes'], result['restore_point'], result['error']) == (
        'succeeded', True, world['bytes'], world['point'], None), result
    assert 'http health' in [check['name'] for check in result['checks']] and result['rpo_s'] > 0
    assert result['duration_s'] >= result['rto_s'] > 0
    sent = receiver.take()
    assert [path for path, _body in sent] == ['/beat/drill/start', '/beat/drill', '/hook'], sent
    assert sent[2][1]['event'] == 'restore_drill_succeeded' and not sandbox.exists()

    # A directory that is not a sandbox: the drill cannot begin, and says so as its result and its alerts.
    sandbox.mkdir()
    (sandbox / 'keep.txt').write_text('operator data\n')
    failed, stats = play(world, 'restore_drill.yml', {'blog': host})
    assert failed.returncode != 0
    result = stats['cairn_restore_drill']['blog']
    assert result['outcome'] == 'failed' and 'not a drill sandbox' in result['error'], result
    assert result['error'].startswith('The drill could not begin: Make the sandbox and write its configuration: ')
    sent = receiver.take()
    assert [path for path, _body in sent] == ['/beat/drill/start', '/beat/drill/fail', '/hook'], sent
    assert sent[2][1]['event'] == 'restore_drill_failed' and os.listdir(sandbox) == ['keep.txt']


def test_status_entries_have_their_duration_and_an_unreadable_repository_is_one(world):
    report = world['base'] / 'status.json'
    run, stats = play(world, 'status.yml', {
        'blog': {}, 'lost': {'cairn_repository': {'type': 'ftp', 'path': '/srv/backups'}}},
        extra=['-e', 'cairn_status_report_file=%s' % report])
    assert run.returncode != 0
    entries = {entry['instance']: entry for entry in stats['cairn_status']}
    assert entries['blog']['problems'] == [] and entries['blog']['error'] is None, entries
    assert 0 < entries['blog']['duration_s'] < 300
    assert "repository type 'ftp' is not supported" in entries['lost']['error'], entries
    assert entries['lost']['problems'] == ['the status cannot be read: ' + entries['lost']['error']]
    assert entries['lost']['duration_s'] > 0
    assert json.loads(report.read_text())['problems'] == ['lost']
