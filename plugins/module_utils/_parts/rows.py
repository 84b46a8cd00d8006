# -*- coding: utf-8 -*-
# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Part kind ``rows``: every table's rows as vendor-neutral typed records (private).

Its artifact, ``rows.jsonl.zst``, is a ``_rows`` stream (docs/restore-point-format.md, "The rows part"): the rows of
every table (the CMS's own and the content), parents before the tables whose foreign keys point at them, each value
in one encoding whatever the vendor. The dump writes it inside its own snapshot (PostgreSQL's exported snapshot,
MariaDB's consistent-snapshot session, the SQLite backup copy), streamed and compressed, so it holds the same
moment as the database part. Made on request (``cairn_backup_parts``); a migration to another vendor
(``_migrate``, the migrate role) loads it. Its details list every table's row count and checksum.
"""

from __future__ import annotations

KIND = 'rows'
STAGED = 'rows'
REQUIRED = False
DETAILS = ('captured', 'reason', 'vendor', 'compression', 'stream_format', 'tables', 'rows', 'snapshot_at',
           'duration_s')
# the check reads a table's row lines in pieces of about this many bytes
CHUNK_BYTES = 1024 * 1024


def snapshot_tables(run):
    return ()


def produce(run):
    """Stage what the dump wrote (``run.rows_part``), or why there is none."""
    if not run.wants(KIND):
        return run.stage_missing(KIND, 'not asked (cairn_backup_parts)')
    if run.check_mode:
        return {'captured': False, 'reason': 'check mode: would be read inside the dump\'s snapshot'}
    staged = run.rows_part
    if not staged or not staged.get('captured'):
        return run.stage_missing(KIND, (staged or {}).get('reason') or 'the dump wrote no rows', warn=True)
    run.repository.write_part(run.instance, run.point, STAGED, staged)
    return {key: staged[key] for key in ('captured', 'artifact', 'size_bytes', 'sha256', 'rows', 'duration_s')}


def describe(staged):
    from ansible_collections.cairncms.ops.plugins.module_utils._manifest import COLLECTION_VERSION
    from ansible_collections.cairncms.ops.plugins.module_utils._parts import document_entry
    return document_entry(KIND, staged, DETAILS, {'name': 'cairncms.ops', 'version': COLLECTION_VERSION})


def legacy(manifest):
    return None


def problem(part):
    from ansible_collections.cairncms.ops.plugins.module_utils._parts import document_problem
    if not part.get('captured'):
        return document_problem(part)
    tables = part.get('tables')
    if not isinstance(tables, dict) or not all(
            isinstance(name, str) and isinstance(entry, dict) and isinstance(entry.get('rows'), int)
            and isinstance(entry.get('checksum'), str) for name, entry in tables.items()):
        return 'its rows part does not list its tables with their row counts and checksums'
    if not isinstance(part.get('compression'), str):
        return 'its rows part has no compression'
    return document_problem(part)


def view(part):
    from ansible_collections.cairncms.ops.plugins.module_utils._parts import document_view
    return document_view(part)


def summary(part):
    return {'rows_captured': bool(part.get('captured'))}


# A whole restore brings the rows back with the database part; the rows part is loaded by a migration (``_migrate``)
# into an instance of another vendor.
restore = None


def open_stream(repository, instance, manifest):
    """The rows stream of a restore point, decompressed (a context manager), its artifact's checksum compared with
    the manifest as it is read: read it to its end (``_rows.read``) before trusting what it gave."""
    from ansible_collections.cairncms.ops.plugins.module_utils._common import CairnError
    from ansible_collections.cairncms.ops.plugins.module_utils._manifest import part
    entry = part(manifest, KIND)
    if entry is None or not entry.get('captured') or not entry.get('artifacts'):
        raise CairnError('restore point %s has no rows part%s: make one with cairn_backup_parts including rows (the '
                         'migrate role does, from a fresh backup)'
                         % (manifest.get('id'), ' (%s)' % entry['reason'] if entry and entry.get('reason') else ''))
    return _Stream(repository, instance, manifest, entry)


class _Stream:
    def __init__(self, repository, instance, manifest, entry):
        self._repository, self._instance, self._manifest, self._entry = repository, instance, manifest, entry
        self._context = self._stored = None
        self.where = 'the rows artifact %s of restore point %s' % (entry['artifacts'][0]['path'], manifest['id'])

    def __enter__(self):
        from ansible_collections.cairncms.ops.plugins.module_utils import _compress
        from ansible_collections.cairncms.ops.plugins.module_utils._common import HashingReader
        expected = self._entry['artifacts'][0]
        self._context = self._repository.open_artifact(self._instance, self._manifest['id'], expected['path'],
                                                       encrypted=expected['encrypted'])
        self._stored = HashingReader(self._context.__enter__())
        return _compress.reader(self._stored, self._entry['compression'])

    def __exit__(self, kind, exc, trace):
        self._context.__exit__(kind, exc, trace)
        return False

    def check(self):
        """After the stream was read to its end: its size and sha256 against the manifest."""
        from ansible_collections.cairncms.ops.plugins.module_utils._common import CairnError
        expected = self._entry['artifacts'][0]
        while self._stored.read(1024 * 1024):
            pass
        if self._stored.size != expected['size_bytes'] or self._stored.sha256 != expected['sha256']:
            raise CairnError('%s does not match its manifest (size or sha256); the repository copy is damaged'
                             % self.where)


def check(report, repository, instance, manifest, part):
    """The stream reads to its end, a valid rows stream with every table's row count as the manifest lists it, and
    its bytes have the manifest's sha256 (which the tables' own checksums are part of). Each table's head, end line
    and the tail are read and checked; its row lines are counted, not parsed: the sha256 stands for their bytes,
    and a load parses and checks every row before it commits."""
    if not part.get('captured'):
        return

    def counted():
        from ansible_collections.cairncms.ops.plugins.module_utils import _rows
        from ansible_collections.cairncms.ops.plugins.module_utils._common import CairnError
        stream = open_stream(repository, instance, manifest)
        found = {}
        with stream as source:
            _head, tables = _rows.read(source, stream.where, checksums=False)
            for table, rows in tables:
                found[table['table']] = sum(piece.count(b'\n') + 1 for piece in rows.chunks(CHUNK_BYTES))
            stream.check()
        listed = {name: entry['rows'] for name, entry in part['tables'].items()}
        if found != listed:
            raise CairnError('%s holds other tables or row counts than its manifest lists' % stream.where)
        return '%d tables, %d rows' % (len(found), sum(found.values()))
    report.attempt('rows stream readable', counted)
