# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""--diff of the modules that write a .env (the restore role's configuration step, the drill sandbox), through
ansible-playbook in check mode and applied: the diff shows the variables that change and never the value of a
secret - by name (KEY, SECRET, passwords, storage keys), as classed at capture (cairn_secret_variables), or given as
a secret override; a multi-line secret, a commented-out secret and a line that defines nothing are hidden too."""

from __future__ import annotations

import json
import sys

import pyrage
import pytest

import demo_instance
from conftest import run_playbook

from ansible_collections.cairncms.ops.plugins.module_utils._env import mask_secrets, parse_dotenv
from ansible_collections.cairncms.ops.plugins.module_utils._secrets import is_secret

# Secret values of the source's .env beside its KEY and SECRET: by pattern, multi-line, commented out, classed as
# secret at capture only (PAYMENT_APIKEY, with cairn_secret_variables), and on a line that defines nothing.
EXTRA = ('EMAIL_SMTP_PASSWORD=smtp-Pw-4kQz81\n'
         'PAYMENT_APIKEY=pk_live_7Hq2Zx9Lm3\n'
         'TLS_PRIVATE_KEY="-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----"\n'
         '# SECRET=retired-Secret-Vv81\n'
         'tokenwithoutname-Qm3x\n')
HIDDEN = ['smtp-Pw-4kQz81', 'pk_live_7Hq2Zx9Lm3', 'MIIEvQIBADANBgkqhkiG9w0BAQEFAASC', 'retired-Secret-Vv81',
          'tokenwithoutname-Qm3x']
PEPPER = 'pepper-Xw7-31d'  # a secret override whose name is no secret's name
DRILL_PASSWORD = 'drill-Pw-88ab'


@pytest.fixture(scope='module')
def diffing(tmp_path_factory):
    base = tmp_path_factory.mktemp('diff')
    source, target = base / 'source', base / 'target'
    demo_instance.populated(str(source))
    demo_instance.empty(str(target))
    with open(source / '.env', 'a', encoding='utf-8') as handle:
        handle.write(EXTRA)
    identity = pyrage.x25519.Identity.generate()
    key_file = base / 'key.txt'
    key_file.write_text('%s\n' % identity)
    common = {'ansible_connection': 'local', 'ansible_python_interpreter': sys.executable,
              'cairn_repository': {'type': 'local', 'path': str(base / 'repository')},
              'cairn_encryption_recipients': [str(identity.to_public())], 'cairn_encryption_identity_file': str(key_file)}
    hosts = {'blog': {'cairn_env_file': str(source / '.env'), 'cairn_secret_variables': ['PAYMENT_APIKEY'],
                      'cairn_drill_dir': str(base / 'sandbox'), 'cairn_drill_cms_command': ['true'],
                      'cairn_drill_env_secret_overrides': {'DB_PASSWORD': DRILL_PASSWORD}},
             'copy': {'cairn_env_file': str(target / '.env'), 'cairn_restore_from': 'blog', 'cairn_restore_replace': True,
                      'cairn_no_log_secrets': False, 'cairn_env_overrides': {'PUBLIC_URL': 'https://copy.example.com'},
                      'cairn_env_secret_overrides': {'SIGNING_PEPPER': PEPPER}}}
    inventory = base / 'inventory.json'
    inventory.write_text(json.dumps({'all': {'vars': common, 'hosts': hosts}}))
    backup = run_playbook('backup.yml', str(inventory), limit='blog')
    assert backup.returncode == 0, backup.stdout + backup.stderr
    values = [value for env in (source / '.env', target / '.env') for name, value in parse_dotenv(
        (env).read_text()).items() if name in ('KEY', 'SECRET')]
    return {'inventory': str(inventory), 'source': source, 'target': target, 'base': base,
            'secrets': values + HIDDEN + [PEPPER, DRILL_PASSWORD]}


def _diff_of(output, task):
    """The diff ansible-playbook printed for ``task``."""
    section = output.split('TASK [%s]' % task, 1)[1].split('\nTASK [', 1)[0]
    assert '--- before' in section and '+++ after' in section, section
    return section


def _assert_no_secret(run, secrets):
    for secret in secrets:
        assert secret not in run.stdout + run.stderr, 'a secret value is in the output:\n%s' % run.stdout[-5000:]


def test_restore_diff_shows_what_changes_and_no_secret(diffing):
    before = (diffing['target'] / '.env').read_bytes()
    planned = run_playbook('restore.yml', diffing['inventory'], limit='copy', check=True, extra=['--diff'])
    assert planned.returncode == 0, planned.stdout + planned.stderr
    assert (diffing['target'] / '.env').read_bytes() == before
    assert 'Would restore' in planned.stdout
    applied = run_playbook('restore.yml', diffing['inventory'], limit='copy', extra=['--diff'])
    assert applied.returncode == 0, applied.stdout + applied.stderr
    for run in (planned, applied):
        diff = _diff_of(run.stdout, 'cairncms.ops.restore : Restore the configuration and secrets')
        for line in ('-PUBLIC_URL=http://127.0.0.1:8056', '+PUBLIC_URL=https://copy.example.com', '-PORT=8056',
                     '+PORT=8055', '-KEY=<secret>', '+KEY=<secret, changed>', '+SECRET=<secret, changed>',
                     '+EMAIL_SMTP_PASSWORD=<secret, changed>', '+PAYMENT_APIKEY=<secret, changed>',
                     '+TLS_PRIVATE_KEY=<secret, changed>', '+# SECRET=<secret>', '+SIGNING_PEPPER=<secret, changed>',
                     '+# <a line that defines no variable, hidden>'):
            assert line in diff.splitlines(), '%s not in the diff:\n%s' % (line, diff)
        _assert_no_secret(run, diffing['secrets'])
    written = parse_dotenv((diffing['target'] / '.env').read_text())
    assert written['PAYMENT_APIKEY'] == 'pk_live_7Hq2Zx9Lm3' and written['SIGNING_PEPPER'] == PEPPER


def test_drill_sandbox_diff_shows_its_configuration_and_no_secret(diffing):
    # Ansible prints a diff only for a changed task, and a sandbox made and removed in the same run is no change of
    # the host: the diff shows where the sandbox is kept.
    planned = run_playbook('restore_drill.yml', diffing['inventory'], limit='blog', check=True,
                           extra=['--diff', '-e', 'cairn_drill_keep_sandbox=true'])
    assert planned.returncode == 0, planned.stdout + planned.stderr
    assert not (diffing['base'] / 'sandbox').exists() and 'Would drill' in planned.stdout
    diff = _diff_of(planned.stdout, 'cairncms.ops.restore_drill : Make the sandbox and write its configuration')
    lines = diff.splitlines()
    for line in ('+DB_FILENAME=%s' % (diffing['base'] / 'sandbox' / 'database' / 'data.db'), '+CACHE_STORE=memory',
                 '+KEY=<secret>', '+SECRET=<secret>', '+DB_PASSWORD=<secret>', '+PAYMENT_APIKEY=<secret>'):
        assert line in lines, '%s not in the diff:\n%s' % (line, diff)
    _assert_no_secret(planned, diffing['secrets'])


def test_masking_keeps_the_layout_and_marks_changed_secrets():
    text = ('export SECRET: "a#b"  # kept comment\nPORT=1\nAUTH_GOOGLE_CLIENT_SECRET=\'x\ny\'\n'
            '#  DB_PASSWORD=old\n# a plain comment\nnot a definition\n')
    masked = mask_secrets(text, is_secret)
    assert masked == ('export SECRET: <secret>  # kept comment\nPORT=1\nAUTH_GOOGLE_CLIENT_SECRET=<secret>\n'
                      '# DB_PASSWORD=<secret>\n# a plain comment\n# <a line that defines no variable, hidden>\n')
    again = mask_secrets(text.replace('a#b', 'c'), is_secret, parse_dotenv(text))
    assert again.splitlines()[0] == 'export SECRET: <secret, changed>  # kept comment'
    assert again.splitlines()[2] == 'AUTH_GOOGLE_CLIENT_SECRET=<secret>'
