# -*- coding: utf-8 -*-
# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Database dump and restore, whatever the vendor (private).

``select_backend`` picks the vendor implementation (one file per vendor);
``dump`` and ``restore`` wrap it with compression, checksums, the manifest
part and the safety rules, once for every vendor.
"""

from __future__ import annotations

import contextlib
import shutil

from ansible_collections.cairncms.ops.plugins.module_utils import _compress, _relocate, _rows, _scratch
from ansible_collections.cairncms.ops.plugins.module_utils._common import (
    CHUNK, CairnError, HashingReader, HashingWriter, Timer, iso, utc_now)
from ansible_collections.cairncms.ops.plugins.module_utils._db import mysql, postgres, sqlite
from ansible_collections.cairncms.ops.plugins.module_utils._db._base import DIFFERENT, EMPTY, IDENTICAL, OUTWARD
from ansible_collections.cairncms.ops.plugins.module_utils._manifest import artifacts as manifest_artifacts
from ansible_collections.cairncms.ops.plugins.module_utils._manifest import part as manifest_part

BACKENDS = {
    'sqlite': sqlite.SqliteBackend,
    'postgres': postgres.PostgresBackend,
    'mysql': mysql.MysqlBackend,
}
POLICIES = ('warn', 'refuse')


def select_backend(database, options=None):
    """The vendor implementation for ``database``; ``options`` are vendor dump/restore options
    (``format``, ``jobs``, ``level``)."""
    if database.vendor not in BACKENDS:
        raise CairnError('database vendor %r is not supported by this version of cairncms.ops' % database.vendor)
    return BACKENDS[database.vendor](database, options)


def artifact_name(backend, compression):
    extension = 'data.sql' if backend.tables else backend.artifact_ext
    return 'database.%s%s' % (extension, _compress.SUFFIX[compression])


def dangling_file_references(backend, tables):
    """For the file fields (``directus_relations`` to ``directus_files``) of ``tables``: how many
    rows point at a file id the database does not have."""
    try:
        fields = backend.query("SELECT many_collection, many_field FROM directus_relations "
                               "WHERE one_collection = 'directus_files'")
    except CairnError:
        return {}
    found = {}
    for collection, field in fields:
        if collection not in tables:
            continue
        column = backend.quote(field)
        count = backend.query('SELECT COUNT(*) FROM %s WHERE %s IS NOT NULL AND %s NOT IN '
                              '(SELECT id FROM directus_files)' % (backend.quote(collection), column, column))
        if int(count[0][0]):
            found['%s.%s' % (collection, field)] = int(count[0][0])
    return found


class RowsOut:
    """Where a dump writes the ``rows`` part (``_rows.Writer`` into a compressed artifact of the point), inside its
    snapshot; ``facts`` afterwards."""

    def __init__(self, repository, instance, point_id, compression, level, threads):
        self.repository, self.instance, self.point_id = repository, instance, point_id
        self.compression, self.level, self.threads = compression, level, threads
        self.name = _rows.ARTIFACT + _compress.SUFFIX[compression]
        self.facts = None

    @contextlib.contextmanager
    def writing(self, vendor, order):
        timer = Timer()
        encrypted = self.repository.crypto.encrypts
        with self.repository.artifact_writer(self.instance, self.point_id, self.name, encrypted=encrypted) as handle:
            stored = HashingWriter(handle)
            writer, close = rows_writer(stored, vendor, order, self.compression, self.level, self.threads)
            yield writer
            close()
        self.facts = {'captured': True, 'artifact': self.name, 'size_bytes': stored.size, 'sha256': stored.sha256,
                      'encrypted': encrypted, 'compression': self.compression, 'vendor': vendor,
                      'stream_format': '%s/%d' % (_rows.FORMAT, _rows.VERSION), 'tables': writer.tables,
                      'rows': writer.rows, 'duration_s': timer.seconds}


def rows_writer(handle, vendor, order, compression, level, threads):
    """``(writer, close)``: a ``_rows.Writer`` of a rows stream into the binary ``handle``, compressed, taking the
    rows of tables read in ranges by other processes (``_Frames``), and the function ending the stream and writing
    out its last frame."""
    compressor = _compress.writer(handle, compression, level=level, threads=threads)
    writer = _rows.Writer(compressor, vendor, order, frames=_Frames(compressor, handle, compression, level))

    def close():
        writer.close()
        compressor.close()
    return writer, close


class _Frames:
    """Rows another process wrote for the rows part (``_rows.RangeWriter``), in frames of the part's compression
    of their own, added to the artifact as they are once the frame open in ``compressor`` has ended."""

    def __init__(self, compressor, stored, compression, level):
        self.compressor, self.stored, self.compression, self.level = compressor, stored, compression, level

    def open(self, handle):
        return _compress.writer(handle, self.compression, level=self.level, threads=0)

    def append(self, path):
        _compress.end_frame(self.compressor, self.compression)
        with open(path, 'rb') as source:
            shutil.copyfileobj(source, self.stored, CHUNK)


def dump(config, repository, instance, point_id, compression='zstd', level=3, threads=1, check_mode=False,
         options=None, rows=False):
    """Dump the database into restore point ``point_id``; with ``rows``, also write its ``rows`` part inside the
    dump's snapshot (returned as ``rows_part``, for the caller to stage)."""
    options = dict(options or {}, level=level)
    rows_out = None
    if rows and not check_mode:
        rows_out = options['rows_out'] = RowsOut(repository, instance, point_id,
                                                 'none' if compression == 'none' else 'zstd', level, threads)
    backend = select_backend(config.database(), options)
    probe = backend.probe()
    if backend.raw_is_compressed:
        compression = 'none'  # the dump tool compressed it already
    name = artifact_name(backend, compression)
    result = {'changed': not check_mode, 'vendor': backend.vendor, 'artifact': name,
              'server_version': probe['server_version'], 'compression': compression}
    if check_mode:
        return result
    timer = Timer()
    encrypted = repository.crypto.encrypts
    with repository.heartbeat(instance, point_id), \
            repository.artifact_writer(instance, point_id, name, encrypted=encrypted) as handle:
        stored = HashingWriter(handle)
        compressor = _compress.writer(stored, compression, level=level, threads=threads)
        raw = HashingWriter(compressor, digest=backend.digest_raw)
        # Temporary files (a copy of the database, option files with the password) go to this process's private
        # scratch directory, never into the repository.
        # The dump is consistent as of its start: pg_dump's and mariadb-dump's transaction snapshot, SQLite's read
        # transaction of the online backup's one step, all begin as the tool starts.
        snapshot_at = iso(utc_now())
        facts = backend.dump(raw, _scratch.directory())
        compressor.close()
    read = facts.pop('rows', None)
    part = {
        'vendor': backend.vendor,
        'client': config.database().client,
        'server_version': facts['server_version'],
        'format': '%s-data-sql' % backend.vendor if backend.tables else backend.artifact_format,
        'compression': compression,
        'artifact': name,
        'size_bytes': stored.size,
        'sha256': stored.sha256,
        'raw_size_bytes': raw.size,
        'row_counts': facts['row_counts'],
        'migration_level': facts['migration_level'],
        'duration_s': timer.seconds,
        'encrypted': encrypted,
        'snapshot_at': snapshot_at,
    }
    if encrypted:
        part['encryption'] = repository.crypto.describe()
    if raw.sha256:
        part['raw_sha256'] = raw.sha256
    for key in ('server_flavor', 'dump_tool', 'dump_tool_version', 'jobs', 'row_counts_consistent', 'scope'):
        if key in facts:
            part[key] = facts[key]
    repository.write_part(instance, point_id, 'database', part)
    result.update({
        'size_bytes': stored.size, 'sha256': stored.sha256, 'raw_size_bytes': raw.size,
        'duration_s': part['duration_s'], 'row_counts': facts['row_counts'], 'snapshot_at': snapshot_at,
        'migration_level': facts['migration_level'], 'tables': len(facts['row_counts']),
    })
    result.update({key: part[key] for key in ('server_flavor', 'dump_tool', 'dump_tool_version') if key in part})
    if backend.read:
        # the tables asked for (options ``read``), read inside the dump's snapshot: for the caller, never a result
        result['rows'] = read if read is not None else {}
    if rows_out is not None:
        result['rows_part'] = rows_out.facts or {'captured': False, 'reason': 'the dump wrote no rows'}
        result['rows_part']['snapshot_at'] = snapshot_at
    warnings = list(facts.get('warnings', []))
    if facts['migration_level'] is None:
        warnings.append('no directus_migrations table found: is %s a CairnCMS database?' % probe.get('path', 'this'))
    if warnings:
        result['warnings'] = warnings
    return result


def verify_artifact(repository, instance, manifest, name):
    """Read an artifact once and compare size and sha256 with the manifest."""
    expected = artifact_entry(manifest, name)
    with repository.open_artifact(instance, manifest['id'], name, encrypted=expected.get('encrypted', False)) as handle:
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
    for entry in manifest_artifacts(manifest):
        if entry['path'] == name:
            return entry
    raise CairnError('the manifest of restore point %s lists no artifact %s' % (manifest.get('id'), name))


def _major(version):
    parts = str(version or '').split('.')
    return parts[0] if parts[0] else None


def _policy(name, value):
    if value not in POLICIES:
        raise CairnError('%s must be one of %s' % (name, ', '.join(POLICIES)))
    return value


def _mismatches(backend, probe, db_manifest, state, on_version_mismatch, on_migration_mismatch):
    """Warnings for a target of another server major version or CMS migration level; errors when refused."""
    found = []
    if backend.vendor != 'sqlite' and _major(probe.get('server_version')) != _major(db_manifest.get('server_version')):
        found.append(('on_version_mismatch', _policy('on_version_mismatch', on_version_mismatch),
                      'the target server is version %s, the restore point comes from version %s'
                      % (probe.get('server_version'), db_manifest.get('server_version'))))
    if state == DIFFERENT:
        level = backend.inspect().get('migration_level')
        if level and level != db_manifest.get('migration_level'):
            found.append(('on_migration_mismatch', _policy('on_migration_mismatch', on_migration_mismatch),
                          'the target database is at CMS migration %s, the restore point at %s'
                          % (level, db_manifest.get('migration_level'))))
    refused = ['%s (%s: refuse)' % (text, option) for option, policy, text in found if policy == 'refuse']
    if refused:
        raise CairnError('restore refused, nothing was changed: %s' % '; '.join(refused))
    return [text for _option, _policy_value, text in found]


def _content_state(backend, tables):
    """A content move needs the tables in the target; they count as empty when they hold no row."""
    counts = backend.inspect()['row_counts']
    missing = [table for table in tables if table not in counts]
    if missing:
        raise CairnError('the target database has no table(s) %s; a content move loads data only, into the '
                         'schema the target already has' % ', '.join(missing))
    return DIFFERENT if any(counts[table] for table in tables) else EMPTY


def _relocation_scope(config, scope, location_map):
    """The location pairs to rewrite in ``directus_files`` and the warnings about them."""
    pairs = _relocate.pairs(location_map)
    if not pairs:
        return [], []
    _relocate.check_targets(location_map, config.location_names())
    if scope and 'directus_files' not in scope['tables']:
        return [], ['the location map was not applied: this content move does not hold directus_files, whose '
                    'rows in the target stay as they are']
    return pairs, []


def restore(config, repository, source_instance, manifest, replace=False, keep_safety_copy=False,
            check_mode=False, options=None, scratch_dir=None, on_version_mismatch='warn',
            on_migration_mismatch='warn', location_map=None, quiesce=(), abort=None, gate=None):
    """Restore the database of ``manifest``; ``quiesce`` names what to turn off in the restored data (see
    ``OUTWARD``), recorded with the restore like the location map. ``abort`` (a ``threading.Event``) stops the load
    from another thread: the next read of the dump fails, so that the loader stops and the target stays or is put
    back as it was (a file restore beside it failed). ``gate()`` runs once the dump is loaded, before it counts:
    when it raises, the target is put back from its safety copy (SQLite: not touched)."""
    db_manifest = manifest_part(manifest, 'database')
    unknown = sorted(set(quiesce) - set(OUTWARD))
    if unknown:
        raise CairnError('cannot turn off %s; quiesce takes %s' % (', '.join(unknown), ', '.join(sorted(OUTWARD))))
    backend = select_backend(config.database(), options)
    backend.gate = gate
    if db_manifest['vendor'] != backend.vendor:
        raise CairnError('restore point %s holds a %s database but this instance uses %s (DB_CLIENT); a dump '
                         'cannot cross vendors: restore into a %s instance instead'
                         % (manifest['id'], db_manifest['vendor'], backend.vendor, db_manifest['vendor']))
    scope = db_manifest.get('scope')
    pairs, relocation_warnings = _relocation_scope(config, scope, location_map)
    if scope and quiesce:
        relocation_warnings.append('quiesce was not applied: a content move loads only the named tables')
        quiesce = ()
    quiesce = sorted(set(quiesce))
    # The restore point is untrusted input: refuse now, before anything changes, if the tool that would load it
    # could be made to act on this host.
    backend.check_loader(content=bool(scope))
    probe = backend.probe()
    leftovers = backend.leftovers()
    state = (_content_state(backend, scope['tables']) if scope
             else backend.compare(db_manifest, manifest['id'], location_pairs=pairs, quiesce=quiesce))
    result = {'changed': False, 'vendor': backend.vendor, 'restore_point': manifest['id'],
              'target_state': state, 'target': probe.get('path'), 'relocated_rows': 0, 'relocations': [],
              'disabled': {kind: 0 for kind in quiesce}}
    if scope:
        result['tables'] = scope['tables']
    if state == IDENTICAL:
        result['msg'] = 'the database already holds restore point %s' % manifest['id'] + (
            ' with its files in %s' % ', '.join('%s->%s' % pair for pair in pairs) if pairs else '')
        if leftovers:
            result['warnings'] = leftovers
        return result
    if state == DIFFERENT and not replace:
        raise CairnError('the target database %s is not empty and differs from restore point %s; nothing was '
                         'changed. Set replace (cairn_restore_replace: true) to overwrite it'
                         % (result['target'], manifest['id']), target_state=state)
    warnings = _mismatches(backend, probe, db_manifest, state, on_version_mismatch, on_migration_mismatch)
    warnings += relocation_warnings + leftovers
    if warnings:
        result['warnings'] = warnings
    result['changed'] = True
    if check_mode:
        result['msg'] = 'would restore %s into the %s target' % (manifest['id'], state)
        if pairs:
            # Counting them would mean loading the dump: unknown until the restore.
            result['relocated_rows'] = None
            result['relocations'] = [{'from': source, 'to': target, 'rows': None} for source, target in pairs]
            result['msg'] += ('; the directus_files rows of %s would move (how many is known once restored)'
                              % ', '.join('%s to %s' % pair for pair in pairs))
        if quiesce:
            result['disabled'] = {kind: None for kind in quiesce}
            result['msg'] += '; %s would be turned off' % ' and '.join(quiesce)
        return result
    timer = Timer()
    name = db_manifest['artifact']
    expected = verify_artifact(repository, source_instance, manifest, name)
    with repository.open_artifact(source_instance, manifest['id'], name,
                                  encrypted=expected.get('encrypted', False)) as handle:
        stored = HashingReader(handle if abort is None else _Abortable(handle, abort))
        source = _compress.reader(stored, db_manifest['compression'])
        if scope:
            facts = backend.restore_content(source, scope['tables'], location_pairs=pairs, point_id=manifest['id'])
            dangling = dangling_file_references(backend, scope['tables'])
            facts['dangling_file_references'] = dangling
            facts['warnings'] = facts.get('warnings', []) + [
                '%d row(s) of %s point at files this database does not have; move those directus_files rows (and '
                'their bytes) too' % (count, field) for field, count in sorted(dangling.items())]
        else:
            facts = backend.restore(source, db_manifest, keep_safety_copy=keep_safety_copy,
                                    scratch_dir=scratch_dir, point_id=manifest['id'], location_pairs=pairs,
                                    quiesce=quiesce)
    if stored.sha256 != expected['sha256']:
        raise CairnError('artifact %s changed while it was being restored' % name)
    result['warnings'] = result.get('warnings', []) + facts.pop('warnings', [])
    if not result['warnings']:
        del result['warnings']
    result['relocations'] = facts.pop('relocations', None) or []
    result['relocated_rows'] = sum(entry['rows'] for entry in result['relocations'])
    result['disabled'] = facts.pop('disabled', None) or result['disabled']
    result.update(facts)
    result['duration_s'] = timer.seconds
    result['replaced'] = state == DIFFERENT
    return result


ABORTED = 'the database restore was stopped because the file restore beside it failed'


class _Abortable:
    """A stream that fails its next read once ``event`` is set."""

    def __init__(self, source, event):
        self._source = source
        self._event = event

    def read(self, size=-1):
        if self._event.is_set():
            raise CairnError(ABORTED)
        return self._source.read(size)
