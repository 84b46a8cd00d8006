# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The prepare role through ansible-playbook, on this machine over a local connection: virtual environments made
by the system Python and filled OFFLINE (no pip configuration; every proxy a tripwire that must stay untouched),
from a wheel directory or from a private index on 127.0.0.1 behind basic authentication, with only the cloud SDKs
each host's instance uses; the database client matching the server; idempotence, check mode, clear errors, and the
prepared interpreter running a real backup.

The wheel directory is built once with `pip wheel` from requirements/core.txt and requirements/s3.txt (network to
the package index) and kept under .build/wheels, keyed by those files and the system Python, so reruns are free.
"""

from __future__ import annotations

import base64
import contextlib
import glob
import hashlib
import http.server
import json
import os
import re
import shutil
import socketserver
import subprocess
import sys
import tempfile
import threading
import urllib.parse
import uuid

import pytest

import demo_instance
from conftest import ROOT, process_argvs, recap, run_playbook, write_inventory

SYSTEM_PYTHON = '/usr/bin/python3'
INDEX_USER, INDEX_PASSWORD = 'cairn', 'Idx-p@ss/w:rd%-7Qz'  # characters a URL must escape
PASSWORD_FORMS = (INDEX_PASSWORD, urllib.parse.quote(INDEX_PASSWORD, safe=''))  # as given, and inside a URL
WHEEL_FILES = ('requirements/core.txt', 'requirements/s3.txt')
CORE = {'zstandard', 'pyrage', 'cryptography'}
S3 = {'boto3', 'botocore', 's3transfer'}
OTHER_SDKS = {'google-cloud-storage', 'google-api-core', 'azure-storage-blob', 'azure-identity', 'azure-core'}


def requirement_lines(*names):
    lines = []
    for name in names:
        with open(os.path.join(ROOT, 'requirements', name + '.txt'), encoding='utf-8') as handle:
            lines += [line.strip() for line in handle if line.strip() and not line.startswith('#')]
    return lines


@pytest.fixture(scope='module')
def wheel_dir():
    """Wheels of the core libraries and boto3 with their dependencies, for the system Python."""
    if not os.access(SYSTEM_PYTHON, os.X_OK):
        pytest.fail('%s is needed: the prepare role makes its virtual environments with the system Python'
                    % SYSTEM_PYTHON)
    key = hashlib.sha256()
    for name in WHEEL_FILES:
        with open(os.path.join(ROOT, name), 'rb') as handle:
            key.update(handle.read())
    key.update(subprocess.run([SYSTEM_PYTHON, '-c', 'import sys, platform; print(sys.version, platform.machine())'],
                              capture_output=True, check=True).stdout)
    cache = os.path.join(ROOT, '.build', 'wheels')
    final = os.path.join(cache, key.hexdigest()[:16])
    if not os.path.isdir(final):
        os.makedirs(cache, exist_ok=True)
        work = tempfile.mkdtemp(prefix='building-', dir=cache)
        try:
            subprocess.run([SYSTEM_PYTHON, '-m', 'venv', os.path.join(work, 'builder')], check=True)
            build = subprocess.run(
                [os.path.join(work, 'builder', 'bin', 'python'), '-m', 'pip', 'wheel', '--quiet',
                 '--disable-pip-version-check', '-w', os.path.join(work, 'wheels')]
                + [arg for name in WHEEL_FILES for arg in ('-r', os.path.join(ROOT, name))],
                capture_output=True, text=True, check=False)
            assert build.returncode == 0, 'pip wheel failed (it needs the package index):\n' + build.stderr
            with contextlib.suppress(OSError):  # another worker may have finished the same directory first
                os.rename(os.path.join(work, 'wheels'), final)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return final


class Tripwire(socketserver.ThreadingTCPServer):
    """A proxy on 127.0.0.1 that answers nothing and remembers every connection: the network of an offline run."""

    daemon_threads = True

    def __init__(self):
        self.connections = []
        super().__init__(('127.0.0.1', 0), socketserver.BaseRequestHandler)

    def verify_request(self, request, client_address):
        self.connections.append(client_address)
        return False

    @property
    def url(self):
        return 'http://127.0.0.1:%d' % self.server_address[1]


@contextlib.contextmanager
def offline():
    """No pip configuration or index, every proxy a tripwire that must stay untouched; custom stats shown."""
    with pytest.MonkeyPatch.context() as patch, Tripwire() as tripwire:
        threading.Thread(target=tripwire.serve_forever, daemon=True).start()
        for name in list(os.environ):
            if name.upper().startswith('PIP_'):
                patch.delenv(name)
        patch.setenv('PIP_CONFIG_FILE', os.devnull)
        patch.setenv('PIP_RETRIES', '0')
        for name in ('http_proxy', 'https_proxy', 'HTTP_PROXY', 'HTTPS_PROXY'):
            patch.setenv(name, tripwire.url)
        patch.setenv('no_proxy', '127.0.0.1')  # the private index below; anything else must stay untouched
        patch.setenv('NO_PROXY', '127.0.0.1')
        patch.setenv('ANSIBLE_SHOW_CUSTOM_STATS', '1')
        try:
            yield
        finally:
            tripwire.shutdown()
        assert tripwire.connections == [], 'the offline run reached for the network'


class PrivateIndex(http.server.ThreadingHTTPServer):
    """A PEP 503 package index of the wheel directory on 127.0.0.1 behind basic authentication. It remembers the
    requests it answered, and any process whose command line held the password while pip talked to it."""

    daemon_threads = True

    def __init__(self, wheels):
        self.wheels = wheels
        self.served, self.leaks = [], []
        super().__init__(('127.0.0.1', 0), _IndexHandler)

    @property
    def url(self):
        return 'http://127.0.0.1:%d/simple/' % self.server_address[1]

    def projects(self):
        found = {}
        for name in sorted(os.listdir(self.wheels)):
            found.setdefault(re.sub(r'[-_.]+', '-', name.split('-')[0]).lower(), []).append(name)
        return found


class _IndexHandler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):  # quiet
        pass

    def do_GET(self):  # pylint: disable=invalid-name
        index = self.server
        index.leaks += [argv for argv in process_argvs()
                        if any(form.encode() in arg for arg in argv for form in PASSWORD_FORMS)]
        wanted = 'Basic ' + base64.b64encode(('%s:%s' % (INDEX_USER, INDEX_PASSWORD)).encode()).decode()
        if self.headers.get('Authorization') != wanted:
            self.send_response(401)
            self.send_header('WWW-Authenticate', 'Basic realm="cairn"')
            self.end_headers()
            return
        parts = self.path.strip('/').split('/')
        if len(parts) == 2 and parts[0] == 'simple' and parts[1] in index.projects():
            body = ''.join('<a href="/files/%s">%s</a>\n' % (name, name) for name in index.projects()[parts[1]])
            self.reply(body.encode(), 'text/html')
        elif len(parts) == 2 and parts[0] == 'files' and parts[1] in os.listdir(index.wheels):
            with open(os.path.join(index.wheels, parts[1]), 'rb') as handle:
                self.reply(handle.read(), 'application/octet-stream')
        else:
            self.send_response(404)
            self.end_headers()
            return
        index.served.append(self.path)

    def reply(self, body, kind):
        self.send_response(200)
        self.send_header('Content-Type', kind)
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def prepare(inventory, playbook='prepare.yml', check=False, extra=()):
    """Run the prepare playbook offline: every instance's result as published for AWX (set_stats cairn_prepare,
    the RUN line of the custom stats), and the process."""
    with offline():
        run = run_playbook(playbook, inventory, check=check, extra=list(extra))
    for line in run.stdout.splitlines():
        if line.strip().startswith('RUN: {'):
            return json.loads(line.strip()[len('RUN: '):])['cairn_prepare'], run
    raise AssertionError('no custom stats from ansible-playbook (rc %d):\n%s\n%s'
                         % (run.returncode, run.stdout[-6000:], run.stderr))


def distributions(venv):
    listing = subprocess.run(
        [os.path.join(venv, 'bin', 'python'), '-c',
         'import importlib.metadata as m, json; print(json.dumps([d.metadata["Name"] for d in m.distributions()]))'],
        capture_output=True, text=True, check=True)
    return {name.lower().replace('_', '-') for name in json.loads(listing.stdout)}


def s3_instance(directory):
    os.makedirs(directory)
    with open(os.path.join(directory, '.env'), 'w', encoding='utf-8') as handle:
        handle.write('KEY=9f3c2a7e-1111-4c1e-8d6b-000000000001\nDB_CLIENT=sqlite3\nDB_FILENAME=./data.db\n'
                     'STORAGE_LOCATIONS=s3\nSTORAGE_S3_DRIVER=s3\nSTORAGE_S3_BUCKET=cairn-uploads\n'
                     'STORAGE_S3_REGION=eu-west-1\n')
    return os.path.join(directory, '.env')


def pg_instance(directory, server):
    os.makedirs(directory)
    with open(os.path.join(directory, '.env'), 'w', encoding='utf-8') as handle:
        handle.write(''.join('%s=%s\n' % item for item in dict(server.env(), KEY=str(uuid.uuid4())).items()))
    return os.path.join(directory, '.env')


def test_prepare_installs_what_each_host_uses_offline_idempotently_and_the_venv_backs_up(tmp_path, wheel_dir,
                                                                                         postgres_server):
    demo_instance.populated(str(tmp_path / 'blog'))
    local_venv, s3_venv, fresh_venv = (str(tmp_path / name) for name in ('venv-blog', 'venv-shop', 'venv-fresh'))
    repository = str(tmp_path / 'repository')
    index = PrivateIndex(wheel_dir)
    threading.Thread(target=index.serve_forever, daemon=True).start()
    hosts = {
        'blog': {'cairn_env_file': str(tmp_path / 'blog' / '.env'), 'cairn_prepare_venv': local_venv,
                 'cairn_prepare_wheel_dir': wheel_dir},
        'shop': {'cairn_env_file': s3_instance(str(tmp_path / 'shop')), 'cairn_prepare_venv': s3_venv,
                 'cairn_prepare_index_url': index.url, 'cairn_prepare_index_username': INDEX_USER,
                 'cairn_prepare_index_password': INDEX_PASSWORD},
    }
    inventory = write_inventory(str(tmp_path / 'inventory.json'), hosts, repository)
    scratch = set(glob.glob(os.path.join(tempfile.gettempdir(), 'cairn-prepare-*')))

    # A local-only SQLite host gets the core libraries and no cloud SDK, from the wheel directory alone; an
    # S3-storage host gets boto3 only, from a private index whose password appears in no output (at -vvv) and on no
    # command line, and whose pip configuration is gone afterwards.
    try:
        results, run = prepare(inventory, extra=['-vvv'])
    finally:
        index.shutdown()
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr
    blog, shop = results['blog'], results['shop']
    assert blog['outcome'] == shop['outcome'] == 'succeeded'
    assert blog['backends'] == [] and blog['requirement_files'] == ['requirements/core.txt']
    assert shop['backends'] == ['s3'] and shop['requirement_files'] == ['requirements/core.txt', 'requirements/s3.txt']
    assert blog['venv_created'] and blog['interpreter'] == local_venv + '/bin/python'
    assert blog['python_missing'] == requirement_lines('core')
    assert shop['python_missing'] == requirement_lines('core', 's3')
    assert {name.split('-')[0].lower() for name in shop['python_installed']} >= {'zstandard', 'pyrage', 'boto3'}
    assert blog['database'] == {'vendor': 'sqlite', 'server_version': None, 'client_package': None}
    assert blog['system_packages'] == [] and blog['system_installed'] == []
    local, s3 = distributions(local_venv), distributions(s3_venv)
    assert CORE <= local and not local & (S3 | OTHER_SDKS), local
    assert CORE | S3 <= s3 and not s3 & OTHER_SDKS, s3
    assert any(path.startswith('/files/boto3-') for path in index.served), index.served
    assert not [form for form in PASSWORD_FORMS if form in run.stdout + run.stderr] and index.leaks == []
    assert set(glob.glob(os.path.join(tempfile.gettempdir(), 'cairn-prepare-*'))) == scratch

    # The second run changes nothing; with cairn_prepare_set_interpreter the next play runs with the venv's Python.
    # A PostgreSQL host (sharing blog's venv) is told the client package of its server's major: the server is asked
    # its version, and the package is installed here already, so apt changes nothing either.
    hosts['pg'] = {'cairn_env_file': pg_instance(str(tmp_path / 'pg'), postgres_server),
                   'cairn_prepare_venv': local_venv, 'cairn_prepare_wheel_dir': wheel_dir}
    write_inventory(inventory, hosts, repository)
    playbook = tmp_path / 'prepare-then-ask.yml'
    playbook.write_text(
        '- import_playbook: %s\n'
        '- name: Which Python runs the modules now\n  hosts: all\n  gather_facts: false\n  tasks:\n'
        '    - ansible.builtin.setup: {gather_subset: ["!all", "!min", "python"]}\n'
        '    - ansible.builtin.debug: {msg: "{{ inventory_hostname }} runs {{ ansible_facts.python.executable }}"}\n'
        % os.path.join(ROOT, 'playbooks', 'prepare.yml'))
    results, run = prepare(inventory, str(playbook), extra=['-e', 'cairn_prepare_set_interpreter=true'])
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr
    assert [recap(run.stdout, host)['changed'] for host in ('blog', 'shop', 'pg')] == [0, 0, 0], run.stdout
    assert results['blog']['python_missing'] == [] and results['blog']['python_installed'] == []
    assert '"blog runs %s/bin/python"' % local_venv in run.stdout, run.stdout[-3000:]
    assert '"shop runs %s/bin/python"' % s3_venv in run.stdout, run.stdout[-3000:]
    major = postgres_server.version_info[0]
    pg = results['pg']
    assert pg['database']['vendor'] == 'postgres' and pg['database']['server_version'].split('.')[0] == str(major)
    assert pg['database']['client_package'] == 'postgresql-client-%d' % major
    assert pg['system_packages'] == ['postgresql-client-%d' % major] and pg['system_installed'] == []

    # Check mode: a prepared host would change nothing; a fresh one says what it would install and gets nothing;
    # a MariaDB host (no .env read with both overrides) gets the MariaDB client; a PostgreSQL major the apt sources
    # do not carry is one clear error naming the package and the fix.
    hosts['fresh'] = dict(hosts['blog'], cairn_prepare_venv=fresh_venv)
    hosts['maria'] = {'cairn_prepare_venv': local_venv, 'cairn_prepare_database': 'mysql', 'cairn_prepare_backends': []}
    hosts['pg']['cairn_prepare_postgresql_version'] = '99'
    write_inventory(inventory, hosts, repository)
    results, run = prepare(inventory, check=True, extra=['--limit', 'blog,fresh,maria,pg'])
    assert run.returncode != 0
    assert [recap(run.stdout, host)['failed'] for host in ('blog', 'fresh', 'maria', 'pg')] == [0, 0, 0, 1]
    assert recap(run.stdout, 'blog')['changed'] == 0 and recap(run.stdout, 'fresh')['changed'] >= 2
    fresh = results['fresh']
    assert fresh['check_mode'] and fresh['venv_created'] and fresh['python_missing'] == requirement_lines('core')
    assert not os.path.exists(fresh_venv) and not results['blog']['python_missing']
    assert recap(run.stdout, 'maria')['changed'] == 0
    assert results['maria']['database']['client_package'] == 'mariadb-client'
    failed = results['pg']
    assert failed['outcome'] == 'failed' and failed['failed_step'] == 'Install the system packages'
    assert failed['error'].startswith('the apt sources of this host do not carry postgresql-client-99:')
    assert 'PGDG' in failed['error'] and 'cairn_prepare_db_client_package' in failed['error']
    assert 'PostgreSQL 99 or newer' in failed['error']

    # The prepared interpreter runs a real backup (zstd dumps need its zstandard).
    hosts['blog']['ansible_python_interpreter'] = local_venv + '/bin/python'
    write_inventory(inventory, hosts, repository)
    with offline():
        backup = run_playbook('backup.yml', inventory, limit='blog')
    assert backup.returncode == 0, backup.stdout[-6000:] + backup.stderr
    assert recap(backup.stdout, 'blog')['failed'] == 0
    points = os.listdir(os.path.join(repository, 'blog', 'points'))
    assert len(points) == 1
    assert any(name.endswith('.zst') for name in os.listdir(os.path.join(repository, 'blog', 'points', points[0])))


def test_requirement_status_names_exactly_the_lines_pip_would_change():
    """The role's requirements_status.py (run by the venv's Python, here this test's) reads installed metadata
    only: satisfied lines, dependencies included, are not missing; absent, too old, unreadable lines are."""
    lines = ['zstandard>=0.21.0', 'boto3>=1.26.0', 'zstandard>=999', 'no-such-distribution-cairn>=1',
             'pytest[testing]>=1', 'six; python_version < "3"', 'not a requirement (', 'Boto3 >= 1.0']
    with open(os.path.join(ROOT, 'roles', 'prepare', 'files', 'requirements_status.py'), 'rb') as script:
        run = subprocess.run([sys.executable, '-'] + lines, stdin=script, capture_output=True, check=True)
    status = json.loads(run.stdout)
    assert status['missing'] == ['zstandard>=999', 'no-such-distribution-cairn>=1', 'not a requirement (']
    assert status['python'] == '%d.%d.%d' % sys.version_info[:3]
