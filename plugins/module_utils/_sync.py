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
new file as a verified temp file beside its final place before any file
becomes visible; then renames them in and (with ``replace``) removes extras.
"""

from __future__ import annotations

import json

from ansible_collections.cairncms.ops.plugins.module_utils._common import (
    CHUNK, CairnError, HashingReader, HashingWriter, Timer)
from ansible_collections.cairncms.ops.plugins.module_utils._storage import select_backend
from ansible_collections.cairncms.ops.plugins.module_utils._storage._base import regenerable

INVENTORY = 'files.jsonl'
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
           checksum=False, check_mode=False):
    if check_mode:
        return _backup(config, repository, instance, point_id, locations, include_regenerable, checksum, True)
    with repository.heartbeat(instance, point_id):
        return _backup(config, repository, instance, point_id, locations, include_regenerable, checksum, False)


def _backup(config, repository, instance, point_id, locations, include_regenerable, checksum, check_mode):
    timer = Timer()
    encrypted = repository.crypto.encrypts
    previous = {} if checksum else _previous(repository, instance)
    rows, summaries = [], []
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
            before = previous.get((location.name, entry.name))
            if (before and before['size'] == entry.size and before['mtime_ns'] == entry.mtime_ns
                    and repository.has_blob(instance, before['sha256'], encrypted)):
                sha, size = before['sha256'], entry.size
                summary['reused_files'] += 1
            elif check_mode:
                sha, size = None, entry.size
                summary['transferred_files'] += 1
                summary['transferred_bytes'] += size
            else:
                sha, size, stored = _store(repository, instance, backend, entry.name, encrypted)
                summary['transferred_files'] += 1
                summary['transferred_bytes'] += size
                summary['stored_bytes'] += stored
            summary['files'] += 1
            summary['bytes'] += size
            rows.append({'location': location.name, 'filename_disk': entry.name, 'size': size,
                         'sha256': sha, 'mtime_ns': entry.mtime_ns})
        summaries.append(summary)
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


def _store(repository, instance, backend, name, encrypted):
    """Copy one object into the blob store; returns sha256, size, bytes newly stored."""
    with backend.open_read(name) as source:
        with repository.blob_writer(instance, encrypted) as blob:
            for chunk in iter(lambda: source.read(CHUNK), b''):
                blob.write(chunk)
    # A blob that was already there is not stored again (blob_writer drops the copy).
    return blob.sha256, blob.size, 0 if blob.existed else blob.size


def plan_restore(config, inventory, replace, locations=None, include_regenerable=False):
    """Compare a target with an inventory; no change. Returns per-location plans."""
    by_location = {}
    for row in inventory:
        by_location.setdefault(row['location'], []).append(row)
    names = locations or sorted(by_location)
    plans = []
    for name in names:
        location = config.location(name)
        backend = select_backend(location)
        present = {entry.name: entry for entry in backend.list()}
        wanted = {row['filename_disk']: row for row in by_location.get(name, [])}
        plan = {'location': name, 'backend': backend, 'write': [], 'unchanged': [], 'differ': [],
                'extra': []}
        for filename, row in sorted(wanted.items()):
            entry = present.get(filename)
            if entry is None:
                plan['write'].append(row)
            elif entry.size == row['size'] and backend.sha256(filename) == row['sha256']:
                plan['unchanged'].append(row)
            else:
                plan['write'].append(row)
                plan['differ'].append(filename)
        extras = sorted(set(present) - set(wanted))
        harmless = set() if (replace or include_regenerable) else regenerable(list(present)) & set(extras)
        plan['extra'] = [filename for filename in extras if filename not in harmless]
        plans.append(plan)
    return plans


def _describe(plans):
    return [{'location': plan['location'], 'write': len(plan['write']), 'unchanged': len(plan['unchanged']),
             'overwrite': len(plan['differ']), 'remove': len(plan['extra']),
             'examples': {'overwrite': plan['differ'][:EXAMPLES], 'remove': plan['extra'][:EXAMPLES]}}
            for plan in plans]


def restore(config, repository, source_instance, manifest, replace=False, locations=None,
            include_regenerable=False, check_mode=False):
    timer = Timer()
    inventory = read_inventory(repository, source_instance, manifest)
    plans = plan_restore(config, inventory, replace, locations, include_regenerable)
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
    staged = []
    encrypted = blobs_encrypted(manifest)
    try:
        for plan in plans:
            for row in plan['write']:
                staged.append(_stage(repository, source_instance, plan['backend'], row, encrypted))
        for write in staged:
            write.commit()
    except BaseException:
        for write in staged:
            write.discard()
        raise
    for plan in plans:
        for filename in plan['extra']:
            plan['backend'].delete(filename)
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
