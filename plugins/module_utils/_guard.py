# -*- coding: utf-8 -*-
# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Keep a copy of an instance (a drill sandbox, a clone) off the instance it copies (private).

A copy is restored with replace, so its database and its storage locations must be its own. ``refuse_shared``
compares what a copy's configuration points at with what other configurations point at: the source instance
as captured in the restore point, and the live instance where its .env is at hand. Host-local resources (an
SQLite file, a local directory, a database server on loopback) are the same resource only on the same host,
so they are compared only with configurations of this host; object stores and named database hosts always.
"""

from __future__ import annotations

import os
import socket

from ansible_collections.cairncms.ops.plugins.module_utils._common import CairnError
from ansible_collections.cairncms.ops.plugins.module_utils._env import InstanceConfig, parse_dotenv
from ansible_collections.cairncms.ops.plugins.module_utils._storage import backend_class

# Relative paths of a captured configuration resolve below this directory, which exists nowhere: where the source
# kept them is not known here (the live .env, where it is at hand, says).
SOURCE_DIR = os.path.join(os.sep, '.cairn-source-instance')
DEFAULT_PORTS = {'postgres': 5432, 'mysql': 3306}
LOOPBACK = ('localhost', '127.0.0.1', '::1', '')


def made_here(manifest):
    """Whether the restore point was made on this host (its host-local resources are then this host's)."""
    return (manifest.get('producer') or {}).get('host') == socket.gethostname()


def source_as_captured(manifest, text):
    """The ``others`` entry of ``refuse_shared`` for the source instance as captured in ``manifest``: made on
    this host, its relative paths resolve against the instance directory the manifest records."""
    here = made_here(manifest)
    instance_dir = (manifest.get('cms') or {}).get('instance_dir') if here else None
    return ('the instance as captured in restore point %s' % manifest['id'], captured_config(text, instance_dir),
            here)


def captured_config(text, instance_dir=None):
    """The configuration of a captured .env as CairnCMS reads it, without ``*_FILE`` indirections (their files
    belong to the source host); relative paths resolve against ``instance_dir`` when known."""
    return InstanceConfig.from_dotenv({name: value for name, value in parse_dotenv(text).items()
                                       if not name.endswith('_FILE')}, instance_dir or SOURCE_DIR)


def database_identity(config):
    """``(identity, host_local)`` of the database of ``config``, or None when the configuration does not say."""
    try:
        database = config.database()
    except CairnError:
        return None
    if database.vendor == 'sqlite':
        return ('sqlite', os.path.realpath(database.options['filename'])), True
    options = database.options
    host = str(options.get('host') or '').lower()
    local = host in LOOPBACK
    return (database.vendor, 'loopback' if local else host, int(options.get('port') or DEFAULT_PORTS[database.vendor]),
            options.get('database')), local


def location_identity(location):
    """``(identity, host_local)`` of a storage location."""
    if location.driver == 'local':
        return ('local', os.path.realpath(location.options['root'])), True
    keys = getattr(backend_class(location.driver), 'identity_options', None)  # what the driver's file says
    if not keys:
        return (location.driver, location.name), False
    return (location.driver,) + tuple(str(location.options.get(key) or '').strip('/') for key in keys), False


def _locations(config):
    """The locations of ``config``; none when they cannot be read (the other configurations still count)."""
    try:
        return config.locations()
    except CairnError:
        return []


def refuse_shared(copy, what, variable, others):
    """Raise when the database or a storage location of the ``copy`` configuration is one of ``others``
    (``(description, config, same_host)``). ``what`` names the copy, ``variable`` where its overrides go."""
    found = database_identity(copy)
    locations = {location_identity(location)[0]: location.name for location in copy.locations()}
    for description, other, same_host in others:
        theirs = database_identity(other)
        if found and theirs and found[0] == theirs[0] and (same_host or not found[1]):
            raise CairnError('%s would use the database of %s (%s); give it a database of its own in %s'
                             % (what, description, ', '.join(map(str, found[0])), variable))
        for location in _locations(other):
            identity, local = location_identity(location)
            if identity in locations and (same_host or not local):
                name = locations[identity]
                raise CairnError('storage location %s of %s is location %s of %s (%s); point STORAGE_%s_* in %s at '
                                 'storage of its own' % (name, what, location.name, description,
                                                         ', '.join(identity), name.upper(), variable))
