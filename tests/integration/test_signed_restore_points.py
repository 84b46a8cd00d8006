# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Signed restore points: the backup role signs the manifest with cairn_signing_key; a restore with
cairn_trusted_signers accepts only restore points one of those keys signed, and refuses an unsigned, forged or
foreign one before it touches anything; offsite copies carry the signature."""

from __future__ import annotations

import json
import os

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from conftest import part_of, recap, run_module, run_playbook, write_inventory
from trees import entries


def _key(directory, name):
    """An ed25519 key pair as ssh-keygen writes it: the private key file, and the public key line."""
    key = ed25519.Ed25519PrivateKey.generate()
    path = directory / name
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                                       serialization.NoEncryption()))
    path.chmod(0o600)
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    return str(path), public.decode('ascii') + ' backup@cms1'


def test_only_restore_points_signed_by_a_trusted_key_are_restored(tmp_path, source, target, repo):
    private, public = _key(tmp_path, 'signing')
    _other_private, other_public = _key(tmp_path, 'other')
    hosts = {'blog': {'cairn_env_file': str(source / '.env'), 'cairn_signing_key': private},
             'clone': {'cairn_env_file': str(target / '.env'), 'cairn_restore_from': 'blog',
                       'cairn_trusted_signers': [public], 'cairn_restore_replace': True}}
    inventory = write_inventory(str(tmp_path / 'inventory.json'), hosts, repo['path'])
    backup = run_playbook('backup.yml', inventory, limit='blog')
    assert backup.returncode == 0, backup.stdout + backup.stderr
    [point] = os.listdir(os.path.join(repo['path'], 'blog', 'points'))
    point_dir = os.path.join(repo['path'], 'blog', 'points', point)
    signature = json.load(open(os.path.join(point_dir, 'manifest.sig')))
    assert signature['algorithm'] == 'ed25519' and signature['public_key'] == ' '.join(public.split()[:2])

    restored = run_playbook('restore.yml', inventory, limit='clone')
    assert restored.returncode == 0, restored.stdout + restored.stderr
    assert '5 of 5 checks passed' in restored.stdout
    before = entries(str(target))

    # Forged: one row count changed in the manifest (its checksums all still hold). Refused, nothing touched.
    manifest_path = os.path.join(point_dir, 'manifest.json')
    genuine = open(manifest_path, 'rb').read()
    manifest = json.loads(genuine)
    part_of(manifest, 'database')['row_counts']['articles'] += 1
    with open(manifest_path, 'w', encoding='utf-8') as handle:
        json.dump(manifest, handle, indent=2, sort_keys=True)
    forged = run_playbook('restore.yml', inventory, limit='clone')
    assert forged.returncode != 0
    assert 'the signature of restore point %s does not match its manifest' % point in forged.stdout, forged.stdout
    assert recap(forged.stdout, 'clone')['changed'] == 0
    assert entries(str(target)) == before
    with open(manifest_path, 'wb') as handle:
        handle.write(genuine)

    # Signed by a key nobody trusts here.
    trusted_other = run_playbook('restore.yml', inventory, limit='clone',
                                 extra=['-e', json.dumps({'cairn_trusted_signers': [other_public]})])
    assert trusted_other.returncode != 0
    assert 'is signed by %s' % ' '.join(public.split()[:2])[:40] in trusted_other.stdout
    assert 'which is not in cairn_trusted_signers' in trusted_other.stdout

    # Unsigned: a restore point made without the key (by the modules, as a host without cairn_signing_key would).
    plain = run_module('cairn_restore_point', repository=repo, instance='blog')
    newest = plain['restore_point']
    run_module('cairn_db_dump', env_file=str(source / '.env'), repository=repo, instance='blog', restore_point=newest)
    run_module('cairn_storage_sync', env_file=str(source / '.env'), repository=repo, instance='blog',
               restore_point=newest, direction='backup')
    final = run_module('cairn_restore_point', env_file=str(source / '.env'), repository=repo, instance='blog',
                       restore_point=newest, state='complete')
    assert not final.failed and 'signed_by' not in final, final
    refused = run_playbook('restore.yml', inventory, limit='clone', extra=['-e', 'cairn_restore_point=%s' % newest])
    assert refused.returncode != 0
    assert 'restore point %s is not signed' % newest in refused.stdout, refused.stdout
    assert entries(str(target)) == before
    # latest: the unsigned newest point is passed over for the newest signed one, with a warning.
    latest = run_playbook('restore.yml', inventory, limit='clone')
    assert latest.returncode == 0, latest.stdout + latest.stderr
    assert 'restore point %s was passed over for latest' % newest in latest.stderr
    assert 'Restored %s of blog' % point in latest.stdout

    # An offsite copy keeps the signature, and restores from there are checked the same way.
    offsite = {'type': 'local', 'path': str(tmp_path / 'offsite')}
    copied = run_module('cairn_repository_copy', repository=repo, target=offsite, instance='blog')
    assert not copied.failed and point in copied['copied'], copied
    assert os.path.exists(os.path.join(offsite['path'], 'blog', 'points', point, 'manifest.sig'))
    checked = run_module('cairn_backup_info', repository=offsite, instance='blog', restore_point=point,
                         trusted_signers=[public])
    assert not checked.failed and checked['restore_point']['id'] == point, checked
    listed = run_module('cairn_backup_info', repository=offsite, instance='blog', trusted_signers=[public])
    assert [bad['id'] for bad in listed['unreadable_points']] == [newest], listed
    bad_key = run_module('cairn_backup_info', repository=repo, instance='blog', trusted_signers=['ssh-rsa AAAA'])
    assert bad_key.failed and 'is not an ed25519 public key' in bad_key['msg'], bad_key


def test_a_signing_key_that_is_not_ed25519_is_refused_clearly(tmp_path, source, repo):
    bad = tmp_path / 'not-a-key'
    bad.write_text('-----BEGIN OPENSSH PRIVATE KEY-----\nnonsense\n-----END OPENSSH PRIVATE KEY-----\n')
    point = run_module('cairn_restore_point', repository=repo, instance='blog')['restore_point']
    run_module('cairn_db_dump', env_file=str(source / '.env'), repository=repo, instance='blog', restore_point=point)
    run_module('cairn_storage_sync', env_file=str(source / '.env'), repository=repo, instance='blog',
               restore_point=point, direction='backup')
    refused = run_module('cairn_restore_point', env_file=str(source / '.env'), repository=repo, instance='blog',
                         restore_point=point, state='complete', signing_key=str(bad))
    assert refused.failed and 'the signing key %s cannot be read' % bad in refused['msg'], refused
    assert os.listdir(os.path.join(repo['path'], 'blog', 'points')) == []
