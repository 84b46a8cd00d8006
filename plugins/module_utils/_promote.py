# -*- coding: utf-8 -*-
# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Structure promotion (private): the data model (the CMS's schema snapshot) and the config (roles and permissions,
by option more) of a source, moved onto a target instance through the CMS's own apply path; never content rows,
users, sessions, activity or files.

A source is read whole, once:

* ``instance``: a CairnCMS instance on this host - its schema snapshot through its CLI (``command`` with its
  ``env_file``) or its HTTP API (``url`` with an admin ``token``), its config from its database (``env_file``) or
  over HTTP;
* ``restore_point``: the ``schema`` and ``config`` parts of a restore point (manifest format 2);
* ``directory``: a directory as ``snapshot`` writes it for version control - ``schema.json`` (``_cms.schema.render``)
  and ``config/`` (``_cms.config.write_directory``).

``snapshot`` writes a source as such a directory (files rewritten only when their bytes change). ``promote`` diffs a
source against the target at ``url`` - the schema through the CMS (``POST /schema/diff``), the config against the
target's own - and, applying, applies the schema first and then the config; what the target has and the source
lacks is kept unless ``prune``; a schema of another CMS version or vendor is refused unless ``force``.
"""

from __future__ import annotations

import os

from ansible_collections.cairncms.ops.plugins.module_utils._cms import schema as cms_schema
from ansible_collections.cairncms.ops.plugins.module_utils._common import CairnError, Timer

PARTS = ('schema', 'config')
SOURCE_KINDS = ('directory', 'restore_point', 'instance')
SCHEMA_FILE = 'schema.json'
CONFIG_DIR = 'config'
REPOSITORY_KEYS = ('repository', 'repository_credentials', 'encryption_identity_file', 'encryption_identity',
                   'encryption_passphrase', 'trusted_signers')
INSTANCE_KEYS = ('env_file', 'command', 'url')


def _config():
    """``_cms.config``, imported when a run needs the config (its kinds, reading, diffing, applying)."""
    from ansible_collections.cairncms.ops.plugins.module_utils._cms import config  # pylint: disable=import-outside-toplevel
    return config


# ---------------------------------------------------------------------------------------------------------------
# The source (pure where it can be)
# ---------------------------------------------------------------------------------------------------------------

def source_kind(source):
    """``directory``, ``restore_point`` or ``instance``: what the options of ``source`` name; a CairnError when they
    name none or more than one."""
    named = []
    if source.get('directory'):
        named.append('directory')
    if source.get('restore_point'):
        named.append('restore_point')
    if any(source.get(key) for key in INSTANCE_KEYS):
        named.append('instance')
    if len(named) != 1:
        given = 'it names %s' % ' and '.join(named) if named else 'none was given'
        raise CairnError('the source of a promotion is one of: an instance on this host (env_file with command, or '
                         'url with token), a restore point (restore_point with instance and repository) or a '
                         'directory (directory); %s' % given)
    return named[0]


def source_name(source, kind=None):
    """How messages name the source: its ``name`` when given, else what it is."""
    if source.get('name'):
        return source['name']
    kind = kind or source_kind(source)
    if kind == 'directory':
        return 'directory %s' % source['directory']
    if kind == 'restore_point':
        return 'restore point %s of %s' % (source['restore_point'], source.get('instance'))
    return 'instance %s' % (source.get('url') or source.get('env_file'))


def check_parts(parts):
    """``parts`` as a tuple in the order they are applied (schema, then config); a CairnError when empty."""
    wanted = tuple(part for part in PARTS if part in (parts or ()))
    if not wanted:
        raise CairnError('parts is empty: promote schema, config, or both')
    return wanted


def read_directory(path, parts):
    """``{schema, config}`` of a directory as ``snapshot`` writes it (None for a part not wanted)."""
    if not os.path.isdir(path):
        raise CairnError('the source directory %s does not exist; write it with mode snapshot '
                         '(cairn_promote_mode: snapshot) or give the path of such a directory' % path)
    found = {'schema': None, 'config': None}
    if 'schema' in parts:
        found['schema'] = cms_schema.read_snapshot(os.path.join(path, SCHEMA_FILE))[0]
    if 'config' in parts:
        where = os.path.join(path, CONFIG_DIR)
        if not os.path.isdir(where):
            raise CairnError('the source directory %s has no %s/ with the config; write it with mode snapshot, or '
                             'promote the schema alone (parts: [schema])' % (path, CONFIG_DIR))
        found['config'] = _config().read_directory(where)
    return found


def read_restore_point(source, parts):
    """``{schema, config}`` of the restore point ``source['restore_point']`` of ``source['instance']``, read from its
    schema and config parts (checked against the manifest before they are parsed)."""
    from ansible_collections.cairncms.ops.plugins.module_utils import _parts  # pylint: disable=import-outside-toplevel
    from ansible_collections.cairncms.ops.plugins.module_utils._args import load_repository  # pylint: disable=import-outside-toplevel
    if not source.get('instance') or not source.get('repository'):
        raise CairnError('a restore point as the source needs the instance it belongs to and the repository '
                         '(cairn_promote_from.instance, cairn_repository)')
    params = {key: source.get(key) for key in REPOSITORY_KEYS}
    params.update(instance=source['instance'], encryption_recipients=[], encryption_required=False)
    repository = load_repository(params)
    manifest = repository.resolve(source['instance'], source['restore_point'])
    found = {'schema': None, 'config': None, 'restore_point': manifest['id']}
    for part in parts:
        found[part] = _parts.read_document(repository, source['instance'], manifest, part)
    return found


def read_instance(source, parts, kinds, timeout):
    """``{schema, config}`` of a running or stopped instance on this host: the schema through the CMS's CLI
    (``command``, configuration from ``env_file``) or its HTTP API (``url``, ``token``); the config from its
    database (``env_file``) or over HTTP."""
    validate_certs = source.get('validate_certs', True)
    found = {'schema': None, 'config': None}
    config = None
    if source.get('env_file'):
        from ansible_collections.cairncms.ops.plugins.module_utils._env import InstanceConfig  # pylint: disable=import-outside-toplevel
        config = InstanceConfig.load(source['env_file'], None, source.get('instance_dir'), None)
    if 'schema' in parts:
        if source.get('command'):
            chdir = source.get('chdir') or (config.base_dir if config else None)
            found['schema'] = cms_schema.snapshot_cli(config, source['command'], chdir, source.get('env_file'),
                                                      timeout)
        elif source.get('url') and source.get('token'):
            found['schema'] = cms_schema.snapshot_http(source['url'], source['token'], timeout, validate_certs)
        else:
            raise CairnError('the source instance\'s schema is taken by its CLI (command, with env_file) or over HTTP '
                             '(url with an admin token); give one of them')
    if 'config' in parts:
        found['config'] = _config().read_live(config=config, url=source.get('url'), token=source.get('token'),
                                              kinds=kinds, timeout=timeout, validate_certs=validate_certs)
    return found


def read_source(source, parts, kinds, timeout):
    """``{kind, name, schema, config}`` of ``source`` (the module's ``source`` option), ``parts`` of it read."""
    kind = source_kind(source)
    if kind == 'directory':
        found = read_directory(source['directory'], parts)
    elif kind == 'restore_point':
        found = read_restore_point(source, parts)
    else:
        found = read_instance(source, parts, kinds, timeout)
    return dict(found, kind=kind, name=source_name(source, kind))


def describe_source(found):
    """What the result says of the source: its kind and name, and its schema's vendor, CMS version and counts."""
    described = {'kind': found['kind'], 'name': found['name']}
    if found.get('restore_point'):
        described['restore_point'] = found['restore_point']
    snapshot = found.get('schema')
    if snapshot is not None:
        described.update(vendor=snapshot.get('vendor'), cms_version=snapshot.get(cms_schema.VERSION_KEY),
                         counts=cms_schema.counts(snapshot))
    return described


# ---------------------------------------------------------------------------------------------------------------
# Snapshot: the source as a directory for version control
# ---------------------------------------------------------------------------------------------------------------

def snapshot(found, dest, parts, check_mode=False, want_diff=False):
    """Write ``found`` (``read_source``) to the directory ``dest``: ``schema.json`` and ``config/``, each file
    rewritten only when its bytes change. The module's result."""
    if os.path.exists(dest) and not os.path.isdir(dest):
        raise CairnError('dest %s is a file; give the directory the snapshot is written to' % dest)
    if not check_mode:
        os.makedirs(dest, exist_ok=True)
    result = {'changed': False, 'directory': dest, 'source': describe_source(found), 'files': {}}
    diffs = []
    if 'schema' in parts:
        path = os.path.join(dest, SCHEMA_FILE)
        taken = cms_schema.take(found['schema'], path, check_mode, want_diff)
        result['changed'] = result['changed'] or taken['changed']
        result['files'][SCHEMA_FILE] = 'changed' if taken['changed'] else 'unchanged'
        result['schema'] = {key: taken[key] for key in ('sha256', 'size_bytes', 'counts', 'vendor', 'cms_version')}
        if taken.get('diff'):
            diffs.append(taken['diff'])
    if 'config' in parts:
        written = _config().write_directory(os.path.join(dest, CONFIG_DIR), found['config'], check_mode,
                                            want_diff)
        result['changed'] = result['changed'] or bool(written.get('changed'))
        for name in written.get('written') or ():
            result['files']['%s/%s' % (CONFIG_DIR, name)] = 'changed'
        for name in written.get('removed') or ():
            result['files']['%s/%s' % (CONFIG_DIR, name)] = 'removed'
        result['config'] = {key: written[key] for key in ('written', 'removed', 'unchanged', 'counts')}
        if want_diff:
            diffs.extend(written.get('diff') or ())
    if want_diff and diffs:
        result['diff'] = diffs
    return result


# ---------------------------------------------------------------------------------------------------------------
# Promote: diff first, then the schema, then the config
# ---------------------------------------------------------------------------------------------------------------

def _schema_view(planned):
    """What the result says of the schema part."""
    return {key: planned[key] for key in ('differences', 'summary', 'kept', 'changes', 'forced', 'hash', 'target',
                                          'snapshot') if key in planned}


def restrict(config, found_config, kinds):
    """The source's config with only ``kinds`` (None: all it has); a CairnError when it lacks one of them."""
    if kinds is None:
        return found_config
    wanted = config.check_kinds(kinds)
    missing = [kind for kind in wanted if kind not in found_config['kinds']]
    if missing:
        raise CairnError('the source\'s config has no %s (it has %s); promote the kinds it has, or take the source '
                         'again with them' % (', '.join(missing), ', '.join(found_config['kinds'])))
    restricted = {key: value for key, value in found_config.items()
                  if key in ('format', 'version') or key not in config.ITEMS}
    restricted['kinds'] = list(wanted)
    for spec in config.SPECS:
        if spec.kind in wanted:
            restricted[spec.plural] = found_config.get(spec.plural) or []
    return config.check(restricted, 'the source config')


def _config_plan(config, wanted, url, token, prune, timeout, validate_certs):
    """The config changes that make the target's config ``wanted`` (``config.diff``), the target's config read over
    HTTP with the kinds of ``wanted``."""
    current = config.read_live(url=url, token=token, kinds=wanted['kinds'], timeout=timeout,
                               validate_certs=validate_certs)
    return config.diff(wanted, current, prune)


def _config_view(config, planned):
    return {'differences': not config.is_empty(planned), 'summary': config.summarise(planned),
            'changes': config.lines(planned), 'kept': list(planned.get('kept') or ())}


def promote(found, url, token, parts, kinds=None, apply=False, force=False, prune=False, check_mode=False,
            want_diff=False, timeout=300, validate_certs=True):
    """Diff ``found`` (``read_source``) against the instance at ``url`` and, with ``apply`` (not in check mode),
    apply the schema and then the config: the module's result. Both parts are planned before anything is applied, so
    a refusal (another CMS version or vendor without ``force``) or a source that cannot be diffed changes nothing.
    A failed apply is one CairnError saying what was applied and what was not (``failed_part``, ``applied``)."""
    warnings = []
    result = {'source': describe_source(found), 'target': {'url': url.rstrip('/')}, 'changes': [],
              'applied': {'schema': False, 'config': 0}, 'forced': False}
    diffs = []
    config = _config() if 'config' in parts else None
    if 'schema' in parts:
        planned = cms_schema.promote(url, token, found['schema'], found['name'], apply=False, force=force,
                                     prune=prune, check_mode=True, want_diff=want_diff, timeout=timeout,
                                     validate_certs=validate_certs)
        warnings.extend(planned.pop('warnings', None) or ())
        result['schema'] = _schema_view(planned)
        result['target'].update({key: planned['target'][key] for key in ('vendor', 'cms_version')})
        result['forced'] = planned['forced']
        result['changes'].extend(planned['changes'])
        diffs.extend(planned.get('diff') or ())
    wanted = None
    if config is not None:
        wanted = restrict(config, found['config'], kinds)
        config_planned = _config_plan(config, wanted, url, token, prune, timeout, validate_certs)
        result['config'] = _config_view(config, config_planned)
        result['changes'].extend(result['config']['changes'])
        if want_diff:
            diffs.extend(config.item_diffs(config_planned))
    differences = any(result[part]['differences'] for part in parts)
    result.update(differences=differences, changed=bool(apply) and differences)
    if want_diff:
        result['diff'] = diffs
    if apply and differences and not check_mode:
        result['duration_s'] = _apply(result, found, wanted, url, token, parts, config, force, prune, timeout,
                                      validate_certs, warnings)
    if warnings:
        result['warnings'] = sorted(set(warnings), key=warnings.index)  # the plan's and the apply's, once each
    return result


def _apply(result, found, wanted, url, token, parts, config, force, prune, timeout, validate_certs, warnings):
    """Apply the schema, then the config; seconds it took. A failure is a CairnError naming the part that failed and
    what was applied before it."""
    timer = Timer()
    if 'schema' in parts and result['schema']['differences']:
        try:
            done = cms_schema.promote(url, token, found['schema'], found['name'], apply=True, force=force,
                                      prune=prune, timeout=timeout, validate_certs=validate_certs)
        except CairnError as exc:
            raise CairnError('the schema apply failed, and nothing of the config was applied: %s' % exc.message,
                             failed_part='schema', applied=result['applied'], changes=result['changes']) from None
        warnings.extend(done.pop('warnings', None) or ())
        result['applied']['schema'] = True
        result['schema']['remaining'] = done.get('remaining')
    if config is not None and result['config']['differences']:
        # Read again after the schema: the CMS deletes a collection's permissions with the collection (prune).
        planned = _config_plan(config, wanted, url, token, prune, timeout, validate_certs)
        try:
            result['applied']['config'] = config.apply(url, token, planned['changes'], timeout=timeout,
                                                       validate_certs=validate_certs)
        except CairnError as exc:
            done = list(exc.details.get('applied') or ())
            before = 'the schema was applied, then ' if result['applied']['schema'] else ''
            raise CairnError('%sthe config apply failed: %s' % (before, exc.message), failed_part='config',
                             applied=dict(result['applied'], config=len(done)), changes=result['changes'],
                             config_applied=done, config_not_applied=list(exc.details.get('not_applied') or ()),
                             config_failed=exc.details.get('failed')) from None
    return timer.seconds
