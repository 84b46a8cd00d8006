#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: cairn_backup_info
short_description: List the restore points of an instance, or resolve one
version_added: 0.1.0
description:
  - Lists the complete restore points of an instance in a repository, oldest first, and the failed runs
    whose error logs are kept.
  - With O(restore_point), also resolves it (an id or V(latest)) and returns its manifest.
author:
  - cairncms.ops maintainers (!UNKNOWN)
extends_documentation_fragment:
  - cairncms.ops.instance.REPOSITORY
options:
  restore_point:
    description:
      - A restore point id or V(latest) to resolve; fails when it does not exist.
    type: str
attributes:
  check_mode:
    support: full
    description: Reads only.
  diff_mode:
    support: none
    description: Nothing to diff.
'''

EXAMPLES = r'''
- name: List restore points of blog
  cairncms.ops.cairn_backup_info:
    repository: {type: local, path: /var/backups/cairn}
    instance: blog

- name: Resolve the newest restore point
  cairncms.ops.cairn_backup_info:
    repository: {type: local, path: /var/backups/cairn}
    instance: blog
    restore_point: latest
  register: newest
'''

RETURN = r'''
restore_points:
  description: Summaries of the complete restore points, oldest first.
  returned: success
  type: list
  elements: dict
  sample: [{id: 20261121T101500Z-1a2b3c, vendor: sqlite, migration_level: 20230101A, size_bytes: 48213, files: 12}]
failed:
  description: Ids of failed runs whose error log is kept in the repository.
  returned: success
  type: list
  elements: str
restore_point:
  description: The manifest of the resolved restore point.
  returned: when O(restore_point) is given
  type: dict
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.cairncms.ops.plugins.module_utils._args import load_repository, repository_spec
from ansible_collections.cairncms.ops.plugins.module_utils._common import run
from ansible_collections.cairncms.ops.plugins.module_utils._manifest import check, summary


def action(module):
    params = module.params
    repository = load_repository(params)
    instance = params['instance']
    points = [summary(repository.load_manifest(instance, point)) for point in repository.list_points(instance)]
    result = {'changed': False, 'restore_points': points, 'failed': repository.list_failed(instance)}
    if params['restore_point']:
        result['restore_point'] = check(repository.resolve(instance, params['restore_point']))
    return result


def main():
    spec = repository_spec(point=False)
    spec['restore_point'] = {'type': 'str'}
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True)
    run(module, action)


if __name__ == '__main__':
    main()
