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

Uploads are untrusted input. A local location is walked without following any symlink (``_fs``): the backup
captures regular files only, reports the symlinks and special files it passed over, leaves out a file that is
no longer a regular file when it is opened, and reports the ``directus_files`` rows whose bytes it therefore
lacks. A restore counts a symlink or special file in the target as a file that differs (at a name it writes) or
an extra (elsewhere), replaces or removes the entry itself, never what it points at, and first removes the
temporary files that an interrupted restore left.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import hashlib
import json
import os
import re
import threading
import weakref

from ansible_collections.cairncms.ops.plugins.module_utils import _relocate
from ansible_collections.cairncms.ops.plugins.module_utils._common import (
    CHUNK, CairnError, HashingReader, HashingWriter, Timer, iso, utc_now)
from ansible_collections.cairncms.ops.plugins.module_utils._db import select_backend as select_database
from ansible_collections.cairncms.ops.plugins.module_utils._fs import printable
from ansible_collections.cairncms.ops.plugins.module_utils._manifest import artifacts, blobs_encrypted, part
from ansible_collections.cairncms.ops.plugins.module_utils._storage import select_backend
from ansible_collections.cairncms.ops.plugins.module_utils._storage._base import (
    ObjectMissing, ObjectNotRegular, regenerable)

INVENTORY = 'files.jsonl'
PARALLEL = 8  # transfers at a time (cairn_storage_parallel)
EXAMPLES = 5
# What a backup reports about the uploads it did not capture, in its result and in the manifest.
UNTRUSTED = ('irregular_files', 'swapped_files', 'missing_files')


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
    """The file inventory of a restore point, checked against the manifest. Read once per repository object and
    inventory checksum: the plan, the restore and the checks of one run share the rows that were checked (a new
    list each time; the rows themselves are never changed)."""
    storage = part(manifest, 'files') or {}
    name = storage.get('inventory')
    if not name:
        return []
    expected = next((a for a in artifacts(manifest) if a['path'] == name), None)
    key = (instance, manifest['id'], name, expected and expected['sha256'])
    with _INVENTORIES_LOCK:
        known = _INVENTORIES.get(repository, {}).get(key)
    if known is not None:
        return list(known)
    rows = _read_inventory(repository, instance, manifest, name, expected)
    with _INVENTORIES_LOCK:
        _INVENTORIES.setdefault(repository, {})[key] = rows
    return list(rows)


_INVENTORIES = weakref.WeakKeyDictionary()  # {repository: {(instance, point, artifact, sha256): rows}}
_INVENTORIES_LOCK = threading.Lock()


def _read_inventory(repository, instance, manifest, name, expected):
    with repository.open_artifact(instance, manifest['id'], name) as handle:
        reader = HashingReader(handle)
        data = reader.read()
    if expected is None or reader.sha256 != expected['sha256']:
        raise CairnError('the file inventory %s of restore point %s fails its checksum; the repository copy '
                         'is damaged' % (name, manifest['id']))
    try:
        rows = [json.loads(line) for line in data.decode('utf-8').splitlines() if line.strip()]
        for row in rows:
            _check_row(row)
    except ValueError as exc:
        raise CairnError('the file inventory %s of restore point %s is not an inventory this version can use (%s); '
                         'the restore point is damaged or forged' % (name, manifest['id'], exc))
    return rows


_SHA256 = re.compile(r'^[0-9a-f]{64}$')
_MD5 = re.compile(r'^[0-9a-f]{32}$')


def _check_row(row):
    """One inventory row of the right shape: what restores do with it must stay inside the target. (Runs once per
    file of a restore point: the common case is tested first and cheaply.)"""
    if type(row) is not dict:  # pylint: disable=unidiomatic-typecheck
        raise ValueError('a row is not an object')
    name, size, sha, md5, mtime = (row.get('filename_disk'), row.get('size'), row.get('sha256'), row.get('md5'),
                                   row.get('mtime_ns'))
    if type(row.get('location')) is not str or type(name) is not str or not name or name[0] == '/' \
            or '\0' in name or ('..' in name and '..' in name.split('/')):  # pylint: disable=unidiomatic-typecheck
        raise ValueError('row %r does not name a location and a relative file' % (str(row)[:80],))
    if type(size) is not int or size < 0:  # pylint: disable=unidiomatic-typecheck
        raise ValueError('row %s has no valid size' % printable(name))
    if type(sha) is not str or not _SHA256.match(sha):  # pylint: disable=unidiomatic-typecheck
        raise ValueError('row %s has no valid sha256' % printable(name))
    if md5 is not None and (type(md5) is not str or not _MD5.match(md5)):  # pylint: disable=unidiomatic-typecheck
        raise ValueError('row %s has a malformed md5' % printable(name))
    if mtime is not None and type(mtime) is not int:  # pylint: disable=unidiomatic-typecheck
        raise ValueError('row %s has a malformed mtime_ns' % printable(name))


def _previous(repository, instance, warnings):
    """The inventory of the newest usable restore point, by (location, filename_disk): what a backup may take
    over unread. Newer points that cannot be used are passed over, each with a line in ``warnings``."""
    manifests, damaged = repository.scan(instance)
    base = manifests[-1] if manifests else None
    for bad in damaged:
        if base is None or bad['id'] > base['id']:
            warnings.append('restore point %s cannot be used as the base of this backup (%s); %s' % (
                bad['id'], bad['problem'], 'restore point %s is' % base['id'] if base else 'every file is read again'))
    if base is None or blobs_encrypted(base) != repository.crypto.encrypts:
        return {}  # nothing, or the other store: nothing to take over
    try:
        rows = read_inventory(repository, instance, base)
    except CairnError as exc:
        warnings.append('restore point %s cannot be used as the base of this backup (%s); every file is read again'
                        % (base['id'], exc.message))
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
    base_warnings = []
    previous = {} if checksum else _previous(repository, instance, base_warnings)
    rows, summaries, copies, listed = [], [], [], {}
    for location in _selected(config, locations):
        backend = select_backend(location)
        entries = list(backend.list())
        irregular = backend.irregular()
        listed[location.name] = (backend, {backend.address(entry.name) for entry in entries}, dict(irregular))
        skip = set() if include_regenerable else regenerable([entry.name for entry in entries])
        summary = {'name': location.name, 'driver': location.driver, 'files': 0, 'bytes': 0,
                   'transferred_files': 0, 'transferred_bytes': 0, 'reused_files': 0,
                   'stored_bytes': 0, 'skipped_regenerable': len(skip), 'irregular_files': len(irregular),
                   'swapped_files': 0}
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
    listed_at = iso(utc_now())  # the file listing ends: files changed after it are not in this restore point
    swapped = {}  # id(row) -> (row, what it was when opened)

    def copy(job):
        backend, row, summary = job
        try:
            row['sha256'], row['md5'], row['size'], stored = _store(repository, instance, backend,
                                                                    row['filename_disk'], encrypted)
        except ObjectNotRegular as exc:  # a regular file when listed, a symlink (or a FIFO...) when opened
            with counting:
                swapped[id(row)] = (row, exc.kind)
                summary['files'] -= 1
                summary['swapped_files'] += 1
            return
        with counting:
            summary['stored_bytes'] += stored

    counting = threading.Lock()
    if not check_mode:
        each(copy, copies, parallel)
    rows = [row for row in rows if id(row) not in swapped]
    for _backend, row, summary in copies:  # the size read, which may differ from the listing's
        if id(row) in swapped:
            continue
        summary['transferred_files'] += 1
        summary['transferred_bytes'] += row['size']
        summary['bytes'] += row['size']
    result = {'changed': not check_mode, 'direction': 'backup', 'locations': summaries,
              'files': len(rows), 'bytes': sum(row['size'] for row in rows),
              'transferred': sum(s['transferred_files'] for s in summaries),
              'transferred_bytes': sum(s['transferred_bytes'] for s in summaries),
              'reused': sum(s['reused_files'] for s in summaries),
              'skipped_regenerable': sum(s['skipped_regenerable'] for s in summaries), 'warnings': base_warnings}
    _report_untrusted(result, listed, swapped.values())
    _report_missing(result, config, listed, swapped.values(), bool(locations))
    if check_mode:
        return result
    rows.sort(key=lambda row: (row['location'], row['filename_disk']))
    with repository.artifact_writer(instance, point_id, INVENTORY) as handle:
        stored = HashingWriter(handle)
        for row in rows:
            stored.write(json.dumps(row, sort_keys=True).encode('utf-8') + b'\n')
    part = {'inventory': INVENTORY, 'inventory_size_bytes': stored.size, 'inventory_sha256': stored.sha256,
            'locations': summaries, 'files': result['files'], 'bytes': result['bytes'],
            'include_regenerable': include_regenerable, 'duration_s': timer.seconds, 'encrypted': encrypted,
            'listed_at': listed_at}
    part.update({key: result[key] for key in UNTRUSTED if key in result})
    repository.write_part(instance, point_id, 'storage', part)
    result['duration_s'] = timer.seconds
    return result


def _found(items):
    """``{count, examples}`` of ``(location, name, what)`` items, the examples shown as ``location:name (what)``."""
    items = sorted(items)
    return {'count': len(items), 'examples': ['%s:%s (%s)' % (location, printable(name), what)
                                              for location, name, what in items[:EXAMPLES]]}


def _report_untrusted(result, listed, swapped):
    """Symlinks and special files in the uploads (not followed), and files swapped for one while the backup
    read them (not captured): result keys and warnings."""
    result['irregular_files'] = _found((location, name, kind) for location, (_b, _r, irregular) in listed.items()
                                       for name, kind in irregular.items())
    result['swapped_files'] = _found((row['location'], row['filename_disk'], kind) for row, kind in swapped)
    if result['irregular_files']['count']:
        result['warnings'].append(
            '%d symlink(s) or special file(s) in the storage locations were not followed and are not in the restore '
            'point: %s. CairnCMS writes only regular files there; find out what made them'
            % (result['irregular_files']['count'], ', '.join(result['irregular_files']['examples'])))
    if result['swapped_files']['count']:
        result['warnings'].append(
            '%d file(s) were regular files when listed but a symlink or special file when read, and are not in the '
            'restore point: %s. Something replaced them during the backup; find out what'
            % (result['swapped_files']['count'], ', '.join(result['swapped_files']['examples'])))


def _report_missing(result, config, listed, swapped, some_locations):
    """``directus_files`` rows of the locations backed up whose bytes are not a regular file there. Advisory: a
    database that cannot be read is a warning, never a failed backup."""
    try:
        records = select_database(config.database()).files()
    except Exception as exc:  # any failure of this check is reported, never fatal
        result['warnings'].append('the directus_files rows were not compared with the storage locations: %s'
                                  % (exc.message if isinstance(exc, CairnError) else
                                     '%s: %s' % (exc.__class__.__name__, exc)))
        return
    replaced = {(row['location'], row['filename_disk']): kind for row, kind in swapped}
    missing = []
    for record in records:
        location, name = record['storage'], record['filename_disk']
        if location not in listed:
            if not some_locations:
                missing.append((location, name or '', 'location not in STORAGE_LOCATIONS'))
            continue
        backend, regular, irregular = listed[location]
        if not name:
            missing.append((location, '', 'row %s has no filename_disk' % record['id']))
        elif (location, name) in replaced:
            missing.append((location, name, 'replaced by a %s during the backup' % replaced[(location, name)]))
        elif backend.address(name) not in regular:
            missing.append((location, name, _absent(name, irregular)))
    result['missing_files'] = _found(missing)
    if missing:
        result['warnings'].append(
            '%d directus_files row(s) have no regular file of their bytes in their storage location, so the restore '
            'point cannot hold them: %s. The CMS cannot serve these files either; restore them from an older restore '
            'point, or remove the rows' % (len(missing), ', '.join(result['missing_files']['examples'])))


def _parents(name):
    """The directories of a ``/``-separated name, outermost first: ``a/b/c`` -> ``a``, ``a/b``."""
    parts = name.split('/')
    return ['/'.join(parts[:index]) for index in range(1, len(parts))]


def _absent(name, irregular):
    """Why a listing has no regular file ``name``: what stands there or on the way, else ``missing``."""
    if name in irregular:
        return 'a %s' % irregular[name]
    for parent in _parents(name):
        if parent in irregular:
            return 'below %s, a %s' % (printable(parent), irregular[parent])
    return 'missing'


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
                 parallel=PARALLEL, keep_others=False):
    """Compare a target with an inventory; no change. Returns one plan per target location.

    ``locations`` are restore point location names; ``location_map`` sends the files of a restore point
    location to another location of the target (unmapped names stay), under the same ``filename_disk``. With
    ``keep_others`` (a content move adding its files) the target's other files are not the restore's business."""
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
        irregular = dict(backend.irregular())  # symlinks, special files: never read, never followed
        wanted = {row['filename_disk']: row for name in names_in for row in by_location.get(name, [])}
        plan = {'location': ','.join(names_in), 'target': target, 'backend': backend, 'write': [],
                'unchanged': [], 'differ': [], 'extra': [], 'read': 0, 'irregular': sorted(irregular.items()),
                'leftovers': backend.leftovers(), 'blockers': []}
        equal, plan['read'] = _equal(backend, present, wanted, parallel)
        for filename, row in sorted(wanted.items()):
            if filename in irregular:  # present, and not the restore point's file: an overwrite
                plan['write'].append(row)
                plan['differ'].append(filename)
            elif filename not in present:
                plan['write'].append(row)
            elif equal[filename]:
                plan['unchanged'].append(row)
            else:
                plan['write'].append(row)
                plan['differ'].append(filename)
        occupied = set(present) | set(irregular)
        if backend.has_directories:
            plan['blockers'] = _shape(location.name, wanted, occupied)
        extras = sorted(occupied - set(wanted))
        harmless = set() if (replace or include_regenerable) else (
            regenerable(list(present)) & set(extras)) - set(plan['blockers'])
        plan['extra'] = [] if keep_others else [filename for filename in extras if filename not in harmless]
        plans.append(plan)
    return plans


def _shape(location, wanted, occupied):
    """For a location of directories: the names in the target that stand where the restore point needs a
    directory (a symlink, a file), to be removed before staging. A file of the restore point where the target,
    or the restore point itself, has a directory is refused, since a file cannot replace a directory."""
    needed = {parent for filename in wanted for parent in _parents(filename)}
    clash = sorted(set(wanted) & needed)
    if clash:
        raise CairnError('the restore point has both a file and a directory of files named %s, which storage location '
                         '%s, a directory on disk, cannot hold; restore it into an object store location '
                         '(location_map); nothing was changed' % (printable(clash[0]), location))
    directories = {parent for filename in occupied for parent in _parents(filename)}
    clash = sorted(set(wanted) & directories)
    if clash:
        raise CairnError('%d file(s) of the restore point, %s for one, stand where storage location %s has a directory '
                         '(of other files); move the directory away, then run the restore again; nothing was changed'
                         % (len(clash), printable(clash[0]), location))
    return sorted(needed & occupied)


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
        try:
            equal[filename] = backend.sha256(filename) == wanted[filename]['sha256']
        except ObjectNotRegular:  # swapped for a symlink since the listing: never read through it
            equal[filename] = False
    each(hashed, compare, parallel)
    return equal, len(compare)


def _describe(plans):
    return [{'location': plan['location'], 'target': plan['target'], 'write': len(plan['write']),
             'unchanged': len(plan['unchanged']), 'read_to_compare': plan['read'],
             'overwrite': len(plan['differ']), 'remove': len(plan['extra']),
             'irregular_files': len(plan['irregular']), 'leftovers': len(plan['leftovers']),
             'examples': {'overwrite': [printable(name) for name in plan['differ'][:EXAMPLES]],
                          'remove': [printable(name) for name in plan['extra'][:EXAMPLES]]}}
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


_PRIORITY = threading.local()


def _lower_priority(niceness):
    """Run the calling worker thread at ``niceness`` (Linux sets it per thread); once per thread, never in the
    main thread, which goes on after the workers end."""
    if getattr(_PRIORITY, 'set', False) or threading.current_thread() is threading.main_thread():
        return
    _PRIORITY.set = True
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), niceness)
    except (OSError, AttributeError):
        pass  # no per-thread priority here: the staging just competes as before


def restore(config, repository, source_instance, manifest, replace=False, locations=None,
            include_regenerable=False, check_mode=False, location_map=None, parallel=PARALLEL, before_commit=None,
            plans=None, witness=None, niceness=0):
    """Stage every file of the restore point beside its place in the target (checked against its sha256), then
    put them all in place and remove what the restore point does not have. ``before_commit()`` runs between the
    two (the database restore beside this one, waited for): when it raises, every staged file is removed and
    nothing in the target has changed. ``plans``: what ``plan_restore`` returned for the same arguments moments
    ago in this run (its check-mode call), so that the target is not listed and compared a second time.
    ``witness``: a dict that receives, per ``(location, filename_disk)`` written, the storage's fingerprint of
    the file put in place (whose bytes were hashed as they were written), for the verification after.
    ``niceness``: the threads that stage the files run at this nice level (a database loading beside them, the
    longer step, gets the CPU first)."""
    timer = Timer()
    if plans is None:
        inventory = read_inventory(repository, source_instance, manifest)
        plans = plan_restore(config, inventory, replace, locations, include_regenerable, location_map, parallel)
    summary = _describe(plans)
    irregular = _found((plan['target'], name, kind) for plan in plans for name, kind in plan['irregular'])
    conflicts = sum(len(plan['differ']) + len(plan['extra']) for plan in plans)
    if conflicts and not replace:
        raise CairnError('the target storage is not empty and differs from restore point %s (%d file(s) would be '
                         'overwritten or removed%s); nothing was changed. Set replace (cairn_restore_replace: '
                         'true) to make it match the restore point' % (
                             manifest['id'], conflicts, ', among them %d symlink(s) or special file(s), which are '
                             'never followed: %s' % (irregular['count'], ', '.join(irregular['examples']))
                             if irregular['count'] else ''), locations=summary, irregular_files=irregular)
    leftovers = [(plan['backend'], name) for plan in plans for name in plan['leftovers']]
    changes = sum(len(plan['write']) + len(plan['extra']) for plan in plans) + len(leftovers)
    result = {'changed': bool(changes), 'direction': 'restore', 'restore_point': manifest['id'],
              'locations': summary, 'transferred': sum(len(plan['write']) for plan in plans),
              'transferred_bytes': sum(row['size'] for plan in plans for row in plan['write']),
              'removed': sum(len(plan['extra']) for plan in plans),
              'unchanged': sum(len(plan['unchanged']) for plan in plans),
              'irregular_files': irregular, 'leftovers_removed': len(leftovers), 'warnings': []}
    if irregular['count']:
        result['warnings'].append(
            'the target storage holds %d symlink(s) or special file(s), which are never followed or read: %s. They '
            'count as files that differ from the restore point or are not in it; they are replaced or removed (the '
            'link itself, never what it points at)' % (irregular['count'], ', '.join(irregular['examples'])))
    if check_mode or not changes:
        return result
    # Before staging: our own temporary files that an interrupted restore left, and (with replace, which the
    # plan needs here) what stands where the restore point needs a directory.
    for backend, name in leftovers:
        try:
            backend.delete(name)
        except ObjectMissing:
            pass
    blockers = [(plan['backend'], name) for plan in plans for name in plan['blockers']]
    for backend, name in blockers:
        backend.delete(name)
    encrypted = blobs_encrypted(manifest)
    staged, committed = [], []
    jobs = [(plan['backend'], row) for plan in plans for row in plan['write']]

    def stage(job):
        if niceness:
            _lower_priority(niceness)
        staged.append((job[1]['filename_disk'], _stage(repository, source_instance, job[0], job[1], encrypted),
                       job[0]))

    def commit(item):
        item[1].commit()
        committed.append(item[0])
        if witness is not None and item[1].placed is not None:
            witness[(item[2].location.name, item[0])] = item[1].placed
    try:
        each(stage, jobs, parallel)
        if before_commit is not None:
            before_commit()
        with contextlib.ExitStack() as batches:
            for plan in plans:
                batches.enter_context(plan['backend'].batch())
            for plan in plans:  # as each backend does it best: several at a time, or in turn
                each(commit, [item for item in staged if item[2] is plan['backend']],
                     parallel if plan['backend'].parallel_commits else 1)
    except CairnError as exc:
        for _name, write, _backend in staged:
            write.discard()
        if not committed:
            raise
        # An object store has no rename: what was uploaded before the failure stays in place.
        done = ', '.join(printable(name) for name in sorted(committed)[:EXAMPLES])
        raise CairnError('%s; %d of %d file(s) were already put in place (%s), the others are unchanged; run the '
                         'restore again to complete it' % (exc.message, len(committed), len(staged), done))
    except BaseException:
        for _name, write, _backend in staged:
            write.discard()
        raise
    each(lambda job: job[0].delete(job[1]), [(plan['backend'], name) for plan in plans for name in plan['extra']
                                             if name not in plan['blockers']], parallel)
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
