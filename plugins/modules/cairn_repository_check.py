#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: cairn_repository_check
short_description: Check the integrity of the restore points of an instance
version_added: 0.1.0
description:
  - Re-hashes every artifact and file blob of every restore point against the manifests and inventories, or
    a random sample of them (O(percent), O(max_bytes)), and reports what is missing, corrupt or unreferenced
    (blobs no restore point uses, files in a restore point its manifest does not list).
  - Records the time and result of the check per restore point in the repository;
    M(cairncms.ops.cairn_backup_info) shows it.
  - Fails when anything is missing or corrupt, unless O(fail_on_problems=false).
author:
  - cairncms.ops maintainers (!UNKNOWN)
extends_documentation_fragment:
  - cairncms.ops.instance.REPOSITORY
options:
  percent:
    description:
      - Share of the artifacts and blobs to re-hash, chosen at random.
    type: int
    default: 100
  max_bytes:
    description:
      - At most this many bytes are re-hashed (a random selection), for large repositories.
    type: int
  seed:
    description:
      - Seed of the random selection, to repeat a sampled check exactly.
    type: int
  fail_on_problems:
    description:
      - Fail the task when something is missing or corrupt.
    type: bool
    default: true
attributes:
  check_mode:
    support: full
    description: Runs the same check; records nothing.
  diff_mode:
    support: none
    description: Nothing to diff.
'''

EXAMPLES = r'''
- name: Re-hash everything
  cairncms.ops.cairn_repository_check:
    repository: {type: local, path: /var/backups/cairn}
    instance: blog

- name: Re-hash a tenth, at most 5 GiB, every night
  cairncms.ops.cairn_repository_check:
    repository: {type: local, path: /var/backups/cairn}
    instance: blog
    percent: 10
    max_bytes: 5368709120
'''

RETURN = r'''
problems:
  description: What is wrong, each with C(restore_point), C(kind) (C(missing), C(corrupt), C(unreferenced),
    C(manifest)) and C(detail).
  returned: always
  type: list
  elements: dict
missing:
  description: Artifacts and blobs that are gone.
  returned: always
  type: int
corrupt:
  description: Artifacts and blobs whose sha256 or size differs.
  returned: always
  type: int
unreferenced_blobs:
  description: Blobs no restore point references (removed by the next prune).
  returned: always
  type: int
checked_items:
  description: Artifacts and blob references re-hashed.
  returned: always
  type: int
checked_bytes:
  description: Bytes those stand for.
  returned: always
  type: int
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.cairncms.ops.plugins.module_utils import _lifecycle
from ansible_collections.cairncms.ops.plugins.module_utils._args import load_repository, repository_spec
from ansible_collections.cairncms.ops.plugins.module_utils._common import CairnError, run


def action(module):
    params = module.params
    result = _lifecycle.check(load_repository(params), params['instance'], percent=params['percent'],
                              max_bytes=params['max_bytes'], seed=params['seed'], record=not module.check_mode)
    bad = result['missing'] + result['corrupt']
    if bad and params['fail_on_problems']:
        raise CairnError('%d missing and %d corrupt item(s) in the restore points of %s'
                         % (result['missing'], result['corrupt'], params['instance']), **result)
    return result


def main():
    spec = repository_spec(point=False)
    spec.update({
        'percent': {'type': 'int', 'default': 100},
        'max_bytes': {'type': 'int'},
        'seed': {'type': 'int'},
        'fail_on_problems': {'type': 'bool', 'default': True},
    })
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True)
    run(module, action)


if __name__ == '__main__':
    main()
