# -*- coding: utf-8 -*-
# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""File bytes between storage locations and a repository (private).

Backup: every object of every location goes into the repository's blob store
by sha256; an object whose size and mtime equal the previous restore point's
record (and whose blob is there) is not read again, and a blob already stored
is not stored again. The restore point gets an inventory (``files.jsonl``)
that lists location, ``filename_disk``, size, sha256 and mtime of each file,
so it restores alone.

Restore: plans first (write, unchanged, extra); refuses, changing nothing,
when a file would be overwritten or removed without ``replace``; stages every
new file as a verified temp file (beside its final place, or locally for an
object store) before any file becomes visible; then renames them in (uploads
them, for an object store: a failure there leaves the files uploaded before it
in place, and the error names them) and (with ``replace``) removes extras.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import json
import threading

from ansible_collections.cairncms.ops.plugins.module_utils import _relocate
from ansible_collections.cairncms.ops.plugins.module_utils._common import (
    CHUNK, CairnError, HashingReader, HashingWriter, Timer)
from ansible_collections.cairncms.ops.plugins.module_utils._storage import select_backend
from ansible_collections.cairncms.ops.plugins.module_utils._storage._base import regenerable

INVENTORY = 'files.jsonl'
PARALLEL = 8  # transfers at a time (cairn_storage_parallel)
EXAMPLES = 5


def _selected(config, names):
    locations = config.locations()
    if names:
        known = {location.name for location in locations}
        missing = [name for name in names if name not in known]
        if missing:
            raise CairnError('storage location(s) %s are not in STORAGE_LOCATIONS (%s)'
                             % (', '.join(missing), ', '.join(sorted(known))))
        locations = [location for location in locations if location.name in names]
    return locations


def read_inventory(repository, instance, manifest):
    """The file inventory of a restore point, checked against the manifest."""
    storage = manifest.get('storage') or {}
    name = storage.get('inventory')
    if not name:
        return []
    expected = next((a for a in manifest.get('artifacts', []) if a['path'] == name), None)
    with repository.open_artifact(instance, manifest['id'], name) as handle:
        reader = HashingReader(handle)
        data = reader.read()
    if expected is None or reader.sha256 != expected['sha256']:
        raise CairnError('the file inventory %s of restore point %s fails its checksum; the repository copy '
                         'is damaged' % (name, manifest['id']))
    return [json.loads(line) for line in data.decode('utf-8').splitlines() if line.strip()]


def blobs_encrypted(manifest):
    return bool((manifest.get('storage') or {}).get('encrypted'))


def _previous(repository, instance):
    points = repository.list_points(instance)
    if not points:
        return {}
    manifest = repository.load_manifest(instance, points[-1])
    if blobs_encrypted(manifest) != repository.crypto.encrypts:
        return {}  # the other store: nothing to take over
    try:
        rows = read_inventory(repository, instance, manifest)
    except CairnError:
        return {}
    return {(row['location'], row['filename_disk']): row for row in rows}


def backup(config, repository, instance, point_id, locations=None, include_regenerable=False,
           checksum=False, check_mode=False, parallel=PARALLEL):
    if check_mode:
        return _backup(config, repository, instance, point_id, locations, include_regenerable, checksum, True,
                       parallel)
    with repository.heartbeat(instance, point_id):
        return _backup(config, repository, instance, point_id, locations, include_regenerable, checksum, False,
                       parallel)


def _backup(config, repository, instance, point_id, locations, include_regenerable, checksum, check_mode,
            parallel):
    timer = Timer()
    encrypted = repository.crypto.encrypts
    previous = {} if checksum else _previous(repository, instance)
    rows, summaries, copies = [], [], []
    for location in _selected(config, locations):
        backend = select_backend(location)
        entries = list(backend.list())
        skip = set() if include_regenerable else regenerable([entry.name for entry in entries])
        summary = {'name': location.name, 'driver': location.driver, 'files': 0, 'bytes': 0,
                   'transferred_files': 0, 'transferred_bytes': 0, 'reused_files': 0,
                   'stored_bytes': 0, 'skipped_regenerable': len(skip)}
        for entry in entries:
            if entry.name in skip:
                continue
            row = {'location': location.name, 'filename_disk': entry.name, 'size': entry.size, 'sha256': None,
                   'mtime_ns': entry.mtime_ns}
            before = previous.get((location.name, entry.name))
            if (before and before['size'] == entry.size and before['mtime_ns'] == entry.mtime_ns
                    and repository.has_blob(instance, before['sha256'], encrypted)):
                row['sha256'] = before['sha256']
                if before.get('md5'):
                    row['md5'] = before['md5']
                summary['reused_files'] += 1
                summary['bytes'] += entry.size
            else:
                copies.append((backend, row, summary))
            summary['files'] += 1
            rows.append(row)
        summaries.append(summary)

    def copy(job):
        backend, row, summary = job
        row['sha256'], row['md5'], row['size'], stored = _store(repository, instance, backend, row['filename_disk'],
                                                                encrypted)
        with counting:
            summary['stored_bytes'] += stored

    counting = threading.Lock()
    if not check_mode:
        each(copy, copies, parallel)
    for _backend, row, summary in copies:  # the size read, which may differ from the listing's
        summary['transferred_files'] += 1
        summary['transferred_bytes'] += row['size']
        summary['bytes'] += row['size']
    result = {'changed': not check_mode, 'direction': 'backup', 'locations': summaries,
              'files': len(rows), 'bytes': sum(row['size'] for row in rows),
              'transferred': sum(s['transferred_files'] for s in summaries),
              'transferred_bytes': sum(s['transferred_bytes'] for s in summaries),
              'reused': sum(s['reused_files'] for s in summaries),
              'skipped_regenerable': sum(s['skipped_regenerable'] for s in summaries)}
    if check_mode:
        return result
    rows.sort(key=lambda row: (row['location'], row['filename_disk']))
    with repository.artifact_writer(instance, point_id, INVENTORY) as handle:
        stored = HashingWriter(handle)
        for row in rows:
            stored.write(json.dumps(row, sort_keys=True).encode('utf-8') + b'\n')
    repository.write_part(instance, point_id, 'storage', {
        'inventory': INVENTORY, 'inventory_size_bytes': stored.size, 'inventory_sha256': stored.sha256,
        'locations': summaries, 'files': result['files'], 'bytes': result['bytes'],
        'include_regenerable': include_regenerable, 'duration_s': timer.seconds, 'encrypted': encrypted})
    result['duration_s'] = timer.seconds
    return result


def _md5():
    try:
        return hashlib.md5(usedforsecurity=False)  # a checksum object stores compare with, not security
    except TypeError:  # Python 3.8
        return hashlib.md5()  # nosec


def _store(repository, instance, backend, name, encrypted):
    """Copy one object into the blob store; returns sha256, md5, size, bytes newly stored."""
    md5 = _md5()
    with backend.open_read(name) as source:
        with repository.blob_writer(instance, encrypted) as blob:
            for chunk in iter(lambda: source.read(CHUNK), b''):
                md5.update(chunk)
                blob.write(chunk)
    # A blob that was already there is not stored again (blob_writer drops the copy).
    return blob.sha256, md5.hexdigest(), blob.size, 0 if blob.existed else blob.size


def plan_restore(config, inventory, replace, locations=None, include_regenerable=False, location_map=None,
                 parallel=PARALLEL):
    """Compare a target with an inventory; no change. Returns one plan per target location.

    ``locations`` are restore point location names; ``location_map`` sends the files of a restore point
    location to another location of the target (unmapped names stay), under the same ``filename_disk``."""
    by_location = {}
    for row in inventory:
        by_location.setdefault(row['location'], []).append(row)
    names = locations or sorted(by_location)
    resolved = _relocate.resolve(names, config.location_names(), location_map)
    _relocate.check_collisions({name: by_location.get(name, []) for name in names}, resolved)
    sources = {}
    for name in names:
        sources.setdefault(resolved[name], []).append(name)
    plans = []
    for target, names_in in sources.items():
        location = config.location(target)
        backend = select_backend(location)
        present = {entry.name: entry for entry in backend.list()}
        wanted = {row['filename_disk']: row for name in names_in for row in by_location.get(name, [])}
        plan = {'location': ','.join(names_in), 'target': target, 'backend': backend, 'write': [],
                'unchanged': [], 'differ': [], 'extra': [], 'read': 0}
        equal, plan['read'] = _equal(backend, present, wanted, parallel)
        for filename, row in sorted(wanted.items()):
            if filename not in present:
                plan['write'].append(row)
            elif equal[filename]:
                plan['unchanged'].append(row)
            else:
                plan['write'].append(row)
                plan['differ'].append(filename)
        extras = sorted(set(present) - set(wanted))
        harmless = set() if (replace or include_regenerable) else regenerable(list(present)) & set(extras)
        plan['extra'] = [filename for filename in extras if filename not in harmless]
        plans.append(plan)
    return plans


def _equal(backend, present, wanted, parallel):
    """filename -> whether the target's object holds the restore point's bytes: equal when the listing's
    MD5 matches the inventory's; else, for the same size, read and hashed (``parallel`` at a time)."""
    equal, compare = {}, []
    for filename, row in wanted.items():
        entry = present.get(filename)
        if entry is None:
            continue
        if entry.size != row['size']:
            equal[filename] = False
        elif entry.md5 and row.get('md5') and entry.md5 == row['md5']:
            equal[filename] = True
        else:
            compare.append(filename)

    def hashed(filename):
        equal[filename] = backend.sha256(filename) == wanted[filename]['sha256']
    each(hashed, compare, parallel)
    return equal, len(compare)


def _describe(plans):
    return [{'location': plan['location'], 'target': plan['target'], 'write': len(plan['write']),
             'unchanged': len(plan['unchanged']), 'read_to_compare': plan['read'],
             'overwrite': len(plan['differ']), 'remove': len(plan['extra']),
             'examples': {'overwrite': plan['differ'][:EXAMPLES], 'remove': plan['extra'][:EXAMPLES]}}
            for plan in plans]


def each(function, items, limit):
    """``function(item)`` for every item, ``limit`` at a time. The first error stops the rest: items not
    started are skipped, those running finish, and the error is raised."""
    items = list(items)
    if limit <= 1 or len(items) <= 1:
        for item in items:
            function(item)
        return
    failed = threading.Event()

    def guarded(item):
        if not failed.is_set():
            try:
                function(item)
            except BaseException:
                failed.set()
                raise
    with concurrent.futures.ThreadPoolExecutor(max_workers=min(limit, len(items))) as pool:
        futures = [pool.submit(guarded, item) for item in items]
        errors = [future.exception() for future in futures]
    for error in errors:
        if error is not None:
            raise error


def restore(config, repository, source_instance, manifest, replace=False, locations=None,
            include_regenerable=False, check_mode=False, location_map=None, parallel=PARALLEL):
    timer = Timer()
    inventory = read_inventory(repository, source_instance, manifest)
    plans = plan_restore(config, inventory, replace, locations, include_regenerable, location_map, parallel)
    summary = _describe(plans)
    conflicts = sum(len(plan['differ']) + len(plan['extra']) for plan in plans)
    if conflicts and not replace:
        raise CairnError('the target storage is not empty and differs from restore point %s (%d file(s) would be '
                         'overwritten or removed); nothing was changed. Set replace (cairn_restore_replace: '
                         'true) to make it match the restore point' % (manifest['id'], conflicts),
                         locations=summary)
    changes = sum(len(plan['write']) + len(plan['extra']) for plan in plans)
    result = {'changed': bool(changes), 'direction': 'restore', 'restore_point': manifest['id'],
              'locations': summary, 'transferred': sum(len(plan['write']) for plan in plans),
              'transferred_bytes': sum(row['size'] for plan in plans for row in plan['write']),
              'removed': sum(len(plan['extra']) for plan in plans),
              'unchanged': sum(len(plan['unchanged']) for plan in plans)}
    if check_mode or not changes:
        return result
    encrypted = blobs_encrypted(manifest)
    staged, committed = [], []
    jobs = [(plan['backend'], row) for plan in plans for row in plan['write']]

    def stage(job):
        staged.append((job[1]['filename_disk'], _stage(repository, source_instance, job[0], job[1], encrypted)))

    def commit(item):
        item[1].commit()
        committed.append(item[0])
    try:
        each(stage, jobs, parallel)
        each(commit, list(staged), parallel)
    except CairnError as exc:
        for _name, write in staged:
            write.discard()
        if not committed:
            raise
        # An object store has no rename: what was uploaded before the failure stays in place.
        raise CairnError('%s; %d of %d file(s) were already put in place (%s), the others are unchanged; run the '
                         'restore again to complete it' % (exc.message, len(committed), len(staged),
                                                           ', '.join(sorted(committed)[:EXAMPLES])))
    except BaseException:
        for _name, write in staged:
            write.discard()
        raise
    each(lambda job: job[0].delete(job[1]), [(plan['backend'], name) for plan in plans for name in plan['extra']],
         parallel)
    result['duration_s'] = timer.seconds
    return result


def _stage(repository, instance, backend, row, encrypted):
    """Write one file to a temporary place in the target and check it; ``commit()`` puts it in place."""
    write = backend.begin_write(row['filename_disk'], mtime_ns=row.get('mtime_ns'))
    try:
        hashed = HashingWriter(write)
        with repository.open_blob(instance, row['sha256'], encrypted) as blob:
            for chunk in iter(lambda: blob.read(CHUNK), b''):
                hashed.write(chunk)
        write.close()
        if hashed.sha256 != row['sha256'] or hashed.size != row['size']:
            raise CairnError('blob %s for %s fails its checksum (got sha256 %s, %d bytes); the repository copy '
                             'is damaged; no file was changed'
                             % (row['sha256'], row['filename_disk'], hashed.sha256, hashed.size))
    except BaseException:
        write.discard()
        raise
    return write
