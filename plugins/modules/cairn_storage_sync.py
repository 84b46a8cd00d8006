#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: cairn_storage_sync
short_description: Copy CairnCMS file bytes into a restore point and back
version_added: 0.1.0
description:
  - O(direction=backup) stores every file of the instance's storage locations in the repository's
    content-addressed blob store and writes the restore point's file inventory. It is incremental; a
    file whose size and modification time equal the previous restore point's record is not read again,
    and bytes already in the repository are not stored again; yet every restore point restores alone.
  - Files CairnCMS can regenerate (resized images written as C(<id>__<hash>.<ext>) beside their original,
    C(health-*) probe objects) are skipped unless O(include_regenerable=true).
  - O(direction=restore) writes the files of a restore point into the instance's locations, each checked
    against its sha256 in a temporary file before any file is put in place. Without O(replace) it only
    adds files and refuses, changing nothing, when a file would be overwritten or is not part of the
    restore point; with O(replace) the locations are made to match the restore point exactly.
author:
  - cairncms.ops maintainers (!UNKNOWN)
extends_documentation_fragment:
  - cairncms.ops.instance
  - cairncms.ops.instance.REPOSITORY
options:
  direction:
    description:
      - V(backup) copies from the instance into the staged restore point, V(restore) the other way.
    type: str
    choices: [backup, restore]
    required: true
  restore_point:
    description:
      - For V(backup), the id of the staged restore point; for V(restore), an id or V(latest).
    type: str
    default: latest
  locations:
    description:
      - Only these storage locations (names from C(STORAGE_LOCATIONS)); all by default.
    type: list
    elements: str
    default: []
  include_regenerable:
    description:
      - Also back up (or, on restore, count as content) files CairnCMS can regenerate.
    type: bool
    default: false
  checksum:
    description:
      - On backup, read and hash every file even when its size and time are unchanged.
    type: bool
    default: false
  replace:
    description:
      - On restore, overwrite differing files and remove files that are not in the restore point.
    type: bool
    default: false
notes:
  - On restore, O(instance) names the instance whose restore points are used (the source).
attributes:
  check_mode:
    support: full
    description: Returns what would be copied, kept and removed; refuses as a real run would.
  diff_mode:
    support: none
    description: Nothing to diff.
'''

EXAMPLES = r'''
- name: Back up the uploads into the staged restore point
  cairncms.ops.cairn_storage_sync:
    env_file: /srv/cairn/.env
    repository: {type: local, path: /var/backups/cairn}
    instance: blog
    restore_point: "{{ point.restore_point }}"
    direction: backup

- name: Restore the uploads of the newest restore point, removing stale files
  cairncms.ops.cairn_storage_sync:
    env_file: /srv/cairn/.env
    repository: {type: local, path: /var/backups/cairn}
    instance: blog
    direction: restore
    replace: true
'''

RETURN = r'''
files:
  description: Files in the restore point's inventory (backup).
  returned: O(direction=backup)
  type: int
transferred:
  description: Files read and copied (backup) or written (restore).
  returned: success
  type: int
transferred_bytes:
  description: Bytes read and copied, or written.
  returned: success
  type: int
reused:
  description: Files taken from the previous restore point without reading them (backup).
  returned: O(direction=backup)
  type: int
skipped_regenerable:
  description: Regenerable files skipped (backup).
  returned: O(direction=backup)
  type: int
unchanged:
  description: Files already equal in the target (restore).
  returned: O(direction=restore)
  type: int
removed:
  description: Files removed from the target because they are not in the restore point (restore).
  returned: O(direction=restore)
  type: int
locations:
  description: Per-location figures.
  returned: success
  type: list
  elements: dict
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.cairncms.ops.plugins.module_utils import _sync
from ansible_collections.cairncms.ops.plugins.module_utils._args import (
    instance_spec, load_config, load_repository, repository_spec)
from ansible_collections.cairncms.ops.plugins.module_utils._common import check_name, run
from ansible_collections.cairncms.ops.plugins.module_utils._manifest import check


def action(module):
    params = module.params
    repository = load_repository(params, writes=params['direction'] == 'backup')
    config = load_config(params)
    if params['direction'] == 'backup':
        return _sync.backup(config, repository, params['instance'],
                            check_name('restore point id', params['restore_point']),
                            locations=params['locations'], include_regenerable=params['include_regenerable'],
                            checksum=params['checksum'], check_mode=module.check_mode)
    manifest = check(repository.resolve(params['instance'], params['restore_point']))
    return _sync.restore(config, repository, params['instance'], manifest, replace=params['replace'],
                         locations=params['locations'], include_regenerable=params['include_regenerable'],
                         check_mode=module.check_mode)


def main():
    spec = dict(instance_spec(), **repository_spec())
    spec.update({
        'direction': {'type': 'str', 'choices': ['backup', 'restore'], 'required': True},
        'locations': {'type': 'list', 'elements': 'str', 'default': []},
        'include_regenerable': {'type': 'bool', 'default': False},
        'checksum': {'type': 'bool', 'default': False},
        'replace': {'type': 'bool', 'default': False},
    })
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True)
    run(module, action)


if __name__ == '__main__':
    main()
