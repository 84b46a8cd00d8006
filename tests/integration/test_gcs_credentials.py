# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A GCS service account key given as text, as an AWX credential injects it (docs/awx/credential-types/
repository-gcs.yml and storage-gcs.yml), reaches the modules through the roles and signs every request, for the
repository and for a storage location; the key never shows in the output. fake-gcs-server does not check
tokens, so a recording proxy stands in front of it and a token endpoint of the test's own (the key's token_uri)
checks the signed JWT the SDK sends for its token."""

from __future__ import annotations

import base64
import http.server
import json
import secrets
import urllib.parse
import uuid

import pytest
import yaml
from conftest import ROOT, run_playbook, write_inventory
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from demo import digests
from test_modules import dump_sql, originals
from test_playbooks import hosts

from _emulator import InProcessServer
from _faulty import FaultyProxy

EMAIL = 'cairn-backup@cairn-test.iam.gserviceaccount.com'


def _b64(text):
    return base64.urlsafe_b64decode(text + '=' * (-len(text) % 4))


class TokenEndpoint(InProcessServer):
    """OAuth2's JWT bearer grant, as Google's token endpoint answers it: checks the assertion's RS256 signature
    against the service account's public key and its issuer, then hands out a token of its own."""
    thread_name = 'token-endpoint'

    def __init__(self, public_key):
        super().__init__()
        self.public_key = public_key
        self.token = 'ya29.test-' + secrets.token_hex(8)
        self.granted = 0
        self.refused = []

    def handler(self):
        endpoint = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):  # noqa: N802 (http.server's name)
                form = urllib.parse.parse_qs(self.rfile.read(int(self.headers['Content-Length'])).decode())
                try:
                    header, claims, signature = form['assertion'][0].split('.')
                    endpoint.public_key.verify(_b64(signature), ('%s.%s' % (header, claims)).encode(),
                                               padding.PKCS1v15(), hashes.SHA256())
                    assert json.loads(_b64(claims))['iss'] == EMAIL
                    status, body = 200, {'access_token': endpoint.token, 'expires_in': 3600, 'token_type': 'Bearer'}
                    endpoint.granted += 1
                except Exception as exc:  # noqa: BLE001 - any flaw refuses the grant, as Google would
                    endpoint.refused.append(repr(exc))
                    status, body = 400, {'error': 'invalid_grant'}
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header('Content-Type', 'application/json')
                self.send_header('Content-Length', str(len(data)))
                self.end_headers()
                self.wfile.write(data)
        return Handler


@pytest.fixture
def service_account():
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    endpoint = TokenEndpoint(key.public_key()).start()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    text = json.dumps({'type': 'service_account', 'project_id': 'cairn-test', 'private_key_id': uuid.uuid4().hex,
                       'private_key': pem, 'client_email': EMAIL, 'client_id': '1',
                       'token_uri': endpoint.origin + '/token'}, indent=2)
    yield text, endpoint
    endpoint.stop()


@pytest.fixture
def proxy(gcs_server):
    front = FaultyProxy(gcs_server.endpoint, rewrite_links=True).start()
    yield front
    front.stop()


def injected(name, inputs):
    """The extra vars an AWX credential of type ``name`` injects for ``inputs`` (AWX renders them with Jinja)."""
    import jinja2
    with open(ROOT + '/docs/awx/credential-types/' + name, encoding='utf-8') as handle:
        injectors = yaml.safe_load(handle)['injectors']['extra_vars']

    def render(value):
        if isinstance(value, dict):
            return {render(key): render(item) for key, item in value.items()}
        return jinja2.Template(value).render(**inputs)
    return render(injectors)


def add_media_location(instance, bucket, endpoint):
    """A second storage location in GCS, its key file named in the .env but absent on the host."""
    env_file = instance / '.env'
    text = env_file.read_text().replace('STORAGE_LOCATIONS=local\n', 'STORAGE_LOCATIONS=local,media\n')
    env_file.write_text(text + 'STORAGE_MEDIA_DRIVER=gcs\nSTORAGE_MEDIA_BUCKET=%s\nSTORAGE_MEDIA_ROOT=cms\n'
                               'STORAGE_MEDIA_API_ENDPOINT=%s\nSTORAGE_MEDIA_KEY_FILENAME=/nonexistent/gcs-key.json\n'
                        % (bucket, endpoint))


def test_service_account_keys_from_awx_credentials_sign_every_request(gcs_server, proxy, service_account,
                                                                      source, target, tmp_path):
    key_text, tokens = service_account
    repository_bucket = gcs_server.create_bucket('repo-%s' % uuid.uuid4().hex[:10])
    source_media = gcs_server.create_bucket('media-%s' % uuid.uuid4().hex[:10])
    target_media = gcs_server.create_bucket('media-%s' % uuid.uuid4().hex[:10])
    client = gcs_server.client()
    client.bucket(source_media).blob('cms/hero.jpg').upload_from_string(b'a picture')
    add_media_location(source, source_media, proxy.endpoint)
    add_media_location(target, target_media, proxy.endpoint)
    inventory = str(tmp_path / 'inventory.json')
    write_inventory(inventory, hosts(source, target), '/unused')
    with open(inventory, encoding='utf-8') as handle:
        data = json.load(handle)
    data['all']['vars']['cairn_repository'] = {'type': 'gcs', 'bucket': repository_bucket, 'prefix': 'prod',
                                               'api_endpoint': proxy.endpoint}
    with open(inventory, 'w', encoding='utf-8') as handle:
        json.dump(data, handle)
    # what AWX injects for a repository credential and a storage credential of these types
    extra = dict(injected('repository-gcs.yml', {'service_account_json': key_text}),
                 **injected('storage-gcs.yml', {'location': 'MEDIA', 'service_account_json': key_text}))
    extra_file = tmp_path / 'awx-extra-vars.json'
    extra_file.write_text(json.dumps(extra))

    backup = run_playbook('backup.yml', inventory, limit='blog', extra=['-vvv', '-e', '@%s' % extra_file])
    assert backup.returncode == 0, backup.stdout[-4000:] + backup.stderr[-3000:]
    restore = run_playbook('restore.yml', inventory, limit='clone', extra=['-vvv', '-e', '@%s' % extra_file])
    assert restore.returncode == 0, restore.stdout[-4000:] + restore.stderr[-3000:]

    assert tokens.refused == [] and tokens.granted >= 1
    assert proxy.authorizations and set(proxy.authorizations) == {'Bearer ' + tokens.token}, \
        'a request went to GCS without the service account token: %s' % sorted(set(map(str, proxy.authorizations)))
    for bucket in (repository_bucket, source_media, target_media):
        assert any(bucket in path for _method, path, _outcome in proxy.requests), bucket
    assert client.bucket(target_media).blob('cms/hero.jpg').download_as_bytes() == b'a picture'
    assert digests(target / 'uploads') == originals(source / 'uploads')
    assert dump_sql(source / 'data.db') == dump_sql(target / 'data.db')
    private_key = json.loads(key_text)['private_key']
    for run in (backup, restore):
        output = run.stdout + run.stderr
        for line in private_key.splitlines()[1:-1]:
            assert line not in output
        assert tokens.token not in output


def test_without_a_key_requests_go_unsigned(gcs_server, proxy, source, tmp_path):
    """The control: with no credentials and a custom endpoint, requests go unsigned (anonymous, as for an
    emulator), so the Bearer header above came from the injected key and nothing else."""
    repository_bucket = gcs_server.create_bucket('repo-%s' % uuid.uuid4().hex[:10])
    inventory = str(tmp_path / 'inventory.json')
    write_inventory(inventory, {'blog': {'cairn_env_file': str(source / '.env')}}, '/unused')
    with open(inventory, encoding='utf-8') as handle:
        data = json.load(handle)
    data['all']['vars']['cairn_repository'] = {'type': 'gcs', 'bucket': repository_bucket, 'api_endpoint': proxy.endpoint}
    with open(inventory, 'w', encoding='utf-8') as handle:
        json.dump(data, handle)
    backup = run_playbook('backup.yml', inventory, limit='blog')
    assert backup.returncode == 0, backup.stdout[-3000:]
    assert proxy.authorizations and not any(value and value.startswith('Bearer ') for value in proxy.authorizations)


def test_a_broken_key_fails_the_backup_naming_it_and_quoting_nothing(gcs_server, proxy, service_account, source,
                                                                     tmp_path):
    key_text, tokens = service_account
    broken = dict(json.loads(key_text))
    del broken['client_email']
    repository_bucket = gcs_server.create_bucket('repo-%s' % uuid.uuid4().hex[:10])
    inventory = str(tmp_path / 'inventory.json')
    write_inventory(inventory, {'blog': {'cairn_env_file': str(source / '.env')}}, '/unused')
    with open(inventory, encoding='utf-8') as handle:
        data = json.load(handle)
    data['all']['vars'].update({'cairn_repository': {'type': 'gcs', 'bucket': repository_bucket,
                                                     'api_endpoint': proxy.endpoint},
                                'cairn_repository_credentials': {'service_account_json': json.dumps(broken)}})
    with open(inventory, 'w', encoding='utf-8') as handle:
        json.dump(data, handle)
    backup = run_playbook('backup.yml', inventory, limit='blog', extra=['-vvv'])
    assert backup.returncode != 0
    assert 'cairn_repository_credentials.service_account_json is not a service account key' in backup.stdout
    for line in broken['private_key'].splitlines()[1:-1]:
        assert line not in backup.stdout + backup.stderr
    assert tokens.granted == 0 and proxy.requests == []
