# -*- coding: utf-8 -*-
# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What CMS is installed, at which version, knowing which migrations (private).

An install is a directory holding ``node_modules`` (``npm ci`` of a project depending on ``cairncms`` or
``directus``). Its name and version come from the package.json of the product package, its migrations from the
file names in the API package's ``dist/database/migrations`` (``20230401A-update-material-icons.js``: the version
is the part before the first ``-``, as the CMS itself takes it). Without a readable install, ``GET
<url>/server/info`` with an admin token says the version (not the migrations).

Everything read here is untrusted input: nothing is followed out of the install directory by a symlink, a
package.json is read only up to a size limit, and anything unexpected is one clear error.
"""

from __future__ import annotations

import json
import os
import re
import stat

from ansible_collections.cairncms.ops.plugins.module_utils._common import CairnError

PACKAGE_JSON_LIMIT = 1024 * 1024
MAX_ENTRIES = 100000  # names looked at in one migrations directory
# (product package, its API package), CairnCMS first; each API package may sit below the product (a global
# install) or beside it.
FAMILIES = (
    ('cairncms', '@cairncms/api'),
    ('directus', '@directus/api'),
)
MIGRATIONS_DIR = ('dist', 'database', 'migrations')
# The file names the CMS runs as its own migrations (api/dist/database/migrations/run.js), and those it takes from
# <EXTENSIONS_PATH>/migrations (CairnCMS also takes .cjs and .mjs there).
MIGRATION_FILE = re.compile(r'^([0-9]+[A-Z])-[^.]+\.(?:js|ts)$')
CUSTOM_MIGRATION_FILE = re.compile(r'\.(?:c|m)?js$')
VERSION = re.compile(r'^[0-9A-Za-z][0-9A-Za-z.+_-]{0,63}$')
PACKAGE_NAME = re.compile(r'^(@[a-z0-9][a-z0-9._~-]*/)?[a-z0-9][a-z0-9._~-]{0,213}$')


def install_dir_of(command):
    """The directory holding the ``node_modules`` that ``command`` (a list, e.g. ``[node,
    /opt/cms/node_modules/directus/cli.js]`` or ``[/opt/cms/node_modules/.bin/directus]``) runs the CMS from; None
    when no part of it is a path inside a ``node_modules`` directory (also after following its symlinks)."""
    for part in command or ():
        part = str(part)
        if not os.path.isabs(part):
            continue
        for path in (os.path.normpath(part), os.path.realpath(part)):
            pieces = path.split(os.sep)
            if 'node_modules' in pieces[1:]:
                root = os.sep.join(pieces[:pieces.index('node_modules', 1)])
                return root or os.sep
    return None


def _inside(root, path, what):
    """``path`` with its symlinks resolved, which must stay below ``root`` (resolved already)."""
    real = os.path.realpath(path)
    if real != root and not real.startswith(root.rstrip(os.sep) + os.sep):
        raise CairnError('%s %s leads to %s, outside the install directory %s; refusing to read it (a CMS install '
                         'keeps its packages inside its node_modules: reinstall it there, or set install_dir to the '
                         'directory that holds them)' % (what, path, real, root))
    return real


def _read_package(root, package_dir):
    """``(name, version)`` from the package.json of ``package_dir``, read as untrusted input."""
    path = os.path.join(package_dir, 'package.json')
    real = _inside(root, path, 'the package file')
    fix = 'reinstall the CMS (npm ci) or set install_dir to the directory of its node_modules'
    try:
        fd = os.open(real, os.O_RDONLY | getattr(os, 'O_NOFOLLOW', 0) | getattr(os, 'O_NONBLOCK', 0))
    except OSError as exc:
        raise CairnError('cannot read %s (%s); %s' % (path, exc.strerror, fix))
    with os.fdopen(fd, 'rb') as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise CairnError('%s is not a regular file; %s' % (path, fix))
        data = handle.read(PACKAGE_JSON_LIMIT + 1)
    if len(data) > PACKAGE_JSON_LIMIT:
        raise CairnError('%s is larger than %d bytes, which no package file of the CMS is; %s'
                         % (path, PACKAGE_JSON_LIMIT, fix))
    try:
        document = json.loads(data.decode('utf-8'))
    except (UnicodeDecodeError, ValueError) as exc:
        raise CairnError('%s is not JSON (%s); %s' % (path, str(exc)[:100], fix))
    if not isinstance(document, dict):
        raise CairnError('%s holds a JSON %s, not an object; %s' % (path, type(document).__name__, fix))
    name, version = document.get('name'), document.get('version')
    if not isinstance(name, str) or not PACKAGE_NAME.match(name):
        raise CairnError('%s has no valid package name (%s); %s' % (path, repr(name)[:60], fix))
    if not isinstance(version, str) or not VERSION.match(version):
        raise CairnError('%s has no valid version (%s); %s' % (path, repr(version)[:60], fix))
    return name, version


def _versions(directory, pattern, limit=MAX_ENTRIES):
    """The migration versions of the file names in ``directory`` that match ``pattern`` (the part before the first
    ``-``), sorted and without repeats."""
    found = set()
    with os.scandir(directory) as entries:
        for count, entry in enumerate(entries):
            if count >= limit:
                raise CairnError('%s holds more than %d entries, which no CMS install has; is it the right '
                                 'directory?' % (directory, limit))
            if pattern.search(entry.name):
                found.add(entry.name.split('-', 1)[0])
    return sorted(found)


def _existing(root, candidates, what):
    """The first of ``candidates`` that is a directory (inside ``root``), or None."""
    for candidate in candidates:
        if os.path.lexists(candidate):
            real = _inside(root, candidate, what)
            if os.path.isdir(real):
                return real
    return None


def _from_package(root):
    """The description of the CMS installed below ``root`` (resolved), or None when none is there."""
    modules = os.path.join(root, 'node_modules')
    for product, api in FAMILIES:
        product_dir = _existing(root, [os.path.join(modules, product)], 'the package directory')
        # below the product (a global install), beside its real directory (pnpm), or in node_modules (npm)
        beside = [os.path.join(product_dir, 'node_modules', api),
                  os.path.join(os.path.dirname(product_dir), api)] if product_dir else []
        api_dir = _existing(root, beside + [os.path.join(modules, api)], 'the package directory')
        if product_dir is None and api_dir is None:
            continue
        name, version = _read_package(root, product_dir or api_dir)
        migrations = migrations_dir = None
        if api_dir is not None:
            candidate = os.path.join(api_dir, *MIGRATIONS_DIR)
            if os.path.lexists(candidate):
                migrations_dir = _inside(root, candidate, 'the migrations directory')
                migrations = _versions(migrations_dir, MIGRATION_FILE)
        return {'name': name, 'version': version, 'source': 'package.json', 'install_dir': root,
                'migrations': migrations, 'migrations_dir': migrations_dir}
    return None


def _from_server(url, token, validate_certs):
    """The name and version a running CMS reports in ``GET <url>/server/info`` (to an admin)."""
    from ansible_collections.cairncms.ops.plugins.module_utils._http import request  # brings ansible's urls code

    where = '%s/server/info' % url.rstrip('/')
    raw = request('GET', where, token=token, validate_certs=validate_certs)
    try:
        data = json.loads(raw.decode('utf-8'))['data']
    except (UnicodeDecodeError, ValueError, KeyError, TypeError):
        raise CairnError('GET %s did not answer the JSON a CairnCMS or Directus server answers' % where)
    for name in ('cairncms', 'directus'):
        entry = data.get(name) if isinstance(data, dict) else None
        if isinstance(entry, dict) and entry.get('version') is not None:
            version = entry['version']
            if not isinstance(version, str) or not VERSION.match(version):
                raise CairnError('GET %s answered an invalid version (%s)' % (where, repr(version)[:60]))
            return name, version
    raise CairnError('GET %s answered no version: it tells the version to an administrator only; give the token of '
                     'an admin user%s' % (where, '' if token else ' (none was given)'))


def describe(install_dir=None, command=None, url=None, token=None, validate_certs=True, extensions_dir=None):
    """The CMS installed in ``install_dir`` (or where ``command`` runs it from): ``{name, version, source,
    install_dir, migrations}`` with ``source`` ``package.json``, or ``server/info`` when no package file is there
    and ``url`` is given (its ``migrations`` are then None: unknown). ``extensions_dir`` is the instance's
    EXTENSIONS_PATH: the migrations in its ``migrations`` folder count as known too."""
    derived = install_dir_of(command) if install_dir is None and command else None
    root = install_dir or derived
    note = None
    if root is not None:
        root = os.path.realpath(os.path.abspath(root))
        if not os.path.isdir(root):
            note = 'the install directory %s does not exist' % root
        else:
            found = _from_package(root)
            if found is not None:
                return _with_extensions(found, extensions_dir)
            note = ('no CMS package (%s) under %s' % (', '.join(
                'node_modules/%s' % package for family in FAMILIES for package in family), root))
    elif command:
        note = ('no part of the command %s is a path inside a node_modules directory, so where the CMS is installed '
                'is unknown' % ' '.join(str(part) for part in command))
    if url:
        name, version = _from_server(url, token, validate_certs)
        return {'name': name, 'version': version, 'source': 'server/info', 'install_dir': root, 'migrations': None,
                'migrations_dir': None, 'note': note}
    if note is None:
        raise CairnError('nothing says where the CMS is: give install_dir, a command that runs it from its '
                         'node_modules, or its url and an admin token')
    raise CairnError('%s; set install_dir (cairn_cms_install_dir) to the directory holding the CMS\'s node_modules, '
                     'or give its url and an admin token' % note)


def _with_extensions(found, extensions_dir):
    if not extensions_dir or found['migrations'] is None:
        return found
    directory = os.path.join(extensions_dir, 'migrations')
    if os.path.isdir(directory):
        found['migrations'] = sorted(set(found['migrations']) | set(_versions(directory, CUSTOM_MIGRATION_FILE)))
    return found


def unknown_migrations(point_level, known):
    """The migrations of a restore point (its level, the newest version applied, or a list of versions) that an
    install knowing ``known`` does not know: empty when it can restore the point and bring it up with its
    bootstrap. A level it does not know, newer or not (another fork's, or a newer CMS's), is unknown. None when
    ``known`` is None (the install's migrations are unknown, so nothing can be said)."""
    if known is None:
        return None
    if point_level is None or point_level == '' or point_level == []:
        return []
    levels = [point_level] if isinstance(point_level, str) else list(point_level)
    return sorted(set(str(level) for level in levels) - set(known))


def refusal(described, unknown, point_id=None):
    """The message that refuses a restore point whose ``unknown`` migrations the ``described`` install lacks."""
    known = described.get('migrations') or []
    return ('%s is at migration %s, which %s %s at %s does not know (newest it knows: %s); upgrade the target CMS '
            'first, then restore' % ('restore point %s' % point_id if point_id else 'the restore point',
                                     ', '.join(unknown), described.get('name'), described.get('version'),
                                     described.get('install_dir'), known[-1] if known else 'none'))
