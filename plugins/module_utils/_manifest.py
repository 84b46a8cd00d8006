# -*- coding: utf-8 -*-
# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The restore point manifest (private); the format is docs/restore-point-format.md."""

from __future__ import annotations

import platform
import re
import socket

from ansible_collections.cairncms.ops.plugins.module_utils import _parts
from ansible_collections.cairncms.ops.plugins.module_utils._common import CairnError, iso, parse_time, utc_now

FORMAT = 'cairncms.ops/restore-point'
FORMAT_VERSION = 2          # what this version writes
READABLE_VERSIONS = (1, 2)  # what it reads: format 1 is the layout of releases before typed parts
COLLECTION_VERSION = '0.1.0'
CMS_FACTS = ('name', 'version', 'source', 'window')  # what a backup may record of the CMS beside its migration level


class DamagedManifest(CairnError):
    """A manifest that cannot be used: unreadable, not JSON, the wrong shape, or signed wrongly."""


def build(run, staged, instance_facts, artifact_stats, cms=None):
    """Assemble the (format 2) manifest of a staged run.

    ``run`` is what ``begin`` recorded, ``staged`` what each step staged (by the staged name of its part kind:
    ``database``, ``storage``, ``secrets``, ``schema``, ``config``), ``instance_facts`` the instance's identity,
    ``artifact_stats`` a callable giving the os.stat of a staged artifact, ``cms`` what the backup found of the CMS
    (``name``, ``version``, ``source`` of ``_cms.install.describe`` and the ``window`` it ran in), recorded
    beside the migration level when given. Each part kind's file describes its own part (``_parts``).
    """
    entries = []
    for kind_name, module in _parts.registry().items():
        record = staged.get(module.STAGED)
        if not record and module.REQUIRED:
            raise CairnError('restore point %s has no %s part; its step did not run (%s)'
                             % (run['id'], kind_name, {'database': 'cairn_db_dump',
                                                       'files': 'cairn_storage_sync, direction: backup'}.get(
                                                           kind_name, 'the backup')))
        if record or kind_name == 'secrets':
            entries.append(module.describe(record))
    for entry in entries:
        for artifact in entry['artifacts']:
            stat = artifact_stats(artifact['path'])
            # An encrypted artifact is larger on disk than the content its size and sha256 describe.
            if stat is None or (stat.st_size != artifact['size_bytes'] and not artifact['encrypted']):
                raise CairnError('artifact %s of restore point %s is missing or has the wrong size; the run is '
                                 'incomplete and cannot be finalized' % (artifact['path'], run['id']))
    database = next(entry for entry in entries if entry['kind'] == 'database')
    files = next(entry for entry in entries if entry['kind'] == 'files')
    secrets = next((entry for entry in entries if entry['kind'] == 'secrets'), {})
    return {
        'format': FORMAT,
        'format_version': FORMAT_VERSION,
        'id': run['id'],
        'instance': run['instance'],
        'started_at': run['started_at'],
        'finished_at': iso(utc_now()),
        'producer': {'collection': 'cairncms.ops', 'version': COLLECTION_VERSION,
                     'host': socket.gethostname(), 'python': platform.python_version()},
        'cms': dict({'key': instance_facts.get('key'), 'public_url': instance_facts.get('public_url'),
                     'instance_dir': instance_facts.get('instance_dir'),
                     'migration_level': database.get('migration_level')},
                    **{key: (cms or {})[key] for key in CMS_FACTS if (cms or {}).get(key) is not None}),
        'capture_skew_s': _skew(database.get('snapshot_at'), files.get('listed_at')),
        'encryption': (staged['database'].get('encryption') or secrets.get('encryption')),
        'parts': entries,
    }


def _skew(snapshot_at, listed_at):
    """Seconds from the database snapshot to the end of the file listing: how far apart in time the two halves of
    the restore point were taken (a file uploaded in between is in the listing, its row is not in the dump; a row
    added in between has no file). None when a part did not record its time (made by an older release)."""
    if not snapshot_at or not listed_at:
        return None
    return round((parse_time(listed_at) - parse_time(snapshot_at)).total_seconds(), 3)


def check(manifest):
    """Refuse a manifest this version cannot read."""
    if not isinstance(manifest, dict) or manifest.get('format') != FORMAT:
        raise CairnError('not a cairncms.ops restore point manifest (format %r)'
                         % (manifest.get('format') if isinstance(manifest, dict) else type(manifest).__name__))
    version = manifest.get('format_version')
    if isinstance(version, bool) or version not in READABLE_VERSIONS:
        newer = isinstance(version, int) and not isinstance(version, bool) and version > FORMAT_VERSION
        raise CairnError('restore point %s has format version %s; this version of cairncms.ops reads versions %s%s'
                         % (manifest.get('id'), version, ', '.join(str(v) for v in READABLE_VERSIONS),
                            ' (it was made by a newer release: upgrade the collection to read it)' if newer else ''))
    return manifest


# ---------------------------------------------------------------------------------------------------------------
# Reading: the one place that knows both layouts. Readers ask for parts and artifacts, never for sections.
# ---------------------------------------------------------------------------------------------------------------

def parts(manifest):
    """The part entries of a (checked) manifest, in order; a format-1 manifest's sections read as parts."""
    if _legacy(manifest):
        found = []
        for module in _parts.registry().values():
            entry = module.legacy(manifest)
            if entry is not None:
                found.append(entry)
        return found
    return manifest.get('parts') or []


def part(manifest, kind_name):
    """The part of kind ``kind_name`` as readers use it (its main artifact named, as ``artifact`` or
    ``inventory``), or None when the restore point has none."""
    for entry in parts(manifest):
        if entry.get('kind') == kind_name:
            return _parts.kind(kind_name).view(entry)
    return None


def artifacts(manifest):
    """Every artifact of the restore point (``path``, ``size_bytes``, ``sha256``, ``encrypted``, and ``kind``, the
    kind of its part)."""
    if _legacy(manifest):
        return [dict(entry, kind=_V1_KINDS.get(entry.get('kind'), entry.get('kind')))
                for entry in manifest.get('artifacts') or []]
    return [dict(entry, kind=section['kind']) for section in manifest.get('parts') or []
            for entry in section.get('artifacts') or []]


_V1_KINDS = {'file-inventory': 'files'}


def _legacy(manifest):
    """Whether ``manifest`` has the format-1 layout (sections ``database``, ``storage``, ``secrets``)."""
    return manifest.get('format_version') == 1 or 'parts' not in manifest


def blobs_encrypted(manifest):
    """Whether the file blobs of the restore point are the encrypted ones (``blobs-age/``)."""
    return bool((part(manifest, 'files') or {}).get('encrypted'))


_SHA256 = re.compile(r'^[0-9a-f]{64}$')


def _artifact_problem(artifact, paths):
    if not isinstance(artifact, dict):
        return 'an artifact entry is not an object'
    path, size, sha = artifact.get('path'), artifact.get('size_bytes'), artifact.get('sha256')
    if not isinstance(path, str) or not path or path.startswith('/') or \
            any(piece in ('', '.', '..') for piece in path.split('/')):
        return 'artifact path %r is not a relative path' % (path,)
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        return 'artifact %s has no valid size_bytes' % path
    if not isinstance(sha, str) or not _SHA256.match(sha):
        return 'artifact %s has no valid sha256' % path
    if not isinstance(artifact.get('encrypted', False), bool):
        return 'artifact %s has a non-boolean encrypted flag' % path
    if path in paths:
        return 'artifact %s is listed twice' % path
    paths.add(path)
    return None


def _v1_problem(manifest):
    """Format 1: the sections name artifacts that are among the artifact list."""
    for key, kind in (('artifacts', list), ('database', dict), ('storage', dict)):
        if key not in manifest:
            return 'its %s is missing' % key
        if not isinstance(manifest[key], kind):
            return 'its %s is %s, not %s' % (key, repr(manifest[key])[:40], {list: 'a list', dict: 'an object'}[kind])
    if manifest.get('secrets') is not None and not isinstance(manifest['secrets'], dict):
        return 'its secrets is not an object'
    paths = set()
    for artifact in manifest['artifacts']:
        problem = _artifact_problem(artifact, paths)
        if problem:
            return problem
    database, storage = manifest['database'], manifest['storage']
    if not isinstance(database.get('artifact'), str) or database['artifact'] not in paths:
        return 'its database artifact %s is not among its artifacts' % database.get('artifact')
    if storage.get('inventory') is not None and storage['inventory'] not in paths:
        return 'its file inventory %s is not among its artifacts' % storage['inventory']
    secrets = manifest.get('secrets') or {}
    if secrets.get('captured') and secrets.get('artifact') not in paths:
        return 'its secrets bundle %s is not among its artifacts' % secrets.get('artifact')
    return None


def _parts_problem(manifest):
    """Format 2: every part of a kind this version knows, of the right shape, each required kind once."""
    entries = manifest.get('parts')
    if not isinstance(entries, list):
        return 'its parts are %s, not a list' % ('missing' if entries is None else repr(entries)[:40])
    paths, seen = set(), set()
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get('kind'), str):
            return 'a part entry is not an object with a kind'
        try:
            module = _parts.kind(entry['kind'])
        except CairnError as exc:
            return exc.message
        if entry['kind'] in seen:
            return 'it has two %s parts' % entry['kind']
        seen.add(entry['kind'])
        if not isinstance(entry.get('artifacts'), list):
            return 'its %s part has no artifact list' % entry['kind']
        for artifact in entry['artifacts']:
            problem = _artifact_problem(artifact, paths)
            if problem:
                return problem
        if entry.get('producer') is not None and not isinstance(entry['producer'], dict):
            return 'the producer of its %s part is not an object' % entry['kind']
        problem = module.problem(entry)
        if problem:
            return problem
    for kind_name, module in _parts.registry().items():
        if module.REQUIRED and kind_name not in seen:
            return 'it has no %s part' % kind_name
    return None


def _problem(manifest, point_id):
    """What is wrong with a parsed manifest (its shape, not its checksums), or None. Everything a reader of
    this version uses is checked here, so that a damaged or forged manifest is one clear error, never a
    traceback further on."""
    if not isinstance(manifest, dict):
        return 'it is a JSON %s, not an object' % type(manifest).__name__
    try:
        check(manifest)
    except CairnError as exc:
        return exc.message
    if point_id is not None and manifest.get('id') != point_id:
        return 'its id is %r, but it is stored as restore point %s' % (manifest.get('id'), point_id)
    for key in ('id', 'instance', 'started_at'):
        if not isinstance(manifest.get(key), str):
            return 'its %s is %s' % (key, 'missing' if key not in manifest else 'not a string')
    for key in ('cms', 'encryption'):
        if manifest.get(key) is not None and not isinstance(manifest[key], dict):
            return 'its %s is not an object' % key
    try:
        parse_time(manifest['started_at'])
    except ValueError:
        return 'its started_at %r is not a time' % manifest['started_at'][:40]
    return _v1_problem(manifest) if manifest['format_version'] == 1 else _parts_problem(manifest)


def validate(manifest, where, point_id=None):
    """``manifest`` when a reader of this version can use it, else a CairnError naming ``where`` it is stored
    and what is wrong."""
    problem = _problem(manifest, point_id)
    if problem:
        raise DamagedManifest('the manifest %s is damaged or not a restore point of this format: %s'
                              % (where, problem))
    return manifest


def summary(manifest):
    """The short description of a restore point that listings return."""
    cms = manifest.get('cms') or {}
    found = parts(manifest)
    described = {}
    for entry in found:
        described.update(_parts.kind(entry['kind']).summary(entry))
    return {
        'id': manifest.get('id'),
        'instance': manifest.get('instance'),
        'started_at': manifest.get('started_at'),
        'finished_at': manifest.get('finished_at'),
        'format_version': manifest.get('format_version'),
        'vendor': described.get('vendor'),
        'migration_level': cms.get('migration_level'),
        'cms_name': _short_text(cms.get('name')),
        'cms_version': _short_text(cms.get('version')),
        'size_bytes': sum(a['size_bytes'] for a in artifacts(manifest)),
        'database_bytes': sum(a['size_bytes'] for a in artifacts(manifest) if a['kind'] == 'database'),
        'files': described.get('files'),
        'file_bytes': described.get('file_bytes'),
        'secrets_captured': described.get('secrets_captured', False),
        'schema_captured': described.get('schema_captured', False),
        'config_captured': described.get('config_captured', False),
        'parts': [entry['kind'] for entry in found if entry.get('captured', True)],
        'encryption': (manifest.get('encryption') or {}).get('scheme', 'none'),
    }


def _short_text(value, limit=64):
    """A text of a manifest for a listing: None unless it is a string, cut to ``limit`` characters."""
    return value[:limit] if isinstance(value, str) else None
