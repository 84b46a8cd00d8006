# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Repository lifecycle for real: retention, deletion, integrity checks, offsite copies, locks, alerts."""

from __future__ import annotations

import datetime
import http.server
import json
import os
import resource
import shutil
import subprocess
import threading
import time

import pytest

from conftest import module_command, module_env, part_of, run_module, run_playbook, write_inventory
from test_modules import backup, digests, originals, restore

UTC = datetime.timezone.utc


def clone_points(repo, instance, template, stamps):
    """Restore points that differ only in time: copies of ``template`` with other ids and start times."""
    points = os.path.join(repo['path'], instance, 'points')
    ids = []
    for stamp in stamps:
        point = '%s.000Z-%06x' % (stamp.strftime('%Y%m%dT%H%M%S'), len(ids))
        shutil.copytree(os.path.join(points, template), os.path.join(points, point))
        path = os.path.join(points, point, 'manifest.json')
        manifest = json.load(open(path))
        manifest.update(id=point, started_at=stamp.strftime('%Y-%m-%dT%H:%M:%S.000000Z'))
        json.dump(manifest, open(path, 'w'))
        ids.append(point)
    return ids


def expected_survivors(stamps_by_id, now, daily, weekly, monthly):
    """Independent statement of the policy: newest point of each of the N newest days, ISO weeks, months."""
    newest_first = sorted(stamps_by_id.items(), key=lambda item: item[1], reverse=True)
    keep = {newest_first[0][0]}
    for count, bucket in ((daily, lambda t: t.date()), (weekly, lambda t: t.isocalendar()[:2]),
                          (monthly, lambda t: (t.year, t.month))):
        seen = []
        for point, stamp in newest_first:
            if bucket(stamp) not in seen and len(seen) < count:
                seen.append(bucket(stamp))
                keep.add(point)
    return keep


def test_retention_over_a_simulated_year(source, target, repo):
    manifest = backup(source / '.env', repo)[0]
    start = datetime.datetime(2025, 11, 1, 2, 0, tzinfo=UTC)
    stamps = [start + datetime.timedelta(days=day, hours=6 * (day % 3 == 0)) for day in range(380)]
    ids = clone_points(repo, 'blog', manifest['id'], stamps)
    shutil.rmtree(os.path.join(repo['path'], 'blog', 'points', manifest['id']))
    policy = {'keep_daily': 7, 'keep_weekly': 4, 'keep_monthly': 12}
    plan = run_module('cairn_repository_prune', repository=repo, instance='blog', retention=policy, check_mode=True)
    expected = expected_survivors(dict(zip(ids, stamps)), None, 7, 4, 12)
    assert set(plan['kept']) == expected, sorted(set(plan['kept']) ^ expected)
    assert len(os.listdir(os.path.join(repo['path'], 'blog', 'points'))) == 380  # check mode removed nothing
    reasons = {d['id']: d['reasons'] for d in plan['decisions']}
    assert any(r.startswith('daily') for r in reasons[ids[-1]]) and 'newest' in ' '.join(reasons[ids[-1]])
    pruned = run_module('cairn_repository_prune', repository=repo, instance='blog', retention=policy)
    assert pruned['changed'] and sorted(os.listdir(os.path.join(repo['path'], 'blog', 'points'))) == sorted(expected)
    assert pruned['blobs_removed'] == 0  # every survivor still lists the same files
    again = run_module('cairn_repository_prune', repository=repo, instance='blog', retention=policy)
    assert not again['changed'], again
    restore(target / '.env', repo)
    assert digests(target / 'uploads') == originals(source / 'uploads')


def test_prune_frees_only_unreferenced_blobs_and_the_rest_restores(source, target, repo):
    blobs = os.path.join(repo['path'], 'blog', 'blobs')
    names = sorted(n for n in os.listdir(source / 'uploads') if '__' not in n)
    for number in range(3):
        (source / 'uploads' / names[0]).write_bytes(b'version %d' % number)
        backup(source / '.env', repo)
    count = sum(len(files) for _dir, _subdirs, files in os.walk(blobs))
    pruned = run_module('cairn_repository_prune', repository=repo, instance='blog', retention={'keep_last': 1})
    assert len(pruned['removed']) == 2 and pruned['blobs_removed'] == 2 and pruned['bytes_freed'] == 18, pruned
    assert sum(len(files) for _dir, _subdirs, files in os.walk(blobs)) == count - 2
    restore(target / '.env', repo)
    assert (target / 'uploads' / names[0]).read_bytes() == b'version 2'
    check = run_module('cairn_repository_check', repository=repo, instance='blog')
    assert not check.failed and check['unreferenced_blobs'] == 0, check


def test_prune_refuses_after_a_failed_backup(source, repo):
    backup(source / '.env', repo)
    backup(source / '.env', repo)
    point = run_module('cairn_restore_point', repository=repo, instance='blog')['restore_point']
    run_module('cairn_restore_point', repository=repo, instance='blog', restore_point=point, state='failed',
               error={'msg': 'disk on fire'})
    refused = run_module('cairn_repository_prune', repository=repo, instance='blog', retention={'keep_last': 1})
    assert refused.failed and 'latest backup of blog failed' in refused['msg'], refused
    assert len(os.listdir(os.path.join(repo['path'], 'blog', 'points'))) == 2
    forced = run_module('cairn_repository_prune', repository=repo, instance='blog', retention={'keep_last': 1},
                        force=True)
    assert forced['changed'] and len(forced['removed']) == 1


def test_failed_backup_in_the_role_prunes_nothing(source, target, repo, tmp_path):
    inventory = write_inventory(str(tmp_path / 'inventory.json'), {
        'blog': {'cairn_env_file': str(source / '.env'), 'cairn_retention': {'keep_last': 1}}}, repo['path'])
    assert run_playbook('backup.yml', inventory).returncode == 0
    assert run_playbook('backup.yml', inventory).returncode == 0
    assert len(os.listdir(os.path.join(repo['path'], 'blog', 'points'))) == 1  # the role pruned
    shutil.copytree(os.path.join(repo['path'], 'blog', 'points'), str(tmp_path / 'before'))
    os.unlink(source / 'data.db')
    failed = run_playbook('backup.yml', inventory, extra=['-e', '{"cairn_retention": {"keep_last": 1, '
                                                          '"keep_within": "1h"}}'])
    assert failed.returncode != 0 and "failed in 'Dump the database'" in failed.stdout
    assert os.listdir(os.path.join(repo['path'], 'blog', 'points')) == os.listdir(tmp_path / 'before')


def test_delete_refuses_the_last_restore_point(source, repo):
    first = backup(source / '.env', repo)[0]['id']
    refused = run_module('cairn_restore_point', repository=repo, instance='blog', restore_point=first,
                         state='absent')
    assert refused.failed and 'is the last one' in refused['msg']
    second = backup(source / '.env', repo)[0]['id']
    gone = run_module('cairn_restore_point', repository=repo, instance='blog', restore_point=first, state='absent')
    assert gone['changed'] and gone['deleted'] == first
    again = run_module('cairn_restore_point', repository=repo, instance='blog', restore_point=first, state='absent')
    assert not again['changed']
    forced = run_module('cairn_restore_point', repository=repo, instance='blog', restore_point=second,
                        state='absent', force=True)
    assert forced['changed'] and forced['blobs_removed'] == 6
    assert run_module('cairn_backup_info', repository=repo, instance='blog')['restore_points'] == []


def test_integrity_check_finds_flipped_bytes_missing_and_unreferenced_data(source, repo):
    first = backup(source / '.env', repo)[0]
    second = backup(source / '.env', repo)[0]
    clean = run_module('cairn_repository_check', repository=repo, instance='blog')
    assert not clean.failed and clean['problems'] == [] and clean['checked_items'] == 2 * (2 + 6), clean
    info = run_module('cairn_backup_info', repository=repo, instance='blog')
    assert all(p['verified_ok'] is True and p['verified_at'] for p in info['restore_points'])
    blobs = os.path.join(repo['path'], 'blog', 'blobs')
    victim = sorted(os.path.join(d, f) for d, _subdirs, files in os.walk(blobs) for f in files)[0]
    data = bytearray(open(victim, 'rb').read())
    data[-1] ^= 0x20
    open(victim, 'wb').write(bytes(data))
    os.unlink(os.path.join(repo['path'], 'blog', 'points', first['id'], part_of(first, 'database')['artifacts'][0]['path']))
    open(os.path.join(repo['path'], 'blog', 'points', second['id'], 'stray.bin'), 'wb').write(b'?')
    os.makedirs(os.path.join(blobs, 'ab'), exist_ok=True)
    with open(os.path.join(blobs, 'ab', 'ab' + '0' * 62), 'wb') as handle:
        handle.write(b'orphan')
    bad = run_module('cairn_repository_check', repository=repo, instance='blog')
    assert bad.failed and bad['missing'] == 1 and bad['corrupt'] == 2, bad  # the flipped blob is in both points
    assert bad['unreferenced_blobs'] == 1
    kinds = {(p['restore_point'], p['kind']) for p in bad['problems']}
    assert (first['id'], 'missing') in kinds and (second['id'], 'unreferenced') in kinds
    info = run_module('cairn_backup_info', repository=repo, instance='blog')
    assert [p['verified_ok'] for p in info['restore_points']] == [False, False]
    sampled = run_module('cairn_repository_check', repository=repo, instance='blog', percent=50, seed=7,
                         fail_on_problems=False)
    assert 0 < sampled['checked_items'] < bad['checked_items']
    budget = run_module('cairn_repository_check', repository=repo, instance='blog', max_bytes=5000,
                        fail_on_problems=False)
    assert budget['checked_bytes'] <= 5000


def test_offsite_copy_round_trip(source, target, repo, tmp_path):
    offsite = {'type': 'local', 'path': str(tmp_path / 'offsite')}
    backup(source / '.env', repo)
    backup(source / '.env', repo)
    copied = run_module('cairn_repository_copy', repository=repo, target=offsite, instance='blog')
    assert copied['changed'] and len(copied['copied']) == 2 and copied['blobs_copied'] == 6, copied
    again = run_module('cairn_repository_copy', repository=repo, target=offsite, instance='blog')
    assert not again['changed'] and again['present'] == copied['copied']
    for point in copied['copied']:
        assert open(os.path.join(offsite['path'], 'blog', 'points', point, 'manifest.json')).read() == \
            open(os.path.join(repo['path'], 'blog', 'points', point, 'manifest.json')).read()
    check = run_module('cairn_repository_check', repository=offsite, instance='blog')
    assert not check.failed, check
    restore(target / '.env', offsite)
    assert digests(target / 'uploads') == originals(source / 'uploads')
    # A damaged source blob is caught on arrival; nothing half-copied becomes visible.
    (source / 'uploads' / sorted(os.listdir(source / 'uploads'))[0]).write_bytes(b'new bytes')
    third = backup(source / '.env', repo)[0]
    inventory = os.path.join(repo['path'], 'blog', 'points', third['id'], 'files.jsonl')
    [row] = [json.loads(line) for line in open(inventory) if json.loads(line)['size'] == len(b'new bytes')]
    open(os.path.join(repo['path'], 'blog', 'blobs', row['sha256'][:2], row['sha256']), 'wb').write(b'NEW BYTES')
    broken = run_module('cairn_repository_copy', repository=repo, target=offsite, instance='blog')
    assert broken.failed and 'the source copy is damaged' in broken['msg'], broken
    assert third['id'] not in os.listdir(os.path.join(offsite['path'], 'blog', 'points'))
    assert run_module('cairn_backup_info', repository=offsite, instance='blog')['failed_runs'] == [third['id']]


def test_one_run_at_a_time(source, repo):
    first = run_module('cairn_restore_point', repository=repo, instance='blog')['restore_point']
    second = run_module('cairn_restore_point', repository=repo, instance='blog')
    assert second.failed and 'is locked' in second['msg'] and first in second['msg'], second
    assert 'cairn_lock_wait' in second['msg']
    info = run_module('cairn_backup_info', repository=repo, instance='blog')
    assert info['lock']['run'] == first
    # A waiting run gets the instance once the first one ends.
    release = {'name': 'cairn_restore_point', 'repository': repo, 'instance': 'blog', 'restore_point': first,
               'state': 'failed', 'error': {'msg': 'test'}}
    releaser = threading.Timer(1.0, run_module, kwargs=release)
    releaser.start()
    waited = run_module('cairn_restore_point', repository=repo, instance='blog', lock_wait=30)
    releaser.join()
    assert not waited.failed and waited['restore_point'] != first, waited
    # A run that died leaves a lock that goes stale; the next run takes over and cleans its staging.
    lock = os.path.join(repo['path'], 'blog', 'lock.json')
    old = time.time() - 3600
    os.utime(lock, (old, old))
    taken = run_module('cairn_restore_point', repository=repo, instance='blog', lock_stale_after=600)
    assert not taken.failed and taken['interrupted_runs'] == [waited['restore_point']], taken
    log = json.load(open(os.path.join(repo['path'], 'blog', 'failed', waited['restore_point'], 'error.json')))
    assert 'interrupted' in log['error']['msg']
    assert os.listdir(os.path.join(repo['path'], 'blog', 'staging')) == [taken['restore_point']]


def test_disk_full_mid_write_fails_cleanly(source, repo):
    import sqlite3
    conn = sqlite3.connect(str(source / 'data.db'))
    conn.execute('CREATE TABLE big (data BLOB)')
    conn.execute('WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 40) '
                 'INSERT INTO big SELECT randomblob(262144) FROM n')
    conn.commit()
    conn.close()
    point = run_module('cairn_restore_point', repository=repo, instance='blog')['restore_point']

    def small_disk():  # writes past 2 MiB fail with EFBIG, as on a full disk
        resource.setrlimit(resource.RLIMIT_FSIZE, (2 * 1024 * 1024, 2 * 1024 * 1024))
        import signal
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    args = {'env_file': str(source / '.env'), 'repository': repo, 'instance': 'blog', 'restore_point': point,
            'compression': 'none'}
    proc = subprocess.run(module_command('cairn_db_dump'), input=json.dumps({'ANSIBLE_MODULE_ARGS': args}),
                          capture_output=True, text=True, env=module_env(), preexec_fn=small_disk, check=False)
    result = json.loads(proc.stdout)
    assert result.get('failed') and 'disk I/O error; is the disk holding' in result['msg'], result
    staging = os.path.join(repo['path'], 'blog', 'staging', point)
    assert [name for name in os.listdir(staging) if not name.startswith('.parts')] == [], os.listdir(staging)
    run_module('cairn_restore_point', repository=repo, instance='blog', restore_point=point, state='failed',
               error={'msg': result['msg']})
    assert run_module('cairn_backup_info', repository=repo, instance='blog')['restore_points'] == []


class _Receiver(http.server.BaseHTTPRequestHandler):
    received = []

    def do_POST(self):  # noqa: N802 (http.server's name)
        body = self.rfile.read(int(self.headers.get('Content-Length') or 0))
        self.received.append((self.path, body.decode('utf-8', 'replace')))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def receiver():
    _Receiver.received = []
    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), _Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield 'http://127.0.0.1:%d' % server.server_address[1], _Receiver.received
    server.shutdown()


def test_alerts_on_failure_and_success(source, repo, tmp_path, receiver):
    url, received = receiver
    inventory = write_inventory(str(tmp_path / 'inventory.json'), {'blog': {
        'cairn_env_file': str(source / '.env'), 'cairn_alert_webhook_url': url + '/hook',
        'cairn_alert_heartbeat_url': url + '/ping/abc', 'cairn_alert_on_success': True}}, repo['path'])
    ok = run_playbook('backup.yml', inventory)
    assert ok.returncode == 0, ok.stdout
    paths = [path for path, _body in received]
    assert paths == ['/ping/abc/start', '/hook', '/ping/abc'], received
    success = json.loads(received[1][1])
    assert success['event'] == 'backup_succeeded' and success['instance'] == 'blog' and success['restore_point']
    del received[:]
    os.unlink(source / 'data.db')
    failed = run_playbook('backup.yml', inventory)
    assert failed.returncode != 0
    assert [path for path, _body in received] == ['/ping/abc/start', '/hook', '/ping/abc/fail'], received
    alert = json.loads(received[1][1])
    assert alert['event'] == 'backup_failed' and alert['instance'] == 'blog'
    assert alert['failed_step'] == 'Dump the database' and 'does not exist' in alert['message']
    assert 'Dump the database' in received[2][1]
