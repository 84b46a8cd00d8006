# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The playbooks over SSH against a small fleet (tests/integration/_ssh.py): three sshd "hosts", each with its own
/srv and /var/tmp, the same path holding a different instance on each, one S3 bucket as the repository of all.

A fleet backup where one host is broken fails that host only, with its problem named, and the status report flags
only it; the bucket credentials reach the remote modules only from the inventory (the controller's AWS_* variables
are bogus and never used), never in the output or a command line; a restore of one host from another host's
restore points, a drill on a host and a clone from one host to another, each checked on the hosts' own views."""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import sys
import threading
import time
import urllib.request

import pyrage
import pytest

import _directus
import _s3
import _servers
import _ssh
import demo_instance
from conftest import _env, process_argvs, recap, run_playbook
from servers_fixtures import _emulator

ssh_fleet = _ssh.fleet_fixture('alpha', 'bravo', 'charlie')
# One fleet for the module: with `--dist loadgroup` every test of this file runs on one xdist worker.
pytestmark = pytest.mark.xdist_group('fleet_ssh')

SITE = '/srv/cairn/site'            # the same path on every host, a different instance on each
KEY_FILE = '/srv/cairn/backup-key.txt'
FLEET_KEY = 'AKIAFLEETSSHINVENTORY'
BOGUS_KEY, BOGUS_SECRET = 'AKIABOGUSCONTROLLER0', 'bogus-controller-secret-' + secrets.token_hex(8)
# Where each instance lives: inventory name -> (fleet host, directory on that host).
INSTANCES = {'alpha': ('alpha', SITE), 'shop': ('alpha', '/srv/cairn/shop'), 'bravo': ('bravo', SITE),
             'cms': ('bravo', '/srv/cairn/cms'), 'charlie': ('charlie', SITE)}

# Run inside a host's namespace: what the host sees of an instance directory.
VIEW = r'''
import hashlib, json, os, sqlite3, sys
site = sys.argv[1]
uploads = os.path.join(site, 'uploads')
files = {name: hashlib.sha256(open(os.path.join(uploads, name), 'rb').read()).hexdigest()
         for name in sorted(os.listdir(uploads)) if '__' not in name} if os.path.isdir(uploads) else None
database = os.path.join(site, 'data.db')
articles = dump = None
if os.path.exists(database):
    db = sqlite3.connect('file:%s?mode=ro' % database, uri=True)
    dump = hashlib.sha256('\n'.join(db.iterdump()).encode()).hexdigest()
    if db.execute("SELECT 1 FROM sqlite_master WHERE name = 'articles'").fetchone():
        articles = db.execute('SELECT id, title, body FROM articles ORDER BY id').fetchall()
    db.close()
env = open(os.path.join(site, '.env')).read() if os.path.exists(os.path.join(site, '.env')) else None
print(json.dumps({'files': files, 'articles': articles, 'database': dump, 'env': env}))
'''


def view(host, directory):
    """An instance directory as ``host`` sees it: original upload digests, article rows, a digest of the whole
    SQLite database, the .env text."""
    return json.loads(host.run([sys.executable, '-c', VIEW, directory], text=True).stdout)


def env_value(text, name):
    for line in text.splitlines():
        if line.startswith(name + '='):
            return line.split('=', 1)[1].split('#')[0].strip().strip('"')
    raise AssertionError('no %s in the .env' % name)


class RecordingMoto(_s3.MotoServer):
    """The tests' S3 server, recording every request it gets (headers included) into ``recording``."""

    def __init__(self, recording):
        super().__init__()
        self.recording = recording

    def launch(self, port):
        argv, options = super().launch(port)
        options['env']['MOTO_RECORDER_FILEPATH'] = self.recording
        return argv, options

    def recorder(self, action):
        urllib.request.urlopen(urllib.request.Request('%s/moto-api/recorder/%s' % (self.endpoint, action),
                                                      data=b'', method='POST'), timeout=10).read()

    def recorded(self):
        """The method, URL and headers of every request recorded. moto appends each request as one JSON line from
        the thread serving it, so the bodies of concurrent requests can interleave; the head of each line (headers,
        method, URL, before the body) is written whole, and that is what is read."""
        with open(self.recording, encoding='utf-8') as handle:
            text = handle.read()
        return [{'headers': json.loads(match.group(1)), 'method': match.group(2), 'url': match.group(3)}
                for match in re.finditer(r'\{"headers": (\{[^{}]*\}), "method": "([A-Z]+)", "url": "([^"]*)"', text)]


@pytest.fixture(scope='module')
def recording_s3(tmp_path_factory):
    yield from _emulator(RecordingMoto(str(tmp_path_factory.mktemp('moto') / 'recording.jsonl')), _s3.S3Unavailable)


class ArgvWatch:
    """Every command line seen while it runs that holds one of ``needles``."""

    def __init__(self, needles):
        self.needles = [needle.encode() for needle in needles]
        self.seen = []
        self.scans = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self):
        while not self._stop.is_set():
            for argv in process_argvs():
                if any(needle in part for part in argv for needle in self.needles):
                    self.seen.append(argv)
            self.scans += 1
            time.sleep(0.05)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc_info):
        self._stop.set()
        self._thread.join()


@pytest.fixture(scope='module')
def fleet(ssh_fleet, recording_s3, postgres_server, tmp_path_factory):
    """The instances on the hosts and the inventory writer; the instance 'charlie' is broken: its .env names a
    database file that is not there."""
    base = tmp_path_factory.mktemp('fleet-ssh')
    hosts = ssh_fleet.hosts
    identity = pyrage.x25519.Identity.generate()
    for host in hosts.values():  # the backup key, deployed on every host
        path = host.outside(KEY_FILE)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), 'w', encoding='ascii') as handle:
            handle.write('%s\n' % identity)
    demo_instance.populated(hosts['alpha'].outside(SITE), files=4, seed=1)
    demo_instance.populated(hosts['bravo'].outside(SITE), files=3, seed=2)
    demo_instance.empty(hosts['charlie'].outside(SITE))
    # A PostgreSQL instance beside alpha's site; the password only in its .env.
    database = 'fleet_shop_%s' % secrets.token_hex(3)
    postgres_server.create_database(database)
    _servers.load_cairn_schema(postgres_server, database, rows=10)
    shop = hosts['alpha'].outside('/srv/cairn/shop')
    os.makedirs(os.path.join(shop, 'uploads'))
    with open(os.path.join(shop, '.env'), 'w', encoding='utf-8') as handle:
        handle.write(''.join('%s="%s"\n' % item for item in postgres_server.env(database=database).items()))
        handle.write('STORAGE_LOCATIONS=local\nSTORAGE_LOCAL_DRIVER=local\nSTORAGE_LOCAL_ROOT=./uploads\n')
    for name, size in postgres_server.rows('SELECT filename_disk, filesize FROM directus_files', database):
        with open(os.path.join(shop, 'uploads', name), 'wb') as handle:
            handle.write(os.urandom(int(size)))
    # A real Directus instance on bravo for the drill (paths relative to its .env: the same inside and out).
    cms = hosts['bravo'].outside('/srv/cairn/cms')
    settings = _directus.bootstrap(cms, {'DB_FILENAME': 'data.db', 'STORAGE_LOCAL_ROOT': 'uploads',
                                         'EXTENSIONS_PATH': 'extensions'})
    cover = demo_instance.png(24, 18, 7)
    with open(os.path.join(cms, 'uploads', 'cover.png'), 'wb') as handle:
        handle.write(cover)
    demo_instance.register(cms, 'local', {'cover.png': cover})

    bucket = recording_s3.create_bucket('fleet-%s' % secrets.token_hex(4))
    secret = 'fleet-inventory-secret-' + secrets.token_urlsafe(16)
    common = {'cairn_repository': {'type': 's3', 'bucket': bucket, 'prefix': 'fleet', 'endpoint': recording_s3.endpoint,
                                   'region': _s3.REGION, 'force_path_style': True},
              'cairn_repository_credentials': {'key': FLEET_KEY, 'secret': secret},
              'cairn_encryption_recipients': [str(identity.to_public())], 'cairn_encryption_identity_file': KEY_FILE}

    def inventory(name, **extra):
        """An inventory of every instance; ``extra`` maps an inventory name to more variables of it."""
        instances = {instance: (where, dict({'cairn_env_file': directory + '/.env'}, **extra.get(instance, {})))
                     for instance, (where, directory) in INSTANCES.items()}
        instances.update({instance: where_vars for instance, where_vars in extra.items() if instance not in INSTANCES})
        return ssh_fleet.write_inventory(str(base / ('%s.json' % name)), instances, common)

    try:
        yield {'fleet': ssh_fleet, 'hosts': hosts, 'inventory': inventory, 'base': base, 's3': recording_s3,
               'bucket': bucket, 'secret': secret, 'pg_password': postgres_server.password, 'directus': settings,
               'shop_database': database}
    finally:
        postgres_server.drop_database(database)


@pytest.fixture(scope='module')
def fleet_backup(fleet):
    """One backup of the whole fleet, with bogus AWS_* credentials in the controller's environment, S3 requests
    recorded and command lines watched."""
    s3 = fleet['s3']
    inventory = fleet['inventory']('backup')
    summary = fleet['base'] / 'fleet-backup.json'
    s3.recorder('reset-recording')
    s3.recorder('start-recording')
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv('AWS_ACCESS_KEY_ID', BOGUS_KEY)
        patch.setenv('AWS_SECRET_ACCESS_KEY', BOGUS_SECRET)
        with ArgvWatch([fleet['secret'], fleet['pg_password'], BOGUS_SECRET]) as watch:
            run = run_playbook('backup.yml', inventory, extra=['-v', '-e', 'cairn_fleet_summary_file=%s' % summary])
        remote_env = subprocess.run(
            [os.path.join(os.path.dirname(sys.executable), 'ansible'), '-i', inventory, 'all', '-m',
             'ansible.builtin.command', '-a', 'env'], capture_output=True, text=True, env=_env(), timeout=300,
            check=False)
    s3.recorder('stop-recording')
    return {'run': run, 'argvs': watch, 'requests': s3.recorded(), 'remote_env': remote_env,
            'summary': json.loads(summary.read_text()) if summary.exists() else None}


def points(fleet):
    client = fleet['s3'].client()
    found = {}
    for page in client.get_paginator('list_objects_v2').paginate(Bucket=fleet['bucket'], Prefix='fleet/'):
        for item in page.get('Contents') or ():
            match = re.match(r'fleet/([^/]+)/points/([^/]+)/manifest\.json$', item['Key'])
            if match:
                found.setdefault(match.group(1), []).append(match.group(2))
    return found


def test_one_broken_host_fails_alone_and_status_flags_only_it(fleet, fleet_backup):
    run = fleet_backup['run']
    output = run.stdout + run.stderr
    assert run.returncode != 0, output
    assert {name: recap(run.stdout, name)['failed'] for name in INSTANCES} == {
        'alpha': 0, 'shop': 0, 'bravo': 0, 'cms': 0, 'charlie': 1}, run.stdout
    failures = [line for line in run.stdout.splitlines() if line.startswith(('fatal: [', 'failed: ['))]
    assert failures and all(line.startswith(('fatal: [charlie]', 'failed: [charlie]')) for line in failures), failures
    # charlie's problem, named as charlie sees it: the database file its .env names is not there.
    assert [line for line in failures if SITE + '/data.db' in line and 'does not exist' in line], failures
    stored = points(fleet)
    assert sorted(stored) == ['alpha', 'bravo', 'cms', 'shop'], stored
    # The fleet summary on the controller: every instance with its outcome, charlie's error naming the file.
    summary = fleet_backup['summary']
    assert summary and (summary['total'], summary['succeeded'], summary['failed']) == (5, 4, 1), summary
    assert summary['problems'] == ['charlie'], summary
    by_name = {entry['instance']: entry for entry in summary['instances']}
    assert all(by_name[name]['restore_point'] == stored[name][0] for name in stored), summary
    assert by_name['charlie']['outcome'] == 'failed' and SITE + '/data.db' in by_name['charlie']['error'], summary

    report = fleet['base'] / 'status.json'
    status = run_playbook('status.yml', fleet['inventory']('status'),
                          extra=['-e', 'cairn_status_report_file=%s' % report])
    assert status.returncode != 0
    assert {name: recap(status.stdout, name)['failed'] for name in INSTANCES} == {
        'alpha': 0, 'shop': 0, 'bravo': 0, 'cms': 0, 'charlie': 1}, status.stdout
    written = json.loads(report.read_text())
    assert written['problems'] == ['charlie'], written
    by_name = {entry['instance']: entry for entry in written['instances']}
    assert by_name['charlie']['problems'][0] == 'no restore point', by_name['charlie']
    assert SITE + '/data.db' in by_name['charlie']['problems'][1], by_name['charlie']
    assert all(by_name[name]['restore_points'] == 1 for name in ('alpha', 'shop', 'bravo', 'cms')), by_name


def test_credentials_reach_the_remote_modules_only_from_the_inventory(fleet, fleet_backup):
    # The remote side never sees the controller's environment: no AWS_* there (HOME shows the env was read).
    remote = fleet_backup['remote_env']
    assert remote.returncode == 0, remote.stdout + remote.stderr
    assert remote.stdout.count('HOME=/root') == len(INSTANCES) and 'AWS_' not in remote.stdout, remote.stdout
    # Every request the remote modules made to the bucket was signed with the inventory's key, none with the
    # controller's bogus one, and the backup worked.
    requests = fleet_backup['requests']
    keys = [re.search(r'Credential=([^/]+)/', request['headers'].get('Authorization', '')) for request in requests]
    assert len(requests) > 20 and all(keys), [request['url'] for request, key in zip(requests, keys) if not key]
    assert {key.group(1) for key in keys} == {FLEET_KEY}, {key.group(1) for key in keys}
    # No secret in the output at -v, nor on any command line while the backup ran (the host's modules included).
    run = fleet_backup['run']
    for secret in (fleet['secret'], fleet['pg_password'], BOGUS_SECRET):
        assert secret not in run.stdout + run.stderr
    watch = fleet_backup['argvs']
    assert watch.scans > 5 and watch.seen == [], watch.seen


def test_restore_of_one_host_from_another_hosts_restore_points(fleet, fleet_backup):
    alpha, charlie = fleet['hosts']['alpha'], fleet['hosts']['charlie']
    source, before = view(alpha, SITE), view(charlie, SITE)
    assert before['articles'] is None and before['files'] == {}
    inventory = fleet['inventory']('restore', charlie={'cairn_restore_from': 'alpha'})
    run = run_playbook('restore.yml', inventory, limit='charlie')
    assert run.returncode == 0, run.stdout + run.stderr
    # On charlie, at the same path as alpha's site: alpha's rows and file bytes; charlie's own .env kept.
    after = view(charlie, SITE)
    assert after['articles'] == source['articles'] and len(after['articles']) == 8
    assert after['files'] == source['files'] and len(after['files']) == 4
    assert after['env'] == before['env']
    assert view(alpha, SITE) == source
    assert not os.path.exists(SITE), 'a host wrote into the shared /srv'


def test_drill_on_a_host_runs_in_its_own_sandbox(fleet, fleet_backup):
    bravo = fleet['hosts']['bravo']
    settings = fleet['directus']
    report_file = '/srv/cairn/cms-drill.json'
    inventory = fleet['inventory']('drill', cms={
        'cairn_drill_cms_command': [_directus._node(), str(_directus.ensure_installed()), 'start'],
        'cairn_drill_cms_environment': {'NODE_ENV': 'production'},
        'cairn_drill_http_email': settings['ADMIN_EMAIL'], 'cairn_drill_http_password': settings['ADMIN_PASSWORD'],
        'cairn_drill_report_file': report_file})
    live = view(bravo, '/srv/cairn/cms')
    run = run_playbook('restore_drill.yml', inventory, limit='cms')
    assert run.returncode == 0, run.stdout + run.stderr
    assert settings['ADMIN_PASSWORD'] not in run.stdout + run.stderr
    report = json.loads(bravo.read(report_file))
    assert report['ok'] is True and report['host'] == 'cms', report
    passed = {check['name'] for check in report['checks'] if check['ok']}
    assert {'row counts', 'file bytes sha256', 'http health', 'http login', 'http assets sha256'} <= passed, report
    assert report['steps']['startup_s'] > 0 and 0 <= report['rpo_s'] < 600, report
    # The sandbox was under bravo's own /var/tmp (its default root), and is gone with the CMS it ran.
    assert os.path.isdir(bravo.outside('/var/tmp/cairn-drill'))
    assert not bravo.exists('/var/tmp/cairn-drill/cms')
    assert not os.path.exists('/var/tmp/cairn-drill/cms') and not fleet['hosts']['alpha'].exists('/var/tmp/cairn-drill')
    sandbox_processes = bravo.run(['sh', '-c', 'for p in /proc/[0-9]*; do readlink $p/cwd; done'],
                                  text=True, check=False).stdout.split()
    assert not [cwd for cwd in sandbox_processes if cwd.startswith('/var/tmp/cairn-drill')], sandbox_processes
    assert view(bravo, '/srv/cairn/cms') == live


def test_clone_from_one_host_to_another(fleet, fleet_backup):
    alpha, bravo = fleet['hosts']['alpha'], fleet['hosts']['bravo']
    source, bravo_site = view(alpha, SITE), view(bravo, SITE)
    staging = '/srv/cairn/staging'
    inventory = fleet['inventory']('clone', staging=('bravo', {
        'cairn_env_file': staging + '/.env', 'cairn_clone_from': 'alpha',
        'cairn_clone_env_overrides': {'PUBLIC_URL': 'https://staging.example.com', 'PORT': 8066}}))
    run = run_playbook('clone.yml', inventory, limit='staging')
    assert run.returncode == 0, run.stdout + run.stderr
    clone = view(bravo, staging)
    assert clone['articles'] == source['articles'] and clone['files'] == source['files']
    assert env_value(clone['env'], 'PUBLIC_URL') == 'https://staging.example.com'
    assert env_value(clone['env'], 'KEY') != env_value(source['env'], 'KEY')
    assert env_value(clone['env'], 'SECRET') != env_value(source['env'], 'SECRET')
    assert env_value(source['env'], 'SECRET') not in run.stdout + run.stderr
    assert not alpha.exists(staging) and not os.path.exists(staging)
    assert view(alpha, SITE) == source and view(bravo, SITE) == bravo_site
