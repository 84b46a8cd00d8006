# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Encryption at rest and the secrets bundle, for real: pyrage in the modules, the stock age tool
to decrypt, and a hunt for every secret value in everything the runs leave behind."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading

import pyrage
import pytest

from conftest import Gate, artifacts_of, part_of, recap, run_module, run_playbook, write_inventory
from test_modules import digests, dump_sql, originals

AGE = shutil.which('age')


@pytest.fixture
def keys(tmp_path):
    """An operational key and an offline recovery key, as age-keygen writes them."""
    made = {}
    for name in ('ops', 'recovery', 'stranger'):
        identity = pyrage.x25519.Identity.generate()
        path = tmp_path / ('%s.key' % name)
        path.write_text('# public key: %s\n%s\n' % (identity.to_public(), identity))
        path.chmod(0o600)
        made[name] = (str(identity.to_public()), str(path))
    return made


def secret_values(env_file):
    values = {}
    for line in open(env_file, encoding='utf-8'):
        if '=' in line and not line.startswith('#'):
            name, value = line.split('=', 1)
            values[name] = value.split('#')[0].strip().strip('"')
    return values


def add_secrets(source, tmp_path):
    """Give the demo instance more secrets: an SMTP password in the .env, a DB-style password in a _FILE."""
    (tmp_path / 'smtp-token').write_text('smtp-file-secret-3c2f9a')
    with open(source / '.env', 'a', encoding='utf-8') as handle:
        handle.write('EMAIL_SMTP_PASSWORD="s3cr3t-smtp-Pa55word"\nEMAIL_SMTP_TOKEN_FILE=%s\n' % (tmp_path / 'smtp-token'))
    return ['s3cr3t-smtp-Pa55word', 'smtp-file-secret-3c2f9a', secret_values(source / '.env')['SECRET']]


def encrypted_backup(source, repo, recipients, **extra):
    point = run_module('cairn_restore_point', repository=repo, instance='blog')['restore_point']
    common = dict(env_file=str(source / '.env'), repository=repo, instance='blog', restore_point=point,
                  encryption_recipients=recipients)
    for name, args in (('cairn_db_dump', {}), ('cairn_storage_sync', {'direction': 'backup'}),
                       ('cairn_secret_capture', extra)):
        result = run_module(name, **dict(common, **args))
        assert not result.failed, result
    final = run_module('cairn_restore_point', env_file=str(source / '.env'), repository=repo, instance='blog',
                       restore_point=point, state='complete')
    assert not final.failed, final
    return final['manifest']


def test_everything_sensitive_is_encrypted_and_the_age_tool_reads_it(source, repo, keys, tmp_path):
    add_secrets(source, tmp_path)
    manifest = encrypted_backup(source, repo, [keys['ops'][0], keys['recovery'][0]])
    assert manifest['encryption'] == {'scheme': 'age', 'recipients': [keys['ops'][0], keys['recovery'][0]]}
    assert part_of(manifest, 'secrets')['captured'] and part_of(manifest, 'secrets')['fingerprint_key'] == 'secret'
    variables = part_of(manifest, 'secrets')['variables']
    assert variables['SECRET']['secret'] and variables['EMAIL_SMTP_PASSWORD']['secret']
    assert variables['EMAIL_SMTP_TOKEN']['from_file'] and not variables['PUBLIC_URL']['secret']
    assert all(len(v['fingerprint']) == 32 for v in variables.values())
    point = os.path.join(repo['path'], 'blog', 'points', manifest['id'])
    blobs = os.path.join(repo['path'], 'blog', 'blobs-age')
    assert not os.path.exists(os.path.join(repo['path'], 'blog', 'blobs')) or \
        not os.listdir(os.path.join(repo['path'], 'blog', 'blobs'))
    for directory, _subdirs, files in os.walk(blobs):
        for name in files:
            assert open(os.path.join(directory, name), 'rb').read().startswith(b'age-encryption.org/v1\n')
    for artifact in artifacts_of(manifest):
        head = open(os.path.join(point, artifact['path']), 'rb').read(22)
        assert head.startswith(b'age-encryption.org/v1') == artifact['encrypted'], artifact
    if AGE is None:
        pytest.skip('the age tool is not installed (Debian: age)')
    # Either key opens everything with the stock tool, as docs/encryption.md shows.
    for key in ('ops', 'recovery'):
        database = tmp_path / ('restored-%s.db' % key)
        decrypted = subprocess.run([AGE, '-d', '-i', keys[key][1], os.path.join(point, 'database.sqlite3.zst')],
                                   capture_output=True, check=True).stdout
        database.write_bytes(subprocess.run(['zstd', '-d', '-c'], input=decrypted, capture_output=True,
                                            check=True).stdout)
        assert dump_sql(database) == dump_sql(source / 'data.db')
    bundle = subprocess.run([AGE, '-d', '-i', keys['recovery'][1], os.path.join(point, 'secrets.tar')],
                            capture_output=True, check=True).stdout
    listing = subprocess.run(['tar', '-t'], input=bundle, capture_output=True, check=True).stdout.decode()
    assert listing.split() == ['env/.env', 'files/0', 'index.json']
    wrong = subprocess.run([AGE, '-d', '-i', keys['stranger'][1], os.path.join(point, 'secrets.tar')],
                           capture_output=True, check=False)
    assert wrong.returncode != 0


def test_restore_needs_the_right_identity_and_refuses_tampering(source, target, repo, keys):
    encrypted_backup(source, repo, [keys['ops'][0]])
    missing = run_module('cairn_db_restore', env_file=str(target / '.env'), repository=repo, instance='blog')
    assert missing.failed and 'set cairn_encryption_identity_file' in missing['msg']
    wrong = run_module('cairn_db_restore', env_file=str(target / '.env'), repository=repo, instance='blog',
                       encryption_identity_file=keys['stranger'][1])
    assert wrong.failed and 'cannot decrypt' in wrong['msg'] and 'nothing was restored' in wrong['msg'], wrong
    assert not (target / 'data.db').exists()
    blobs = os.path.join(repo['path'], 'blog', 'blobs-age')
    victim = sorted(os.path.join(d, f) for d, _subdirs, files in os.walk(blobs) for f in files)[-1]
    data = bytearray(open(victim, 'rb').read())
    data[-5] ^= 0x01  # inside the authenticated payload
    open(victim, 'wb').write(bytes(data))
    files = run_module('cairn_storage_sync', env_file=str(target / '.env'), repository=repo, instance='blog',
                       direction='restore', encryption_identity_file=keys['ops'][1])
    assert files.failed and 'cannot decrypt' in files['msg'], files
    assert os.listdir(target / 'uploads') == []
    check = run_module('cairn_repository_check', repository=repo, instance='blog',
                       encryption_identity_file=keys['ops'][1])
    assert check.failed and check['corrupt'] == 1, check
    blind = run_module('cairn_repository_check', repository=repo, instance='blog')
    assert not blind.failed and blind['content_verified'] is False, blind


def test_no_recipient_means_no_secrets_and_required_fails(source, repo):
    manifest = encrypted_backup(source, repo, [])
    secrets = part_of(manifest, 'secrets')
    assert secrets['captured'] is False and 'never stored in plaintext' in secrets['reason']
    assert not secrets['artifacts'] and manifest['encryption'] is None
    point = run_module('cairn_restore_point', repository=repo, instance='blog')['restore_point']
    required = run_module('cairn_db_dump', env_file=str(source / '.env'), repository=repo, instance='blog',
                          restore_point=point, encryption_required=True)
    assert required.failed and 'encryption is required' in required['msg']


def test_secret_restore_writes_the_env_for_the_new_home(source, repo, keys, tmp_path):
    encrypted_backup(source, repo, [keys['ops'][0]])
    original = secret_values(source / '.env')
    env_file = tmp_path / 'clone' / '.env'
    common = dict(env_file=str(env_file), repository=repo, instance='blog', encryption_identity_file=keys['ops'][1],
                  env_overrides={'PUBLIC_URL': 'https://clone.example.com', 'DB_FILENAME': '/srv/clone/data.db'})
    written = run_module('cairn_secret_restore', **common)
    assert written['changed'] and oct(os.stat(env_file).st_mode & 0o777) == '0o600', written
    restored = secret_values(env_file)
    assert (restored['KEY'], restored['SECRET']) == (original['KEY'], original['SECRET'])
    assert (restored['PUBLIC_URL'], restored['DB_FILENAME']) == ('https://clone.example.com', '/srv/clone/data.db')
    assert original['SECRET'] not in json.dumps(written)
    assert not run_module('cairn_secret_restore', **common)['changed']
    env_file.write_text('KEY=other\n')
    kept = run_module('cairn_secret_restore', **common)
    assert not kept['changed'] and kept['kept'] and env_file.read_text() == 'KEY=other\n'
    rotated = run_module('cairn_secret_restore', replace=True, rotate=['SECRET'], **common)
    assert rotated['changed'] and rotated['rotated'] == ['SECRET']
    fresh = secret_values(env_file)
    assert fresh['KEY'] == original['KEY'] and fresh['SECRET'] not in (original['SECRET'], '')


def test_offsite_copy_of_encrypted_points_needs_no_key(source, repo, keys, tmp_path):
    encrypted_backup(source, repo, [keys['ops'][0]])
    offsite = {'type': 'local', 'path': str(tmp_path / 'offsite')}
    copied = run_module('cairn_repository_copy', repository=repo, target=offsite, instance='blog')
    assert copied['changed'] and copied['blobs_copied'] == 6, copied
    check = run_module('cairn_repository_check', repository=offsite, instance='blog',
                       encryption_identity_file=keys['ops'][1])
    assert not check.failed and check['content_verified'], check


def test_no_secret_leaks_anywhere(source, target, repo, keys, tmp_path):
    """Backup and restore playbooks at -vvv with encryption and secret capture: no secret value in the
    output, in a module result, in any unencrypted file of the repository, in an error log, or in the
    argv of any process the run starts."""
    known = add_secrets(source, tmp_path) + ['leak-test passphrase 9f1e']
    inventory = write_inventory(str(tmp_path / 'inventory.json'), {
        'blog': {'cairn_env_file': str(source / '.env'), 'cairn_encryption_recipients': [keys['ops'][0]],
                 'cairn_encryption_passphrase': known[3],
                 'cairn_env_secret_overrides': {'EMAIL_SMTP_PASSWORD': known[0]}},
        'clone': {'cairn_env_file': str(target / '.env'), 'cairn_restore_from': 'blog',
                  'cairn_encryption_passphrase': known[3], 'cairn_restore_replace': True,
                  'cairn_env_overrides': {'DB_FILENAME': str(target / 'data.db'),
                                          'STORAGE_LOCAL_ROOT': str(target / 'uploads')}},
    }, repo['path'])
    seen_argv, stop = [], threading.Event()

    def watch():
        while not stop.is_set():
            for pid in os.listdir('/proc'):
                if pid.isdigit():
                    try:
                        seen_argv.append(open('/proc/%s/cmdline' % pid, 'rb').read())
                    except OSError:
                        pass
    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        runs = [run_playbook('backup.yml', inventory, limit='blog', extra=['-vvv']),
                run_playbook('restore.yml', inventory, limit='clone', extra=['-vvv'])]
        os.unlink(source / 'data.db')  # and a failed run, whose error log stays in the repository
        runs.append(run_playbook('backup.yml', inventory, limit='blog', extra=['-vvv']))
    finally:
        stop.set()
        watcher.join()
    assert runs[0].returncode == 0 and runs[1].returncode == 0 and runs[2].returncode != 0, runs[1].stdout[-3000:]
    assert 'Restored' in runs[1].stdout and '6 files written' in runs[1].stdout
    # The clone got the source's configuration with its own paths.
    assert secret_values(target / '.env')['SECRET'] == known[2]
    assert digests(target / 'uploads') == originals(tmp_path / 'source' / 'uploads')
    for secret in known:
        for run in runs:
            assert secret not in run.stdout + run.stderr
        assert not [argv for argv in seen_argv if secret.encode() in argv]
        for directory, _subdirs, files in os.walk(repo['path']):
            for name in files:
                data = open(os.path.join(directory, name), 'rb').read()
                assert secret.encode() not in data, os.path.join(directory, name)
        failed = os.path.join(repo['path'], 'blog', 'failed')
        assert os.listdir(failed)


def test_passphrase_mode(source, target, repo, tmp_path):
    """A passphrase instead of key files: the instance gets a repository key wrapped in age's passphrase mode."""
    passphrase = 'correct horse battery staple 2026'
    point = run_module('cairn_restore_point', repository=repo, instance='blog')['restore_point']
    common = dict(env_file=str(source / '.env'), repository=repo, instance='blog', restore_point=point,
                  encryption_passphrase=passphrase)
    for name, args in (('cairn_db_dump', {}), ('cairn_storage_sync', {'direction': 'backup'}),
                       ('cairn_secret_capture', {})):
        result = run_module(name, **dict(common, **args))
        assert not result.failed, result
        assert passphrase not in json.dumps(result)
    manifest = run_module('cairn_restore_point', env_file=str(source / '.env'), repository=repo, instance='blog',
                          restore_point=point, state='complete')['manifest']
    assert manifest['encryption']['passphrase_key'] and part_of(manifest, 'secrets')['captured']
    wrapped = open(os.path.join(repo['path'], 'blog', 'keys', 'passphrase.age'), 'rb').read()
    assert wrapped.startswith(b'age-encryption.org/v1\n-> scrypt ')
    identity = [line for line in pyrage.passphrase.decrypt(wrapped, passphrase).decode().splitlines()
                if line.startswith('AGE-SECRET-KEY-')][0]
    wrong = run_module('cairn_db_restore', env_file=str(target / '.env'), repository=repo, instance='blog',
                       encryption_passphrase='not it')
    assert wrong.failed and 'passphrase does not open' in wrong['msg'] and 'not it' not in wrong['msg']
    restored = run_module('cairn_db_restore', env_file=str(target / '.env'), repository=repo, instance='blog',
                          encryption_passphrase=passphrase)
    files = run_module('cairn_storage_sync', env_file=str(target / '.env'), repository=repo, instance='blog',
                       direction='restore', encryption_passphrase=passphrase)
    assert restored['changed'] and files['transferred'] == 6
    assert dump_sql(target / 'data.db') == dump_sql(source / 'data.db')
    # The unwrapped repository key also opens the artifacts with the stock tool.
    if AGE:
        key = tmp_path / 'unwrapped.txt'
        key.write_text(identity + '\n')
        point_dir = os.path.join(repo['path'], 'blog', 'points', manifest['id'])
        subprocess.run([AGE, '-d', '-i', str(key), os.path.join(point_dir, 'secrets.tar')], check=True,
                       capture_output=True)
    # Offsite copies carry the wrapped key along.
    offsite = {'type': 'local', 'path': str(tmp_path / 'offsite')}
    assert run_module('cairn_repository_copy', repository=repo, target=offsite, instance='blog')['changed']
    check = run_module('cairn_repository_check', repository=offsite, instance='blog', encryption_passphrase=passphrase)
    assert not check.failed and check['content_verified'], check


def test_a_new_home_needs_only_what_differs_there(source, repo, keys, tmp_path):
    """Bare metal: a fresh host with no .env. With the key, the restore reads the configuration from the restore
    point, and the operator gives only the new home's paths and URL (no DB_CLIENT); without the key it refuses before
    writing anything, naming both ways out."""
    home = tmp_path / 'new-home'
    home.mkdir()
    new_home = {'DB_FILENAME': str(home / 'data.db'), 'STORAGE_LOCAL_ROOT': str(home / 'uploads'),
                'PUBLIC_URL': 'https://cms.new-home.example'}
    hosts = {'blog': {'cairn_env_file': str(source / '.env'), 'cairn_encryption_recipients': [keys['ops'][0]]},
             'rebuilt': {'cairn_env_file': str(home / '.env'), 'cairn_restore_from': 'blog',
                         'cairn_env_overrides': new_home}}
    inventory = write_inventory(str(tmp_path / 'inventory.json'), hosts, repo['path'])
    backup = run_playbook('backup.yml', inventory, limit='blog')
    assert backup.returncode == 0, backup.stdout[-3000:]

    refused = run_playbook('restore.yml', inventory, limit='rebuilt')  # no key on the new host yet
    assert refused.returncode != 0
    assert 'there is no .env at %s yet (a new home)' % (home / '.env') in refused.stdout, refused.stdout[-3000:]
    assert 'cairn_encryption_identity' in refused.stdout and 'DB_CLIENT' in refused.stdout
    assert sorted(os.listdir(home)) == []

    hosts['rebuilt']['cairn_encryption_identity_file'] = keys['ops'][1]
    write_inventory(inventory, hosts, repo['path'])
    planned = run_playbook('restore.yml', inventory, limit='rebuilt', check=True)
    assert planned.returncode == 0, planned.stdout[-3000:]
    assert 'Would restore' in planned.stdout and sorted(os.listdir(home)) == []
    restored = run_playbook('restore.yml', inventory, limit='rebuilt')
    assert restored.returncode == 0, restored.stdout[-3000:]
    assert dump_sql(home / 'data.db') == dump_sql(source / 'data.db')
    assert digests(home / 'uploads') == originals(source / 'uploads')
    written, captured = secret_values(home / '.env'), secret_values(source / '.env')
    assert written['DB_CLIENT'] == 'sqlite3' and written['SECRET'] == captured['SECRET']
    assert written['KEY'] == captured['KEY'] and written['PUBLIC_URL'] == 'https://cms.new-home.example'
    assert written['DB_FILENAME'] == str(home / 'data.db'), written
    again = run_playbook('restore.yml', inventory, limit='rebuilt')  # the .env is there now: nothing to do
    assert again.returncode == 0 and recap(again.stdout, 'rebuilt')['changed'] == 0, again.stdout[-3000:]


def test_the_restore_keeps_its_claim_for_the_secrets_step_and_then_releases_it(source, target, repo, keys, tmp_path):
    """The restore module claims the restore point itself; where the point holds secrets and the role restores
    them after it, the claim outlives the module (a prune beside the secrets step keeps the point) and the role
    releases it at the end."""
    hosts = {'blog': {'cairn_env_file': str(source / '.env'), 'cairn_encryption_recipients': [keys['ops'][0]]},
             'target': {'cairn_env_file': str(target / '.env'), 'cairn_restore_from': 'blog',
                        'cairn_encryption_identity_file': keys['ops'][1]}}
    inventory = write_inventory(str(tmp_path / 'inventory.json'), hosts, repo['path'])
    for _round in range(2):
        backup = run_playbook('backup.yml', inventory, limit='blog')
        assert backup.returncode == 0, backup.stdout[-3000:]
    points = [point['id'] for point in run_module('cairn_backup_info', repository=repo,
                                                  instance='blog')['restore_points']]
    readers = os.path.join(repo['path'], 'blog', 'readers')
    gate = Gate('restore.yml', inventory, 'Restore the configuration and secrets', tmp_path / 'gate',
                limit='target', extra=['-e', 'cairn_restore_point=%s' % points[0], '-e', 'cairn_restore_replace=true'])
    try:
        gate.wait()
        assert len(os.listdir(readers)) == 1  # kept by the restore module for this step
        pruned = run_module('cairn_repository_prune', repository=repo, instance='blog', retention={'keep_last': 1})
        assert pruned['held'] == [points[0]] and pruned['removed'] == [], pruned
    finally:
        gate.release()
    restored = gate.finish()
    assert restored.returncode == 0, restored.stdout[-3000:]
    assert secret_values(target / '.env')['SECRET'] == secret_values(source / '.env')['SECRET']
    assert os.listdir(readers) == []  # released by the role
    assert run_module('cairn_repository_prune', repository=repo, instance='blog',
                      retention={'keep_last': 1})['removed'] == [points[0]]
