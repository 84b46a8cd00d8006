# -*- coding: utf-8 -*-
# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The CMS's own schema snapshot (private): take one, through the CMS's CLI (``schema snapshot``) or its HTTP API
(``GET /schema/snapshot``); write it normalised; diff one against a running instance (``POST /schema/diff``) and
apply that diff (``POST /schema/apply``). The CMS does the work; this code words what it says.

What this relies on, as Directus 10.0.0 (CairnCMS's fork point) does it:

* A snapshot is ``{version: 1, directus: <CMS version>, vendor: <sqlite, postgres, mysql, ...>, collections,
  fields, relations}``, without the system collections. Collections are keyed by ``collection``, fields and
  relations by ``collection`` and ``field``.
* ``POST /schema/diff`` takes a snapshot as its JSON body and answers 204 when the instance has that schema, else
  ``{data: {hash, diff}}``: ``hash`` is that of the instance's schema, ``diff`` has ``collections``, ``fields`` and
  ``relations``, each entry the item's keys and its ``diff``, a list of deep-diff changes (``kind`` N, D, E or A,
  ``path``, ``lhs``, ``rhs``); a whole item added is one N without a path, a whole item deleted one D without.
  It refuses a snapshot of another CMS version or vendor unless ``force`` is in the query (with any value).
* ``POST /schema/apply`` takes ``{hash, diff}`` and refuses when the instance's schema changed since the diff.
* The diff makes the instance's schema the snapshot's: what the instance has and the snapshot lacks is deleted,
  a collection with its content. Without ``prune`` those deletions are taken out of the diff before it is applied
  and reported as kept.
* With ``CACHE_ENABLED``, a ``GET`` is answered from the data cache, keyed by path, user and the sanitized query;
  ``GET /schema/snapshot`` gets a query of its own each time so that it never returns an older schema.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import uuid

from ansible_collections.cairncms.ops.plugins.module_utils._cms.bootstrap import (
    child_environment, masked_tail, secret_values)
from ansible_collections.cairncms.ops.plugins.module_utils._cms.services import run_to_file
from ansible_collections.cairncms.ops.plugins.module_utils._common import AtomicFile, CairnError, Timer

FORMAT_VERSION = 1
VERSION_KEY = 'directus'  # the snapshot's key of the CMS version (CairnCMS keeps Directus's name)
KINDS = ('collections', 'fields', 'relations')
NATURAL_KEYS = {'collections': ('collection',), 'fields': ('collection', 'field'), 'relations': ('collection', 'field')}
SINGULAR = {'collections': 'collection', 'fields': 'field', 'relations': 'relation'}
MAX_SNAPSHOT_BYTES = 64 * 1024 * 1024
CHANGES = ('added', 'changed', 'deleted')


# ---------------------------------------------------------------------------------------------------------------
# The snapshot itself: checked, normalised, counted (pure)
# ---------------------------------------------------------------------------------------------------------------

def check_snapshot(data, where):
    """``data`` when it is a schema snapshot the CMS writes; a CairnError naming ``where`` and what is wrong
    otherwise."""
    if not isinstance(data, dict):
        raise CairnError('%s is no schema snapshot: it is not a JSON object' % where)
    problems = []
    if data.get('version') != FORMAT_VERSION or isinstance(data.get('version'), bool):
        problems.append('its version is %r, not %d' % (data.get('version'), FORMAT_VERSION))
    if not isinstance(data.get(VERSION_KEY), str) or not data.get(VERSION_KEY):
        problems.append('it names no CMS version (%s)' % VERSION_KEY)
    if 'vendor' in data and not isinstance(data['vendor'], str):
        problems.append('its vendor is no string')
    for kind in KINDS:
        items = data.get(kind)
        if not isinstance(items, list):
            problems.append('it has no list of %s' % kind)
            continue
        for item in items:
            if not isinstance(item, dict) or not all(isinstance(item.get(key), str)
                                                     for key in NATURAL_KEYS[kind]):
                problems.append('one of its %s is not an object with %s' % (kind, ' and '.join(NATURAL_KEYS[kind])))
                break
    if problems:
        raise CairnError('%s is no schema snapshot the CMS reads: %s' % (where, '; '.join(problems)))
    return data


def natural_key(kind, item):
    """The key the CMS knows an item of ``kind`` by: ``(collection,)`` or ``(collection, field)``."""
    return tuple(str(item.get(key) or '') for key in NATURAL_KEYS[kind])


def item_name(kind, item):
    """``books`` for a collection, ``books.author`` for a field or a relation."""
    return '.'.join(natural_key(kind, item))


def normalise(snapshot):
    """The snapshot with its collections, fields and relations sorted by their keys (a new dict; everything else
    as the CMS wrote it)."""
    result = dict(snapshot)
    for kind in KINDS:
        result[kind] = sorted(snapshot.get(kind) or [], key=lambda item, kind=kind: natural_key(kind, item))
    return result


# What the CMS flags a field of a type with on a vendor when it makes the field there (Directus 10's
# ``fieldFlagForField``): SQLite declares a timestamp ``datetime`` like a dateTime and tells them apart by the flag.
VENDOR_FLAGS = {'sqlite': {'timestamp': 'cast-timestamp'}}


def field_flags(snapshot, vendor):
    """``{(collection, field): flag}`` of the fields of ``snapshot`` that the CMS flags on ``vendor``."""
    flags = VENDOR_FLAGS.get(vendor) or {}
    return {(field.get('collection'), field.get('field')): flags[field.get('type')]
            for field in snapshot.get('fields') or [] if field.get('type') in flags}


def for_vendor(snapshot, vendor):
    """``snapshot`` (of any vendor) as the CMS would have made its fields on ``vendor``: the flags that vendor's
    fields carry added (a new dict). Without it a timestamp field applied to SQLite would be read back as a
    dateTime, and one without meta would fail the apply."""
    flags = field_flags(snapshot, vendor)
    result = dict(snapshot, fields=[])
    for field in snapshot.get('fields') or []:
        flag = flags.get((field.get('collection'), field.get('field')))
        if flag:
            meta = dict(field.get('meta') or {'collection': field.get('collection'), 'field': field.get('field')})
            special = list(meta.get('special') or [])
            if flag not in special:
                meta['special'] = special + [flag]
            field = dict(field, meta=meta)
        result['fields'].append(field)
    return result


def flag_rows(snapshot, vendor):
    """For a migration's load of ``directus_fields`` rows into ``vendor``: a function of (columns, row) that adds
    the vendor's flag to the ``special`` of the rows of flagged fields (the CMS keeps ``special`` as comma-separated
    text), or None when the vendor flags nothing."""
    flags = field_flags(snapshot, vendor)
    if not flags:
        return None

    def flagged(columns, row):
        names = [column['name'] for column in columns]
        if not {'collection', 'field', 'special'} <= set(names):
            return row
        key = (row[names.index('collection')], row[names.index('field')])
        if key not in flags:
            return row
        index = names.index('special')
        special = [part for part in str(row[index] or '').split(',') if part]
        if flags[key] in special:
            return row
        row = list(row)
        row[index] = ','.join(special + [flags[key]])
        return row
    return flagged


def dumps(value):
    """Stable, human-readable JSON bytes: keys sorted, indent 2, UTF-8, one newline at the end."""
    return (json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False) + '\n').encode('utf-8')


def render(snapshot):
    """The bytes a normalised snapshot is written as: two snapshots of one schema are the same bytes."""
    return dumps(normalise(snapshot))


def counts(snapshot):
    return {kind: len(snapshot.get(kind) or []) for kind in KINDS}


def describe(snapshot):
    """``directus 10.0.0 on sqlite``."""
    return '%s %s on %s' % (VERSION_KEY, snapshot.get(VERSION_KEY), snapshot.get('vendor') or 'an unnamed vendor')


def mismatch(source, target, source_name, target_name):
    """How the snapshot ``source`` (read from ``source_name``) and the instance whose own snapshot is ``target``
    (``target_name``) differ in CMS version or database vendor, naming both sides; None when they do not."""
    reasons = []
    if source.get(VERSION_KEY) != target.get(VERSION_KEY):
        reasons.append('its CMS version differs (%s, not %s)' % (source.get(VERSION_KEY), target.get(VERSION_KEY)))
    if source.get('vendor') != target.get('vendor'):
        reasons.append('its database vendor differs (%s, not %s)'
                       % (source.get('vendor') or 'none named', target.get('vendor')))
    if not reasons:
        return None
    return ('the schema snapshot %s was taken from %s, and %s runs %s: %s'
            % (source_name, describe(source), target_name, describe(target), ' and '.join(reasons)))


def refusal(source, target, source_name, target_name):
    """Why ``source`` may not be applied to the instance of ``target`` without force (see ``mismatch``); None when
    it may."""
    found = mismatch(source, target, source_name, target_name)
    if found is None:
        return None
    return ('%s. A snapshot applies to the CMS version and the database vendor it was taken from (field types, '
            'defaults and constraints differ between them); set force to apply it anyway' % found)


# ---------------------------------------------------------------------------------------------------------------
# A diff the CMS made: summarised, pruned, shown (pure)
# ---------------------------------------------------------------------------------------------------------------

def empty_diff():
    return {kind: [] for kind in KINDS}


def is_empty(diff):
    return not diff or not any(diff.get(kind) for kind in KINDS)


def change_of(entry):
    """``added``, ``deleted`` (the whole item) or ``changed`` (some of its keys), from its deep-diff changes."""
    changes = entry.get('diff') or []
    first = changes[0] if changes and isinstance(changes[0], dict) else {}
    if len(changes) == 1 and not first.get('path'):
        if first.get('kind') == 'N':
            return 'added'
        if first.get('kind') == 'D':
            return 'deleted'
    return 'changed'


def _paths(entry):
    """The keys a change touches (``meta.note``, ``schema.default_value``), in order, once each."""
    seen = []
    for change in entry.get('diff') or []:
        path = '.'.join(str(part) for part in (change.get('path') or []))
        if path and path not in seen:
            seen.append(path)
    return seen


def summarise(diff):
    """``{collections: {added: [names], changed: [...], deleted: [...]}, fields: ..., relations: ...}``, names
    sorted."""
    summary = {kind: {change: [] for change in CHANGES} for kind in KINDS}
    for kind in KINDS:
        for entry in (diff or {}).get(kind) or []:
            summary[kind][change_of(entry)].append(item_name(kind, entry))
        for change in CHANGES:
            summary[kind][change].sort()
    return summary


def split_deletions(diff):
    """``(diff without the deletions of whole items, those deletions)``: what to apply without prune, and what the
    target keeps."""
    kept, deleted = empty_diff(), empty_diff()
    for kind in KINDS:
        for entry in (diff or {}).get(kind) or []:
            (deleted if change_of(entry) == 'deleted' else kept)[kind].append(entry)
    return kept, deleted


def names(diff):
    """``{collections: [names], fields: [...], relations: [...]}`` of the entries of ``diff``, sorted."""
    return {kind: sorted(item_name(kind, entry) for entry in (diff or {}).get(kind) or []) for kind in KINDS}


def lines(diff, kept=None):
    """One line per item, for display: ``create collection books``, ``update field books.pages (meta.note)``,
    ``delete relation books.author``, and with ``kept`` the deletions left out (``keep collection pages ...``)."""
    verbs = {'added': 'create', 'changed': 'update', 'deleted': 'delete'}
    result = []
    for kind in KINDS:
        entries = sorted((diff or {}).get(kind) or [], key=lambda entry, kind=kind: natural_key(kind, entry))
        for entry in entries:
            change = change_of(entry)
            line = '%s %s %s' % (verbs[change], SINGULAR[kind], item_name(kind, entry))
            if kind == 'relations' and entry.get('related_collection'):
                line += ' -> %s' % entry['related_collection']
            if change == 'changed':
                line += ' (%s)' % ', '.join(_paths(entry))
            result.append(line)
        for entry in sorted((kept or {}).get(kind) or [], key=lambda entry, kind=kind: natural_key(kind, entry)):
            result.append('keep %s %s (not in the snapshot; prune is off)' % (SINGULAR[kind], item_name(kind, entry)))
    return result


def _index(snapshot, kind):
    return {natural_key(kind, item): item for item in (snapshot or {}).get(kind) or []}


def item_diffs(diff, current, wanted):
    """Ansible's diff of each item of ``diff``: before as the target has it (``current``, its snapshot), after as
    the snapshot ``wanted`` has it, each as stable JSON (empty where the item does not exist)."""
    result = []
    for kind in KINDS:
        before_items, after_items = _index(current, kind), _index(wanted, kind)
        entries = sorted((diff or {}).get(kind) or [], key=lambda entry, kind=kind: natural_key(kind, entry))
        for entry in entries:
            key = natural_key(kind, entry)
            name = '%s %s' % (SINGULAR[kind], '.'.join(key))
            before, after = before_items.get(key), after_items.get(key)
            result.append({'before_header': '%s (target)' % name, 'after_header': '%s (snapshot)' % name,
                           'before': dumps(before).decode('utf-8') if before is not None else '',
                           'after': dumps(after).decode('utf-8') if after is not None else ''})
    return result


# ---------------------------------------------------------------------------------------------------------------
# Files
# ---------------------------------------------------------------------------------------------------------------

def read_snapshot(path, what='the schema snapshot'):
    """The snapshot in the JSON file ``path`` (checked, size-limited) and the sha256 of its bytes."""
    try:
        with open(path, 'rb') as handle:
            data = handle.read(MAX_SNAPSHOT_BYTES + 1)
    except OSError as exc:
        raise CairnError('cannot read %s %s: %s' % (what, path, exc.strerror or exc)) from None
    if len(data) > MAX_SNAPSHOT_BYTES:
        raise CairnError('%s %s is larger than %d MiB; that is no schema snapshot'
                         % (what, path, MAX_SNAPSHOT_BYTES // (1024 * 1024)))
    try:
        snapshot = json.loads(data.decode('utf-8'))
    except (UnicodeDecodeError, ValueError) as exc:
        raise CairnError('%s %s is not JSON: %s' % (what, path, exc)) from None
    return check_snapshot(snapshot, '%s %s' % (what, path)), hashlib.sha256(data).hexdigest()


def write_if_changed(path, data, check_mode=False):
    """``(changed, the bytes there before or None)``: writes ``data`` to ``path`` atomically unless it holds them
    already (or in check mode). A file replaced keeps its mode; a new one is 0644 (it is meant for version
    control)."""
    if os.path.isdir(path):
        raise CairnError('dest %s is a directory; give the path of the snapshot file, for example %s'
                         % (path, os.path.join(path, 'schema.json')))
    try:
        with open(path, 'rb') as handle:
            before = handle.read(MAX_SNAPSHOT_BYTES + 1)
        mode = os.stat(path).st_mode & 0o7777
    except FileNotFoundError:
        before, mode = None, 0o644
    if before == data:
        return False, before
    if not check_mode:
        with AtomicFile(path, mode=mode, keep_owner=True) as handle:
            handle.write(data)
    return True, before


# ---------------------------------------------------------------------------------------------------------------
# Through the CMS
# ---------------------------------------------------------------------------------------------------------------

def _run_cli(config, command, chdir, env_file, timeout, verb, work):
    """Run ``command + ['schema', verb...]`` like the CMS's bootstrap (configuration from ``env_file`` through
    CONFIG_PATH, nothing of it on the command line), ``work(argv, run)`` building the arguments and reading what it
    made; a CairnError with the end of its output, secrets masked, when it fails."""
    if not command:
        raise CairnError('command (cairn_cms_command) is empty; give the CMS\'s CLI, for example '
                         '[node, /opt/cairncms/node_modules/cairncms/cli.js]')
    if not env_file or not os.path.isfile(env_file):
        raise CairnError('the CMS\'s CLI reads its configuration from its .env, and %s; set env_file '
                         '(cairn_env_file) to the instance\'s .env, or use the CMS\'s HTTP API (url and token)'
                         % ('none was given' if not env_file else '%s is no file' % env_file))
    if not chdir or not os.path.isdir(chdir):
        raise CairnError('the directory %s to run the CMS\'s CLI in does not exist; set chdir' % chdir)
    argv = [str(part) for part in command]
    shown = ' '.join(argv + ['schema', verb])
    workdir = tempfile.mkdtemp(prefix='cairn-schema-')

    def run(args, done):
        timer = Timer()
        try:
            code, output = run_to_file(argv + ['schema', verb] + args, timeout, cwd=chdir,
                                       env=child_environment(os.path.abspath(env_file)), kill_group=True)
        except OSError as exc:
            raise CairnError('cannot run the CMS command %s in %s: %s; set command (cairn_cms_command) to the '
                             'CMS\'s CLI, for example [node, /opt/cairncms/node_modules/cairncms/cli.js]'
                             % (argv[0], chdir, exc.strerror)) from None
        if code != 0 or not done(output):
            reason = ('ran longer than its timeout of %s s and was stopped' % timeout if code is None
                      else 'failed (exit %d)' % code if code != 0 else 'ended without doing it')
            raise CairnError('the CMS\'s schema %s (%s, in %s) %s; the end of its output:\n%s'
                             % (verb, shown, chdir, reason, masked_tail(output, secret_values(config, env_file))),
                             duration_s=timer.seconds)
        return output
    try:
        return work(workdir, run)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def snapshot_cli(config, command, chdir, env_file, timeout):
    """The instance's snapshot as its CMS's CLI writes it (``command + [schema, snapshot, --yes, --format, json,
    <file>]``); a CairnError with the end of its output, secrets masked, when it fails."""
    def work(workdir, run):
        target = os.path.join(workdir, 'snapshot.json')
        run(['--yes', '--format', 'json', target], lambda _output: os.path.isfile(target))
        snapshot, _digest = read_snapshot(target, 'the snapshot the CMS\'s CLI wrote')
        return snapshot
    return _run_cli(config, command, chdir, env_file, timeout, 'snapshot', work)


def apply_cli(config, command, chdir, env_file, timeout, snapshot):
    """Apply ``snapshot`` to the instance through its CMS's CLI (``command + [schema, apply, --yes, <file>]``): the
    CMS makes the collections, fields and relations natively on its own vendor. The CLI of Directus 10 does not
    compare the snapshot's vendor with its own. Returns the end of its output."""
    def work(workdir, run):
        source = os.path.join(workdir, 'snapshot.json')
        with open(source, 'wb') as handle:
            handle.write(render(snapshot))
        return masked_tail(run(['--yes', source], lambda _output: True), secret_values(config, env_file))
    return _run_cli(config, command, chdir, env_file, timeout, 'apply', work)


def _base(url):
    return url.rstrip('/')


def _cms_message(body):
    """The messages of a CMS's error answer (``{errors: [{message}]}``), '' when it has none."""
    try:
        errors = json.loads(body.decode('utf-8', 'replace')).get('errors') or []
        return '; '.join(str(error.get('message')) for error in errors if isinstance(error, dict))[:2000]
    except (ValueError, AttributeError):
        return ''


def _call(method, url, path, token, body=None, query='', timeout=300, validate_certs=True):
    """The JSON ``data`` of the CMS's answer to ``method <url><path>``, None for an empty answer (204); one
    CairnError naming the request and what the CMS said otherwise (never the token)."""
    from ansible_collections.cairncms.ops.plugins.module_utils._http import HTTPStatusError, request

    where = _base(url) + path
    try:
        raw = request(method, where + query, token=token, body=body, timeout=timeout, validate_certs=validate_certs)
    except HTTPStatusError as exc:
        said = _cms_message(exc.body)
        hint = ''
        if exc.status in (401, 403):
            hint = '; the schema endpoints are for administrators: give the static token of an admin user (token)'
        raise CairnError('%s %s failed: HTTP %s%s%s' % (method, where, exc.status, ': %s' % said if said else '',
                                                        hint), status=exc.status) from None
    if not raw:
        return None
    try:
        return json.loads(raw.decode('utf-8'))['data']
    except (UnicodeDecodeError, ValueError, KeyError, TypeError):
        raise CairnError('%s %s did not answer the JSON a CairnCMS or Directus server answers' % (method, where))


def snapshot_http(url, token, timeout=300, validate_certs=True):
    """The running instance's snapshot (``GET /schema/snapshot``), checked."""
    data = _call('GET', url, '/schema/snapshot', token, query='?search=%s' % uuid.uuid4().hex, timeout=timeout,
                 validate_certs=validate_certs)
    return check_snapshot(data, 'the snapshot of %s/schema/snapshot' % _base(url))


def diff_http(url, token, snapshot, force=False, timeout=300, validate_certs=True):
    """``{hash, diff}`` that makes the instance's schema that of ``snapshot`` (``POST /schema/diff``), None when it
    has it already. ``force`` skips the CMS's own version and vendor check."""
    data = _call('POST', url, '/schema/diff', token, body=snapshot, query='?force=true' if force else '',
                 timeout=timeout, validate_certs=validate_certs)
    if data is None:
        return None
    if not isinstance(data, dict) or not isinstance(data.get('hash'), str) or not isinstance(data.get('diff'), dict):
        raise CairnError('POST %s/schema/diff answered no hash and diff' % _base(url))
    diff = data['diff']
    return {'hash': data['hash'], 'diff': {kind: list(diff.get(kind) or []) for kind in KINDS}}


def apply_http(url, token, digest, diff, timeout=300, validate_certs=True):
    """Apply ``diff``, made against the instance's schema of hash ``digest`` (``POST /schema/apply``)."""
    _call('POST', url, '/schema/apply', token, body={'hash': digest, 'diff': diff}, timeout=timeout,
          validate_certs=validate_certs)


# ---------------------------------------------------------------------------------------------------------------
# What the module does
# ---------------------------------------------------------------------------------------------------------------

def take(source, dest, check_mode=False, want_diff=False):
    """Write the normalised ``source`` snapshot (as ``snapshot_cli`` or ``snapshot_http`` took it) to ``dest``:
    the module's result (``changed`` when the file's bytes change)."""
    data = render(source)
    changed, before = write_if_changed(dest, data, check_mode)
    result = {'changed': changed, 'path': dest, 'sha256': hashlib.sha256(data).hexdigest(), 'size_bytes': len(data),
              'counts': counts(source), 'vendor': source.get('vendor'), 'cms_version': source.get(VERSION_KEY)}
    if want_diff and changed:
        result['diff'] = {'before_header': dest, 'after_header': dest,
                          'before': (before or b'').decode('utf-8', 'replace'), 'after': data.decode('utf-8')}
    return result


def promote(url, token, snapshot, source_name, apply=False, force=False, prune=False, check_mode=False,
            want_diff=False, timeout=300, validate_certs=True):
    """Diff ``snapshot`` (read from ``source_name``) against the instance at ``url`` and, with ``apply`` (not in
    check mode), apply the difference: the module's result. Without ``prune``, what the instance has and the
    snapshot lacks is kept (``kept``). A snapshot of another CMS version or vendor is refused unless ``force``."""
    target_name = _base(url)
    current = snapshot_http(url, token, timeout, validate_certs)
    refused = mismatch(snapshot, current, source_name, target_name)
    sides = {'snapshot': {'path': source_name, 'vendor': snapshot.get('vendor'),
                          'cms_version': snapshot.get(VERSION_KEY), 'counts': counts(snapshot)},
             'target': {'url': target_name, 'vendor': current.get('vendor'),
                        'cms_version': current.get(VERSION_KEY), 'counts': counts(current)}}
    if refused and not force:
        raise CairnError(refusal(snapshot, current, source_name, target_name), **sides)
    warnings = ['%s; going on anyway (force is on)' % refused] if refused else []
    answer = diff_http(url, token, snapshot, force=bool(refused), timeout=timeout, validate_certs=validate_certs)
    diff = answer['diff'] if answer else empty_diff()
    todo, kept = (diff, empty_diff()) if prune else split_deletions(diff)
    differences = not is_empty(todo)
    result = dict(sides, changed=bool(apply) and differences, differences=differences, summary=summarise(todo),
                  kept=names(kept), changes=lines(todo, kept), hash=answer['hash'] if differences else None,
                  forced=bool(refused))
    if want_diff:
        result['diff'] = item_diffs(todo, current, snapshot)
    if apply and differences and not check_mode:
        timer = Timer()
        try:
            apply_http(url, token, answer['hash'], todo, timeout, validate_certs)
        except CairnError as exc:
            left = _left(url, token, snapshot, refused, prune, todo, timeout, validate_certs)
            details = {key: value for key, value in result.items() if key not in ('changed', 'diff')}
            raise CairnError('%s. %s' % (exc.message, left), **details) from None
        result['duration_s'] = timer.seconds
        remaining = _remaining(url, token, snapshot, refused, prune, timeout, validate_certs)
        result['remaining'] = summarise(remaining)
        if not is_empty(remaining):
            warnings.append('the CMS applied the schema, yet %s still differs from the snapshot: %s'
                            % (target_name, '; '.join(lines(remaining))))
    if warnings:
        result['warnings'] = warnings
    return result


def _remaining(url, token, snapshot, force, prune, timeout, validate_certs):
    """What still differs between the instance and ``snapshot`` (the deletions left out without ``prune``)."""
    again = diff_http(url, token, snapshot, force=bool(force), timeout=timeout, validate_certs=validate_certs)
    if not again:
        return empty_diff()
    return again['diff'] if prune else split_deletions(again['diff'])[0]


def _left(url, token, snapshot, force, prune, todo, timeout, validate_certs):
    """What a failed apply of ``todo`` left, in a sentence: the CMS applies a diff in one transaction, but MySQL and
    MariaDB commit each schema change at once, so part of it may be in."""
    try:
        remaining = _remaining(url, token, snapshot, force, prune, timeout, validate_certs)
    except CairnError as exc:
        return 'What it left could not be read (%s); diff again before anything else' % exc.message
    if summarise(remaining) == summarise(todo):
        return 'The CMS rolled it back: %s has the schema it had before' % _base(url)
    return ('Part of it was applied; still to change on %s: %s'
            % (_base(url), '; '.join(lines(remaining)) or 'nothing'))
