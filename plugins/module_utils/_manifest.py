# -*- coding: utf-8 -*-
# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The restore point manifest (private); the format is docs/restore-point-format.md."""

from __future__ import annotations

import platform
import socket

from ansible_collections.cairncms.ops.plugins.module_utils._common import CairnError, iso, utc_now

FORMAT = 'cairncms.ops/restore-point'
FORMAT_VERSION = 1
COLLECTION_VERSION = '0.1.0'


def build(run, parts, instance_facts, artifact_stats):
    """Assemble the manifest of a staged run.

    ``run`` is what ``begin`` recorded, ``parts`` what each step wrote
    (``database``, ``storage``), ``instance_facts`` the instance's identity,
    ``artifact_stats`` a callable giving the os.stat of a staged artifact.
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
        'cms': {'key': instance_facts.get('key'), 'public_url': instance_facts.get('public_url'),
                'instance_dir': instance_facts.get('instance_dir'),
                'migration_level': database.get('migration_level')},
        'database': {key: database[key] for key in (
            'vendor', 'client', 'server_version', 'server_flavor', 'dump_tool', 'dump_tool_version', 'jobs',
            'format', 'compression', 'artifact', 'raw_size_bytes', 'raw_sha256', 'row_counts',
            'row_counts_consistent', 'scope', 'migration_level', 'duration_s') if key in database},
        'storage': {key: storage[key] for key in (
            'inventory', 'locations', 'files', 'bytes', 'include_regenerable', 'encrypted', 'duration_s')
            if key in storage},
        'secrets': secrets,
        'encryption': database.get('encryption') or secrets.get('encryption'),
        'artifacts': artifacts,
    }


def check(manifest):
    """Refuse a manifest this version cannot read."""
    if manifest.get('format') != FORMAT:
        raise CairnError('not a cairncms.ops restore point manifest (format %r)' % manifest.get('format'))
    if manifest.get('format_version') != FORMAT_VERSION:
        raise CairnError('restore point %s has format version %s; this version of cairncms.ops reads version %d'
                         % (manifest.get('id'), manifest.get('format_version'), FORMAT_VERSION))
    return manifest


def summary(manifest):
    """The short description of a restore point that listings return."""
    database = manifest.get('database', {})
    storage = manifest.get('storage', {})
    return {
        'id': manifest.get('id'),
        'instance': manifest.get('instance'),
        'started_at': manifest.get('started_at'),
        'finished_at': manifest.get('finished_at'),
        'vendor': database.get('vendor'),
        'migration_level': (manifest.get('cms') or {}).get('migration_level'),
        'size_bytes': sum(a['size_bytes'] for a in manifest.get('artifacts', [])),
        'files': storage.get('files'),
        'file_bytes': storage.get('bytes'),
        'secrets_captured': (manifest.get('secrets') or {}).get('captured', False),
        'encryption': (manifest.get('encryption') or {}).get('scheme', 'none'),
    }
