# -*- coding: utf-8 -*-
# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Part kind ``database``: the native dump of the instance's database, made by the vendor's own tool (private).

Its artifact is the dump (``pg_dump`` custom or directory format, ``mariadb-dump`` SQL, a SQLite database file),
compressed; its details are what ``_db.dump`` found: vendor, server version, row counts, migration level, the
snapshot time. Restored by ``_db.restore`` (the restore role's one-run restore); checked against a restored
database by ``_verify.check_database``.
"""

from __future__ import annotations

KIND = 'database'
STAGED = 'database'
REQUIRED = True
# The details a manifest keeps of the dump, as _db.dump staged them (the artifact's own path, size and sha256 go
# to the part's artifact list).
DETAILS = ('vendor', 'client', 'server_version', 'server_flavor', 'dump_tool', 'dump_tool_version', 'jobs', 'format',
           'compression', 'raw_size_bytes', 'raw_sha256', 'row_counts', 'row_counts_consistent', 'scope',
           'migration_level', 'duration_s', 'snapshot_at')


def _producer(details):
    if details.get('dump_tool'):
        return {'name': details['dump_tool'], 'version': details.get('dump_tool_version')}
    return {'name': 'sqlite3-backup' if details.get('vendor') == 'sqlite' else details.get('vendor'),
            'version': details.get('server_version')}


def describe(staged):
    """The manifest entry of the staged dump."""
    from ansible_collections.cairncms.ops.plugins.module_utils._parts import artifact
    details = {key: staged[key] for key in DETAILS if key in staged}
    return dict(details, kind=KIND, producer=_producer(details),
                artifacts=[artifact(staged['artifact'], staged['size_bytes'], staged['sha256'],
                                    staged.get('encrypted'))])


def legacy(manifest):
    """The part read from a format-1 manifest (its ``database`` section and its artifact of kind database)."""
    section = manifest.get('database')
    if not isinstance(section, dict):
        return None
    entry = next((dict(a) for a in manifest.get('artifacts') or () if a.get('path') == section.get('artifact')), None)
    details = {key: section[key] for key in DETAILS if key in section}
    return dict(details, kind=KIND, producer=_producer(details), artifacts=[entry] if entry else [])


def problem(part):
    for key in ('vendor', 'compression'):
        if not isinstance(part.get(key), str):
            return 'its database part has no %s' % key
    if len(part['artifacts']) != 1:
        return 'its database part has %d artifacts, not one' % len(part['artifacts'])
    if not isinstance(part.get('row_counts', {}), dict):
        return 'its database row_counts is not an object'
    scope = part.get('scope')
    if scope is not None and not (isinstance(scope, dict) and isinstance(scope.get('tables'), list)
                                  and all(isinstance(table, str) for table in scope['tables'])):
        return 'its database scope is not a list of tables'
    return None


def view(part):
    return dict(part, artifact=part['artifacts'][0]['path'] if part.get('artifacts') else None)


def summary(part):
    return {'vendor': part.get('vendor'), 'migration_level': part.get('migration_level')}


def produce(run):
    """Dump the database (``run.dump``: the backup's dump step, which also reads the rows other parts need inside
    the dump's snapshot)."""
    return run.dump()


def restore(config, repository, instance, manifest, **options):
    """Load the dump into the instance's database (``_db.restore``: the vendor rule, the safety copy, the checks)."""
    from ansible_collections.cairncms.ops.plugins.module_utils import _db
    return _db.restore(config, repository, instance, manifest, **options)


def check(report, repository, instance, manifest, part):
    """Nothing beyond the artifact's checksum: the dump is checked by restoring it (restore drills)."""
    return None
