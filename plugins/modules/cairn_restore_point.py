#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: cairn_restore_point
short_description: Begin, finalize or fail a restore point in a repository
version_added: 0.1.0
description:
  - A backup run begins a restore point (V(staged)), lets M(cairncms.ops.cairn_db_dump) and
    M(cairncms.ops.cairn_storage_sync) write into it, then finalizes it (V(complete)); the manifest is
    written and the restore point becomes visible in one atomic step.
  - A run that fails is marked V(failed); its staged data is removed and its error log is kept in the
    repository. A run that is interrupted never becomes visible.
author:
  - cairncms.ops maintainers (!UNKNOWN)
extends_documentation_fragment:
  - cairncms.ops.instance
  - cairncms.ops.instance.REPOSITORY
options:
  state:
    description:
      - V(staged) begins a new restore point and returns its id.
      - V(complete) writes the manifest of a staged restore point and makes it visible.
      - V(failed) records the error of a staged run and removes its data.
    type: str
    choices: [staged, complete, failed]
    default: staged
  restore_point:
    description:
      - Id of the staged restore point; required with V(complete) and V(failed).
    type: str
  error:
    description:
      - What failed, for O(state=failed), for example the failed task's name and message.
      - Must not contain secrets; it is stored in the repository.
    type: dict
    default: {}
attributes:
  check_mode:
    support: full
    description: Returns the id that would be used and changes nothing.
  diff_mode:
    support: none
    description: Nothing to diff.
'''

EXAMPLES = r'''
- name: Begin a restore point
  cairncms.ops.cairn_restore_point:
    repository: {type: local, path: /var/backups/cairn}
    instance: blog
  register: point

- name: Finalize it
  cairncms.ops.cairn_restore_point:
    env_file: /srv/cairn/.env
    repository: {type: local, path: /var/backups/cairn}
    instance: blog
    restore_point: "{{ point.restore_point }}"
    state: complete
'''

RETURN = r'''
restore_point:
  description: Id of the restore point.
  returned: success
  type: str
  sample: 20261121T101500Z-1a2b3c
manifest:
  description: The manifest written, for O(state=complete).
  returned: when O(state=complete)
  type: dict
error_log:
  description: Where the error log of a failed run was kept, for O(state=failed).
  returned: when O(state=failed)
  type: str
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.cairncms.ops.plugins.module_utils._args import (
    instance_spec, load_config, load_repository, repository_spec)
from ansible_collections.cairncms.ops.plugins.module_utils._common import check_name, run, utc_now
from ansible_collections.cairncms.ops.plugins.module_utils._manifest import build
from ansible_collections.cairncms.ops.plugins.module_utils._repository._base import new_point_id


def action(module):
    params = module.params
    repository = load_repository(params)
    instance, state, point = params['instance'], params['state'], params['restore_point']
    if state == 'staged':
        started = utc_now()
        if module.check_mode:
            return {'changed': True, 'restore_point': new_point_id(started)}
        return {'changed': True, 'restore_point': repository.begin(instance, started)}
    check_name('restore point id', point)
    if state == 'failed':
        if module.check_mode:
            return {'changed': True, 'restore_point': point}
        return {'changed': True, 'restore_point': point,
                'error_log': repository.fail(instance, point, params['error'])}
    if module.check_mode:
        return {'changed': True, 'restore_point': point}
    parts = repository.read_parts(instance, point)
    facts = load_config(params)
    manifest = build(parts['run'], parts, {'key': facts.key, 'public_url': facts.public_url},
                     lambda name: repository.staged_artifact_stat(instance, point, name))
    repository.finalize(instance, point, manifest)
    return {'changed': True, 'restore_point': point, 'manifest': manifest}


def main():
    spec = dict(instance_spec(), **repository_spec(point=False))
    spec.update({
        'state': {'type': 'str', 'choices': ['staged', 'complete', 'failed'], 'default': 'staged'},
        'restore_point': {'type': 'str'},
        'error': {'type': 'dict', 'default': {}},
    })
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True,
                           required_if=[('state', 'complete', ['restore_point']),
                                        ('state', 'failed', ['restore_point'])])
    run(module, action)


if __name__ == '__main__':
    main()
