# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The secrets bundle is untrusted input: a restore writes captured files back only inside the instance
directory and the paths the operator lists, never through a symlink, never setuid or setgid, owned like what it
replaces; a forged bundle (anyone can encrypt to the public key in the manifest) aimed elsewhere writes nothing.
A restored .env keeps the owner and group of the file it replaces."""

from __future__ import annotations

import hashlib
import io
import json
import os
import stat
import sys
import tarfile

import pyrage
import pytest

from conftest import artifacts_of, recap, run_playbook

OWNER = (4242, 4343)


@pytest.fixture
def captured(tmp_path, source):
    """An encrypted backup of blog that captured a *_FILE secret inside its directory and a setuid key file
    outside it."""
    if os.geteuid() != 0:
        pytest.skip('ownership is kept only when the restore runs as root')
    identity = pyrage.x25519.Identity.generate()
    key_file = tmp_path / 'backup-key.txt'
    key_file.write_text('%s\n' % identity)
    (source / 'secrets').mkdir()
    (source / 'secrets' / 'smtp-password').write_text('smtp-secret-42')
    with open(source / '.env', 'a', encoding='utf-8') as handle:
        handle.write('EMAIL_SMTP_PASSWORD_FILE=./secrets/smtp-password\n')
    tls = tmp_path / 'etc-ssl'
    tls.mkdir()
    (tls / 'cms.key').write_text('-----BEGIN PRIVATE KEY-----\nnot really\n')
    os.chmod(tls / 'cms.key', 0o4750)  # a setuid bit nobody should get back from a restore point
    variables = {'ansible_connection': 'local', 'ansible_python_interpreter': sys.executable,
                 'cairn_repository': {'type': 'local', 'path': str(tmp_path / 'repository')},
                 'cairn_encryption_recipients': [str(identity.to_public())],
                 'cairn_encryption_identity_file': str(key_file), 'cairn_env_file': str(source / '.env'),
                 'cairn_secret_files': [str(tls / 'cms.key')]}
    inventory = tmp_path / 'inventory.json'
    inventory.write_text(json.dumps({'all': {'vars': variables, 'hosts': {'blog': {}}}}))
    backup = run_playbook('backup.yml', str(inventory))
    assert backup.returncode == 0, backup.stdout + backup.stderr
    return {'inventory': str(inventory), 'identity': identity, 'tls': tls, 'variables': variables,
            'repository': tmp_path / 'repository'}


def _restore(captured, **extra):
    return run_playbook('restore.yml', captured['inventory'], extra=[
        '-e', json.dumps(dict({'cairn_restore_secret_files': True, 'cairn_restore_replace': True}, **extra))])


def test_files_go_back_only_where_allowed_without_setuid_and_owned_like_before(captured, source):
    tls = captured['tls']
    os.unlink(tls / 'cms.key')
    (source / 'secrets' / 'smtp-password').write_text('changed since')  # the .env needs it to be read at all
    os.chown(source / 'secrets' / 'smtp-password', *OWNER)
    # The .env changed since the backup, and belongs to the CMS's user.
    with open(source / '.env', 'a', encoding='utf-8') as handle:
        handle.write('LOG_LEVEL=debug\n')
    os.chown(source / '.env', *OWNER)
    os.chown(source / 'secrets', *OWNER)
    refused = _restore(captured)
    assert refused.returncode != 0
    assert 'holds secret file(s) for %s, outside the instance directory %s' % (tls / 'cms.key', source) \
        in refused.stdout, refused.stdout
    assert 'nothing was written' in refused.stdout
    assert not (tls / 'cms.key').exists() and (source / 'secrets' / 'smtp-password').read_text() == 'changed since'

    allowed = _restore(captured, cairn_restore_secret_paths=[str(tls)])
    assert allowed.returncode == 0, allowed.stdout + allowed.stderr
    key = os.stat(tls / 'cms.key')
    assert stat.S_IMODE(key.st_mode) == 0o750, oct(key.st_mode)  # no setuid
    assert (source / 'secrets' / 'smtp-password').read_text() == 'smtp-secret-42'
    smtp = os.stat(source / 'secrets' / 'smtp-password')
    assert (smtp.st_uid, smtp.st_gid) == OWNER  # like the file it replaced
    key_owner = os.stat(tls)
    assert (key.st_uid, key.st_gid) == (key_owner.st_uid, key_owner.st_gid)  # new: like its directory
    env = os.stat(source / '.env')
    assert (env.st_uid, env.st_gid) == OWNER and stat.S_IMODE(env.st_mode) == 0o600
    assert 'LOG_LEVEL=debug' not in (source / '.env').read_text()
    again = _restore(captured, cairn_restore_secret_paths=[str(tls)])
    assert again.returncode == 0 and recap(again.stdout, 'blog')['changed'] == 0, again.stdout


def test_a_symlink_on_the_way_is_never_followed(captured, source, tmp_path):
    elsewhere = tmp_path / 'elsewhere'
    elsewhere.mkdir()
    os.rename(source / 'secrets', elsewhere / 'secrets')
    os.symlink(elsewhere / 'secrets', source / 'secrets')  # planted by whoever can write the instance directory
    (elsewhere / 'secrets' / 'smtp-password').write_text('changed since')
    before = sorted(os.listdir(elsewhere / 'secrets'))
    refused = _restore(captured, cairn_restore_secret_paths=[str(captured['tls'])])
    assert refused.returncode != 0
    assert 'cannot restore %s' % (source / 'secrets' / 'smtp-password') in refused.stdout, refused.stdout
    assert 'is a symlink' in refused.stdout
    assert sorted(os.listdir(elsewhere / 'secrets')) == before
    assert (elsewhere / 'secrets' / 'smtp-password').read_text() == 'changed since'


def test_a_forged_bundle_aimed_outside_writes_nothing(captured, source, tmp_path):
    target = tmp_path / 'cron.d' / 'evil'
    [point] = os.listdir(captured['repository'] / 'blog' / 'points')
    point_dir = captured['repository'] / 'blog' / 'points' / point
    manifest = json.loads((point_dir / 'manifest.json').read_text())
    plain = pyrage.decrypt((point_dir / 'secrets.tar').read_bytes(), [captured['identity']])
    members = {}
    with tarfile.open(fileobj=io.BytesIO(plain)) as archive:
        for member in archive.getmembers():
            members[member.name] = (archive.extractfile(member).read(), member.mode)
    index = json.loads(members['index.json'][0])
    index['files'][0]['path'] = str(target)  # the attacker's choice of file to write as root
    members['index.json'] = (json.dumps(index).encode(), 0o600)
    members[index['files'][0]['member']] = (b'* * * * * root touch /tmp/pwned\n', 0o644)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode='w', format=tarfile.PAX_FORMAT) as archive:
        for name, (data, mode) in members.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), mode
            archive.addfile(info, io.BytesIO(data))
    forged = buffer.getvalue()
    # Anyone can encrypt to the recipients the manifest lists.
    recipient = pyrage.x25519.Recipient.from_str(manifest['encryption']['recipients'][0])
    (point_dir / 'secrets.tar').write_bytes(pyrage.encrypt(forged, [recipient]))
    for artifact in artifacts_of(manifest):
        if artifact['path'] == 'secrets.tar':
            artifact['sha256'], artifact['size_bytes'] = hashlib.sha256(forged).hexdigest(), len(forged)
    (point_dir / 'manifest.json').write_text(json.dumps(manifest))
    run = _restore(captured, cairn_restore_secret_paths=[str(captured['tls'])])
    assert run.returncode != 0
    assert 'holds secret file(s) for %s, outside the instance directory' % target in run.stdout, run.stdout
    assert not target.exists() and not target.parent.exists()
