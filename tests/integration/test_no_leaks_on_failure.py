# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""No credential in the output when things fail, at the default verbosity and at -vvv: a failing offsite
endpoint (the copy loop over entries that hold credentials), a failing storage endpoint (its key in the .env),
a wrong decryption key and a wrong passphrase. Also nothing in the error logs kept in the repository."""

from __future__ import annotations

import json
import os
import sys
import uuid

import pyrage
import pytest

import _s3
import demo_instance
from _faulty import FaultyProxy, Rule
from conftest import run_playbook
from test_secrets import add_secrets

OFFSITE_KEY = 'AKIAOFFSITEKEY000042'
OFFSITE_SECRET = 'offsite-Secret-7Tq2Lw9Zx4Rb1Nc6'
PASSPHRASE = 'correct horse battery staple 41c7'
WRONG_PASSPHRASE = 'wrong horse battery staple 9d2e'


@pytest.fixture
def failing(s3_server):
    """A proxy in front of the S3 emulator that answers every request with HTTP 503 (a persistent failure)."""
    with FaultyProxy(s3_server.endpoint) as proxy:
        proxy.add(Rule('.*', '.*', action=503))
        yield proxy


def _files_of(directory):
    for where, _dirs, names in os.walk(directory):
        for name in names:
            with open(os.path.join(where, name), 'rb') as handle:
                yield os.path.join(where, name), handle.read()


def _assert_clean(runs, secrets, repository):
    for run in runs:
        text = run.stdout + run.stderr
        for secret in secrets:
            assert secret not in text, 'a credential leaked into the output of %s:\n%s' % (run.args, text[-4000:])
    for path, data in _files_of(repository):
        for secret in secrets:
            assert secret.encode() not in data, 'a credential is in %s' % path


def _play(name, inventory, limit, **kwargs):
    return [run_playbook(name, inventory, limit=limit, **kwargs),
            run_playbook(name, inventory, limit=limit, extra=['-vvv'] + list(kwargs.pop('extra', [])), **kwargs)]


def test_failing_endpoints_and_wrong_keys_leak_nothing(tmp_path, source, target, failing, s3_server):
    identity = pyrage.x25519.Identity.generate()
    key_file = tmp_path / 'ops.key'
    key_file.write_text('%s\n' % identity)
    wrong = pyrage.x25519.Identity.generate()
    wrong_file = tmp_path / 'wrong.key'
    wrong_file.write_text('%s\n' % wrong)
    known = add_secrets(source, tmp_path) + [OFFSITE_SECRET, _s3.SECRET_KEY, PASSPHRASE, WRONG_PASSPHRASE,
                                             str(identity), str(wrong)]
    # An instance whose uploads are in a bucket behind the failing endpoint, its key in its .env.
    cloudy = tmp_path / 'cloudy'
    demo_instance.populated(str(cloudy), files=1)
    bucket = s3_server.create_bucket('uploads-%s' % uuid.uuid4().hex[:8])
    with open(cloudy / '.env', 'a', encoding='utf-8') as handle:
        handle.write('STORAGE_LOCATIONS=cloud\n' + _s3.env_lines('cloud', failing.origin, bucket))
    repository = str(tmp_path / 'repository')
    offsite = {'repository': {'type': 's3', 'bucket': 'offsite', 'endpoint': failing.origin, 'region': _s3.REGION,
                              'force_path_style': True},
               'credentials': {'key': OFFSITE_KEY, 'secret': OFFSITE_SECRET}, 'retention': {'keep_last': 3}}
    common = {'ansible_connection': 'local', 'ansible_python_interpreter': sys.executable,
              'cairn_repository': {'type': 'local', 'path': repository},
              'cairn_encryption_recipients': [str(identity.to_public())], 'cairn_encryption_passphrase': PASSPHRASE}
    hosts = {
        'blog': {'cairn_env_file': str(source / '.env'), 'cairn_offsite': [offsite]},
        'cloudy': {'cairn_env_file': str(cloudy / '.env')},
        'clone': {'cairn_env_file': str(target / '.env'), 'cairn_restore_from': 'blog', 'cairn_restore_replace': True,
                  'cairn_encryption_identity_file': str(wrong_file), 'cairn_encryption_passphrase': WRONG_PASSPHRASE},
    }
    inventory = tmp_path / 'inventory.json'
    inventory.write_text(json.dumps({'all': {'vars': common, 'hosts': hosts}}))
    inventory = str(inventory)

    offsite_runs = _play('backup.yml', inventory, 'blog')
    for run in offsite_runs:
        assert run.returncode != 0, run.stdout
        assert "failed in 'Copy the restore points to the offsite repositories'" in run.stdout, run.stdout
        assert 'Failed to' in run.stdout and 'offsite' in run.stdout  # the real cause, not a bare "items failed"
    storage_runs = _play('backup.yml', inventory, 'cloudy')
    for run in storage_runs:
        assert run.returncode != 0 and "failed in 'Copy the file bytes'" in run.stdout, run.stdout
        assert 's3://%s/' % bucket in run.stdout
    # A wrong identity and a wrong passphrase for the restore point made by the first backup.
    wrong_runs = _play('restore.yml', inventory, 'clone')
    for run in wrong_runs:
        assert run.returncode != 0 and 'does not open' in run.stdout, run.stdout
    no_passphrase = _play('restore.yml', inventory, 'clone', extra=['-e', 'cairn_encryption_passphrase=""'])
    for run in no_passphrase:
        assert run.returncode != 0 and 'cannot decrypt' in run.stdout, run.stdout
    assert failing.rules[0].faulted > 0
    _assert_clean(offsite_runs + storage_runs + wrong_runs + no_passphrase, known, repository)
