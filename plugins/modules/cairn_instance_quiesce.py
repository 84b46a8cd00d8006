#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: cairn_instance_quiesce
short_description: Turn off flows and webhooks in a restored copy of a CairnCMS instance
version_added: 0.2.0
description:
  - Sets C(status) to C(inactive) on the active rows of C(directus_flows) (scheduled and event-triggered flows,
    and the requests, mails and scripts they run) and C(directus_webhooks), in the database of the instance
    found from its configuration, so that a restored copy started for a drill or as a clone does not act on the
    outside world as the live instance does.
  - Meant for copies. Run against the live instance it turns off its flows and webhooks just the same.
  - Idempotent; a missing table counts as nothing to turn off.
author:
  - cairncms.ops maintainers (!UNKNOWN)
extends_documentation_fragment:
  - cairncms.ops.instance
options:
  disable:
    description:
      - What to turn off.
    type: list
    elements: str
    choices: [flows, webhooks]
    default: [flows, webhooks]
attributes:
  check_mode:
    support: full
    description: Counts what would be turned off.
  diff_mode:
    support: none
    description: Nothing to diff.
'''

EXAMPLES = r'''
- name: Keep the drill sandbox from running the live instance's flows and webhooks
  cairncms.ops.cairn_instance_quiesce:
    env_file: /var/tmp/cairn-drill/blog/.env
'''

RETURN = r'''
disabled:
  description: Rows turned off (or to turn off, in check mode), by kind.
  returned: always
  type: dict
  sample: {flows: 2, webhooks: 1}
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.cairncms.ops.plugins.module_utils._args import instance_spec, load_config
from ansible_collections.cairncms.ops.plugins.module_utils._common import run
from ansible_collections.cairncms.ops.plugins.module_utils._db import quiesce


def action(module):
    disabled = quiesce(load_config(module.params), module.params['disable'], check_mode=module.check_mode)
    return {'changed': any(disabled.values()), 'disabled': disabled}


def main():
    spec = instance_spec()
    spec['disable'] = {'type': 'list', 'elements': 'str', 'choices': ['flows', 'webhooks'],
                       'default': ['flows', 'webhooks']}
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True)
    run(module, action)


if __name__ == '__main__':
    main()
