# -*- coding: utf-8 -*-
# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Restoring into other storage locations: the location map (private).

A location map names, for a storage location of the restore point, the
location of the target instance that receives its bytes (and whose name the
restored ``directus_files.storage`` then carries). Unmapped names map to
themselves. ``filename_disk`` never changes: CairnCMS names a file
``<id>.<ext>`` whatever the driver, and the driver applies the location's
ROOT, so the same name is right in every location.
"""

from __future__ import annotations

from ansible_collections.cairncms.ops.plugins.module_utils._common import CairnError

EXAMPLES = 5
HINT = 'set cairn_restore_location_map (the modules\' location_map) to send it to one of them'


def pairs(location_map):
    """The map's effective pairs ``[(from, to), ...]``, sorted, without names that map to themselves."""
    found = []
    for source, target in sorted((location_map or {}).items()):
        if not isinstance(source, str) or not isinstance(target, str) or not source or not target:
            raise CairnError('location_map must map storage location names to storage location names; '
                             'got %r: %r' % (source, target))
        if source != target:
            found.append((source, target))
    return found


def as_list(location_pairs):
    """The pairs as JSON-friendly lists, for results and restore markers."""
    return [[source, target] for source, target in location_pairs]


def target_of(location_map, name):
    return (location_map or {}).get(name, name)


def resolve(sources, target_names, location_map):
    """``{source: target}`` for the restore point's locations ``sources``; every target must be one of the
    target instance's ``target_names`` (its STORAGE_LOCATIONS)."""
    pairs(location_map)  # validates
    resolved = {source: target_of(location_map, source) for source in sources}
    missing = sorted(source for source, target in resolved.items() if target not in target_names)
    if missing:
        raise CairnError('storage location(s) %s of the restore point have no location here (this instance\'s '
                         'STORAGE_LOCATIONS=%s); %s' % (
                             ', '.join('%s (to %s)' % (source, resolved[source]) if resolved[source] != source
                                       else source for source in missing),
                             ','.join(target_names) or '(none)', HINT))
    return resolved


def check_targets(location_map, target_names):
    """Every location a map sends bytes or rows to is configured in the target."""
    unknown = sorted({target for _source, target in pairs(location_map) if target not in target_names})
    if unknown:
        raise CairnError('location_map sends files to %s, which %s not in this instance\'s STORAGE_LOCATIONS=%s; '
                         'add the location to the target\'s .env or fix cairn_restore_location_map'
                         % (', '.join(unknown), 'is' if len(unknown) == 1 else 'are', ','.join(target_names)))


def collisions(rows_by_source, resolved):
    """``{target: [filename_disk, ...]}`` where two restore point locations that go to one target hold a file
    of the same name."""
    owners, clashes = {}, {}
    for source in sorted(rows_by_source):
        target = resolved[source]
        for row in rows_by_source[source]:
            key = (target, row['filename_disk'])
            if key in owners and owners[key] != source:
                clashes.setdefault(target, []).append(row['filename_disk'])
            owners.setdefault(key, source)
    return {target: sorted(set(names)) for target, names in clashes.items()}


def check_collisions(rows_by_source, resolved):
    clashes = collisions(rows_by_source, resolved)
    if clashes:
        described = '; '.join('%s: %d file(s), e.g. %s' % (target, len(names), ', '.join(names[:EXAMPLES]))
                              for target, names in sorted(clashes.items()))
        raise CairnError('the location map sends several restore point locations with files of the same name into '
                         'one location (%s); nothing was changed. Map them to different locations' % described)


def sql_literal(text):
    """A standard SQL string literal (PostgreSQL with standard_conforming_strings, SQLite)."""
    return "'%s'" % text.replace("'", "''")


def count_sql(location_pairs, literal=sql_literal, table='directus_files', tag=None):
    """Rows ``[tag,] storage, count`` of ``table`` in the locations that move."""
    names = ', '.join(literal(source) for source, _target in location_pairs)
    head = '%s, ' % literal(tag) if tag else ''
    return 'SELECT %sstorage, COUNT(*) FROM %s WHERE storage IN (%s) GROUP BY storage' % (head, table, names)


def update_sql(location_pairs, literal=sql_literal, table='directus_files'):
    """One UPDATE for every pair, so that swaps (a to b, b to a) work."""
    cases = ' '.join('WHEN %s THEN %s' % (literal(source), literal(target)) for source, target in location_pairs)
    names = ', '.join(literal(source) for source, _target in location_pairs)
    return 'UPDATE %s SET storage = CASE storage %s ELSE storage END WHERE storage IN (%s)' % (table, cases, names)


def relocations(location_pairs, counted):
    """The result entries ``[{from, to, rows}]`` from ``counted`` rows ``(storage, count)``."""
    counts = {}
    for storage, count in counted:
        counts[storage] = counts.get(storage, 0) + int(count)
    return [{'from': source, 'to': target, 'rows': counts.get(source, 0)} for source, target in location_pairs]
