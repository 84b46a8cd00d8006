#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: cairn_repository_copy
short_description: Copy restore points to another repository (offsite copies)
version_added: 0.1.0
description:
  - Copies the restore points of an instance that O(target) does not have yet, incrementally - file blobs
    already in O(target) are not copied again.
  - Every blob and artifact is re-hashed on arrival and compared with the manifest; a restore point becomes
    visible in O(target) only once all of it has arrived, under the same id.
  - Retention is applied per repository (M(cairncms.ops.cairn_repository_prune) on each).
author:
  - cairncms.ops maintainers (!UNKNOWN)
extends_documentation_fragment:
  - cairncms.ops.instance.REPOSITORY
options:
  target:
    description:
      - The repository to copy into, of the same form as O(repository).
    type: dict
    required: true
  target_credentials:
    description:
      - Credentials of O(target) when it is an object store, of the same form as O(repository_credentials).
    type: dict
    default: {}
  restore_points:
    description:
      - Only these restore point ids; all by default.
    type: list
    elements: str
    default: []
  lock_wait:
    description:
      - Seconds to wait for a run of the same instance in O(target) to finish.
    type: int
    default: 0
  lock_stale_after:
    description:
      - Seconds of silence after which another run's lock in O(target) is taken over.
    type: int
    default: 900
attributes:
  check_mode:
    support: full
    description: Returns which restore points would be copied.
  diff_mode:
    support: none
    description: Nothing to diff.
'''

EXAMPLES = r'''
- name: Keep a second copy on the backup disk
  cairncms.ops.cairn_repository_copy:
    repository: {type: local, path: /var/backups/cairn}
    target: {type: local, path: /mnt/offsite/cairn}
    instance: blog
'''

RETURN = r'''
copied:
  description: Ids of the restore points copied.
  returned: success
  type: list
  elements: str
present:
  description: Ids already in the target.
  returned: success
  type: list
  elements: str
unreadable:
  description: Restore points of the source whose manifest cannot be used (C(id), C(problem)); they are not copied.
  returned: success
  type: list
  elements: dict
blobs_copied:
  description: File blobs copied.
  returned: success
  type: int
bytes_copied:
  description: Bytes copied.
  returned: success
  type: int
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.cairncms.ops.plugins.module_utils import _lifecycle
from ansible_collections.cairncms.ops.plugins.module_utils._args import load_repository, repository_spec
from ansible_collections.cairncms.ops.plugins.module_utils._repository import select_repository
from ansible_collections.cairncms.ops.plugins.module_utils._common import run


def main():
    spec = repository_spec(point=False)
    spec.update({
        'target': {'type': 'dict', 'required': True},
        'target_credentials': {'type': 'dict', 'default': {}, 'no_log': True},
        'restore_points': {'type': 'list', 'elements': 'str', 'default': []},
        'lock_wait': {'type': 'int', 'default': 0},
        'lock_stale_after': {'type': 'int', 'default': 900},
    })
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True)
    run(module, lambda m: _lifecycle.copy(
        load_repository(m.params), select_repository(m.params['target'], credentials=m.params['target_credentials']), m.params['instance'],
        points=m.params['restore_points'], check_mode=m.check_mode, stale_after=m.params['lock_stale_after'],
        wait=m.params['lock_wait']))


if __name__ == '__main__':
    main()
