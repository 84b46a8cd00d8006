# -*- coding: utf-8 -*-
# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Database dump and restore, whatever the vendor (private).

``select_backend`` picks the vendor implementation (one file per vendor);
``dump`` and ``restore`` wrap it with compression, checksums, the manifest
part and the safety rules, once for every vendor.
"""

from __future__ import annotations

from ansible_collections.cairncms.ops.plugins.module_utils import _compress
from ansible_collections.cairncms.ops.plugins.module_utils._common import (
    CHUNK, CairnError, HashingReader, HashingWriter, Timer)
from ansible_collections.cairncms.ops.plugins.module_utils._db import sqlite
from ansible_collections.cairncms.ops.plugins.module_utils._db._base import DIFFERENT, IDENTICAL

BACKENDS = {
    'sqlite': sqlite.SqliteBackend,
}


def select_backend(database):
    try:
        return BACKENDS[database.vendor](database)
    except KeyError:
        raise CairnError('database vendor %r is not supported by this version of cairncms.ops' % database.vendor)


def artifact_name(backend, compression):
    return 'database.%s%s' % (backend.artifact_ext, _compress.SUFFIX[compression])


def dump(config, repository, instance, point_id, compression='zstd', level=3, threads=0, check_mode=False):
    backend = select_backend(config.database())
    probe = backend.probe()
    name = artifact_name(backend, compression)
    result = {'changed': not check_mode, 'vendor': backend.vendor, 'artifact': name,
              'server_version': probe['server_version'], 'compression': compression}
    if check_mode:
        return result
    timer = Timer()
    with repository.artifact_writer(instance, point_id, name) as handle:
        stored = HashingWriter(handle)
        compressor = _compress.writer(stored, compression, level=level, threads=threads)
        raw = HashingWriter(compressor)
        facts = backend.dump(raw, repository.scratch_dir(instance, point_id))
        compressor.close()
    part = {
        'vendor': backend.vendor,
        'client': config.database().client,
        'server_version': facts['server_version'],
        'format': backend.artifact_format,
        'compression': compression,
        'artifact': name,
        'size_bytes': stored.size,
        'sha256': stored.sha256,
        'raw_size_bytes': raw.size,
        'raw_sha256': raw.sha256,
        'row_counts': facts['row_counts'],
        'migration_level': facts['migration_level'],
        'duration_s': timer.seconds,
    }
    repository.write_part(instance, point_id, 'database', part)
    result.update({
        'size_bytes': stored.size, 'sha256': stored.sha256, 'raw_size_bytes': raw.size,
        'duration_s': part['duration_s'], 'row_counts': facts['row_counts'],
        'migration_level': facts['migration_level'], 'tables': len(facts['row_counts']),
    })
    if facts['migration_level'] is None:
        result['warnings'] = ['no directus_migrations table found: is %s a CairnCMS database?'
                              % probe.get('path', 'this')]
    return result


def verify_artifact(repository, instance, manifest, name):
    """Read an artifact once and compare size and sha256 with the manifest."""
    expected = artifact_entry(manifest, name)
    with repository.open_artifact(instance, manifest['id'], name) as handle:
        reader = HashingReader(handle)
        while reader.read(CHUNK):
            pass
    if reader.size != expected['size_bytes'] or reader.sha256 != expected['sha256']:
        raise CairnError('artifact %s of restore point %s fails its checksum (size %d, sha256 %s; manifest '
                         'says size %d, sha256 %s): the repository copy is damaged; nothing was restored'
                         % (name, manifest['id'], reader.size, reader.sha256,
                            expected['size_bytes'], expected['sha256']))
    return expected


def artifact_entry(manifest, name):
    for entry in manifest.get('artifacts', []):
        if entry['path'] == name:
            return entry
    raise CairnError('the manifest of restore point %s lists no artifact %s' % (manifest.get('id'), name))


def restore(config, repository, source_instance, manifest, replace=False, keep_safety_copy=False,
            check_mode=False):
    db_manifest = manifest['database']
    backend = select_backend(config.database())
    if db_manifest['vendor'] != backend.vendor:
        raise CairnError('restore point %s holds a %s database but this instance uses %s (DB_CLIENT); a dump '
                         'cannot cross vendors: restore into a %s instance instead'
                         % (manifest['id'], db_manifest['vendor'], backend.vendor, db_manifest['vendor']))
    state = backend.compare(db_manifest)
    result = {'changed': False, 'vendor': backend.vendor, 'restore_point': manifest['id'],
              'target_state': state, 'target': backend.probe().get('path')}
    if state == IDENTICAL:
        result['msg'] = 'the database already holds restore point %s' % manifest['id']
        return result
    if state == DIFFERENT and not replace:
        raise CairnError('the target database %s is not empty and differs from restore point %s; nothing was '
                         'changed. Set replace (cairn_restore_replace: true) to overwrite it'
                         % (result['target'], manifest['id']), target_state=state)
    result['changed'] = True
    if check_mode:
        result['msg'] = 'would restore %s into the %s target' % (manifest['id'], state)
        return result
    timer = Timer()
    name = db_manifest['artifact']
    expected = verify_artifact(repository, source_instance, manifest, name)
    with repository.open_artifact(source_instance, manifest['id'], name) as handle:
        stored = HashingReader(handle)
        facts = backend.restore(_compress.reader(stored, db_manifest['compression']), db_manifest,
                                keep_safety_copy=keep_safety_copy)
    if stored.sha256 != expected['sha256']:
        raise CairnError('artifact %s changed while it was being restored' % name)
    result.update(facts)
    result['duration_s'] = timer.seconds
    result['replaced'] = state == DIFFERENT
    return result

