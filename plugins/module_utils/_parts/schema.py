# -*- coding: utf-8 -*-
# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Part kind ``schema``: the CMS's own schema snapshot of the instance (private).

Its artifact, ``schema.json``, is the snapshot as the CMS's ``schema snapshot`` writes it (``version``, the CMS
version, ``vendor``, ``collections``, ``fields``, ``relations``), normalised by ``_cms.schema.render``: the CMS's
``schema apply`` and ``POST /schema/diff`` read it, and promotion (``_promote``) applies it. The CMS makes it,
through its CLI (``cms.command``, configuration from the instance's ``.env``) or its HTTP API (``cms.url`` with an
admin ``cms.token``), right after the dump. The CMS cannot read the dump's snapshot, so the part records whether
the schema's rows (``directus_collections``, ``directus_fields``, ``directus_relations``) read inside the dump's
snapshot are those the CMS saw (``consistent``). Without a way to make it, or when the CMS fails to, the part says
so (``captured: false`` with the reason) and the backup goes on.
"""

from __future__ import annotations

import hashlib
import json

from ansible_collections.cairncms.ops.plugins.module_utils._parts import document_entry, document_problem, document_view

KIND = 'schema'
STAGED = 'schema'
REQUIRED = False
ARTIFACT = 'schema.json'
# The rows the CMS keeps its schema's meta in: read inside the dump's snapshot and again after the CMS's snapshot.
TABLES = ('directus_collections', 'directus_fields', 'directus_relations')
DETAILS = ('captured', 'reason', 'via', 'vendor', 'cms_version', 'counts', 'taken_at', 'consistent')


def snapshot_tables(run):
    return TABLES if run.wants(KIND) and _how(run)[0] else ()


def fingerprint(rows):
    """One digest of the schema's rows: equal when the three tables hold the same rows (as one vendor reads them)."""
    digest = hashlib.sha256()
    for table in TABLES:
        lines = sorted(json.dumps(row, sort_keys=True, default=str) for row in rows.get(table) or ())
        digest.update(('%s\0%d\0%s\0' % (table, len(lines), '\n'.join(lines))).encode('utf-8'))
    return digest.hexdigest()


def _how(run):
    """(``cli`` or ``http``, or None; why not)."""
    cms = run.params.get('cms') or {}
    if cms.get('command'):
        return 'cli', None
    if cms.get('url') and cms.get('token'):
        return 'http', None
    return None, ('no way to make it: give the CMS\'s CLI (cairn_cms_command) or its URL with an admin token '
                  '(cairn_cms_url, cairn_cms_token)')


def produce(run):
    """Take the CMS's snapshot and stage it; a snapshot that cannot be made is staged as not captured (a
    warning), never a failed backup."""
    from ansible_collections.cairncms.ops.plugins.module_utils._cms import schema as _cms_schema
    from ansible_collections.cairncms.ops.plugins.module_utils._common import CairnError, iso, utc_now
    via, why_not = _how(run)
    if not run.wants(KIND):
        return run.stage_missing(KIND, 'not asked (cairn_backup_parts)')
    if via is None:
        return run.stage_missing(KIND, why_not)
    if run.check_mode:
        return {'captured': False, 'reason': 'check mode: would be taken through the CMS (%s)' % via}
    cms = run.params['cms']
    try:
        if via == 'cli':
            taken = _cms_schema.snapshot_cli(run.config, cms['command'], cms.get('chdir') or run.config.base_dir,
                                             run.config.env_file, cms.get('timeout') or 300)
        else:
            taken = _cms_schema.snapshot_http(cms['url'], cms['token'], cms.get('timeout') or 300,
                                              cms.get('validate_certs', True))
        taken_at = iso(utc_now())
        consistent = fingerprint(run.rows) == fingerprint(run.live_rows(TABLES)) if run.rows is not None else None
    except (CairnError, OSError) as exc:
        return run.stage_missing(KIND, 'the CMS could not make it: %s' % run.cause(exc), warn=True)
    details = {'captured': True, 'via': via, 'vendor': taken.get('vendor'),
               'cms_version': taken.get(_cms_schema.VERSION_KEY), 'counts': _cms_schema.counts(taken),
               'taken_at': taken_at, 'consistent': consistent}
    staged = run.stage_document(KIND, ARTIFACT, _cms_schema.render(taken), details)
    if consistent is False:
        run.warn('the schema snapshot of restore point %s was taken after the schema changed (the CMS\'s schema rows '
                 'differ from those in the database dump); promote from it with care, or back up again'
                 % run.point)
    return staged


def describe(staged):
    return document_entry(KIND, staged, DETAILS, {'name': 'cms', 'version': (staged or {}).get('cms_version'),
                                                  'via': (staged or {}).get('via')})


def legacy(manifest):
    return None


def problem(part):
    return document_problem(part)


def view(part):
    return document_view(part)


def summary(part):
    return {'schema_captured': bool(part.get('captured'))}


def load(data, where):
    """The snapshot in an artifact's bytes, checked as the CMS's own format."""
    from ansible_collections.cairncms.ops.plugins.module_utils._cms import schema as _cms_schema
    from ansible_collections.cairncms.ops.plugins.module_utils._common import CairnError
    try:
        document = json.loads(data.decode('utf-8'))
    except (UnicodeDecodeError, ValueError) as exc:
        raise CairnError('%s is not JSON: %s' % (where, exc)) from None
    return _cms_schema.check_snapshot(document, where)


# A restore of the whole instance restores the schema with the database, whose rows it is; promotion applies it on its
# own, through the CMS (``_promote``).
restore = None


def check(report, repository, instance, manifest, part):
    """The snapshot parses as the CMS's schema snapshot format."""
    if not part.get('captured'):
        return
    from ansible_collections.cairncms.ops.plugins.module_utils._parts import read_document
    from ansible_collections.cairncms.ops.plugins.module_utils._cms import schema as _cms_schema

    def counted():
        counts = _cms_schema.counts(read_document(repository, instance, manifest, KIND))
        return '%(collections)s collections, %(fields)s fields, %(relations)s relations' % counts
    report.attempt('schema snapshot readable', counted)
