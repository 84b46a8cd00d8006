# -*- coding: utf-8 -*-
# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The CMS's config as code (private): its roles and permissions, and by option its flows with their operations,
webhooks, presets, dashboards with their panels, translations and settings, as one canonical document; laid out
one file per role and per role's collection for version control; diffed; applied through the CMS's own HTTP API.

The document is made from the rows of the ``directus_*`` tables (``from_rows``), read from any vendor's database or
over the CMS's API, and is the same for the same config whichever way it was read:

* booleans are ``true``/``false`` (SQLite and MariaDB give 0/1), JSON columns JSON values (SQLite and MariaDB give
  text), comma-separated columns (``fields``, ``ip_access``, a webhook's ``actions`` and ``collections``) lists, as
  the CMS's API gives them; a column this code does not know is kept as the database gives it;
* what an instance makes of its own is left out: timestamps and the users who created items (``date_created``,
  ``user_created``, ...); the integer ids of permissions, webhooks and presets (an id given to the CMS would not
  move PostgreSQL's sequence, so these are created without one and matched by what they are: a permission by
  ``(role, collection, action)``, a webhook by its name, a preset by ``(role, collection, bookmark)``); a user's
  own presets (users are no config); in the settings, the project's URL, the files and folder it names (promotion
  moves no files) and the Mapbox key (a credential);
* roles with admin access are left out with their permissions and presets: every instance's bootstrap makes its
  own administrator role with an id of its own and no permission rows (the CMS grants an administrator
  everything); promoting it would add a second administrator role to the target, and pruning would delete the
  target's own, that of the token doing the promotion;
* the permissions the CMS adds in memory for app access (no id, ``system: true``) are not rows and are left out.

Everything else is matched by id (roles, flows, operations, dashboards, panels, translations); the settings are
one object. Items are sorted by what they are matched by, so equal configs are equal documents, and equal bytes
(``dumps``, ``render_files``).
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import stat
import unicodedata
import urllib.parse
import uuid

from ansible_collections.cairncms.ops.plugins.module_utils._cms import schema as cms_schema
from ansible_collections.cairncms.ops.plugins.module_utils._common import AtomicFile, CairnError

FORMAT = 'cairncms.ops/config'
FORMAT_VERSION = 1
KINDS = ('roles', 'permissions', 'flows', 'webhooks', 'presets', 'dashboards', 'translations', 'settings')
DEFAULT_KINDS = ('roles', 'permissions')
VENDORS = ('sqlite', 'postgres', 'mysql', 'api')
INDEX_FILE = 'config.json'
SETTINGS_FILE = 'settings.json'
PUBLIC = 'public'
VOLATILE = ('date_created', 'date_updated', 'user_created', 'user_updated')
MAX_FILE_BYTES = 8 * 1024 * 1024
MAX_TOTAL_BYTES = 128 * 1024 * 1024
MAX_FILES = 20000
SHOWN = 20  # items named in a message before "and N more"


class ConfigFormatError(CairnError, ValueError):
    """A config document or directory this code does not read: a CairnError for the operator, and a ValueError for
    callers that word parse errors themselves."""


class _Spec:
    """One kind of item: its table, its API path, what it is matched by and how its columns are read."""

    def __init__(self, plural, singular, kind, table, path, key, drop=(), booleans=(), csv=(), json_columns=(),
                 links=()):
        self.plural, self.singular, self.kind, self.table, self.path = plural, singular, kind, table, path
        self.key = key            # the columns an item is matched by; () for the settings (one object)
        self.drop = drop          # columns left out (besides VOLATILE)
        self.booleans, self.csv, self.json = booleans, csv, json_columns
        self.links = links        # columns naming items of the same run, set once those exist

    @property
    def by_id(self):
        return self.key == ('id',)


# In the order they are created; deleted in the reverse order.
SPECS = (
    _Spec('roles', 'role', 'roles', 'directus_roles', '/roles', ('id',),
          booleans=('enforce_tfa', 'admin_access', 'app_access'), csv=('ip_access',)),
    _Spec('permissions', 'permission', 'permissions', 'directus_permissions', '/permissions',
          ('role', 'collection', 'action'), drop=('id',), json_columns=('permissions', 'validation', 'presets'),
          csv=('fields',)),
    _Spec('flows', 'flow', 'flows', 'directus_flows', '/flows', ('id',), json_columns=('options',),
          links=('operation',)),
    _Spec('operations', 'operation', 'flows', 'directus_operations', '/operations', ('id',),
          json_columns=('options',), links=('resolve', 'reject')),
    _Spec('webhooks', 'webhook', 'webhooks', 'directus_webhooks', '/webhooks', ('name',), drop=('id',),
          booleans=('data',), csv=('actions', 'collections'), json_columns=('headers',)),
    _Spec('presets', 'preset', 'presets', 'directus_presets', '/presets', ('role', 'collection', 'bookmark'),
          drop=('id', 'user'), json_columns=('layout_query', 'layout_options', 'filter')),
    _Spec('dashboards', 'dashboard', 'dashboards', 'directus_dashboards', '/dashboards', ('id',)),
    _Spec('panels', 'panel', 'dashboards', 'directus_panels', '/panels', ('id',), booleans=('show_header',),
          json_columns=('options',)),
    _Spec('translations', 'translation', 'translations', 'directus_translations', '/translations', ('id',)),
    _Spec('settings', 'settings', 'settings', 'directus_settings', '/settings', (),
          drop=('id', 'project_url', 'project_logo', 'public_foreground', 'public_background',
                'storage_default_folder', 'mapbox_key'),
          json_columns=('storage_asset_presets', 'basemaps', 'module_bar', 'translation_strings',
                        'custom_aspect_ratios')),
)
BY_PLURAL = {spec.plural: spec for spec in SPECS}
BY_SINGULAR = {spec.singular: spec for spec in SPECS}
ITEMS = tuple(spec.plural for spec in SPECS)
ACTIONS = ('create', 'update', 'delete')
SUMMARY_WORDS = {'create': 'added', 'update': 'changed', 'delete': 'deleted'}


# ---------------------------------------------------------------------------------------------------------------
# Kinds and tables
# ---------------------------------------------------------------------------------------------------------------

def check_kinds(kinds):
    """``kinds`` (None: DEFAULT_KINDS) as a tuple in the order of KINDS; a CairnError naming an unknown one."""
    if kinds is None:
        return DEFAULT_KINDS
    if isinstance(kinds, str) or not all(isinstance(kind, str) for kind in kinds):
        raise CairnError('the config kinds are a list of names among %s' % ', '.join(KINDS))
    unknown = sorted(set(kinds) - set(KINDS))
    if unknown:
        raise CairnError('%s %s no config kind; the kinds are %s'
                         % (', '.join(unknown), 'is' if len(unknown) == 1 else 'are', ', '.join(KINDS)))
    return tuple(kind for kind in KINDS if kind in kinds)


def _specs(kinds):
    return [spec for spec in SPECS if spec.kind in kinds]


def tables(kinds=None):
    """The ``directus_*`` tables ``from_rows`` needs to build ``kinds``: the roles' too for permissions and presets
    (those of roles with admin access are left out)."""
    kinds = check_kinds(kinds)
    names = [spec.table for spec in _specs(kinds)]
    if ('permissions' in kinds or 'presets' in kinds) and 'directus_roles' not in names:
        names.insert(0, 'directus_roles')
    return names


# ---------------------------------------------------------------------------------------------------------------
# Rows to the canonical document (pure)
# ---------------------------------------------------------------------------------------------------------------

def _boolean(value, where):
    if value is None or isinstance(value, bool):
        return value
    if value in (0, 1, '0', '1'):
        return bool(int(value))
    if isinstance(value, str) and value.lower() in ('true', 'false'):
        return value.lower() == 'true'
    raise CairnError('%s is %r, not a boolean' % (where, value))


def _json_value(value, vendor):
    """PostgreSQL and the API give JSON columns as JSON values; SQLite and MariaDB as text, parsed here (text that
    is no JSON stays text, as the CMS serves it)."""
    if vendor in ('sqlite', 'mysql') and isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _csv(value):
    if value is None or isinstance(value, list):
        return value
    text = str(value)
    return text.split(',') if text else []


def _normalise(spec, row, vendor, where):
    if not isinstance(row, dict):
        raise CairnError('%s has a row that is not an object' % where)
    item = {}
    for column, value in row.items():
        column = str(column)
        if column in VOLATILE or column in spec.drop:
            continue
        if column in spec.booleans:
            value = _boolean(value, '%s: %s' % (where, column))
        elif column in spec.json:
            value = _json_value(value, vendor)
        elif column in spec.csv:
            value = _csv(value)
        item[column] = value
    return item


def _identity(spec, item):
    return tuple(item.get(column) for column in spec.key)


def _sort_key(identity):
    return tuple((value is not None, isinstance(value, str), str(value) if value is not None else '')
                 for value in identity)


def _identity_text(spec, identity):
    return ', '.join('%s %s' % (column, json.dumps(value)) for column, value in zip(spec.key, identity))


def _check_identity(spec, item, where):
    for column, value in zip(spec.key, _identity(spec, item)):
        optional = spec.plural == 'presets' and column == 'collection'
        required = column in ('id', 'name', 'collection', 'action') and not optional
        if value is None and required:
            raise ConfigFormatError('%s has a %s without %s' % (where, spec.singular, column))
        if isinstance(value, bool) or (value is not None and not isinstance(value, (str, int))):
            raise ConfigFormatError('%s has a %s whose %s is %s, not a string'
                                    % (where, spec.singular, column, json.dumps(value)))


def _sorted_unique(spec, items, where):
    if not spec.key:
        if len(items) > 1:
            raise ConfigFormatError('%s has %d settings objects; the CMS keeps one' % (where, len(items)))
        return list(items)
    seen = {}
    for item in items:
        _check_identity(spec, item, where)
        identity = _identity(spec, item)
        if identity in seen:
            raise ConfigFormatError('%s has two %ss with %s; one is matched by %s, so each must be there once'
                                    % (where, spec.singular, _identity_text(spec, identity),
                                       ', '.join(spec.key)))
        seen[identity] = item
    return [seen[identity] for identity in sorted(seen, key=_sort_key)]


def _admin_roles(rows):
    found = set()
    for row in rows.get('directus_roles') or ():
        if isinstance(row, dict) and _boolean(row.get('admin_access'), 'directus_roles: admin_access'):
            found.add(row.get('id'))
    return found


def _wanted(spec, row, item, admin):
    """Whether the ``row`` (normalised: ``item``) is config: not a role with admin access, nor its permission or
    preset, nor a user's own preset."""
    if spec.plural == 'roles':
        return not item.get('admin_access')
    if spec.plural == 'permissions':
        return item.get('role') not in admin
    if spec.plural == 'presets':
        return row.get('user') is None and item.get('role') not in admin
    return True


def from_rows(rows, kinds=None, vendor='sqlite'):
    """The canonical config of ``kinds`` from ``rows`` (``{table: [row as a dict]}``, a table that does not exist
    absent) as ``vendor`` gives them: ``sqlite``, ``postgres``, ``mysql`` (read_tables of a database backend) or
    ``api`` (the CMS's API). The same config gives the same document whichever it is."""
    kinds = check_kinds(kinds)
    if vendor not in VENDORS:
        raise CairnError('rows of vendor %r cannot be read as a config; the vendors are %s'
                         % (vendor, ', '.join(VENDORS)))
    rows = rows or {}
    admin = _admin_roles(rows)
    config = {'format': FORMAT, 'version': FORMAT_VERSION, 'kinds': list(kinds)}
    for spec in _specs(kinds):
        where = 'the table %s' % spec.table
        items = []
        for row in rows.get(spec.table) or ():
            item = _normalise(spec, row, vendor, where)
            if _wanted(spec, row, item, admin):
                items.append(item)
        config[spec.plural] = _sorted_unique(spec, items, where)
    return config


# ---------------------------------------------------------------------------------------------------------------
# The document: checked, canonical, one JSON text
# ---------------------------------------------------------------------------------------------------------------

def _text(value):
    """Stable, human-readable JSON bytes: keys sorted, indent 2, UTF-8, one newline at the end."""
    return (json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False) + '\n').encode('utf-8')


def check(config, where='the config'):
    """``config`` canonical (kinds in order, items normalised and sorted), or a ConfigFormatError naming ``where``
    and what is wrong."""
    if not isinstance(config, dict):
        raise ConfigFormatError('%s is not a config: it is not a JSON object' % where)
    if config.get('format') != FORMAT:
        raise ConfigFormatError('%s is not a config: its format is %s, not %s'
                                % (where, json.dumps(config.get('format')), FORMAT))
    version = config.get('version')
    if not isinstance(version, int) or isinstance(version, bool) or not 1 <= version <= FORMAT_VERSION:
        raise ConfigFormatError('%s is config format version %s; this version of cairncms.ops reads version %d'
                                % (where, json.dumps(version), FORMAT_VERSION))
    try:
        kinds = check_kinds(config.get('kinds'))
    except CairnError as exc:
        raise ConfigFormatError('%s: %s' % (where, exc.message)) from None
    result = {'format': FORMAT, 'version': FORMAT_VERSION, 'kinds': list(kinds)}
    for spec in _specs(kinds):
        items = config.get(spec.plural)
        if items is None:
            items = []
        if not isinstance(items, list):
            raise ConfigFormatError('%s: its %s are not a list' % (where, spec.plural))
        inside = '%s (%s)' % (where, spec.plural)
        result[spec.plural] = _sorted_unique(spec, [_normalise(spec, item, 'api', inside) for item in items],
                                             inside)
    extra = sorted(set(config) - set(result) - set(ITEMS))
    if extra:
        raise ConfigFormatError('%s has keys no config has: %s' % (where, ', '.join(extra)))
    return result


def dumps(config):
    """The whole config as one canonical JSON document (bytes): equal configs, equal bytes."""
    return _text(check(config))


def loads(data, where='the config document'):
    """The config in ``data`` (bytes or text as ``dumps`` writes them), checked; a ConfigFormatError (a CairnError
    and a ValueError) naming ``where`` otherwise."""
    try:
        if isinstance(data, bytes):
            data = data.decode('utf-8')
        parsed = json.loads(data)
    except UnicodeDecodeError:
        raise ConfigFormatError('%s is not UTF-8 text' % where) from None
    except ValueError as exc:
        raise ConfigFormatError('%s is not JSON: %s' % (where, exc)) from None
    return check(parsed, where)


def counts(config):
    """``{roles: n, permissions: n, ...}`` of the items ``config`` has."""
    return {plural: len(config.get(plural) or ()) for plural in ITEMS if plural in config}


# ---------------------------------------------------------------------------------------------------------------
# Files: one per role, per role's collection, per flow, ...
# ---------------------------------------------------------------------------------------------------------------

_STEM = re.compile(r'^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$')
_LAYOUT = re.compile(r'^(?:(config|settings)\.json|(roles|flows|webhooks|dashboards|translations)/([^/]+)\.json|'
                     r'(permissions|presets)/([^/]+)/([^/]+)\.json)$')


def _slug(text, fallback):
    """``text`` as a file name: ASCII letters (lower case), digits, ``_`` and ``-``, at most 60 characters."""
    text = unicodedata.normalize('NFKD', str(text)).encode('ascii', 'ignore').decode('ascii').lower()
    text = re.sub(r'[^a-z0-9_]+', '-', text).strip('-')[:60].strip('-')
    return text or fallback


def _stems(entries, reserved=()):
    """``{identity: file stem}`` for ``entries`` ``(identity, wished stem, suffix)``: the wished stem where it is
    unique (and not reserved), else the stem with the item's suffix (its id, or a digest of what it is)."""
    wished = {}
    for identity, stem, _suffix in entries:
        wished.setdefault(stem, []).append(identity)
    result = {}
    for identity, stem, suffix in entries:
        if len(wished[stem]) > 1 or stem in reserved:
            stem = '%s-%s' % (stem, suffix)
        result[identity] = stem
    taken = {}

    def order(identity):
        return _sort_key(identity if isinstance(identity, tuple) else (identity,))

    for identity in sorted(result, key=order):
        stem = result[identity]
        while stem in taken or stem in reserved:
            stem = '%s-%s' % (stem, _digest(identity))
        taken[stem] = identity
        result[identity] = stem
    return result


def _digest(value):
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode('utf-8')).hexdigest()[:10]


def _role_dirs(config):
    """``{role id or None: directory name}``: the role's file stem, ``public`` for the public role (no role)."""
    roles = {role['id']: role for role in config.get('roles') or ()}
    used = set(roles)
    for plural in ('permissions', 'presets'):
        used.update(item.get('role') for item in config.get(plural) or ())
    used.discard(None)
    entries = [(role_id, _slug(roles[role_id].get('name') if role_id in roles else role_id, 'role'),
                _slug(role_id, _digest(role_id))) for role_id in sorted(used, key=str)]
    stems = _stems(entries, reserved=(PUBLIC,))
    stems[None] = PUBLIC
    return stems


def _by_role_and_collection(items, dirs, order):
    """``{relative path: [items]}``: one file per role directory and collection."""
    groups = {}
    for item in items:
        groups.setdefault(item.get('role'), []).append(item)
    files = {}
    for role, members in groups.items():
        collections = sorted({item.get('collection') for item in members}, key=lambda value: _sort_key((value,)))
        stems = _stems([(collection, _slug(collection, '_none') if collection is not None else '_none',
                         _digest(collection)) for collection in collections])
        for collection in collections:
            chosen = [item for item in members if item.get('collection') == collection]
            files['%s/%s.json' % (dirs[role], stems[collection])] = sorted(chosen, key=order)
    return files


def render_files(config):
    """The files of ``config``, a sorted list of ``(relative path, bytes)``: ``config.json`` (format, version,
    kinds), ``roles/<role>.json``, ``permissions/<role>/<collection>.json`` (``public`` for the public role),
    ``flows/<flow>.json`` with its operations, ``webhooks/<webhook>.json``, ``presets/<role>/<collection>.json``,
    ``dashboards/<dashboard>.json`` with its panels, ``translations/<language>.json`` and ``settings.json``. Names
    are made of the items' names (ASCII letters, digits, ``_``, ``-``) and carry their id, or a digest, where two
    would be the same. The same config gives the same files."""
    config = check(config)
    kinds = config['kinds']
    files = {INDEX_FILE: {'format': FORMAT, 'version': FORMAT_VERSION, 'kinds': kinds}}
    dirs = _role_dirs(config)
    if 'roles' in kinds:
        for role in config['roles']:
            files['roles/%s.json' % dirs[role['id']]] = role
    if 'permissions' in kinds:
        found = _by_role_and_collection(config['permissions'], dirs, lambda item: str(item.get('action')))
        files.update(('permissions/%s' % path, items) for path, items in found.items())
    if 'presets' in kinds:
        found = _by_role_and_collection(config['presets'], dirs,
                                        lambda item: _sort_key((item.get('bookmark'),)))
        files.update(('presets/%s' % path, items) for path, items in found.items())
    if 'flows' in kinds:
        files.update(_with_children(config['flows'], config['operations'], 'flows', 'flow', 'operations'))
    if 'dashboards' in kinds:
        files.update(_with_children(config['dashboards'], config['panels'], 'dashboards', 'dashboard', 'panels'))
    if 'webhooks' in kinds:
        stems = _stems([(item['name'], _slug(item['name'], 'webhook'), _digest(item['name']))
                        for item in config['webhooks']])
        files.update(('webhooks/%s.json' % stems[item['name']], item) for item in config['webhooks'])
    if 'translations' in kinds:
        languages = sorted({str(item.get('language')) for item in config['translations']})
        stems = _stems([(language, _slug(language, 'language'), _digest(language)) for language in languages])
        for language in languages:
            chosen = [item for item in config['translations'] if str(item.get('language')) == language]
            files['translations/%s.json' % stems[language]] = sorted(
                chosen, key=lambda item: (str(item.get('key')), str(item.get('id'))))
    if 'settings' in kinds and config['settings']:
        files[SETTINGS_FILE] = config['settings'][0]
    return sorted((path, _text(value)) for path, value in files.items())


def _with_children(parents, children, folder, singular, plural):
    """``{folder/<parent>.json: {singular: parent, plural: [its children]}}`` (children of a parent the config
    lacks in a file named after the parent's id, with ``singular: null``)."""
    ids = [parent['id'] for parent in parents]
    ids += sorted({child.get(singular) for child in children} - set(ids), key=str)
    names = {parent['id']: parent.get('name') for parent in parents}
    stems = _stems([(parent_id, _slug(names.get(parent_id) or parent_id, singular), _slug(parent_id, 'x'))
                    for parent_id in ids])
    files = {}
    parents_by_id = {parent['id']: parent for parent in parents}
    for parent_id in ids:
        mine = [child for child in children if child.get(singular) == parent_id]
        files['%s/%s.json' % (folder, stems[parent_id])] = {singular: parents_by_id.get(parent_id), plural: mine}
    return files


def _check_path(path):
    """The layout entry ``path`` is, as a match; a ConfigFormatError for an unsafe or foreign name."""
    if not isinstance(path, str) or not path or '\\' in path or '\x00' in path or path.startswith('/'):
        raise ConfigFormatError('the config file name %r is not a relative path' % (path,))
    parts = path.split('/')
    if any(part in ('', '.', '..') or not _STEM.match(part) for part in parts):
        raise ConfigFormatError('the config file name %r is not a safe relative path (letters, digits, "_", "-" '
                                'and "." in each part, no "..")' % (path,))
    match = _LAYOUT.match(path)
    if match is None:
        raise ConfigFormatError('%s is not a file of the config layout (config.json, settings.json, roles/, '
                                'permissions/<role>/, flows/, webhooks/, presets/<role>/, dashboards/, '
                                'translations/)' % path)
    return match


def _parse_file(path, data):
    if len(data) > MAX_FILE_BYTES:
        raise ConfigFormatError('the config file %s is larger than %d MiB' % (path, MAX_FILE_BYTES // 1048576))
    try:
        return json.loads(data.decode('utf-8'))
    except UnicodeDecodeError:
        raise ConfigFormatError('the config file %s is not UTF-8 text' % path) from None
    except ValueError as exc:
        raise ConfigFormatError('the config file %s is not JSON: %s' % (path, exc)) from None


def _expect(value, kind, path, what):
    if not isinstance(value, kind):
        raise ConfigFormatError('the config file %s is not %s' % (path, what))
    return value


def _items_of(folder, path, value):
    """``[(plural, item)]`` a layout file holds."""
    if folder in ('roles', 'webhooks'):
        return [(folder, _expect(value, dict, path, 'a JSON object (one %s)' % BY_PLURAL[folder].singular))]
    if folder in ('permissions', 'presets', 'translations'):
        items = _expect(value, list, path, 'a JSON list of %s' % folder)
        return [(folder, _expect(item, dict, path, 'a JSON list of objects')) for item in items]
    if folder == 'settings':
        return [('settings', _expect(value, dict, path, 'a JSON object (the settings)'))]
    singular, plural = ('flow', 'operations') if folder == 'flows' else ('dashboard', 'panels')
    _expect(value, dict, path, 'a JSON object with %s and %s' % (singular, plural))
    unknown = sorted(set(value) - {singular, plural})
    if unknown:
        raise ConfigFormatError('the config file %s has keys other than %s and %s: %s'
                                % (path, singular, plural, ', '.join(unknown)))
    found = []
    if value.get(singular) is not None:
        found.append((folder, _expect(value[singular], dict, path, 'a %s object' % singular)))
    children = _expect(value.get(plural) or [], list, path, 'a JSON object whose %s are a list' % plural)
    found.extend((plural, _expect(child, dict, path, 'a list of %s objects' % plural)) for child in children)
    return found


def load_files(files):
    """The config in ``files`` (``{relative path: bytes}``, as a directory holds them); a ConfigFormatError naming
    the file for an unsafe name, a file outside the layout, a file that is no JSON or not the JSON its place
    holds, an item in two files, or items of a kind ``config.json`` does not list."""
    index = None
    items = {plural: [] for plural in ITEMS}
    origin = {}
    for path in sorted(files):
        match = _check_path(path)
        value = _parse_file(path, files[path])
        if match.group(1) == 'config':
            index = _expect(value, dict, path, 'a JSON object (format, version, kinds)')
            continue
        folder = match.group(1) or match.group(2) or match.group(4)
        for plural, item in _items_of(folder, path, value):
            spec = BY_PLURAL[plural]
            if spec.key:
                _check_identity(spec, item, 'the config file %s' % path)
            identity = (plural,) + _identity(spec, item)
            if identity in origin:
                raise ConfigFormatError('the config files %s and %s both have the %s with %s'
                                        % (origin[identity], path, spec.singular,
                                           _identity_text(spec, identity[1:]) or 'the settings'))
            origin[identity] = path
            items[plural].append(item)
    if index is None:
        raise ConfigFormatError('the config files have no %s (format, version, kinds); is this a config '
                                'directory as cairncms.ops writes it?' % INDEX_FILE)
    config = dict(index)
    try:
        kinds = check_kinds(index.get('kinds'))
    except CairnError as exc:
        raise ConfigFormatError('%s: %s' % (INDEX_FILE, exc.message)) from None
    for spec in SPECS:
        if spec.kind not in kinds and items[spec.plural]:
            raise ConfigFormatError('the config files have %s (%s), and %s does not list %s among its kinds'
                                    % (spec.plural, origin[next(key for key in origin if key[0] == spec.plural)],
                                       INDEX_FILE, spec.kind))
        if spec.kind in kinds:
            config[spec.plural] = items[spec.plural]
    return check(config, 'the config files')


# ---------------------------------------------------------------------------------------------------------------
# A directory (untrusted: no symlinks, sizes limited)
# ---------------------------------------------------------------------------------------------------------------

def _lstat(path):
    try:
        return os.lstat(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise CairnError('cannot read %s: %s' % (path, exc.strerror or exc)) from None


def _check_directory(path, must_exist=True):
    info = _lstat(path)
    if info is None:
        if must_exist:
            raise CairnError('the config directory %s does not exist' % path)
        return False
    if stat.S_ISLNK(info.st_mode):
        raise CairnError('the config directory %s is a symlink; give the directory itself' % path)
    if not stat.S_ISDIR(info.st_mode):
        raise CairnError('the config directory %s is not a directory' % path)
    return True


def _layout_files(path):
    """``{relative path: absolute path}`` of the JSON files under ``path`` (dot files and other files left
    alone); a CairnError for a symlink or a special file, and beyond MAX_FILES."""
    found = {}
    for root, dirs, names in os.walk(path, followlinks=False):
        dirs[:] = sorted(name for name in dirs if not name.startswith('.'))
        for name in list(dirs) + sorted(names):
            if name.startswith('.'):
                continue
            full = os.path.join(root, name)
            info = _lstat(full)
            if info is None:
                continue
            relative = os.path.relpath(full, path).replace(os.sep, '/')
            if stat.S_ISLNK(info.st_mode):
                raise CairnError('the config directory %s has a symlink, %s; a config directory holds plain files '
                                 'only' % (path, relative))
            if name in dirs:
                continue
            if not name.endswith('.json'):
                continue
            if not stat.S_ISREG(info.st_mode):
                raise CairnError('the config directory %s has %s, which is not a plain file' % (path, relative))
            found[relative] = full
            if len(found) > MAX_FILES:
                raise CairnError('the config directory %s has more than %d JSON files; is it a config directory?'
                                 % (path, MAX_FILES))
    return found


def _read_file(full, relative, limit=MAX_FILE_BYTES):
    try:
        fd = os.open(full, os.O_RDONLY | getattr(os, 'O_NOFOLLOW', 0) | getattr(os, 'O_NONBLOCK', 0))
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise CairnError('the config file %s is a symlink; a config directory holds plain files only'
                             % relative) from None
        raise CairnError('cannot read the config file %s: %s' % (relative, exc.strerror or exc)) from None
    with os.fdopen(fd, 'rb') as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            raise CairnError('the config file %s is not a plain file' % relative)
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise CairnError('the config file %s is larger than %d MiB' % (relative, limit // 1048576))
    return data


def read_directory(path):
    """The config in the directory ``path`` as ``write_directory`` writes it (its JSON files; others, and dot
    files, left alone)."""
    _check_directory(path)
    files, total = {}, 0
    for relative, full in sorted(_layout_files(path).items()):
        files[relative] = _read_file(full, relative)
        total += len(files[relative])
        if total > MAX_TOTAL_BYTES:
            raise CairnError('the config directory %s holds more than %d MiB of JSON; is it a config directory?'
                             % (path, MAX_TOTAL_BYTES // 1048576))
    try:
        return load_files(files)
    except ConfigFormatError as exc:
        raise ConfigFormatError('the config directory %s: %s' % (path, exc.message)) from None


def write_directory(path, config, check_mode=False, want_diff=True):
    """Write ``config`` to the directory ``path`` (made when missing): each file of ``render_files`` whose bytes
    change, atomically; the files of this layout it no longer has removed; other files left alone. The result:
    ``changed``, ``path``, ``written`` and ``removed`` (relative paths), ``unchanged`` (how many), ``counts``, and
    with ``want_diff`` ``diff`` (each file before and after). Check mode writes and removes nothing."""
    rendered = dict(render_files(config))
    exists = _check_directory(path, must_exist=False)
    present = _layout_files(path) if exists else {}
    current = {relative: full for relative, full in present.items() if _is_layout(relative)}
    written, removed, diffs, unchanged = [], [], [], 0
    for relative, data in sorted(rendered.items()):
        full = os.path.join(path, *relative.split('/'))
        before = _read_file(current[relative], relative) if relative in current else None
        if before == data:
            unchanged += 1
            continue
        written.append(relative)
        if want_diff:
            diffs.append({'before_header': relative, 'after_header': relative,
                          'before': (before or b'').decode('utf-8', 'replace'), 'after': data.decode('utf-8')})
        if not check_mode:
            _refuse_links_on_the_way(path, relative)
            mode = stat.S_IMODE(os.stat(full).st_mode) if before is not None else 0o644
            with AtomicFile(full, mode=mode, keep_owner=True) as handle:
                handle.write(data)
    for relative in sorted(set(current) - set(rendered)):
        removed.append(relative)
        if want_diff:
            diffs.append({'before_header': relative, 'after_header': '%s (removed)' % relative,
                          'before': _read_file(current[relative], relative).decode('utf-8', 'replace'),
                          'after': ''})
        if not check_mode:
            os.unlink(current[relative])
            _remove_empty_parents(path, relative)
    result = {'changed': bool(written or removed), 'path': path, 'written': written, 'removed': removed,
              'unchanged': unchanged, 'counts': counts(check(config))}
    if want_diff:
        result['diff'] = diffs
    return result


def _is_layout(relative):
    try:
        _check_path(relative)
    except ConfigFormatError:
        return False
    return True


def _refuse_links_on_the_way(path, relative):
    """No directory between ``path`` and the file ``relative`` is a symlink (made since it was listed)."""
    parts = relative.split('/')[:-1]
    here = path
    for part in parts:
        here = os.path.join(here, part)
        info = _lstat(here)
        if info is not None and not stat.S_ISDIR(info.st_mode):
            raise CairnError('%s in the config directory %s is not a directory (a symlink?); nothing more was '
                             'written' % ('/'.join(parts[:parts.index(part) + 1]), path))


def _remove_empty_parents(path, relative):
    parts = relative.split('/')[:-1]
    while parts:
        try:
            os.rmdir(os.path.join(path, *parts))
        except OSError:
            return
        parts.pop()


# ---------------------------------------------------------------------------------------------------------------
# Diff (pure)
# ---------------------------------------------------------------------------------------------------------------

class _Names:
    """How messages name items: by their names, as the source or else the target has them."""

    def __init__(self, source, target):
        self.roles, self.flows, self.dashboards = {}, {}, {}
        for config in (target, source):
            for role in config.get('roles') or ():
                self.roles[role['id']] = role.get('name') or role['id']
            for flow in config.get('flows') or ():
                self.flows[flow['id']] = flow.get('name') or flow['id']
            for board in config.get('dashboards') or ():
                self.dashboards[board['id']] = board.get('name') or board['id']

    def role(self, role_id):
        return PUBLIC if role_id is None else str(self.roles.get(role_id, role_id))

    def of(self, spec, item):
        plural = spec.plural
        if plural in ('roles', 'flows', 'webhooks', 'dashboards'):
            return str(item.get('name') or item.get('id'))
        if plural == 'permissions':
            return '%s %s %s' % (self.role(item.get('role')), item.get('collection'), item.get('action'))
        if plural == 'operations':
            return '%s/%s' % (self.flows.get(item.get('flow'), item.get('flow')), item.get('key') or item.get('id'))
        if plural == 'presets':
            role = 'everyone' if item.get('role') is None else self.role(item.get('role'))
            what = 'bookmark %s' % item['bookmark'] if item.get('bookmark') is not None else 'layout'
            return '%s %s %s' % (role, item.get('collection') or '(no collection)', what)
        if plural == 'panels':
            return '%s/%s' % (self.dashboards.get(item.get('dashboard'), item.get('dashboard')),
                              item.get('name') or item.get('type') or item.get('id'))
        if plural == 'translations':
            return '%s %s' % (item.get('language'), item.get('key'))
        return ''


def _index(spec, config):
    return {_identity(spec, item): item for item in config.get(spec.plural) or ()}


def _displays(spec, names, identities, source_items, target_items):
    """``{identity: name}``, an identity added where two items would be named alike."""
    shown = {}
    for identity in identities:
        item = source_items.get(identity) or target_items.get(identity)
        shown[identity] = names.of(spec, item)
    counted = {}
    for name in shown.values():
        counted[name] = counted.get(name, 0) + 1
    for identity, name in shown.items():
        if counted[name] > 1:
            values = ['null' if value is None else str(value) for value in identity]
            shown[identity] = '%s [%s]' % (name, '/'.join(values))
    return shown


def _change(spec, action, identity, name, before, after):
    change = {'kind': spec.singular, 'name': name, 'key': ('%s %s' % (spec.singular, name)) if spec.key
              else spec.singular, 'action': action, 'before': before, 'after': after,
              'id': None if not spec.key else identity[0] if len(identity) == 1 else list(identity)}
    if action == 'update':
        change['fields'] = sorted(key for key in set(before) | set(after) if before.get(key) != after.get(key))
    return change


def diff(source, target, prune=False):
    """The changes that make ``target``'s config ``source``'s: ``{kinds, prune, changes, kept}``. Each change is
    ``{kind, name, key, id, action (create, update, delete), before, after}`` (an update also lists its
    ``fields``), ordered so that they apply one after the other: creates and updates in dependency order (roles
    before permissions and presets, flows before operations, dashboards before panels), then deletions in the
    reverse order. What the target has and the source lacks is deleted only with ``prune``; ``kept`` names it
    otherwise. Settings are never deleted. The kinds compared are the source's; the target must have them."""
    source = check(source, 'the source config')
    target = check(target, 'the target config')
    missing = [kind for kind in source['kinds'] if kind not in target['kinds']]
    if missing:
        raise CairnError('the target config was read without %s; read it with the kinds of the source (%s)'
                         % (', '.join(missing), ', '.join(source['kinds'])))
    names = _Names(source, target)
    upserts, deletions, kept = [], [], []
    for spec in _specs(source['kinds']):
        wanted, present = _index(spec, source), _index(spec, target)
        identities = sorted(set(wanted) | set(present), key=_sort_key)
        shown = _displays(spec, names, identities, wanted, present)
        mine = []
        for identity in identities:
            after, before = wanted.get(identity), present.get(identity)
            if before is None:
                mine.append(_change(spec, 'create', identity, shown[identity], None, after))
            elif after is None:
                if not spec.key:
                    continue
                deletion = _change(spec, 'delete', identity, shown[identity], before, None)
                (deletions if prune else kept).append(deletion)
            elif before != after:
                mine.append(_change(spec, 'update', identity, shown[identity], before, after))
        upserts.extend(sorted(mine, key=lambda change: (ACTIONS.index(change['action']), change['key'])))
    return {'kinds': list(source['kinds']), 'prune': bool(prune), 'changes': upserts + _deletion_order(deletions),
            'kept': [change['key'] for change in _deletion_order(kept)]}


def _deletion_order(changes):
    """Deletions in the reverse order of creation: a permission before its role, an operation before its flow."""
    return sorted(changes, key=lambda change: (-ITEMS.index(BY_SINGULAR[change['kind']].plural), change['key']))


def is_empty(planned):
    return not (planned or {}).get('changes')


def summarise(planned):
    """``{roles: {added: [names], changed: [...], deleted: [...]}, permissions: ..., ...}`` of the item kinds the
    diff compared, names sorted."""
    kinds = check_kinds((planned or {}).get('kinds') or DEFAULT_KINDS)
    summary = {spec.plural: {word: [] for word in SUMMARY_WORDS.values()} for spec in _specs(kinds)}
    for change in (planned or {}).get('changes') or ():
        plural = BY_SINGULAR[change['kind']].plural
        summary.setdefault(plural, {word: [] for word in SUMMARY_WORDS.values()})
        summary[plural][SUMMARY_WORDS[change['action']]].append(change['name'] or change['key'])
    for words in summary.values():
        for names in words.values():
            names.sort()
    return summary


def lines(planned):
    """One line per change, in the order they apply: ``create role Editors``, ``update permission Editors
    articles read (fields)``, ``delete webhook notify``; then ``keep role Staff (not in the source; prune is
    off)`` for each item kept."""
    result = []
    for change in (planned or {}).get('changes') or ():
        line = '%s %s' % (change['action'], change['key'])
        if change['action'] == 'update':
            line += ' (%s)' % ', '.join(change.get('fields') or ())
        result.append(line)
    for key in (planned or {}).get('kept') or ():
        result.append('keep %s (not in the source; prune is off)' % key)
    return result


def item_diffs(planned):
    """Ansible's diff of each change: before as the target has the item, after as the source has it, each as
    stable JSON text ('' where the item does not exist)."""
    shown = []
    for change in (planned or {}).get('changes') or ():
        shown.append({'before_header': '%s (target)' % change['key'], 'after_header': '%s (source)' % change['key'],
                      'before': '' if change['before'] is None else _text(change['before']).decode('utf-8'),
                      'after': '' if change['after'] is None else _text(change['after']).decode('utf-8')})
    return shown


# ---------------------------------------------------------------------------------------------------------------
# Through the CMS's API
# ---------------------------------------------------------------------------------------------------------------

def _call(method, url, path, token, body=None, query='', timeout=300, validate_certs=True):
    """How this codebase talks to the CMS (``_cms.schema._call``): the answer's ``data``, or one CairnError naming the
    request and what the CMS said, never the token."""
    return cms_schema._call(method, url, path, token, body=body, query=query,  # pylint: disable=protected-access
                            timeout=timeout, validate_certs=validate_certs)


def _query(params):
    return '?' + urllib.parse.urlencode(params)


def _fresh(primary_type):
    """A filter every item passes, never the same twice: with the CMS's data cache on, a GET is answered from the
    cache by its query, and this one always misses it (and shows what the database holds now)."""
    if primary_type in ('integer', 'bigInteger'):
        other = -1 - (uuid.uuid4().int % (2 ** 31 - 1))  # a 32-bit integer column (PostgreSQL) takes it
    else:
        other = str(uuid.uuid4())
    return json.dumps({'id': {'_neq': other}})


def read_http(url, token, kinds=None, timeout=300, validate_certs=True):
    """``{table: [row]}`` of ``tables(kinds)`` as the CMS at ``url`` serves them to an admin (``token``): the columns
    its ``/fields`` gives a database column, the rows of ``/roles``, ``/permissions``, ... (without the permissions
    it makes up in memory), the settings when they were ever saved. A table the CMS does not have is absent."""
    kinds = check_kinds(kinds)
    columns, primary = {}, {}
    for field in _call('GET', url, '/fields', token, query=_query({'limit': -1}), timeout=timeout,
                       validate_certs=validate_certs) or ():
        if not isinstance(field, dict) or field.get('schema') is None or field.get('type') == 'alias':
            continue
        columns.setdefault(field.get('collection'), []).append(field.get('field'))
        if field.get('field') == 'id':
            primary[field.get('collection')] = field.get('type')
    rows = {}
    for table in tables(kinds):
        if table not in columns:
            continue
        spec = next(spec for spec in SPECS if spec.table == table)
        params = {'limit': -1, 'fields': ','.join(columns[table])}
        if 'id' in columns[table]:
            params['filter'] = _fresh(primary.get(table))
        data = _call('GET', url, spec.path, token, query=_query(params), timeout=timeout,
                     validate_certs=validate_certs)
        if spec.plural == 'settings':
            data = [data] if isinstance(data, dict) and data.get('id') is not None else []
        elif not isinstance(data, list):
            raise CairnError('GET %s%s did not answer a list' % (url.rstrip('/'), spec.path))
        if spec.plural == 'permissions':
            data = [row for row in data if isinstance(row, dict) and row.get('id') is not None
                    and not row.get('system')]
        rows[table] = data
    return rows


def read_live(config=None, kinds=None, url=None, token=None, timeout=300, validate_certs=True):
    """The config (``kinds``) of an instance: from its database when ``config`` (its InstanceConfig) is given, else
    over HTTP from ``url`` with an admin ``token``."""
    kinds = check_kinds(kinds)
    if config is not None:
        from ansible_collections.cairncms.ops.plugins.module_utils import _db  # pylint: disable=import-outside-toplevel
        backend = _db.select_backend(config.database())
        return from_rows(backend.read_tables(tables(kinds)), kinds, backend.vendor)
    if url and token:
        return from_rows(read_http(url, token, kinds, timeout, validate_certs), kinds, 'api')
    raise CairnError('the config of an instance is read from its database (env_file, cairn_env_file) or over HTTP '
                     '(url with the static token of an admin user); give one of them')


class _Applier:
    """Applies changes one at a time, remembering what it did."""

    def __init__(self, url, token, timeout, validate_certs):
        self.url, self.token, self.timeout, self.validate_certs = url, token, timeout, validate_certs
        self.ids = {}
        self.links = []          # (change, {column: value}) set once the items of the run exist
        self.unlinked = False

    def call(self, method, path, body=None, query=''):
        return _call(method, self.url, path, self.token, body=body, query=query, timeout=self.timeout,
                     validate_certs=self.validate_certs)

    def target_id(self, spec, change):
        """The id the target has the item of ``change`` under: its own for items matched by id, else read once
        per kind (permissions, webhooks, presets) and looked up by what the item is."""
        if spec.by_id:
            return change['id']
        if spec.plural not in self.ids:
            columns = ('id',) + spec.key + (('user',) if spec.plural == 'presets' else ())
            params = {'limit': -1, 'fields': ','.join(columns)}
            found = {}
            for row in self.call('GET', spec.path, query=_query(params)) or ():
                if not isinstance(row, dict) or row.get('id') is None or row.get('system') or row.get('user'):
                    continue
                found[_identity(spec, row)] = row['id']
            self.ids[spec.plural] = found
        identity = tuple(change['id']) if isinstance(change['id'], list) else (change['id'],)
        if identity not in self.ids[spec.plural]:
            raise CairnError('the target has no %s any more' % change['key'])
        return self.ids[spec.plural][identity]

    def item_path(self, spec, change):
        return '%s/%s' % (spec.path, urllib.parse.quote(str(self.target_id(spec, change)), safe=''))

    def apply(self, change, pending):
        spec = BY_SINGULAR[change['kind']]
        action = change['action']
        if action == 'delete':
            if spec.plural == 'operations':
                self.unlink_operations(pending)
            self.call('DELETE', self.item_path(spec, change))
            return
        body = dict(change['after']) if action == 'create' else {
            field: change['after'].get(field) for field in change.get('fields') or ()}
        later = {column: body.pop(column) for column in spec.links if body.get(column) is not None}
        if spec.plural == 'settings':
            self.call('PATCH', spec.path, body=body)
        elif action == 'create':
            self.call('POST', spec.path, body=body)
        elif body:
            self.call('PATCH', self.item_path(spec, change), body=body)
        if later:
            self.links.append((change, later))

    def run_links(self):
        """Set the links of the items created and updated (a flow's first operation, an operation's next ones):
        now that all of them exist."""
        while self.links:
            change, values = self.links[0]
            spec = BY_SINGULAR[change['kind']]
            try:
                self.call('PATCH', self.item_path(spec, change), body=values)
            except CairnError as exc:
                raise CairnError('cannot set %s of %s: %s' % (', '.join(sorted(values)), change['key'],
                                                              exc.message)) from None
            self.links.pop(0)

    def unlink_operations(self, pending):
        """Before the first operation is deleted: the operations to delete point nowhere any more (the database
        refuses to delete an operation another one points at)."""
        if self.unlinked:
            return
        self.unlinked = True
        for change in pending:
            if change['kind'] == 'operation' and change['action'] == 'delete' and (
                    change['before'].get('resolve') or change['before'].get('reject')):
                self.call('PATCH', self.item_path(BY_PLURAL['operations'], change),
                          body={'resolve': None, 'reject': None})


def _listed(keys):
    if not keys:
        return 'nothing'
    shown = '; '.join(keys[:SHOWN])
    return shown + ('; and %d more' % (len(keys) - SHOWN) if len(keys) > SHOWN else '')


def apply(url, token, changes, timeout=300, validate_certs=True):
    """Apply ``changes`` (``diff(...)['changes']``, in their order) through the CMS's API at ``url`` with an admin
    ``token``: POST (with the id, for items matched by id), PATCH of the fields that differ, DELETE; a flow's first
    operation and an operation's next ones are set once all items exist. Returns how many changes were applied. A
    failure is one CairnError naming the change, what the CMS said, what was applied before it and what was not
    (``applied``, ``not_applied``, ``failed`` in its details)."""
    changes = list(changes or ())
    applier = _Applier(url, token, timeout, validate_certs)
    done = []
    current = None
    try:
        for position, change in enumerate(changes):
            if change['action'] == 'delete' and applier.links:
                current = None
                applier.run_links()
            current = change
            applier.apply(change, changes[position:])
            done.append(change['key'])
        current = None
        applier.run_links()
    except CairnError as exc:
        failed = current['key'] if current is not None else 'the links of what was created'
        verb = current['action'] if current is not None else 'set'
        left = [change['key'] for change in changes[len(done):]]
        message = exc.message
        if not message.startswith('cannot '):
            message = 'cannot %s %s: %s' % (verb, failed, message)
        raise CairnError('%s. Applied before it (%d): %s. Not applied (%d): %s'
                         % (message, len(done), _listed(done), len(left), _listed(left)),
                         applied=done, not_applied=left, failed=failed) from None
    return len(done)
