# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The AWX material of docs/awx/ against what the collection accepts.

Every credential type is checked the way AWX checks it when it is created (its inputs and injectors), then
its injector is rendered with sample inputs the way AWX renders it for a job (Jinja in a sandbox, keys and
values, empty inputs left out), and what it injects must be something the roles take: a variable of their
argument specs or of docs/configuration.md, valid for the spec's type, ``no_log`` wherever a secret lands, and
accepted by the code that uses it (repository credentials by ``select_repository``, storage secrets by the
.env reader, the identity and passphrase by the encryption code). The surveys are checked against AWX's survey
rules and the role's argument spec, with answers of the wrong type refused. No network: the repository
endpoints are never contacted.
"""

from __future__ import annotations

import base64
import glob
import json
import os
import re

import pytest
import yaml
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from jinja2 import StrictUndefined
from jinja2.sandbox import ImmutableSandboxedEnvironment

from ansible_collections.cairncms.ops.plugins.module_utils._args import load_crypto
from ansible_collections.cairncms.ops.plugins.module_utils._common import CairnError
from ansible_collections.cairncms.ops.plugins.module_utils._crypto import Crypto
from ansible_collections.cairncms.ops.plugins.module_utils._env import InstanceConfig, looks_secret
from ansible_collections.cairncms.ops.plugins.module_utils._repository import select_repository

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
AWX = os.path.join(ROOT, 'docs', 'awx')
TYPE_FILES = sorted(glob.glob(os.path.join(AWX, 'credential-types', '*.yml')))
SURVEY_FILES = sorted(glob.glob(os.path.join(AWX, 'surveys', '*.json')))
ROLES = sorted(os.path.basename(os.path.dirname(os.path.dirname(path)))
               for path in glob.glob(os.path.join(ROOT, 'roles', '*', 'meta', 'argument_specs.yml')))

# AWX's rules (awx/main/fields.py): names of injected extra vars and env vars, input field types.
EXTRA_VAR_KEY = re.compile(r'^[a-zA-Z_{}]+[a-zA-Z0-9_{}]*$')
ENV_KEY = re.compile(r'^[a-zA-Z_]+[a-zA-Z0-9_]*$')
FIELD_TYPES = {'string', 'boolean'}
FIELD_KEYS = {'id', 'label', 'type', 'help_text', 'multiline', 'secret', 'ask_at_runtime', 'format', 'choices',
              'default'}
SURVEY_TYPES = {'text', 'textarea', 'password', 'integer', 'float', 'multiplechoice', 'multiselect'}

S3_ENV = 'STORAGE_LOCATIONS=local,media\nSTORAGE_MEDIA_DRIVER=s3\nSTORAGE_MEDIA_BUCKET=cms-files\n'
AZURE_ENV = ('STORAGE_LOCATIONS=media\nSTORAGE_MEDIA_DRIVER=azure\nSTORAGE_MEDIA_CONTAINER_NAME=cms\n'
             'STORAGE_MEDIA_ACCOUNT_NAME=cmsfiles\n')
CLOUDINARY_ENV = 'STORAGE_LOCATIONS=media\nSTORAGE_MEDIA_DRIVER=cloudinary\nSTORAGE_MEDIA_CLOUD_NAME=demo\n'
ACCOUNT_KEY = base64.b64encode(b'an azure account key, 32 bytes!!').decode()
GCS_ENV = 'STORAGE_LOCATIONS=media\nSTORAGE_MEDIA_DRIVER=gcs\nSTORAGE_MEDIA_BUCKET=cms-files\n'


def _service_account_json():
    """A service account key file's content, as Google Cloud makes it (a real RSA key; no request is made)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    return json.dumps({'type': 'service_account', 'project_id': 'cairn-test', 'private_key_id': 'k1',
                       'private_key': pem, 'client_email': 'cairn-backup@cairn-test.iam.gserviceaccount.com',
                       'client_id': '1', 'token_uri': 'http://127.0.0.1:9/token'}, indent=2)


SERVICE_ACCOUNT_JSON = _service_account_json()


def _age_identity():
    import pyrage
    identity = pyrage.x25519.Identity.generate()
    return str(identity), str(identity.to_public())


def _ssh_identity():
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519
    key = ed25519.Ed25519PrivateKey.generate()
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                                serialization.NoEncryption()).decode()
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()
    return private, public


# Sample inputs per credential type file, and what the injected values must do. A new type needs an entry.
SAMPLES = {
    'repository-s3.yml': {'inputs': {'access_key': 'AKIAEXAMPLEKEY', 'secret_key': 's3cr3t/with+chars{{'},
                          'repository': {'type': 's3', 'bucket': 'cairn-backups', 'prefix': 'prod',
                                         'endpoint': 'http://127.0.0.1:9', 'force_path_style': True}},
    'repository-azure.yml': {'inputs': {'account_key': ACCOUNT_KEY},
                             'repository': {'type': 'azure', 'container': 'cairn', 'account_name': 'cairnbackups',
                                            'endpoint': 'http://127.0.0.1:9/cairnbackups'}},
    'repository-gcs.yml': {'inputs': {'service_account_json': SERVICE_ACCOUNT_JSON},
                           'repository': {'type': 'gcs', 'bucket': 'cairn-backups', 'prefix': 'prod',
                                          'api_endpoint': 'http://127.0.0.1:9'}},
    'storage-gcs.yml': {'inputs': {'location': 'MEDIA', 'service_account_json': SERVICE_ACCOUNT_JSON}, 'env': GCS_ENV},
    'storage-s3.yml': {'inputs': {'location': 'MEDIA', 'access_key': 'AKIAMEDIA', 'secret_key': 'media-secret'},
                       'env': S3_ENV},
    'storage-azure.yml': {'inputs': {'location': 'MEDIA', 'account_key': ACCOUNT_KEY}, 'env': AZURE_ENV},
    'storage-cloudinary.yml': {'inputs': {'location': 'MEDIA', 'api_key': '123456789012345',
                                          'api_secret': 'cloudinary-secret'}, 'env': CLOUDINARY_ENV},
    'encryption-identity.yml': {'inputs': {'identity': None}},          # made per test: an age and an SSH key
    'encryption-passphrase.yml': {'inputs': {'passphrase': 'correct horse battery staple'}},
    'drill-login.yml': {'inputs': {'email': 'drill@example.com', 'password': 'drill-password'}},
    'alerts.yml': {'inputs': {'webhook_url': 'https://hooks.example.com/T0K3N', 'heartbeat_url': ''}},
}


def _load(path):
    with open(path, encoding='utf-8') as handle:
        return yaml.safe_load(handle) if path.endswith('.yml') else json.load(handle)


def role_options(role):
    return _load(os.path.join(ROOT, 'roles', role, 'meta', 'argument_specs.yml'))['argument_specs']['main']['options']


def documented_variables():
    """The cairn_* variables of the inventory contract table in docs/configuration.md."""
    names = set()
    with open(os.path.join(ROOT, 'docs', 'configuration.md'), encoding='utf-8') as handle:
        for line in handle:
            if line.startswith('| `cairn_'):
                names.update(re.findall(r'`(cairn_\w+)`', line.split('|')[1]))
    return names


# AWX, emulated -----------------------------------------------------------------------------------------------
def awx_check_inputs(inputs):
    """What AWX refuses in a credential type's inputs (CredentialTypeInputField)."""
    assert set(inputs) <= {'fields', 'required'}, inputs
    ids = []
    for field in inputs['fields']:
        assert set(field) <= FIELD_KEYS, 'unknown field keys: %s' % (set(field) - FIELD_KEYS)
        assert {'id', 'label'} <= set(field), field
        assert field['id'] != 'tower' and field['id'] not in ids, 'field ids must be unique and not "tower"'
        assert field.get('type', 'string') in FIELD_TYPES
        if field.get('type', 'string') != 'string':
            assert not {'choices', 'multiline', 'format', 'secret'} & set(field)
        ids.append(field['id'])
    assert set(inputs.get('required', [])) <= set(ids), 'required names fields that do not exist'
    return ids


def awx_check_injectors(injectors, ids):
    """What AWX refuses in injectors (CredentialTypeInjectorField): unknown sections, bad names, templates
    that use undefined fields or do not compile."""
    assert set(injectors) <= {'env', 'extra_vars', 'file'}
    strict = ImmutableSandboxedEnvironment(undefined=StrictUndefined)
    namespace = {field: 'EXAMPLE' for field in ids}

    def walk(node, top):
        if isinstance(node, dict):
            for key, value in node.items():
                assert isinstance(key, str) and EXTRA_VAR_KEY.match(key), 'AWX refuses the extra var name %r' % key
                strict.from_string(key).render(namespace)
                walk(value, False)
        elif isinstance(node, list):
            for item in node:
                walk(item, False)
        else:
            assert isinstance(node, str), 'injector values are templates (strings): %r' % (node,)
            strict.from_string(node).render(namespace)
    walk(injectors.get('extra_vars', {}), True)
    for name, template in injectors.get('env', {}).items():
        assert ENV_KEY.match(name) and not name.startswith('ANSIBLE_'), name
        strict.from_string(template).render(namespace)


def awx_render(injectors, inputs):
    """The extra vars a job gets from a credential: every key and value rendered in AWX's sandbox, with the
    inputs that are empty left undefined (they render as '')."""
    sandbox = ImmutableSandboxedEnvironment()
    namespace = {key: value for key, value in inputs.items() if value not in (None, '')}

    def build(node):
        if isinstance(node, dict):
            return {build(key): build(value) for key, value in node.items()}
        if isinstance(node, list):
            return [build(item) for item in node]
        return sandbox.from_string(node).render(**namespace)
    return build(injectors.get('extra_vars', {}))


def awx_answer_errors(question, answer):
    """AWX's check of one survey answer (SurveyJobTemplateMixin._survey_element_validation, in short)."""
    kind = question['type']
    choices = question.get('choices') or []
    if isinstance(choices, str):
        choices = [choice for choice in choices.splitlines() if choice.strip()]
    if kind in ('text', 'textarea', 'password'):
        if not isinstance(answer, str):
            return ['expected a string']
        if question.get('min') not in (None, '') and len(answer) < int(question['min']):
            return ['too short']
        if question.get('max') not in (None, '') and len(answer) > int(question['max']):
            return ['too long']
    elif kind == 'integer':
        if isinstance(answer, bool) or not isinstance(answer, int):   # AWX: type(answer) must be int itself
            return ['expected an integer']
        if question.get('min') not in (None, '') and answer < int(question['min']):
            return ['too small']
        if question.get('max') not in (None, '') and answer > int(question['max']):
            return ['too large']
    elif kind == 'float':
        if isinstance(answer, bool) or not isinstance(answer, (int, float)):
            return ['expected a number']
    elif kind == 'multiselect':
        if not isinstance(answer, list):
            return ['expected a list']
        return ['%r is no choice' % item for item in answer if item not in choices]
    elif kind == 'multiplechoice':
        if answer not in choices:
            return ['%r is no choice' % answer]
    return []


def answers(question):
    """The answers a person can give: the default (as the UI offers it) and every choice (for a multiselect:
    none, each one, all)."""
    kind = question['type']
    choices = question.get('choices') or []
    if isinstance(choices, str):
        choices = [choice for choice in choices.splitlines() if choice.strip()]
    default = question.get('default')
    if kind == 'multiselect':
        picked = [item for item in (default or '').splitlines() if item.strip()] if isinstance(default, str) else default
        return [picked or [], []] + [[choice] for choice in choices] + [list(choices)]
    found = [] if default in (None, '') else [default]
    if kind == 'multiplechoice':
        found += [choice for choice in choices if choice not in found]
    return found


def spec_errors(option_spec, name, value):
    """The errors of the role's argument validation (validate_argument_spec) for one variable."""
    spec = dict(option_spec)
    spec.pop('description', None)
    spec.pop('required', None)
    result = ArgumentSpecValidator({name: spec}).validate({name: value})
    return result.error_messages


# credential types --------------------------------------------------------------------------------------------
@pytest.fixture(scope='module')
def accepted():
    """{variable: {role: option spec}} of every role, and the documented variables."""
    by_variable = {}
    for role in ROLES:
        for name, option in role_options(role).items():
            by_variable.setdefault(name, {})[role] = option
    return by_variable, documented_variables()


def test_every_credential_type_has_samples():
    assert TYPE_FILES, 'no credential types in docs/awx/credential-types'
    assert sorted(os.path.basename(path) for path in TYPE_FILES) == sorted(SAMPLES)


@pytest.mark.parametrize('path', TYPE_FILES, ids=os.path.basename)
def test_credential_type_is_valid_for_awx(path):
    definition = _load(path)
    assert set(definition) == {'name', 'description', 'kind', 'inputs', 'injectors'}, \
        'the keys of awx.awx.credential_type, nothing else'
    assert definition['kind'] == 'cloud'
    ids = awx_check_inputs(definition['inputs'])
    awx_check_injectors(definition['injectors'], ids)
    assert set(SAMPLES[os.path.basename(path)]['inputs']) == set(ids), 'samples must give every input'


def _inputs(path, identity=None):
    inputs = dict(SAMPLES[os.path.basename(path)]['inputs'])
    if 'identity' in inputs:
        inputs['identity'] = identity
    return inputs


@pytest.mark.parametrize('path', TYPE_FILES, ids=os.path.basename)
def test_injected_variables_are_taken_by_the_roles(path, accepted):
    by_variable, documented = accepted
    definition = _load(path)
    inputs = _inputs(path, identity=_age_identity()[0])
    injected = awx_render(definition['injectors'], inputs)
    assert injected, 'the type injects nothing'
    secrets = [inputs[field['id']] for field in definition['inputs']['fields'] if field.get('secret') and inputs[field['id']]]
    for name, value in injected.items():
        assert name in by_variable or name in documented, \
            '%s injects %s, which no role takes (argument specs) and docs/configuration.md does not name' % (
                os.path.basename(path), name)
        holds_secret = any(secret in json.dumps(value) for secret in secrets)
        for role, option in by_variable.get(name, {}).items():
            errors = spec_errors(option, name, value)
            assert not errors, '%s: %s' % (role, errors)
            if holds_secret:
                assert option.get('no_log'), 'roles/%s/meta/argument_specs.yml: %s holds a secret and must be ' \
                    'no_log: true' % (role, name)


def test_repository_credentials_are_accepted_by_the_repository_code():
    for name in ('repository-s3.yml', 'repository-azure.yml', 'repository-gcs.yml'):
        path = os.path.join(AWX, 'credential-types', name)
        sample = SAMPLES[name]
        credentials = awx_render(_load(path)['injectors'], sample['inputs'])['cairn_repository_credentials']
        repository = select_repository(sample['repository'], credentials=credentials)
        options = repository.store.location.options
        if sample['repository']['type'] == 'gcs':  # parsed in memory: the key file's fields, not its text
            assert options['service_account_info'] == json.loads(SERVICE_ACCOUNT_JSON)
            credentials_of = repository.store.bucket.client._credentials  # the SDK takes them (no request)
            assert credentials_of.service_account_email == 'cairn-backup@cairn-test.iam.gserviceaccount.com'
            assert repository.describe().startswith('gs://cairn-backups')
        else:
            for value in credentials.values():
                assert value in options.values(), 'the credential did not reach the %s backend' % name
        if sample['repository']['type'] == 's3':
            assert options['key'] == 'AKIAEXAMPLEKEY' and options['secret'] == 's3cr3t/with+chars{{'
            assert repository.store.client.meta.endpoint_url == 'http://127.0.0.1:9'   # the SDK takes them (no request)
        elif sample['repository']['type'] == 'azure':
            assert repository.store.container.credential.account_key == ACCOUNT_KEY
        # the check is real: a key the repository code does not know is refused
        with pytest.raises(CairnError, match='take'):
            select_repository(sample['repository'], credentials=dict(credentials, token='x'))


@pytest.mark.parametrize('name', ['storage-s3.yml', 'storage-azure.yml', 'storage-cloudinary.yml', 'storage-gcs.yml'])
def test_storage_secrets_reach_the_location(name, tmp_path):
    path = os.path.join(AWX, 'credential-types', name)
    sample = SAMPLES[name]
    overrides = awx_render(_load(path)['injectors'], sample['inputs'])['cairn_env_secret_overrides']
    env_file = tmp_path / '.env'
    env_file.write_text('DB_CLIENT=sqlite3\nDB_FILENAME=./data.db\n' + sample['env'])
    for variable in overrides:
        assert looks_secret(variable), '%s is not treated as a secret by the .env reader' % variable
    try:
        without = InstanceConfig.load(str(env_file)).location('media').options
    except CairnError:  # a cloudinary location without its keys is refused outright
        without = {}
    with_them = InstanceConfig.load(str(env_file), secret_overrides=overrides).location('media').options
    if name == 'storage-gcs.yml':  # parsed in memory, and it wins over a key file the .env names
        assert with_them['service_account_info'] == json.loads(SERVICE_ACCOUNT_JSON)
        assert 'service_account_info' not in without
        key_file = tmp_path / 'gcs.json'
        env_file.write_text(env_file.read_text() + 'STORAGE_MEDIA_KEY_FILENAME=%s\n' % key_file)
        both = InstanceConfig.load(str(env_file), secret_overrides=overrides).location('media')
        assert both.options['service_account_info'] and not both.options['key_filename']
        assert both.describe()['credentials'] == 'service account key'
        assert SERVICE_ACCOUNT_JSON not in json.dumps(both.describe())
        return
    for value in overrides.values():
        assert value in with_them.values() and value not in without.values()


def test_storage_location_must_be_upper_case(tmp_path):
    """The .env reader looks up STORAGE_<LOC>_* with the location in upper case: a lower-case location in the
    credential would be ignored, which is why the type's label says so."""
    sample = SAMPLES['storage-s3.yml']
    definition = _load(os.path.join(AWX, 'credential-types', 'storage-s3.yml'))
    overrides = awx_render(definition['injectors'], dict(sample['inputs'], location='media'))
    env_file = tmp_path / '.env'
    env_file.write_text('DB_CLIENT=sqlite3\nDB_FILENAME=./data.db\n' + S3_ENV)
    options = InstanceConfig.load(str(env_file), secret_overrides=overrides['cairn_env_secret_overrides']).location('media').options
    assert options['key'] is None
    assert 'upper case' in definition['inputs']['fields'][0]['label']


@pytest.mark.parametrize('kind', ['age', 'ssh'])
def test_identity_text_decrypts(kind):
    text, recipient = _age_identity() if kind == 'age' else _ssh_identity()
    definition = _load(os.path.join(AWX, 'credential-types', 'encryption-identity.yml'))
    injected = awx_render(definition['injectors'], {'identity': text})
    assert injected['cairn_encryption_identity'] == text           # multi-line keys survive the injector
    sealed = Crypto([recipient]).encrypt_bytes(b'restore point bytes')
    crypto = load_crypto({'encryption_identity': injected['cairn_encryption_identity']})
    assert crypto.decrypt_bytes(sealed, 'a sample') == b'restore point bytes'
    stranger = load_crypto({'encryption_identity': _age_identity()[0]})
    with pytest.raises(CairnError, match='cannot decrypt'):
        stranger.decrypt_bytes(sealed, 'a sample')


def test_passphrase_reaches_the_encryption_code():
    definition = _load(os.path.join(AWX, 'credential-types', 'encryption-passphrase.yml'))
    injected = awx_render(definition['injectors'], SAMPLES['encryption-passphrase.yml']['inputs'])
    assert load_crypto({'encryption_passphrase': injected['cairn_encryption_passphrase']}).passphrase == \
        'correct horse battery staple'


def test_an_empty_optional_input_injects_an_empty_string():
    """AWX leaves empty inputs out of the namespace; the alert URLs then render as '' - no alert - which is the
    roles' own default."""
    injected = awx_render(_load(os.path.join(AWX, 'credential-types', 'alerts.yml'))['injectors'],
                          SAMPLES['alerts.yml']['inputs'])
    assert injected == {'cairn_alert_webhook_url': 'https://hooks.example.com/T0K3N', 'cairn_alert_heartbeat_url': ''}


def test_injecting_an_unknown_variable_is_caught(accepted):
    """The check of injected names can fail: a misspelt variable is no role's and not documented."""
    by_variable, documented = accepted
    injected = awx_render({'extra_vars': {'cairn_repository_credential': {'key': '{{ k }}'}}}, {'k': 'v'})
    assert not any(name in by_variable or name in documented for name in injected)


# surveys -----------------------------------------------------------------------------------------------------
def test_every_survey_belongs_to_a_role():
    assert SURVEY_FILES, 'no surveys in docs/awx/surveys'
    for path in SURVEY_FILES:
        assert os.path.basename(path)[:-5] in ROLES, '%s is named after no role' % path


@pytest.mark.parametrize('path', SURVEY_FILES, ids=os.path.basename)
def test_survey_answers_pass_the_role_argument_spec(path):
    survey = _load(path)
    role = os.path.basename(path)[:-5]
    options = role_options(role)
    assert set(survey) == {'name', 'description', 'spec'} and survey['spec']
    variables = [question['variable'] for question in survey['spec']]
    assert len(variables) == len(set(variables))
    for question in survey['spec']:
        name = question['variable']
        assert {'question_name', 'type', 'variable', 'required'} <= set(question)
        assert question['type'] in SURVEY_TYPES
        assert name in options, '%s asks for %s, which the %s role does not take' % (os.path.basename(path), name, role)
        option = options[name]
        if question['type'] in ('multiplechoice', 'multiselect') and option.get('choices'):
            assert set(question['choices']) <= set(option['choices']), name
        if question.get('required') and question['type'] != 'multiselect':
            assert question.get('default') not in (None, ''), '%s: a required question needs a default, or a ' \
                'scheduled job cannot start' % name
        given = answers(question)
        assert given, '%s offers no answer' % name
        for answer in given:
            assert not awx_answer_errors(question, answer), (name, answer, awx_answer_errors(question, answer))
            assert not spec_errors(option, name, answer), (name, answer, spec_errors(option, name, answer))


@pytest.mark.parametrize('path', SURVEY_FILES, ids=os.path.basename)
def test_wrong_answers_are_refused_by_the_argument_spec(path):
    """The spec check is live: an answer of the wrong kind fails the role's validation."""
    role = os.path.basename(path)[:-5]
    options = role_options(role)
    wrong = {'int': 'soon', 'bool': 'maybe', 'list': ['everything']}
    checked = 0
    for question in _load(path)['spec']:
        option = options[question['variable']]
        kind = option.get('type', 'str')
        if kind in wrong and (kind != 'list' or option.get('choices')):
            assert spec_errors(option, question['variable'], wrong[kind]), question['variable']
            checked += 1
    assert checked, 'the survey asks nothing the spec can refuse'


# the setup playbook ------------------------------------------------------------------------------------------
def test_setup_playbook_uses_the_files_here():
    plays = _load(os.path.join(AWX, 'awx-setup.yml'))
    play = plays[0]
    types = {_load(path)['name']: _load(path) for path in TYPE_FILES}
    made = {}
    for task in play['tasks']:
        if 'awx.awx.credential' in task:
            spec = task['awx.awx.credential']
            assert spec['credential_type'] in types, spec['credential_type']
            fields = {field['id'] for field in types[spec['credential_type']]['inputs']['fields']}
            assert set(spec['inputs']) <= fields, spec['inputs']
            assert task.get('no_log') is True, 'a task that handles secrets is no_log'
            made[spec['name']] = spec['credential_type']
    surveys = {os.path.basename(path)[:-5] for path in SURVEY_FILES}
    for job in play['vars']['cairn_awx_jobs']:
        assert os.path.isfile(os.path.join(ROOT, 'playbooks', job['playbook'])), job['playbook']
        if 'survey' in job:
            assert job['survey'] in surveys and job['survey'] == job['playbook'][:-4], job
        for credential in job['credentials']:
            assert credential in made, '%s uses the credential %s, which the playbook does not create' % (
                job['name'], credential)
        kinds = [made[credential] for credential in job['credentials']]
        assert len(kinds) == len(set(kinds)), 'AWX takes one credential of each type per job template'
        if 'schedule' in job:
            assert re.match(r'^DTSTART(;TZID=[\w/]+)?:\d{8}T\d{6}Z? RRULE:FREQ=(HOURLY|DAILY|WEEKLY|MONTHLY)(;\S+)?$',
                            job['schedule']['rrule']), job['schedule']['rrule']


@pytest.mark.parametrize('value, problem', [
    ('not json at all', 'not (valid )?JSON'),
    ('{"type": "service_account", "private_key": "-----BEGIN PRIVATE KEY-----"}', 'needs client_email and private_key'),
    ('["a", "list"]', 'is a list, not a service account key'),
])
def test_a_wrong_service_account_key_is_refused_without_being_quoted(value, problem, tmp_path):
    with pytest.raises(CairnError, match=problem) as refused:
        select_repository({'type': 'gcs', 'bucket': 'b'}, credentials={'service_account_json': value})
    assert 'cairn_repository_credentials.service_account_json' in refused.value.message
    assert value not in refused.value.message and 'BEGIN' not in refused.value.message
    env_file = tmp_path / '.env'
    env_file.write_text('DB_CLIENT=sqlite3\nDB_FILENAME=./data.db\n' + GCS_ENV)
    with pytest.raises(CairnError, match=problem) as refused:
        InstanceConfig.load(str(env_file), secret_overrides={'STORAGE_MEDIA_CREDENTIALS': 'json:' + value}).location('media')
    assert 'STORAGE_MEDIA_CREDENTIALS' in refused.value.message and value not in refused.value.message
    with pytest.raises(CairnError, match='with the json: prefix'):  # without it, CairnCMS's rules make it a list
        InstanceConfig.load(str(env_file), secret_overrides={'STORAGE_MEDIA_CREDENTIALS': SERVICE_ACCOUNT_JSON}).location('media')


def test_a_service_account_key_goes_once(tmp_path):
    with pytest.raises(CairnError, match='not both'):
        select_repository({'type': 'gcs', 'bucket': 'b', 'key_filename': str(tmp_path / 'k.json')},
                          credentials={'service_account_json': SERVICE_ACCOUNT_JSON})


def test_a_key_whose_private_key_is_not_pem_is_refused_when_used():
    broken = dict(json.loads(SERVICE_ACCOUNT_JSON), private_key='-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----\n')
    repository = select_repository({'type': 'gcs', 'bucket': 'b', 'api_endpoint': 'http://127.0.0.1:9'},
                                   credentials={'service_account_json': json.dumps(broken)})
    with pytest.raises(CairnError, match='cannot be used') as refused:
        repository.store.bucket
    assert 'nope' not in refused.value.message
