# -*- coding: utf-8 -*-
# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Part kind ``files``: the file bytes of every storage location (private).

Its artifact is the file inventory (``files.jsonl``: location, name, size, sha256 per file); the bytes are blobs
shared by the instance's restore points, named by their sha256. Made by ``_sync.backup``, restored by
``_sync.restore``, checked blob by blob by ``_verify.check_repository``.
"""

from __future__ import annotations

KIND = 'files'
STAGED = 'storage'
REQUIRED = True
DETAILS = ('locations', 'files', 'bytes', 'include_regenerable', 'encrypted', 'duration_s', 'irregular_files',
           'swapped_files', 'missing_files', 'listed_at')


def _producer():
    from ansible_collections.cairncms.ops.plugins.module_utils._manifest import COLLECTION_VERSION
    return {'name': 'cairncms.ops', 'version': COLLECTION_VERSION}


def describe(staged):
    from ansible_collections.cairncms.ops.plugins.module_utils._parts import artifact
    details = {key: staged[key] for key in DETAILS if key in staged}
    # The inventory itself is plain JSON lines (names and checksums); the blobs it names are encrypted or not.
    return dict(details, kind=KIND, producer=_producer(),
                artifacts=[artifact(staged['inventory'], staged['inventory_size_bytes'], staged['inventory_sha256'],
                                    False)])


def legacy(manifest):
    section = manifest.get('storage')
    if not isinstance(section, dict):
        return None
    name = section.get('inventory')
    entry = next((dict(a) for a in manifest.get('artifacts') or () if a.get('path') == name), None) if name else None
    details = {key: section[key] for key in DETAILS if key in section}
    return dict(details, kind=KIND, producer={'name': 'cairncms.ops', 'version': None},
                artifacts=[entry] if entry else [])


def problem(part):
    if len(part['artifacts']) > 1:
        return 'its files part has %d artifacts, not one inventory' % len(part['artifacts'])
    if part['artifacts'] and part['artifacts'][0]['encrypted']:
        return 'its file inventory is marked encrypted; inventories are stored in plaintext'
    if part.get('locations') is not None and not isinstance(part['locations'], list):
        return 'its files locations are not a list'
    return None


def view(part):
    return dict(part, inventory=part['artifacts'][0]['path'] if part.get('artifacts') else None)


def summary(part):
    return {'files': part.get('files'), 'file_bytes': part.get('bytes')}


def produce(run):
    return run.files()


def restore(config, repository, instance, manifest, **options):
    """Put the files of the inventory into their storage locations (``_sync.restore``)."""
    from ansible_collections.cairncms.ops.plugins.module_utils import _sync
    return _sync.restore(config, repository, instance, manifest, **options)


def check(report, repository, instance, manifest, part):
    """The blobs are checked with the artifacts (``_verify.check_repository``)."""
    return None
