# -*- coding: utf-8 -*-
# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Part kind ``config``: the CMS's roles and permissions, and by option its flows, webhooks, presets, dashboards,
translations and settings, as one canonical document (private).

Its artifact, ``config.json``, is ``_cms.config.dumps`` of what ``_cms.config.from_rows`` makes of the rows of the
``directus_*`` tables the chosen kinds live in, read inside the dump's own snapshot (PostgreSQL's exported
snapshot, MariaDB's consistent-snapshot transaction, the SQLite backup copy): the config of the same moment as the
dump. Promotion (``_promote``) diffs and applies it; ``_cms.config.render_files`` lays it out one file per role
and per collection's permissions for version control.
"""

from __future__ import annotations

from ansible_collections.cairncms.ops.plugins.module_utils._parts import document_entry, document_problem, document_view

KIND = 'config'
STAGED = 'config'
REQUIRED = False
ARTIFACT = 'config.json'
DETAILS = ('captured', 'reason', 'kinds', 'vendor', 'counts', 'snapshot_at')


def _kinds(run):
    from ansible_collections.cairncms.ops.plugins.module_utils._cms import config as _cms_config
    return tuple(run.params.get('config_kinds') or _cms_config.DEFAULT_KINDS)


def snapshot_tables(run):
    if not run.wants(KIND):
        return ()
    from ansible_collections.cairncms.ops.plugins.module_utils._cms import config as _cms_config
    return tuple(_cms_config.tables(_kinds(run)))


def produce(run):
    from ansible_collections.cairncms.ops.plugins.module_utils._cms import config as _cms_config
    from ansible_collections.cairncms.ops.plugins.module_utils._common import CairnError
    kinds = _kinds(run)
    if not run.wants(KIND):
        return run.stage_missing(KIND, 'not asked (cairn_backup_parts)')
    if run.check_mode:
        return {'captured': False, 'reason': 'check mode: would be read inside the dump\'s snapshot',
                'kinds': list(kinds)}
    if run.rows is None:
        return run.stage_missing(KIND, 'the dump read no rows (a dump of chosen tables only)')
    missing = [table for table in _cms_config.tables(kinds) if table not in run.rows]
    if 'directus_roles' in missing or 'directus_permissions' in missing:
        return run.stage_missing(KIND, 'the database has no %s table: is it a CairnCMS database?'
                                 % ' or '.join(missing))
    try:
        document = _cms_config.from_rows(run.rows, kinds, run.vendor)
    except CairnError as exc:
        return run.stage_missing(KIND, 'its rows could not be read as a config: %s' % exc.message, warn=True)
    details = {'captured': True, 'kinds': list(kinds), 'vendor': run.vendor, 'snapshot_at': run.snapshot_at,
               'counts': _cms_config.counts(document)}
    return run.stage_document(KIND, ARTIFACT, _cms_config.dumps(document), details)


def describe(staged):
    from ansible_collections.cairncms.ops.plugins.module_utils._manifest import COLLECTION_VERSION
    return document_entry(KIND, staged, DETAILS, {'name': 'cairncms.ops', 'version': COLLECTION_VERSION})


def legacy(manifest):
    return None


def problem(part):
    if part.get('kinds') is not None and not (isinstance(part['kinds'], list)
                                              and all(isinstance(kind, str) for kind in part['kinds'])):
        return 'its config kinds are not a list of names'
    return document_problem(part)


def view(part):
    return document_view(part)


def summary(part):
    return {'config_captured': bool(part.get('captured'))}


def load(data, where):
    from ansible_collections.cairncms.ops.plugins.module_utils._cms import config as _cms_config
    from ansible_collections.cairncms.ops.plugins.module_utils._common import CairnError
    try:
        return _cms_config.loads(data, where)
    except UnicodeDecodeError as exc:
        raise CairnError('%s is not a config document: %s' % (where, exc)) from None


# A restore of the whole instance restores the config with the database, whose rows it is; promotion applies it on its
# own, through the CMS (``_promote``).
restore = None


def check(report, repository, instance, manifest, part):
    """The document parses as a config."""
    if not part.get('captured'):
        return
    from ansible_collections.cairncms.ops.plugins.module_utils._parts import read_document

    def counted():
        from ansible_collections.cairncms.ops.plugins.module_utils._cms import config as _cms_config
        counts = _cms_config.counts(read_document(repository, instance, manifest, KIND))
        return ', '.join('%d %s' % (number, plural) for plural, number in counts.items())
    report.attempt('config document readable', counted)
