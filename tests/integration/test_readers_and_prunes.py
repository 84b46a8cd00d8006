# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Restores and prunes exclude each other: a restore holds a reader claim on the restore point it reads, a
prune running meanwhile keeps that point (and the file bytes only it references) and says why; a claim left by
a killed restore goes stale and stops holding anything; the next restore after the kill works."""

from __future__ import annotations

import hashlib
import json
import os
import time

import pytest

from conftest import Gate, run_module, run_playbook, write_inventory

RETENTION = {'keep_last': 1}


def _digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def history(tmp_path, source, target, repo):
    """Three restore points of blog; a file whose bytes change after the first, so that the first restore point
    alone references a blob."""
    inventory = write_inventory(str(tmp_path / 'inventory.json'), {
        'blog': {'cairn_env_file': str(source / '.env')},
        'target': {'cairn_env_file': str(target / '.env'), 'cairn_restore_from': 'blog'}},
        repo['path'])
    uploads = source / 'uploads'
    changing = sorted(path for path in uploads.iterdir() if '__' not in path.name)[0]
    first_bytes = changing.read_bytes()
    points = []
    for number in range(3):
        if number == 1:
            changing.write_bytes(bytes(reversed(first_bytes)))  # same size: the rows stay true
        run = run_playbook('backup.yml', inventory, limit='blog')
        assert run.returncode == 0, run.stdout + run.stderr
        points.append(run_module('cairn_backup_info', repository=repo, instance='blog',
                                 restore_point='latest')['restore_point']['id'])
    return {'inventory': inventory, 'points': points, 'changing': changing.name, 'first_bytes': first_bytes}


def _prune(repo, **extra):
    return run_module('cairn_repository_prune', repository=repo, instance='blog', retention=RETENTION, **extra)


def _claims(repo):
    """The reader claims of blog (not the temporary file a claim is written through)."""
    readers = os.path.join(repo['path'], 'blog', 'readers')
    return [name for name in os.listdir(readers) if name.endswith('.json') and not name.startswith('.')] \
        if os.path.isdir(readers) else []


def _held_inside_the_restore(tmp_path, repo, history, point):
    """The restore playbook of ``point`` into target, stopped inside its restore module once that claimed the
    point (the module claims it itself, before it reads anything: one module run for claim, restore, release)."""
    gate = Gate('restore.yml', history['inventory'], 'Restore the database and the file bytes', tmp_path / 'gate',
                limit='target', extra=['-e', 'cairn_restore_point=%s' % point])
    gate.wait()
    assert _claims(repo) == []  # no task of its own claims it first
    gate.release()
    gate.hold_when(lambda: len(_claims(repo)) == 1)
    return gate


def test_a_prune_during_a_restore_keeps_the_point_being_read(tmp_path, repo, history):
    oldest, middle, newest = history['points']
    gate = _held_inside_the_restore(tmp_path, repo, history, oldest)
    try:
        pruned = _prune(repo)
        assert not pruned.failed, pruned
        assert pruned['held'] == [oldest] and pruned['removed'] == [middle], pruned
        assert oldest in pruned['kept'] and newest in pruned['kept']
        assert 'restore point %s is being read by run restore into target' % oldest in json.dumps(
            pruned.get('warnings')), pruned
        refused = run_module('cairn_restore_point', repository=repo, instance='blog', restore_point=oldest,
                             state='absent')
        assert refused.failed and 'is being read by run restore into target' in refused['msg'], refused
        assert 'nothing was deleted' in refused['msg']
    except BaseException:
        gate.kill()  # not left stopped behind a failed test
        raise
    gate.resume()
    restore = gate.finish()
    assert restore.returncode == 0, restore.stdout
    assert 'of 5 checks passed' in restore.stdout and '5 of 5 checks passed' in restore.stdout, restore.stdout
    target_file = tmp_path / 'target' / 'uploads' / history['changing']
    assert target_file.read_bytes() == history['first_bytes']  # the blob only the oldest point had
    assert os.listdir(os.path.join(repo['path'], 'blog', 'readers')) == []
    # A restore that fails releases its claim too: the newest point over the oldest's bytes, without replace.
    refused = run_playbook('restore.yml', history['inventory'], limit='target')
    assert refused.returncode != 0 and 'cairn_restore_replace' in refused.stdout, refused.stdout[-3000:]
    assert os.listdir(os.path.join(repo['path'], 'blog', 'readers')) == []
    # Released: the next prune removes it, and the bytes only it referenced.
    again = _prune(repo)
    assert again['removed'] == [oldest] and again['held'] == [] and again['blobs_removed'] == 1, again
    info = run_module('cairn_backup_info', repository=repo, instance='blog')
    assert [point['id'] for point in info['restore_points']] == [newest]


def test_a_killed_restore_leaves_a_claim_that_goes_stale_and_the_next_restore_works(tmp_path, repo, history):
    oldest, middle, newest = history['points']
    gate = _held_inside_the_restore(tmp_path, repo, history, oldest)
    gate.kill()
    readers = os.path.join(repo['path'], 'blog', 'readers')
    assert len(_claims(repo)) == 1  # the killed run could not release it (nor finish a refresh it was writing)
    fresh = _prune(repo, lock_stale_after=600)
    assert fresh['held'] == [oldest], fresh
    time.sleep(2.2)
    stale = _prune(repo, lock_stale_after=2)
    assert stale['held'] == [] and stale['removed'] == [oldest], stale
    assert os.listdir(readers) == []  # the stale claim was cleared, with any record it was writing when killed
    # The next restore of the target: the newest point, over what the killed run left.
    restore = run_playbook('restore.yml', history['inventory'], limit='target',
                           extra=['-e', 'cairn_restore_replace=true'])
    assert restore.returncode == 0, restore.stdout + restore.stderr
    assert '5 of 5 checks passed' in restore.stdout, restore.stdout
    assert middle not in json.dumps(run_module('cairn_backup_info', repository=repo, instance='blog')['restore_points'])


def test_a_claim_waits_for_a_prune_that_is_removing_its_point(repo, history):
    oldest = history['points'][0]
    intent = os.path.join(repo['path'], 'blog', 'pruning.json')
    with open(intent, 'w', encoding='utf-8') as handle:  # a prune at work, as it records itself
        json.dump({'run': 'prune-test', 'host': 'elsewhere', 'pid': 1, 'since': '2026-11-28T00:00:00.000000Z',
                   'beat': time.time(), 'points': [oldest]}, handle)
    refused = run_module('cairn_repository_claim', repository=repo, instance='blog', restore_point=oldest,
                         lock_wait=1)
    assert refused.failed and 'are being removed by a prune (run prune-test on elsewhere' in refused['msg'], refused
    assert os.listdir(os.path.join(repo['path'], 'blog', 'readers')) == []
    other = run_module('cairn_repository_claim', repository=repo, instance='blog')  # the newest is not affected
    assert not other.failed and other['claim'], other
    os.utime(intent, (0, 0))
    with open(intent, 'r+', encoding='utf-8') as handle:  # the prune died long ago: its record is stale
        record = json.load(handle)
        record['beat'] = time.time() - 7200
        handle.seek(0)
        handle.truncate()
        json.dump(record, handle)
    claimed = run_module('cairn_repository_claim', repository=repo, instance='blog', restore_point=oldest,
                         lock_stale_after=3600)
    assert not claimed.failed and claimed['restore_point']['id'] == oldest, claimed
    released = run_module('cairn_repository_claim', repository=repo, instance='blog', state='absent',
                          claim=claimed['claim'])
    assert not released.failed
    assert os.listdir(os.path.join(repo['path'], 'blog', 'readers')) == ['%s.json' % other['claim']]
