# -*- coding: utf-8 -*-
# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A content move from a restore point's typed rows (private): the rows of chosen tables, data only, into a target
whose schema is in place already, whatever the two vendors (docs/migrate.md, "Moving content").

What moves with the tables asked for, from the relations of the point's schema part:

* the junction tables of many-to-many fields between moved tables (and of file fields, ``directus_files`` at the
  other end), whole;
* the ``directus_files`` rows that moved rows point at (file fields, many-to-many files), added to the target where
  it has not got them, with their bytes.

What would still dangle (a moved row pointing at a row of a table that does not move and that the target has not
got: an author, a user; a file row's uploader) is found before anything is written, by a first read of the rows,
and refuses the move; allowed, those references are stored as NULL.
"""

from __future__ import annotations

from ansible_collections.cairncms.ops.plugins.module_utils import _parts, _rows
from ansible_collections.cairncms.ops.plugins.module_utils._common import CairnError

FILES = 'directus_files'
EXAMPLES = 5


def _relations(schema, target_tables):
    """``(collection, field, related collection, junction field)`` of every relation: those of the CMS's schema
    snapshot (its content relations, with their junctions) and the target's foreign keys of one column (the CMS's
    own: a file's uploader, its folder)."""
    found = []
    for relation in (schema or {}).get('relations') or []:
        meta = relation.get('meta') or {}
        found.append((relation.get('collection'), relation.get('field'), relation.get('related_collection'),
                      meta.get('junction_field')))
    for table in target_tables:
        for key in table.get('foreign_keys') or ():
            if len(key.get('columns') or ()) == 1:
                found.append((table['name'], key['columns'][0], key.get('table'), None))
    return found


def closure(schema, tables, target_tables=()):
    """The tables a move of ``tables`` loads whole (with the junction tables between them), and the references of
    those tables and of the file rows that come along: ``(tables, file_fields, references)``, the last two as
    ``{table: [(field, related table)]}`` (``references[FILES]``: the file rows' own)."""
    relations = _relations(schema, target_tables)
    moved = list(dict.fromkeys(tables))
    ends = {}
    for collection, field, related, junction in relations:
        if junction:
            ends.setdefault(collection, {})[field] = (related, junction)
    for junction_table, sides in sorted(ends.items()):
        related = {table for table, _other in sides.values() if table}
        if junction_table not in moved and related and related <= set(moved) | {FILES} and related & set(moved):
            moved.append(junction_table)
    file_fields, references = {}, {}
    for collection, field, related, _junction in relations:
        if collection not in set(moved) | {FILES} or not related or related in moved:
            continue
        if related == FILES and collection != FILES:
            target = file_fields
        elif related != collection:
            target = references
        else:
            continue
        if (field, related) not in target.setdefault(collection, []):
            target[collection].append((field, related))
    return moved, file_fields, references


class Plan:
    """The first read of the rows stream: the rows of the moved tables, the file ids they point at, the ids they
    and the files that come along point at in tables that do not move."""

    def __init__(self, moved, file_fields, references):
        self.moved, self.file_fields, self.references = moved, file_fields, references
        self.rows = {}
        self.file_ids = set()
        self.referenced = {}      # (table, field, related) -> ids, of the moved rows
        self.files_in_point = {}  # id -> (storage location, filename_disk) of every file row of the point
        self.file_refs = {}       # id -> {(field, related): id} of the file rows

    def read(self, tables):
        for table, rows in tables:
            name = table['table']
            names = [column['name'] for column in table['columns']]
            refs = [(names.index(field), field, related) for field, related in self.references.get(name, ())
                    if field in names]
            if name == FILES and {'id', 'storage', 'filename_disk'} <= set(names):
                index, storage, disk = names.index('id'), names.index('storage'), names.index('filename_disk')
                for row in rows:
                    self.files_in_point[row[index]] = (row[storage], row[disk])
                    pointed = {(field, related): row[at] for at, field, related in refs if row[at] is not None}
                    if pointed:
                        self.file_refs[row[index]] = pointed
                continue
            if name not in self.moved:
                for _row in rows:
                    pass
                continue
            fields = [names.index(field) for field, _related in self.file_fields.get(name, ()) if field in names]
            count = 0
            for row in rows:
                count += 1
                self.file_ids.update(row[index] for index in fields if row[index] is not None)
                for index, field, related in refs:
                    if row[index] is not None:
                        self.referenced.setdefault((name, field, related), set()).add(row[index])
            self.rows[name] = count
        return self

    def dangling(self, target_keys, brought_files):
        """What moved rows (and the file rows brought, ``brought_files``) would point at and neither moves nor is in
        the target: ``(report, missing)``, ``report`` as ``[{table, field, related, missing, examples, reason}]``
        and ``missing`` as ``{(table, field): keys as text}``. ``target_keys(table)`` are the target's primary keys
        of a table (as text)."""
        report, missing_keys = [], {}
        lost = sorted(str(key) for key in self.file_ids if key not in self.files_in_point)
        if lost:
            report.append({'table': FILES, 'field': None, 'related': FILES, 'missing': len(lost),
                           'examples': lost[:EXAMPLES], 'reason': 'not in the restore point'})
            for table, fields in self.file_fields.items():
                for field, _related in fields:
                    missing_keys[(table, field)] = set(lost)
        referenced = {key: set(values) for key, values in self.referenced.items()}
        for file_id in brought_files:
            for (field, related), value in self.file_refs.get(file_id, {}).items():
                referenced.setdefault((FILES, field, related), set()).add(value)
        for (table, field, related), keys in sorted(referenced.items()):
            present = {str(key) for key in target_keys(related)}
            missing = sorted(str(key) for key in keys if str(key) not in present)
            if missing:
                report.append({'table': table, 'field': field, 'related': related, 'missing': len(missing),
                               'examples': missing[:EXAMPLES], 'reason': 'not moved, not in the target'})
                missing_keys[(table, field)] = set(missing)
        return report, missing_keys


def clearing(missing_keys):
    """``{table: adapt(columns, row) -> row}`` that sets the references of ``missing_keys`` to NULL (a move that
    was allowed to dangle)."""
    by_table = {}
    for (table, field), keys in missing_keys.items():
        by_table.setdefault(table, {})[field] = keys

    def adapter(fields):
        def adapt(columns, row):
            names = [column['name'] for column in columns]
            cleared = list(row)
            for field, keys in fields.items():
                if field in names and cleared[names.index(field)] is not None \
                        and str(cleared[names.index(field)]) in keys:
                    cleared[names.index(field)] = None
            return cleared
        return adapt
    return {table: adapter(fields) for table, fields in by_table.items()}


def plan(repository, instance, manifest, schema, tables, target_tables):
    """The plan of a content move of ``tables`` (names as the target has them), read from the point's rows."""
    names = {table['name'] for table in target_tables}
    missing = [table for table in tables if table not in names]
    if missing:
        raise CairnError('the target has no table(s) %s; a content move loads data only, into the schema the target '
                         'has (promote the schema first: docs/promote.md)' % ', '.join(missing))
    moved, file_fields, references = closure(schema, tables, target_tables)
    missing = [table for table in moved if table not in names]
    if missing:
        raise CairnError('the target has no table(s) %s, which the move brings with %s (junction tables of their '
                         'many-to-many fields)' % (', '.join(missing), ', '.join(tables)))
    stream = _parts.kind('rows').open_stream(repository, instance, manifest)
    found = Plan(moved, file_fields, references)
    with stream as source:
        _head, read = _rows.read(source, stream.where)
        found.read(read)
        stream.check()
    return found
