# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Object-store endpoints that fail, through a fault-injecting proxy (``_faulty.FaultyProxy``) in front of
moto_server, fake-gcs-server and Azurite: transient errors are retried with backoff and the run succeeds
with the right bytes; a persistent failure ends the run with one clear error, no restore point, an error
log in the repository and nothing half-done beyond what the docs promise."""

from __future__ import annotations

import hashlib
import http.client
import http.server
import json
import os
import subprocess
import threading
import uuid

import _azure
import _gcs
import _s3
import demo_instance
import pytest
from _faulty import RESET_MID_BODY, FaultyProxy, Rule
from ansible_collections.cairncms.ops.plugins.module_utils._repository import TYPES
from conftest import module_command, module_env, run_module, run_playbook, write_inventory
from test_modules import backup
from test_playbooks import secret_of

ROOT_PREFIX = 'cms/uploads'
OBJECTS = {'doc-%d.bin' % n: os.urandom(40 * 1024 * (n + 1) + n) for n in range(6)}
OBJECTS['large/scan.tif'] = os.urandom(3 * 1024 * 1024 + 7)
# requests in all for one object before the run gives up (the backends' RETRY_ATTEMPTS; GCS: by deadline)
ATTEMPTS = {'s3': 5, 'azure': 5, 'gcs': 3}


class S3:
    driver = scheme = 's3'
    rewrite_links = False

    def __init__(self, server):
        self.server = server
        self.client = server.client()
        self.secrets = (_s3.SECRET_KEY, _s3.ACCESS_KEY)

    def create(self, name):
        return self.server.create_bucket('%s-%s' % (name, uuid.uuid4().hex[:8]))

    def put(self, bucket, key, data):
        self.client.put_object(Bucket=bucket, Key=key, Body=data)

    def objects(self, bucket):
        listed = self.client.list_objects_v2(Bucket=bucket).get('Contents', [])
        return {item['Key']: self.client.get_object(Bucket=bucket, Key=item['Key'])['Body'].read() for item in listed}

    def env_lines(self, endpoint, bucket, root):
        return _s3.env_lines(self.driver, endpoint, bucket, root)

    def reads(self, bucket, root):  # (method, target) expressions of the requests that read object bytes
        return 'GET', r'^/%s/%s/' % (bucket, root)

    def writes(self, bucket, root):  # ... and of the requests that write an object
        return 'PUT', r'^/%s/%s/' % (bucket, root)


class Gcs(S3):
    driver = 'gcs'
    scheme = 'gs'
    rewrite_links = True  # fake-gcs-server's mediaLink carries its own address

    def __init__(self, server):  # pylint: disable=super-init-not-called
        self.server = server
        self.client = server.client()
        self.secrets = ()  # anonymous against the emulator

    def put(self, bucket, key, data):
        self.client.bucket(bucket).blob(key).upload_from_string(data)

    def objects(self, bucket):
        return {blob.name: blob.download_as_bytes() for blob in self.client.list_blobs(bucket)}

    def env_lines(self, endpoint, bucket, root):
        return _gcs.env_lines(self.driver, endpoint, bucket, root)

    def reads(self, bucket, root):
        return 'GET', r'^/download/storage/v1/b/%s/o/%s.*alt=media' % (bucket, root.replace('/', '%2F'))

    def writes(self, bucket, root):
        return 'POST|PUT', r'^/upload/storage/v1/b/%s/o' % bucket


class Azure(S3):
    driver = scheme = 'azure'

    def __init__(self, server):  # pylint: disable=super-init-not-called
        self.server = server
        self.service = server.service()
        self.secrets = (_azure.ACCOUNT_KEY,)

    def create(self, name):
        return self.server.create_container('%s-%s' % (name, uuid.uuid4().hex[:8]))

    def put(self, bucket, key, data):
        self.service.get_blob_client(bucket, key).upload_blob(data, overwrite=True)

    def objects(self, bucket):
        client = self.service.get_container_client(bucket)
        return {blob.name: client.download_blob(blob.name).readall() for blob in client.list_blobs()}

    def env_lines(self, endpoint, bucket, root):
        return _azure.env_lines(self.driver, endpoint, bucket, root)

    def reads(self, bucket, root):
        return 'GET', r'^/%s/%s/%s/' % (_azure.ACCOUNT_NAME, bucket, root)

    def writes(self, bucket, root):
        return 'PUT', r'^/%s/%s/%s/' % (_azure.ACCOUNT_NAME, bucket, root)


SERVERS = {'s3': ('s3_server', S3), 'gcs': ('gcs_server', Gcs), 'azure': ('azure_server', Azure)}


@pytest.fixture(params=sorted(SERVERS))
def cloud(request):
    fixture, cls = SERVERS[request.param]
    return cls(request.getfixturevalue(fixture))


@pytest.fixture
def proxy_for():
    started = []

    def start(cloud):
        proxy = FaultyProxy(cloud.server.endpoint, rewrite_links=cloud.rewrite_links).start()
        started.append(proxy)
        return proxy
    yield start
    for proxy in started:
        proxy.stop()


def instance(directory, cloud, endpoint, bucket, root, populated=True):
    """A demo instance with a second storage location, ``cloud.driver``, at ``endpoint``."""
    (demo_instance.populated if populated else demo_instance.empty)(str(directory))
    env = directory / '.env'
    text = env.read_text().replace('STORAGE_LOCATIONS=local\n', 'STORAGE_LOCATIONS=local,%s\n' % cloud.driver)
    env.write_text(text + cloud.env_lines(endpoint, bucket, root))
    return env


def source_bucket(cloud, names=OBJECTS):
    bucket = cloud.create('cairn-src')
    for name in names:
        cloud.put(bucket, '%s/%s' % (ROOT_PREFIX, name), OBJECTS[name])
    return bucket


def module_run(name, environ=None, **args):
    """A module run that also keeps its stderr (for the leak checks)."""
    proc = subprocess.run(module_command(name), input=json.dumps({'ANSIBLE_MODULE_ARGS': args}), capture_output=True,
                          text=True, env=module_env(environ), timeout=600, check=False)
    result = json.loads(proc.stdout)
    return result, proc.stdout + proc.stderr


def assert_no_secret(cloud, *texts, extra=()):
    for text in texts:
        for secret in cloud.secrets + tuple(extra):
            assert secret not in text


def assert_retried(rule):
    """Every request the rule faulted was made again and then went through."""
    assert rule.faulted, rule
    for index, (_method, target, faulted) in enumerate(rule.targets):
        if faulted:
            assert any(again == target and not later for _m, again, later in rule.targets[index + 1:]), rule.targets


@pytest.mark.parametrize('action', [503, RESET_MID_BODY])
def test_transient_errors_are_retried(tmp_path, cloud, proxy_for, repo, action):
    bucket = source_bucket(cloud)
    proxy = proxy_for(cloud)
    env = instance(tmp_path / 'source', cloud, proxy.endpoint, bucket, ROOT_PREFIX)
    method, target = cloud.reads(bucket, ROOT_PREFIX)
    rule = proxy.add(Rule(method, target, after=0, times=2, action=action))

    manifest, _dump, files = backup(env, repo)
    [summary] = [loc for loc in files['locations'] if loc['name'] == cloud.driver]
    assert (summary['files'], summary['transferred_files']) == (len(OBJECTS), len(OBJECTS)), files
    assert rule.faulted == 2 and rule.matched >= len(OBJECTS) + 2, rule
    assert_retried(rule)

    # Restore into another bucket, straight at the emulator: the bytes are the originals.
    target_bucket = cloud.create('cairn-dst')
    target_env = instance(tmp_path / 'target', cloud, cloud.server.endpoint, target_bucket, 'restored',
                          populated=False)
    restored = run_module('cairn_storage_sync', env_file=str(target_env), repository=repo, instance='blog',
                          restore_point=manifest['id'], direction='restore', locations=[cloud.driver])
    assert not restored.failed and restored['transferred'] == len(OBJECTS), restored
    assert cloud.objects(target_bucket) == {'restored/' + name: data for name, data in OBJECTS.items()}
    assert_no_secret(cloud, json.dumps([manifest, files, restored]))


def test_persistent_failure_mid_backup_is_no_restore_point(tmp_path, cloud, proxy_for, repo):
    first = dict(list(OBJECTS.items())[:3])
    bucket = source_bucket(cloud, first)
    proxy = proxy_for(cloud)
    env = instance(tmp_path / 'source', cloud, proxy.endpoint, bucket, ROOT_PREFIX)
    good, _dump, _files = backup(env, repo)  # a restore point to keep

    for name in OBJECTS:  # new objects: the next backup reads only these
        if name not in first:
            cloud.put(bucket, '%s/%s' % (ROOT_PREFIX, name), OBJECTS[name])
    method, target = cloud.reads(bucket, ROOT_PREFIX)
    rule = proxy.add(Rule(method, target, after=2, times=None, action=503))
    inventory = write_inventory(str(tmp_path / 'inventory.json'), {'blog': {'cairn_env_file': str(env)}},
                                repo['path'])
    run = run_playbook('backup.yml', inventory, limit='blog', extra=['-vvv'])
    output = run.stdout + run.stderr
    assert run.returncode != 0, output
    assert "failed in 'Copy the file bytes'" in run.stdout, run.stdout
    url = '%s://%s/%s/' % (cloud.scheme, bucket, ROOT_PREFIX)
    assert 'Failed to read ' + url in run.stdout, run.stdout
    assert 'Service Unavailable' in run.stdout, run.stdout
    # The endpoint was asked again for the failing object before the run gave up.
    faulted = [target for _method, target, fault in rule.targets if fault]
    assert max(faulted.count(target) for target in set(faulted)) >= ATTEMPTS[cloud.driver], rule.targets

    home = os.path.join(repo['path'], 'blog')
    assert os.listdir(os.path.join(home, 'points')) == [good['id']]
    assert os.listdir(os.path.join(home, 'staging')) == []
    info = run_module('cairn_backup_info', repository=repo, instance='blog')
    assert [point['id'] for point in info['restore_points']] == [good['id']], info
    assert info['lock'] is None and len(info['failed_runs']) == 1, info
    with open(os.path.join(home, 'failed', info['failed_runs'][0], 'error.json'), encoding='utf-8') as handle:
        log = json.load(handle)
    assert log['error']['task'] == 'Copy the file bytes', log
    assert log['error']['msg'].startswith('Failed to read ' + url), log

    texts = [output, json.dumps(info), json.dumps(log)]
    for directory, _dirs, names in os.walk(repo['path']):
        texts += [open(os.path.join(directory, name), 'rb').read().decode('latin-1') for name in names]
    assert_no_secret(cloud, *texts, extra=(secret_of(env),))


def test_persistent_failure_mid_restore(tmp_path, cloud, proxy_for, repo):
    bucket = source_bucket(cloud)
    source_env = instance(tmp_path / 'source', cloud, cloud.server.endpoint, bucket, ROOT_PREFIX)
    manifest, _dump, _files = backup(source_env, repo)

    # The target holds older versions of every file and one file that is not in the restore point.
    target_bucket = cloud.create('cairn-dst')
    old = {'restored/' + name: b'older version of ' + name.encode() for name in OBJECTS}
    old['restored/stale.bin'] = b'not in the restore point'
    for key, data in old.items():
        cloud.put(target_bucket, key, data)
    proxy = proxy_for(cloud)
    target_env = instance(tmp_path / 'target', cloud, proxy.endpoint, target_bucket, 'restored', populated=False)
    method, target = cloud.writes(target_bucket, 'restored')
    rule = proxy.add(Rule(method, target, after=2, times=None, action=503))
    scratch = tmp_path / 'tmp'
    scratch.mkdir()
    args = dict(env_file=str(target_env), repository=repo, instance='blog', restore_point=manifest['id'],
                direction='restore', locations=[cloud.driver], replace=True)

    result, output = module_run('cairn_storage_sync', environ={'TMPDIR': str(scratch)}, **args)
    assert result.get('failed'), result
    url = '%s://%s/restored/' % (cloud.scheme, target_bucket)
    assert result['msg'].startswith('Failed to upload ' + url) and 'Service Unavailable' in result['msg'], result
    assert_no_secret(cloud, output)
    assert rule.faulted >= ATTEMPTS[cloud.driver], rule

    # What a failure while committing leaves: every object is whole, either the old or the restored
    # version; exactly the uploads that got through (2) are in place; nothing was removed yet; no
    # staged temporary file is left behind.
    now = cloud.objects(target_bucket)
    assert set(now) == set(old), now.keys()
    new = {'restored/' + name: data for name, data in OBJECTS.items()}
    replaced = sorted(key for key in new if now[key] == new[key])
    assert all(now[key] in (old[key], new[key]) for key in new), replaced
    assert len(replaced) == 2, replaced
    # ... and the error says which, and what to do
    assert ('2 of %d file(s) were already put in place (%s)' % (len(OBJECTS), ', '.join(
        key[len('restored/'):] for key in replaced))) in result['msg'], result
    assert 'run the restore again to complete it' in result['msg'], result
    assert now['restored/stale.bin'] == old['restored/stale.bin']
    assert [name for name in os.listdir(scratch) if name.startswith('.cairn-')] == []

    # Once the endpoint is back, the same restore completes it.
    proxy.clear()
    again, output = module_run('cairn_storage_sync', **args)
    assert not again.get('failed') and again['transferred'] == len(OBJECTS) - 2 and again['removed'] == 1, again
    assert cloud.objects(target_bucket) == new
    assert_no_secret(cloud, output)


class S3Repository:
    """A repository in a bucket of moto_server, reached through a proxy; ``module()`` runs a module on it
    (``direct=True``: past the proxy) and checks that no secret is in its output."""

    def __init__(self, cloud, proxy, env_file):
        self.cloud, self.env_file = cloud, env_file
        self.bucket = cloud.create('cairn-repo')
        self.spec = {'type': 's3', 'bucket': self.bucket, 'prefix': 'cairn/prod', 'endpoint': proxy.endpoint,
                     'region': _s3.REGION, 'force_path_style': True}
        self.credentials = {'key': _s3.ACCESS_KEY, 'secret': _s3.SECRET_KEY}

    def module(self, name, direct=False, **args):
        spec = dict(self.spec, endpoint=self.cloud.server.endpoint) if direct else self.spec
        result, output = module_run(name, repository=spec, repository_credentials=self.credentials,
                                    instance='blog', **args)
        assert_no_secret(self.cloud, output, extra=(secret_of(self.env_file),))
        return result

    def keys(self):
        paginator = self.cloud.client.get_paginator('list_objects_v2')
        return [item['Key'] for page in paginator.paginate(Bucket=self.bucket) for item in page.get('Contents') or ()]


@pytest.fixture
def s3_repository(tmp_path, s3_server, proxy_for):
    assert 's3' in TYPES
    cloud = S3(s3_server)
    proxy = proxy_for(cloud)
    demo_instance.populated(str(tmp_path / 'source'))
    return S3Repository(cloud, proxy, tmp_path / 'source' / '.env'), proxy


def test_persistent_repository_failure_mid_backup(s3_repository):
    store, proxy = s3_repository
    env = str(store.env_file)
    point = store.module('cairn_restore_point')
    assert not point.get('failed'), point
    pid = point['restore_point']
    dump = store.module('cairn_db_dump', env_file=env, restore_point=pid)
    assert not dump.get('failed'), dump
    # The repository endpoint fails for good after two more writes, while the file bytes are copied.
    rule = proxy.add(Rule('PUT|POST', r'^/%s/cairn/prod/blog/' % store.bucket, after=2, times=None, action=503))
    files = store.module('cairn_storage_sync', env_file=env, restore_point=pid, direction='backup')
    assert files.get('failed'), files
    assert files['msg'].startswith('Failed to ') and ' s3://%s/cairn/prod/blog/' % store.bucket in files['msg'], files
    assert 'Service Unavailable' in files['msg'], files
    # the message names the write that failed (a blob, or the inventory), not the lock's last heartbeat
    assert '/lock.json' not in files['msg'] and ('/blobs/' in files['msg'] or 'files.jsonl' in files['msg']), files
    final = store.module('cairn_restore_point', env_file=env, restore_point=pid, state='complete')
    assert final.get('failed'), final
    assert rule.faulted >= ATTEMPTS['s3'], rule

    # Seen past the proxy: no restore point, no manifest anywhere; the dead run still holds the lock.
    info = store.module('cairn_backup_info', direct=True)
    assert not info.get('failed') and info['restore_points'] == [] and info['lock']['run'] == pid, info
    assert not [key for key in store.keys() if key.endswith('manifest.json')], store.keys()

    # The endpoint is back: the run is marked failed (as the backup role's rescue does), its error log stays.
    proxy.clear()
    failed = store.module('cairn_restore_point', restore_point=pid, state='failed', error={'msg': files['msg']})
    assert not failed.get('failed'), failed
    info = store.module('cairn_backup_info', direct=True)
    assert (info['restore_points'], info['failed_runs'], info['lock']) == ([], [pid], None), info
    keys = store.keys()
    assert 'cairn/prod/blog/failed/%s/error.json' % pid in keys, keys
    assert not [key for key in keys if key.startswith(('cairn/prod/blog/points/', 'cairn/prod/blog/staging/'))], keys


def test_repository_failure_at_finalize_leaves_no_restore_point(s3_repository):
    store, proxy = s3_repository
    env = str(store.env_file)
    point = store.module('cairn_restore_point')
    pid = point['restore_point']
    for name, args in (('cairn_db_dump', {}), ('cairn_storage_sync', {'direction': 'backup'})):
        result = store.module(name, env_file=env, restore_point=pid, **args)
        assert not result.get('failed'), result
    # Everything is in the bucket; only the manifest, written last, cannot be.
    rule = proxy.add(Rule('PUT', r'^/%s/cairn/prod/blog/points/%s/manifest\.json' % (store.bucket, pid),
                          action=503))
    final = store.module('cairn_restore_point', env_file=env, restore_point=pid, state='complete')
    assert final.get('failed'), final
    assert final['msg'] == ('Failed to write s3://%s/cairn/prod/blog/points/%s/manifest.json: Service Unavailable '
                            '(503)' % (store.bucket, pid)), final
    assert rule.faulted == ATTEMPTS['s3'], rule
    assert [key for key in store.keys() if key.startswith('cairn/prod/blog/points/%s/' % pid)]  # the data is there
    info = store.module('cairn_backup_info', direct=True)
    assert not info.get('failed') and info['restore_points'] == [], info


class _Echo(http.server.BaseHTTPRequestHandler):
    """An upstream that answers with what it received: method, target, Host, a header and the body's sha256."""
    protocol_version = 'HTTP/1.1'

    def log_message(self, *args):
        pass

    def _any(self):
        if 'chunked' in (self.headers.get('Transfer-Encoding') or ''):
            body = b''
            while True:
                size = int(self.rfile.readline().strip(), 16)
                body += self.rfile.read(size + 2)[:size]
                if not size:
                    break
        else:
            body = self.rfile.read(int(self.headers.get('Content-Length') or 0))
        answer = json.dumps({'method': self.command, 'target': self.path, 'host': self.headers['Host'],
                             'x_test': self.headers.get('X-Test'), 'sha256': hashlib.sha256(body).hexdigest(),
                             'link': 'http://%s:%d/x' % self.server.server_address}).encode() + b'\n' * 300000
        self.send_response(201)
        self.send_header('Content-Type', 'application/json')
        self.send_header('Content-Length', str(len(answer)))
        self.send_header('Location', 'http://%s:%d/session' % self.server.server_address)
        self.end_headers()
        if self.command != 'HEAD':
            self.wfile.write(answer)

    do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = _any


def test_the_proxy_forwards_faithfully_and_faults_by_rule():
    upstream = http.server.ThreadingHTTPServer(('127.0.0.1', 0), _Echo)
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    try:
        with FaultyProxy('http://127.0.0.1:%d' % upstream.server_address[1], rewrite_links=True) as proxy:
            port = int(proxy.origin.rsplit(':', 1)[1])
            rule = proxy.add(Rule('PUT', r'^/b/k\?', after=1, times=2, action=503))
            reset = proxy.add(Rule('GET', r'^/reset$', action='reset'))
            body = os.urandom(300000)
            answers = []
            for _attempt in range(4):
                conn = http.client.HTTPConnection('127.0.0.1', port, timeout=10)
                conn.request('PUT', '/b/k?x=1&y=%2F', body=body, headers={'X-Test': 'kept'})
                response = conn.getresponse()
                answers.append((response.status, response.read()))
                conn.close()
            assert [status for status, _body in answers] == [201, 503, 503, 201]
            echoed = json.loads(answers[0][1])
            assert echoed == {'method': 'PUT', 'target': '/b/k?x=1&y=%2F', 'host': '127.0.0.1:%d' % port,
                              'x_test': 'kept', 'sha256': hashlib.sha256(body).hexdigest(),
                              'link': proxy.origin + '/x'}  # the upstream's address rewritten to the proxy's
            assert len(answers[0][1]) == len(answers[3][1]) and answers[0][1].endswith(b'\n' * 300000)
            assert (rule.matched, rule.faulted) == (4, 2)

            conn = http.client.HTTPConnection('127.0.0.1', port, timeout=10)  # a chunked request body
            conn.request('POST', '/chunked', body=iter([b'abc', b'', b'defg']), encode_chunked=True)
            response = conn.getresponse()
            assert response.getheader('Location') == proxy.origin + '/session'
            assert json.loads(response.read())['sha256'] == hashlib.sha256(b'abcdefg').hexdigest()
            conn.close()

            conn = http.client.HTTPConnection('127.0.0.1', port, timeout=10)
            conn.request('GET', '/reset')
            with pytest.raises((ConnectionError, http.client.HTTPException)):
                conn.getresponse().read()
            conn.close()
            assert (reset.matched, reset.faulted) == (1, 1)
    finally:
        upstream.shutdown()
        upstream.server_close()
