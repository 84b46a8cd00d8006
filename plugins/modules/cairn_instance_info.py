#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: cairn_instance_info
short_description: Discover a CairnCMS instance from its own configuration
version_added: 0.1.0
description:
  - Reads the instance's C(.env) the way CairnCMS does and returns what a backup or restore works on
    (database vendor and location, storage locations, C(KEY), C(PUBLIC_URL)).
  - Secrets in the configuration are never returned.
author:
  - cairncms.ops maintainers (!UNKNOWN)
extends_documentation_fragment:
  - cairncms.ops.instance
attributes:
  check_mode:
    support: full
    description: Reads only.
  diff_mode:
    support: none
    description: Nothing to diff.
'''

EXAMPLES = r'''
- name: Discover the instance
  cairncms.ops.cairn_instance_info:
    env_file: /srv/cairn/.env
  register: cairn_instance

- name: Point a clone at its own database file
  cairncms.ops.cairn_instance_info:
    env_file: /srv/cairn/.env
    env_overrides:
      DB_FILENAME: /srv/clone/data.db
'''

RETURN = r'''
instance:
  description: The instance as the collection sees it.
  returned: success
  type: dict
  contains:
    env_file:
      description: The C(.env) file read.
      type: str
      sample: /srv/cairn/.env
    instance_dir:
      description: Directory relative paths were resolved against.
      type: str
      sample: /srv/cairn
    key:
      description: The instance's C(KEY) (an identifier, not a secret).
      type: str
      sample: 6a1f4e1c-3b0a-4d36-9d8e-6b8f3b7d9c21
    public_url:
      description: The instance's C(PUBLIC_URL).
      type: str
      sample: https://cms.example.com
    database:
      description: Database vendor, C(DB_CLIENT) and, for SQLite, the file.
      type: dict
      sample: {vendor: sqlite, client: sqlite3, filename: /srv/cairn/data.db}
    locations:
      description: Storage locations with driver and, for local ones, root directory.
      type: list
      elements: dict
      sample: [{name: local, driver: local, root: /srv/cairn/uploads}]
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.cairncms.ops.plugins.module_utils._args import instance_spec, load_config
from ansible_collections.cairncms.ops.plugins.module_utils._common import run


def main():
    module = AnsibleModule(argument_spec=instance_spec(), supports_check_mode=True)
    run(module, lambda m: {'changed': False, 'instance': load_config(m.params).describe()})


if __name__ == '__main__':
    main()
