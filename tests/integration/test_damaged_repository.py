# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Bad repository state fails clearly and narrowly: a damaged manifest makes that one restore point unusable
(backups, listings, restores of other points and prunes go on, and say so); a torn lock is taken over once
stale, never spun on; a .env that is not UTF-8, manifests of the wrong shape and a blob that cannot be decrypted
are each one line naming the file and the problem."""

from __future__ import annotations

import json
import os
import sys
import time

import pyrage
import pytest

import _s3
from conftest import artifacts_of, recap, run_module, run_playbook, write_inventory


def _hosts(source, target):
    return {'blog': {'cairn_env_file': str(source / '.env')},
            'clone': {'cairn_env_file': str(target / '.env'), 'cairn_restore_from': 'blog'}}


def _points(repo):
    return sorted(os.listdir(os.path.join(repo['path'], 'blog', 'points')))


def _manifest_path(repo, point):
    return os.path.join(repo['path'], 'blog', 'points', point, 'manifest.json')


def _one_line(output, needle):
    lines = [line for line in output.splitlines() if needle in line]
    assert lines, output
    assert 'Traceback' not in output and 'Unknown error' not in output, output
    return lines[0]


def test_a_damaged_newest_manifest_spoils_only_that_point(tmp_path, source, target, repo):
    inventory = write_inventory(str(tmp_path / 'inventory.json'), _hosts(source, target), repo['path'])
    for _number in range(2):
        run = run_playbook('backup.yml', inventory, limit='blog')
        assert run.returncode == 0, run.stdout + run.stderr
    older, newest = _points(repo)
    with open(_manifest_path(repo, newest), 'r+b') as handle:  # torn by a crash of the disk, say
        data = handle.read()
        handle.seek(0)
        handle.truncate()
        handle.write(data[:len(data) // 2])

    info = run_module('cairn_backup_info', repository=repo, instance='blog')
    assert not info.failed, info
    assert [point['id'] for point in info['restore_points']] == [older]
    [bad] = info['unreadable_points']
    assert bad['id'] == newest and 'is damaged: it is not UTF-8 JSON' in bad['problem'] and newest in bad['problem']
    assert any('1 restore point(s) cannot be read' in problem for problem in info['problems']), info['problems']
    by_id = run_module('cairn_backup_info', repository=repo, instance='blog', restore_point=older)
    assert by_id['restore_point']['id'] == older

    # The next backup treats it as unusable, says so, and is complete on its own.
    again = run_playbook('backup.yml', inventory, limit='blog')
    assert again.returncode == 0, again.stdout + again.stderr
    assert 'restore point %s cannot be used as the base of this backup' % newest in again.stderr, again.stderr
    third = [point for point in _points(repo) if point not in (older, newest)]
    assert len(third) == 1

    # A restore of latest gets the new point; asked for the damaged one by id, one clear line.
    restore = run_playbook('restore.yml', inventory, limit='clone')
    assert restore.returncode == 0, restore.stdout + restore.stderr
    assert 'Restored %s of blog' % third[0] in restore.stdout
    refused = run_playbook('restore.yml', inventory, limit='clone', extra=['-e', 'cairn_restore_point=%s' % newest])
    assert refused.returncode != 0
    assert 'the manifest %s is damaged' % _manifest_path(repo, newest) in _one_line(refused.stdout, 'is damaged')

    # A prune keeps what it cannot judge, and then removes no file bytes at all.
    pruned = run_module('cairn_repository_prune', repository=repo, instance='blog', retention={'keep_last': 1})
    assert not pruned.failed, pruned
    assert pruned['removed'] == [older] and [bad['id'] for bad in pruned['unreadable']] == [newest], pruned
    assert pruned['blobs_removed'] == 0 and pruned['garbage_collection'].startswith('skipped'), pruned
    assert 'restore point %s was kept: it cannot be judged' % newest in json.dumps(pruned['warnings'])
    assert sorted(_points(repo)) == sorted([newest] + third)


@pytest.mark.parametrize('shape, problem', [
    ([1, 2, 3], 'it is a JSON list, not an object'),
    ({'format': 'cairncms.ops/restore-point', 'format_version': 1}, 'its id is None, but it is stored as'),
    ('keys', 'it has no database part'),
    ('artifact', "artifact path '../../../etc/passwd' is not a relative path"),
])
def test_manifests_of_the_wrong_shape_are_named_not_tracebacks(tmp_path, source, target, repo, shape, problem):
    inventory = write_inventory(str(tmp_path / 'inventory.json'), _hosts(source, target), repo['path'])
    assert run_playbook('backup.yml', inventory, limit='blog').returncode == 0
    [point] = _points(repo)
    manifest = json.load(open(_manifest_path(repo, point)))
    if shape == 'keys':
        manifest['parts'] = [entry for entry in manifest['parts'] if entry['kind'] != 'database']
        shape = manifest
    elif shape == 'artifact':
        artifacts_of(manifest)[0]['path'] = '../../../etc/passwd'
        shape = manifest
    with open(_manifest_path(repo, point), 'w', encoding='utf-8') as handle:
        json.dump(shape, handle)
    info = run_module('cairn_backup_info', repository=repo, instance='blog')
    assert not info.failed and info['restore_points'] == [], info
    assert problem in info['unreadable_points'][0]['problem'], info
    restore = run_playbook('restore.yml', inventory, limit='clone')
    assert restore.returncode != 0
    line = _one_line(restore.stdout, 'can be used')
    assert 'no restore point of blog in local:%s can be used' % repo['path'] in line and problem in line, line
    assert recap(restore.stdout, 'clone')['changed'] == 0


@pytest.mark.parametrize('content', [b'{"run": "20261128T0', b'\x00' * 64, b''])
def test_a_torn_lock_is_taken_over_once_stale_never_spun_on(tmp_path, source, target, repo, content):
    inventory = write_inventory(str(tmp_path / 'inventory.json'), _hosts(source, target), repo['path'])
    assert run_playbook('backup.yml', inventory, limit='blog').returncode == 0
    lock = os.path.join(repo['path'], 'blog', 'lock.json')
    with open(lock, 'wb') as handle:
        handle.write(content)
    started = time.monotonic()
    busy = run_playbook('backup.yml', inventory, limit='blog', extra=['-e', 'cairn_lock_stale_after=30'])
    assert busy.returncode != 0 and time.monotonic() - started < 60
    assert 'instance blog is locked in local:%s by an unreadable record (not a JSON record)' % repo['path'] \
        in busy.stdout, busy.stdout
    os.utime(lock, (time.time() - 120, time.time() - 120))
    taken = run_playbook('backup.yml', inventory, limit='blog', extra=['-e', 'cairn_lock_stale_after=30'])
    assert taken.returncode == 0, taken.stdout + taken.stderr
    assert not os.path.exists(lock) and len(_points(repo)) == 2


def test_a_env_that_is_not_utf8_is_one_clear_line(tmp_path, source, target, repo):
    env = source / '.env'
    env.write_bytes(env.read_bytes() + b'PROJECT_NAME=Caf\xe9\n')  # Latin-1, as an old editor saves it
    inventory = write_inventory(str(tmp_path / 'inventory.json'), _hosts(source, target), repo['path'])
    run = run_playbook('backup.yml', inventory, limit='blog')
    assert run.returncode != 0
    line = _one_line(run.stdout, 'is not UTF-8 text')
    assert '%s is not UTF-8 text: byte 0xe9 at offset' % env in line and 'save the file as UTF-8' in line, line


def test_a_blob_that_cannot_be_decrypted_is_named(tmp_path, source, target, repo):
    identity = pyrage.x25519.Identity.generate()
    key_file = tmp_path / 'key.txt'
    key_file.write_text('%s\n' % identity)
    inventory = str(tmp_path / 'inventory.json')
    with open(inventory, 'w', encoding='utf-8') as handle:
        json.dump({'all': {'vars': {
            'ansible_connection': 'local', 'ansible_python_interpreter': sys.executable, 'cairn_repository': repo,
            'cairn_encryption_recipients': [str(identity.to_public())], 'cairn_encryption_identity_file': str(key_file)},
            'hosts': _hosts(source, target)}}, handle)
    assert run_playbook('backup.yml', inventory, limit='blog').returncode == 0
    blobs = os.path.join(repo['path'], 'blog', 'blobs-age')
    prefix = sorted(os.listdir(blobs))[0]
    name = sorted(os.listdir(os.path.join(blobs, prefix)))[0]
    path = os.path.join(blobs, prefix, name)
    data = bytearray(open(path, 'rb').read())
    data[len(data) // 2] ^= 0xff
    open(path, 'wb').write(bytes(data))
    run = run_playbook('restore.yml', inventory, limit='clone')
    assert run.returncode != 0
    line = _one_line(run.stdout, 'cannot decrypt blob')
    assert 'cannot decrypt blob %s (%s)' % (name, path) in line, line
    assert not os.path.exists(target / 'data.db') and os.listdir(target / 'uploads') == []


def test_a_torn_lock_in_a_bucket_is_taken_over_once_stale(s3_server, s3_bucket):
    repo = {'type': 's3', 'bucket': s3_bucket, 'prefix': 'cairn', 'endpoint': s3_server.endpoint,
            'region': _s3.REGION, 'force_path_style': True}
    credentials = {'key': _s3.ACCESS_KEY, 'secret': _s3.SECRET_KEY}
    s3_server.client().put_object(Bucket=s3_bucket, Key='cairn/blog/lock.json', Body=b'{"run": "2026\x00\x00')
    busy = run_module('cairn_restore_point', repository=repo, repository_credentials=credentials, instance='blog',
                      lock_stale_after=5)
    assert busy.failed and 'is locked in s3://%s/cairn by an unreadable record' % s3_bucket in busy['msg'], busy
    time.sleep(6.5)
    taken = run_module('cairn_restore_point', repository=repo, repository_credentials=credentials, instance='blog',
                       lock_stale_after=5)
    assert not taken.failed and taken['restore_point'], taken
    holder = json.loads(s3_server.client().get_object(Bucket=s3_bucket, Key='cairn/blog/lock.json')['Body'].read())
    assert holder['run'] == taken['restore_point']
