# -*- coding: utf-8 -*-
# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Repository lifecycle (private): retention, deletion, integrity checks, offsite copies.

Everything that removes data holds the instance lock, so it never races a backup that is writing
blobs it will reference; restore points go before the blobs only they referenced.
"""

from __future__ import annotations

import contextlib
import hashlib
import random
import secrets

from ansible_collections.cairncms.ops.plugins.module_utils import _retention
from ansible_collections.cairncms.ops.plugins.module_utils._common import (
    CHUNK, CairnError, HashingWriter, Timer, iso, parse_time, utc_now)
from ansible_collections.cairncms.ops.plugins.module_utils._manifest import artifacts
from ansible_collections.cairncms.ops.plugins.module_utils._repository._base import holder_text
from ansible_collections.cairncms.ops.plugins.module_utils._signing import SIGNATURE
from ansible_collections.cairncms.ops.plugins.module_utils._sync import blobs_encrypted, read_inventory

STORES = (False, True)  # the plain and the encrypted blob store

EXAMPLES = 10


def referenced_blobs(repository, instance, manifests):
    """(sha256, encrypted) of every blob the restore points of ``manifests`` reference."""
    referenced = set()
    for manifest in manifests:
        encrypted = blobs_encrypted(manifest)
        referenced.update((row['sha256'], encrypted) for row in read_inventory(repository, instance, manifest))
    return referenced


class _Locked:
    """Hold the instance lock for one lifecycle operation."""

    def __init__(self, repository, instance, what, stale_after, wait):
        self.repository, self.instance = repository, instance
        self.run = '%s-%s' % (what, secrets.token_hex(4))
        self.stale_after, self.wait = stale_after, wait

    def __enter__(self):
        self.repository.acquire_lock(self.instance, self.run, stale_after=self.stale_after, wait=self.wait)
        return self

    def __exit__(self, *exc_info):
        self.repository.release_lock(self.instance, self.run)
        return False


def _collect_garbage(repository, instance, check_mode):
    """Remove the blobs no restore point references. Skipped, with the reason, when a restore point cannot be
    read: the blobs it references are unknown, so none may go."""
    manifests, damaged = repository.scan(instance)
    try:
        referenced = referenced_blobs(repository, instance, manifests) if not damaged else None
    except CairnError as exc:
        damaged = [{'id': '?', 'problem': exc.message}]
        referenced = None
    if referenced is None:
        return {'blobs_removed': 0, 'bytes_freed': 0,
                'garbage_collection': 'skipped: restore point %s cannot be read (%s), so the blobs it references are '
                                      'unknown; no blob was removed' % (damaged[0]['id'], damaged[0]['problem'])}
    unused = {(sha, encrypted): size for encrypted in STORES
              for sha, size in repository.list_blobs(instance, encrypted).items() if (sha, encrypted) not in referenced}
    if not check_mode:
        for sha, encrypted in unused:
            repository.delete_blob(instance, sha, encrypted)
    return {'blobs_removed': len(unused), 'bytes_freed': sum(unused.values()), 'garbage_collection': 'done'}


def _guard_failed_latest(repository, instance, force):
    points, failed = repository.list_points(instance), repository.list_failed(instance)
    if failed and (not points or failed[-1] > points[-1]) and not force:
        raise CairnError('the latest backup of %s failed (%s) after the newest restore point (%s); nothing is '
                         'pruned until a backup succeeds again (force to prune anyway)'
                         % (instance, failed[-1], points[-1] if points else 'none'))


def _held_text(point, claims):
    return 'restore point %s is being read by %s' % (point, '; '.join(holder_text(claim) for claim in claims))


def prune(repository, instance, policy, tz='UTC', now=None, check_mode=False, force=False,
          stale_after=3600, wait=0):
    """Apply a retention policy: which restore points stay (and which rule keeps each), which go. Restore points
    that cannot be read are kept (their age is unknown) and reported; points a live reader holds are kept for a
    later prune (after waiting up to ``wait`` s for the readers)."""
    policy = _retention.validate(policy)
    _guard_failed_latest(repository, instance, force)
    manifests, damaged = repository.scan(instance)
    manifests = {m['id']: m for m in manifests}
    decisions = _retention.plan([(pid, parse_time(m['started_at'])) for pid, m in manifests.items()],
                                policy, now=now, tz=tz)
    remove = [d['id'] for d in decisions if not d['keep']]
    result = {'changed': bool(remove), 'instance': instance, 'decisions': decisions, 'removed': remove,
              'kept': [d['id'] for d in decisions if d['keep']], 'unreadable': damaged, 'held': []}
    warnings = ['restore point %s was kept: it cannot be judged (%s)' % (bad['id'], bad['problem']) for bad in damaged]
    if check_mode:
        if warnings:
            result['warnings'] = warnings
        return result
    with _Locked(repository, instance, 'prune', stale_after, wait) as locked:
        with repository.removal(instance, remove, locked.run, stale_after=stale_after, wait=wait) as held:
            for point in remove:
                if point not in held:
                    repository.delete_point(instance, point)
            result.update(_collect_garbage(repository, instance, False))
    if held:
        result['held'] = sorted(held)
        result['removed'] = [point for point in remove if point not in held]
        result['kept'] = sorted(result['kept'] + result['held'])
        warnings += ['%s; it was kept and a later prune removes it' % _held_text(point, claims)
                     for point, claims in sorted(held.items())]
    if result.get('garbage_collection', '').startswith('skipped'):
        warnings.append('blob garbage collection was ' + result['garbage_collection'])
    if warnings:
        result['warnings'] = warnings
    result['changed'] = bool(result['removed'] or result['blobs_removed'])
    return result


def delete(repository, instance, point, force=False, check_mode=False, stale_after=3600, wait=0):
    points = repository.list_points(instance)
    if point not in points:
        return {'changed': False,
                'msg': 'restore point %s of %s is not in %s' % (point, instance, repository.describe())}
    if len(points) == 1 and not force:
        raise CairnError('restore point %s is the last one of %s; deleting it leaves nothing to restore. Set '
                         'force to delete it anyway' % (point, instance))
    if check_mode:
        return {'changed': True, 'deleted': point}
    with _Locked(repository, instance, 'delete', stale_after, wait) as locked:
        with repository.removal(instance, [point], locked.run, stale_after=stale_after, wait=wait) as held:
            if held:
                raise CairnError('%s; nothing was deleted. Delete it when that run is done (or wait for it with '
                                 'lock_wait)' % _held_text(point, held[point]))
            repository.delete_point(instance, point)
            freed = _collect_garbage(repository, instance, False)
    return dict(freed, changed=True, deleted=point)


def _hash_blob(repository, instance, sha, encrypted):
    digest = hashlib.sha256()
    with repository.open_blob(instance, sha, encrypted) as handle:
        for chunk in iter(lambda: handle.read(CHUNK), b''):
            digest.update(chunk)
    return digest.hexdigest()


def _hash_artifact(repository, instance, point, name, encrypted):
    digest = hashlib.sha256()
    size = 0
    with repository.open_artifact(instance, point, name, encrypted=encrypted) as handle:
        for chunk in iter(lambda: handle.read(CHUNK), b''):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def check(repository, instance, percent=100, max_bytes=None, seed=None, record=True):
    """Re-hash artifacts and blobs (all, or a random sample) against the manifests; report missing,
    corrupt and unreferenced data; record the check per restore point."""
    timer = Timer()
    rng = random.Random(seed)
    manifests, damaged = repository.scan(instance)
    with repository.claiming(instance, [m['id'] for m in manifests], 'check') if manifests else \
            contextlib.nullcontext():
        return _check(repository, instance, manifests, damaged, percent, max_bytes, rng, record, timer)


def _check(repository, instance, manifests, damaged, percent, max_bytes, rng, record, timer):
    blob_sizes = {(sha, encrypted): size for encrypted in STORES
                  for sha, size in repository.list_blobs(instance, encrypted).items()}
    items = []  # (point, kind, name, sha256, size, encrypted)
    referenced = set()
    problems = [{'restore_point': bad['id'], 'kind': 'manifest', 'detail': bad['problem']} for bad in damaged]
    for manifest in manifests:
        listed = {a['path'] for a in artifacts(manifest)} | {'manifest.json', SIGNATURE}
        for extra in sorted(set(repository.point_files(instance, manifest['id'])) - listed):
            problems.append({'restore_point': manifest['id'], 'kind': 'unreferenced', 'detail': extra})
        for artifact in artifacts(manifest):
            items.append((manifest['id'], 'artifact', artifact['path'], artifact['sha256'], artifact['size_bytes'],
                          artifact.get('encrypted', False)))
        try:
            rows = read_inventory(repository, instance, manifest)
        except CairnError as exc:
            problems.append({'restore_point': manifest['id'], 'kind': 'corrupt', 'detail': exc.message})
            continue
        encrypted = blobs_encrypted(manifest)
        for row in rows:
            referenced.add((row['sha256'], encrypted))
            items.append((manifest['id'], 'blob', row['filename_disk'], row['sha256'], row['size'], encrypted))
    sample = _sample(items, percent, max_bytes, rng)
    hashed = {}
    blind = not repository.crypto.can_decrypt  # encrypted data: presence only without an identity
    for point, kind, name, sha, size, encrypted in sample:
        if encrypted and blind and kind == 'artifact':
            if name not in repository.point_files(instance, point):
                problems.append({'restore_point': point, 'kind': 'missing', 'detail': name})
            continue
        if encrypted and blind:
            if (sha, encrypted) not in blob_sizes:
                problems.append({'restore_point': point, 'kind': 'missing',
                                 'detail': '%s (blob %s)' % (name, sha)})
            continue
        if kind == 'artifact':
            try:
                digest, length = _hash_artifact(repository, instance, point, name, encrypted)
            except CairnError as exc:
                gone = 'missing' in exc.message
                problems.append({'restore_point': point, 'kind': 'missing' if gone else 'corrupt',
                                 'detail': name if gone else exc.message})
                continue
            if digest != sha or length != size:
                problems.append({'restore_point': point, 'kind': 'corrupt', 'detail': name})
            continue
        if (sha, encrypted) not in blob_sizes:
            problems.append({'restore_point': point, 'kind': 'missing', 'detail': '%s (blob %s)' % (name, sha)})
            continue
        if (sha, encrypted) not in hashed:
            try:
                hashed[(sha, encrypted)] = _hash_blob(repository, instance, sha, encrypted)
            except CairnError as exc:
                hashed[(sha, encrypted)] = exc.message
        if hashed[(sha, encrypted)] != sha:
            problems.append({'restore_point': point, 'kind': 'corrupt', 'detail': '%s (blob %s)' % (name, sha)})
    unreferenced = sorted(set(blob_sizes) - referenced)
    checked_at = iso(utc_now())
    if record:
        for point in [m['id'] for m in manifests] + [bad['id'] for bad in damaged]:
            own = [p for p in problems if p['restore_point'] == point]
            repository.record_check(instance, point, {
                'checked_at': checked_at, 'ok': not own, 'problems': own[:EXAMPLES],
                'sampled_percent': percent, 'max_bytes': max_bytes})
    return {
        'changed': False, 'instance': instance, 'checked_at': checked_at,
        'restore_points': len(manifests) + len(damaged),
        'items': len(items), 'checked_items': len(sample), 'checked_bytes': sum(item[4] for item in sample),
        'problems': problems, 'missing': sum(1 for p in problems if p['kind'] == 'missing'),
        'corrupt': sum(1 for p in problems if p['kind'] in ('corrupt', 'manifest')),
        'unreferenced_blobs': len(unreferenced), 'unreferenced_bytes': sum(blob_sizes[s] for s in unreferenced),
        'duration_s': timer.seconds, 'content_verified': not (blind and any(item[5] for item in sample)),
    }


def _sample(items, percent, max_bytes, rng):
    if percent >= 100 and not max_bytes:
        return items
    chosen = [item for item in items if rng.random() * 100 < percent] if percent < 100 else list(items)
    if max_bytes:
        rng.shuffle(chosen)
        budget, kept = max_bytes, []
        for item in chosen:
            if item[4] <= budget:
                kept.append(item)
                budget -= item[4]
        chosen = kept
    return chosen


def _copy_raw(read, write):
    """Copy bytes as they are stored (ciphertext stays ciphertext); return sha256 and size of what was sent."""
    digest = hashlib.sha256()
    size = 0
    for chunk in iter(lambda: read.read(CHUNK), b''):
        digest.update(chunk)
        size += len(chunk)
        write.write(chunk)
    return digest.hexdigest(), size


def copy(source, target, instance, points=None, check_mode=False, stale_after=3600, wait=0):
    """Copy restore points that ``target`` lacks, blobs first, each verified on arrival; a point becomes
    visible in ``target`` only when all of it has arrived. Encrypted data is copied as it is stored, so
    an offsite copy needs no key; it is verified by re-reading what arrived."""
    timer = Timer()
    have = set(target.list_points(instance))
    usable, damaged = source.scan(instance)
    wanted = [m['id'] for m in usable if (not points or m['id'] in points) and m['id'] not in have]
    result = {'changed': bool(wanted), 'instance': instance, 'copied': wanted, 'blobs_copied': 0,
              'bytes_copied': 0, 'present': sorted(have), 'unreadable': damaged}
    if damaged:
        result['warnings'] = ['restore point %s was not copied: %s' % (bad['id'], bad['problem']) for bad in damaged
                              if bad['id'] not in have]
    if check_mode or not wanted:
        return result
    with source.claiming(instance, wanted, 'copy', wait=wait, stale_after=stale_after):
        _copy(source, target, instance, wanted, result, stale_after, wait)
    result['duration_s'] = timer.seconds
    return result


def _copy(source, target, instance, wanted, result, stale_after, wait):
    for name, data in source.key_files(instance).items():
        target.put_key_file(instance, name, data)  # passphrase-wrapped keys travel with the restore points
    for point in wanted:
        manifest = source.load_manifest(instance, point)
        started = parse_time(manifest['started_at'])
        target.begin(instance, started, point_id=point, stale_after=stale_after, wait=wait)
        try:
            encrypted = blobs_encrypted(manifest)
            for row in read_inventory(source, instance, manifest):
                if target.has_blob(instance, row['sha256'], encrypted):
                    continue
                with source.open_blob(instance, row['sha256'], encrypted, raw=True) as handle:
                    with target.blob_writer(instance, encrypted, sha256=row['sha256'] if encrypted else None) as blob:
                        sent = _copy_raw(handle, blob)
                if encrypted:
                    with target.open_blob(instance, row['sha256'], encrypted, raw=True) as handle:
                        damaged = _copy_raw(handle, _Discard()) != sent
                else:
                    damaged = blob.sha256 != row['sha256']
                if damaged:
                    if encrypted:
                        target.delete_blob(instance, row['sha256'], encrypted)
                    raise CairnError('blob %s arrived damaged in %s, or the source copy is damaged'
                                     % (row['sha256'], target.describe()))
                result['blobs_copied'] += 1
                result['bytes_copied'] += sent[1]
            for artifact in artifacts(manifest):
                with source.open_artifact(instance, point, artifact['path'], raw=True) as handle:
                    with target.artifact_writer(instance, point, artifact['path']) as out:
                        hashed = HashingWriter(out)
                        sent = _copy_raw(handle, hashed)
                        plain = not artifact.get('encrypted', False)
                        if plain and (hashed.sha256 != artifact['sha256'] or hashed.size != artifact['size_bytes']):
                            raise CairnError('artifact %s of %s arrived with sha256 %s, the manifest says %s'
                                             % (artifact['path'], point, hashed.sha256, artifact['sha256']))
                result['bytes_copied'] += sent[1]
            target.finalize(instance, point, manifest, source.signature(instance, point))
        except BaseException as exc:
            target.fail(instance, point, {'msg': 'copy from %s failed: %s' % (
                source.describe(), getattr(exc, 'message', None) or exc)})
            raise


class _Discard:
    def write(self, data):
        return len(data)


def status(points, last_drill, failed, lock, max_point_age=0, max_drill_age=0, now=None, last_failed=None,
           unreadable=()):
    """What watching a fleet needs of one instance, from its listing (``summary`` entries with ``verified_ok``,
    oldest first; ``failed``: ids of failed runs, ``last_failed``: the newest one's log; ``unreadable``: points
    whose manifest cannot be used), and the problems against the limits (seconds; 0 for none)."""
    now = now or utc_now()

    def age(text):
        return round((now - parse_time(text)).total_seconds(), 3) if text else None
    newest = points[-1] if points else {}
    drill = last_drill or {}
    latest_failed = bool(failed) and (not points or failed[-1] > newest.get('id'))
    found = {
        'restore_points': len(points), 'newest_point': newest.get('id'),
        'newest_point_age_s': age(newest.get('started_at')), 'newest_point_verified_ok': newest.get('verified_ok'),
        'secrets_captured': newest.get('secrets_captured'),
        'last_drill': drill.get('id'), 'last_drill_ok': drill.get('ok'), 'last_drill_age_s': age(drill.get('started_at')),
        'last_drill_rto_s': drill.get('rto_s'), 'last_drill_rpo_s': drill.get('rpo_s'),
        'failed_runs': len(failed), 'last_backup_failed': latest_failed,
        'unreadable_points': len(unreadable), 'locked': lock is not None,
    }
    problems = []
    if not points:
        problems.append('no restore point')
    elif max_point_age and found['newest_point_age_s'] > max_point_age:
        problems.append('the newest restore point is %d s old, over the limit of %d s'
                        % (found['newest_point_age_s'], max_point_age))
    if latest_failed:
        error = (last_failed or {}).get('error') or {}
        problems.append('the latest backup failed (%s%s): %s' % (
            failed[-1], ", in '%s'" % error['task'] if error.get('task') else '', error.get('msg') or 'no message'))
    if unreadable:
        problems.append('%d restore point(s) cannot be read: %s' % (
            len(unreadable), '; '.join('%s (%s)' % (bad['id'], bad['problem']) for bad in unreadable[:3])))
    if newest.get('verified_ok') is False:
        problems.append('the last check of the newest restore point found problems')
    if drill and drill.get('ok') is False:
        problems.append('the last restore drill failed: %s' % '; '.join(drill.get('problems') or []))
    if max_drill_age and (not drill or found['last_drill_age_s'] > max_drill_age):
        problems.append('no restore drill in the last %d s' % max_drill_age)
    return found, problems
