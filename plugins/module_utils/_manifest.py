# -*- coding: utf-8 -*-
# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The restore point manifest (private); the format is docs/restore-point-format.md."""

from __future__ import annotations

import platform
import re
import socket

from ansible_collections.cairncms.ops.plugins.module_utils._common import CairnError, iso, parse_time, utc_now

FORMAT = 'cairncms.ops/restore-point'
FORMAT_VERSION = 1
COLLECTION_VERSION = '0.1.0'
CMS_FACTS = ('name', 'version', 'source', 'window')  # what a backup may record of the CMS beside its migration level


class DamagedManifest(CairnError):
    """A manifest that cannot be used: unreadable, not JSON, the wrong shape, or signed wrongly."""


def build(run, parts, instance_facts, artifact_stats, cms=None):
    """Assemble the manifest of a staged run.

    ``run`` is what ``begin`` recorded, ``parts`` what each step wrote
    (``database``, ``storage``), ``instance_facts`` the instance's identity,
    ``artifact_stats`` a callable giving the os.stat of a staged artifact,
    ``cms`` what the backup found of the CMS (``name``, ``version``, ``source``
    of ``_cms.install.describe`` and the ``window`` it ran in), recorded
    beside the migration level when given.
    """
    database = parts.get('database')
    if not database:
        raise CairnError('restore point %s has no database dump; run cairn_db_dump before finalizing'
                         % run['id'])
    storage = parts.get('storage')
    if not storage:
        raise CairnError('restore point %s has no file inventory; run cairn_storage_sync (direction: backup) '
                         'before finalizing' % run['id'])
    artifacts = [
        {'path': database['artifact'], 'kind': 'database', 'size_bytes': database['size_bytes'],
         'sha256': database['sha256'], 'encrypted': bool(database.get('encrypted'))},
        {'path': storage['inventory'], 'kind': 'file-inventory', 'size_bytes': storage['inventory_size_bytes'],
         'sha256': storage['inventory_sha256'], 'encrypted': False},
    ]
    secrets = parts.get('secrets') or {'captured': False, 'reason': 'the secrets were not captured in this run'}
    if secrets.get('captured'):
        artifacts.append({'path': secrets['artifact'], 'kind': 'secrets', 'size_bytes': secrets['size_bytes'],
                          'sha256': secrets['sha256'], 'encrypted': True})
    for artifact in artifacts:
        stat = artifact_stats(artifact['path'])
        # An encrypted artifact is larger on disk than the content its size and sha256 describe.
        if stat is None or (stat.st_size != artifact['size_bytes'] and not artifact['encrypted']):
            raise CairnError('artifact %s of restore point %s is missing or has the wrong size; the run is '
                             'incomplete and cannot be finalized' % (artifact['path'], run['id']))
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
        'database': {key: database[key] for key in (
            'vendor', 'client', 'server_version', 'server_flavor', 'dump_tool', 'dump_tool_version', 'jobs',
            'format', 'compression', 'artifact', 'raw_size_bytes', 'raw_sha256', 'row_counts',
            'row_counts_consistent', 'scope', 'migration_level', 'duration_s', 'snapshot_at') if key in database},
        'storage': {key: storage[key] for key in (
            'inventory', 'locations', 'files', 'bytes', 'include_regenerable', 'encrypted', 'duration_s',
            'irregular_files', 'swapped_files', 'missing_files', 'listed_at')
            if key in storage},
        'capture_skew_s': _skew(database.get('snapshot_at'), storage.get('listed_at')),
        'secrets': secrets,
        'encryption': database.get('encryption') or secrets.get('encryption'),
        'artifacts': artifacts,
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
    if manifest.get('format_version') != FORMAT_VERSION:
        raise CairnError('restore point %s has format version %s; this version of cairncms.ops reads version %d'
                         % (manifest.get('id'), manifest.get('format_version'), FORMAT_VERSION))
    return manifest


_SHA256 = re.compile(r'^[0-9a-f]{64}$')


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
    for key, kind in (('id', str), ('instance', str), ('started_at', str), ('artifacts', list),
                      ('database', dict), ('storage', dict)):
        if key not in manifest:
            return 'its %s is missing' % key
        if not isinstance(manifest[key], kind):
            return 'its %s is %s, not %s' % (key, repr(manifest[key])[:40],
                                             {list: 'a list', dict: 'an object', str: 'a string'}[kind])
    for key in ('secrets', 'cms', 'encryption'):
        if manifest.get(key) is not None and not isinstance(manifest[key], dict):
            return 'its %s is not an object' % key
    try:
        parse_time(manifest['started_at'])
    except ValueError:
        return 'its started_at %r is not a time' % manifest['started_at'][:40]
    paths = set()
    for artifact in manifest['artifacts']:
        if not isinstance(artifact, dict):
            return 'an artifact entry is not an object'
        path, size, sha = artifact.get('path'), artifact.get('size_bytes'), artifact.get('sha256')
        if not isinstance(path, str) or not path or path.startswith('/') or \
                any(part in ('', '.', '..') for part in path.split('/')):
            return 'artifact path %r is not a relative path' % (path,)
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            return 'artifact %s has no valid size_bytes' % path
        if not isinstance(sha, str) or not _SHA256.match(sha):
            return 'artifact %s has no valid sha256' % path
        if not isinstance(artifact.get('encrypted', False), bool):
            return 'artifact %s has a non-boolean encrypted flag' % path
        paths.add(path)
    database, storage = manifest['database'], manifest['storage']
    for key in ('vendor', 'artifact', 'compression'):
        if not isinstance(database.get(key), str):
            return 'its database part has no %s' % key
    if database['artifact'] not in paths:
        return 'its database artifact %s is not among its artifacts' % database['artifact']
    if not isinstance(database.get('row_counts', {}), dict):
        return 'its database row_counts is not an object'
    if storage.get('inventory') is not None and storage['inventory'] not in paths:
        return 'its file inventory %s is not among its artifacts' % storage['inventory']
    secrets = manifest.get('secrets') or {}
    if secrets.get('captured') and secrets.get('artifact') not in paths:
        return 'its secrets bundle %s is not among its artifacts' % secrets.get('artifact')
    scope = database.get('scope')
    if scope is not None and not (isinstance(scope, dict) and isinstance(scope.get('tables'), list)
                                  and all(isinstance(table, str) for table in scope['tables'])):
        return 'its database scope is not a list of tables'
    return None


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
    database = manifest.get('database', {})
    storage = manifest.get('storage', {})
    cms = manifest.get('cms') or {}
    return {
        'id': manifest.get('id'),
        'instance': manifest.get('instance'),
        'started_at': manifest.get('started_at'),
        'finished_at': manifest.get('finished_at'),
        'vendor': database.get('vendor'),
        'migration_level': cms.get('migration_level'),
        'cms_name': _short_text(cms.get('name')),
        'cms_version': _short_text(cms.get('version')),
        'size_bytes': sum(a['size_bytes'] for a in manifest.get('artifacts', [])),
        'files': storage.get('files'),
        'file_bytes': storage.get('bytes'),
        'secrets_captured': (manifest.get('secrets') or {}).get('captured', False),
        'encryption': (manifest.get('encryption') or {}).get('scheme', 'none'),
    }


def _short_text(value, limit=64):
    """A text of a manifest for a listing: None unless it is a string, cut to ``limit`` characters."""
    return value[:limit] if isinstance(value, str) else None
