# -*- coding: utf-8 -*-
# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Repository lifecycle (private): retention, deletion, integrity checks, offsite copies.

Everything that removes data holds the instance lock, so it never races a backup that is writing
blobs it will reference; restore points go before the blobs only they referenced.
"""

from __future__ import annotations

import datetime
import hashlib
import random
import secrets

from ansible_collections.cairncms.ops.plugins.module_utils import _retention
from ansible_collections.cairncms.ops.plugins.module_utils._common import (
    CHUNK, CairnError, HashingWriter, Timer, iso, utc_now)
from ansible_collections.cairncms.ops.plugins.module_utils._manifest import check as check_manifest
from ansible_collections.cairncms.ops.plugins.module_utils._sync import read_inventory

EXAMPLES = 10


def parse_time(text):
    return datetime.datetime.strptime(text, '%Y-%m-%dT%H:%M:%S.%fZ').replace(tzinfo=datetime.timezone.utc)


def _manifests(repository, instance):
    return [repository.load_manifest(instance, point) for point in repository.list_points(instance)]


def referenced_blobs(repository, instance, manifests=None):
    referenced = set()
    for manifest in manifests if manifests is not None else _manifests(repository, instance):
        referenced.update(row['sha256'] for row in read_inventory(repository, instance, manifest))
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
    unused = {sha: size for sha, size in repository.list_blobs(instance).items()
              if sha not in referenced_blobs(repository, instance)}
    if not check_mode:
        for sha in unused:
            repository.delete_blob(instance, sha)
    return {'blobs_removed': len(unused), 'bytes_freed': sum(unused.values())}


def _guard_failed_latest(repository, instance, force):
    points, failed = repository.list_points(instance), repository.list_failed(instance)
    if failed and (not points or failed[-1] > points[-1]) and not force:
        raise CairnError('the latest backup of %s failed (%s) after the newest restore point (%s); nothing is '
                         'pruned until a backup succeeds again (force to prune anyway)'
                         % (instance, failed[-1], points[-1] if points else 'none'))


def prune(repository, instance, policy, tz='UTC', now=None, check_mode=False, force=False,
          stale_after=3600, wait=0):
    """Apply a retention policy: which restore points stay (and which rule keeps each), which go."""
    policy = _retention.validate(policy)
    _guard_failed_latest(repository, instance, force)
    manifests = {m['id']: m for m in _manifests(repository, instance)}
    decisions = _retention.plan([(pid, parse_time(m['started_at'])) for pid, m in manifests.items()],
                                policy, now=now, tz=tz)
    remove = [d['id'] for d in decisions if not d['keep']]
    result = {'changed': bool(remove), 'instance': instance, 'decisions': decisions, 'removed': remove,
              'kept': [d['id'] for d in decisions if d['keep']]}
    if check_mode:
        return result
    with _Locked(repository, instance, 'prune', stale_after, wait):
        for point in remove:
            repository.delete_point(instance, point)
        result.update(_collect_garbage(repository, instance, False))
    result['changed'] = bool(remove or result['blobs_removed'])
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
    with _Locked(repository, instance, 'delete', stale_after, wait):
        repository.delete_point(instance, point)
        freed = _collect_garbage(repository, instance, False)
    return dict(freed, changed=True, deleted=point)


def _hash_blob(repository, instance, sha):
    digest = hashlib.sha256()
    with repository.open_blob(instance, sha) as handle:
        for chunk in iter(lambda: handle.read(CHUNK), b''):
            digest.update(chunk)
    return digest.hexdigest()


def _hash_artifact(repository, instance, point, name):
    digest = hashlib.sha256()
    size = 0
    with repository.open_artifact(instance, point, name) as handle:
        for chunk in iter(lambda: handle.read(CHUNK), b''):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def check(repository, instance, percent=100, max_bytes=None, seed=None, record=True):
    """Re-hash artifacts and blobs (all, or a random sample) against the manifests; report missing,
    corrupt and unreferenced data; record the check per restore point."""
    timer = Timer()
    rng = random.Random(seed)
    manifests = _manifests(repository, instance)
    blob_sizes = repository.list_blobs(instance)
    items = []  # (point, kind, name, sha256, size)
    referenced, problems = set(), []
    for manifest in manifests:
        try:
            check_manifest(manifest)
        except CairnError as exc:
            problems.append({'restore_point': manifest.get('id'), 'kind': 'manifest', 'detail': exc.message})
            continue
        listed = {a['path'] for a in manifest['artifacts']} | {'manifest.json'}
        for extra in sorted(set(repository.point_files(instance, manifest['id'])) - listed):
            problems.append({'restore_point': manifest['id'], 'kind': 'unreferenced', 'detail': extra})
        for artifact in manifest['artifacts']:
            items.append((manifest['id'], 'artifact', artifact['path'], artifact['sha256'], artifact['size_bytes']))
        try:
            rows = read_inventory(repository, instance, manifest)
        except CairnError as exc:
            problems.append({'restore_point': manifest['id'], 'kind': 'corrupt', 'detail': exc.message})
            continue
        for row in rows:
            referenced.add(row['sha256'])
            items.append((manifest['id'], 'blob', row['filename_disk'], row['sha256'], row['size']))
    sample = _sample(items, percent, max_bytes, rng)
    hashed = {}
    for point, kind, name, sha, size in sample:
        if kind == 'artifact':
            try:
                digest, length = _hash_artifact(repository, instance, point, name)
            except CairnError:
                problems.append({'restore_point': point, 'kind': 'missing', 'detail': name})
                continue
            if digest != sha or length != size:
                problems.append({'restore_point': point, 'kind': 'corrupt', 'detail': name})
            continue
        if sha not in blob_sizes:
            problems.append({'restore_point': point, 'kind': 'missing', 'detail': '%s (blob %s)' % (name, sha)})
            continue
        if sha not in hashed:
            hashed[sha] = _hash_blob(repository, instance, sha)
        if hashed[sha] != sha:
            problems.append({'restore_point': point, 'kind': 'corrupt', 'detail': '%s (blob %s)' % (name, sha)})
    unreferenced = sorted(set(blob_sizes) - referenced)
    checked_at = iso(utc_now())
    if record:
        for manifest in manifests:
            own = [p for p in problems if p['restore_point'] == manifest.get('id')]
            repository.record_check(instance, manifest['id'], {
                'checked_at': checked_at, 'ok': not own, 'problems': own[:EXAMPLES],
                'sampled_percent': percent, 'max_bytes': max_bytes})
    return {
        'changed': False, 'instance': instance, 'checked_at': checked_at, 'restore_points': len(manifests),
        'items': len(items), 'checked_items': len(sample), 'checked_bytes': sum(i[4] for i in sample),
        'problems': problems, 'missing': sum(1 for p in problems if p['kind'] == 'missing'),
        'corrupt': sum(1 for p in problems if p['kind'] == 'corrupt'),
        'unreferenced_blobs': len(unreferenced), 'unreferenced_bytes': sum(blob_sizes[s] for s in unreferenced),
        'duration_s': timer.seconds,
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


def copy(source, target, instance, points=None, check_mode=False, stale_after=3600, wait=0):
    """Copy restore points that ``target`` lacks, blobs first, each verified on arrival; a point becomes
    visible in ``target`` only when all of it has arrived."""
    timer = Timer()
    have = set(target.list_points(instance))
    wanted = [p for p in source.list_points(instance) if (not points or p in points) and p not in have]
    result = {'changed': bool(wanted), 'instance': instance, 'copied': wanted, 'blobs_copied': 0,
              'bytes_copied': 0, 'skipped': sorted(have)}
    if check_mode or not wanted:
        return result
    for point in wanted:
        manifest = source.load_manifest(instance, point)
        started = parse_time(manifest['started_at'])
        target.begin(instance, started, point_id=point, stale_after=stale_after, wait=wait)
        try:
            for row in read_inventory(source, instance, manifest):
                if target.has_blob(instance, row['sha256']):
                    continue
                with source.open_blob(instance, row['sha256']) as handle:
                    with target.blob_writer(instance) as blob:
                        for chunk in iter(lambda: handle.read(CHUNK), b''):
                            blob.write(chunk)
                if blob.sha256 != row['sha256']:
                    raise CairnError('blob %s arrived as %s in %s: the source copy is damaged'
                                     % (row['sha256'], blob.sha256, target.describe()))
                result['blobs_copied'] += 1
                result['bytes_copied'] += blob.size
            for artifact in manifest['artifacts']:
                with source.open_artifact(instance, point, artifact['path']) as handle:
                    with target.artifact_writer(instance, point, artifact['path']) as out:
                        hashed = HashingWriter(out)
                        for chunk in iter(lambda: handle.read(CHUNK), b''):
                            hashed.write(chunk)
                        if hashed.sha256 != artifact['sha256'] or hashed.size != artifact['size_bytes']:
                            raise CairnError('artifact %s of %s arrived with sha256 %s, the manifest says %s'
                                             % (artifact['path'], point, hashed.sha256, artifact['sha256']))
                result['bytes_copied'] += artifact['size_bytes']
            target.finalize(instance, point, manifest)
        except BaseException as exc:
            target.fail(instance, point, {'msg': 'copy from %s failed: %s' % (
                source.describe(), getattr(exc, 'message', None) or exc)})
            raise
    result['duration_s'] = timer.seconds
    return result
