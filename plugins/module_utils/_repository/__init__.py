# -*- coding: utf-8 -*-
# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Repositories of restore points (private): one file per repository type.

``select_repository(spec)`` picks the implementation named by ``spec['type']``.
Every implementation offers the same operations (see ``_base.Repository``).
"""

from __future__ import annotations

from ansible_collections.cairncms.ops.plugins.module_utils._common import CairnError
from ansible_collections.cairncms.ops.plugins.module_utils._repository import local, objects
from ansible_collections.cairncms.ops.plugins.module_utils._storage import backend_class, drivers

# A directory, or a bucket of every storage driver whose file says how it holds a repository (``repository_spec``).
TYPES = dict({'local': local.LocalRepository},
             **{driver: objects.ObjectRepository for driver in drivers()
                if driver != 'local' and backend_class(driver).repository_spec})


def select_repository(spec, crypto=None, credentials=None):
    """The repository ``spec`` names; ``credentials`` (a dict kept out of logs) complete an object-store spec."""
    if not isinstance(spec, dict) or not spec.get('type'):
        raise CairnError('cairn_repository must be a dict with a type, e.g. {type: local, path: /var/backups/cairn}')
    kind = spec['type']
    if kind not in TYPES:
        raise CairnError('repository type %r is not supported by this version of cairncms.ops; '
                         'use one of: %s' % (kind, ', '.join(sorted(TYPES))))
    if kind == 'local':
        if credentials:
            raise CairnError('a local repository takes no credentials; unset cairn_repository_credentials')
        return TYPES[kind].from_spec(spec, crypto)
    return TYPES[kind].from_spec(spec, crypto, credentials)
