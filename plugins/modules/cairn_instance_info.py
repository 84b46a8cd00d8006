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
  - With O(probe_database), also connects to the database and returns the server's version, for example to
    choose the client tools that match it (the C(cairncms.ops.prepare) role does).
author:
  - cairncms.ops maintainers (!UNKNOWN)
options:
  probe_database:
    description:
      - Connect to the database with the collection's own client code (C(psql) for PostgreSQL, the C(mariadb)
        client for MySQL/MariaDB, Python's C(sqlite3) for SQLite) and return its version in
        C(server_version) of RV(instance.database).
      - Needs the database to be reachable with the credentials of the configuration, and the vendor's client
        tool on the host (any version of C(psql) can tell the version of any PostgreSQL server).
    type: bool
    default: false
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

- name: Which PostgreSQL major does the server run?
  cairncms.ops.cairn_instance_info:
    env_file: /srv/cairn/.env
    probe_database: true
  register: cairn_instance
# cairn_instance.instance.database.server_version: '15.14'
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
      description:
        - Database vendor, C(DB_CLIENT) and, for SQLite, the file; for a server, its host, port, database and user.
        - With O(probe_database), also C(server_version) (the server's version, for SQLite the version of the
          SQLite library), C(exists) (whether the database exists) and, for MySQL/MariaDB, C(server_flavor)
          (C(mariadb) or C(mysql)).
      type: dict
      sample: {vendor: postgres, client: pg, host: db.internal, port: 5432, database: cairn, user: cairn,
               password_set: true, ssl: [], server_version: '15.14', exists: true}
    locations:
      description: Storage locations with driver and, for local ones, root directory.
      type: list
      elements: dict
      sample: [{name: local, driver: local, root: /srv/cairn/uploads}]
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.cairncms.ops.plugins.module_utils._args import instance_spec, load_config
from ansible_collections.cairncms.ops.plugins.module_utils._common import run
from ansible_collections.cairncms.ops.plugins.module_utils._db import select_backend

PROBED = ('server_version', 'server_flavor', 'exists')


def action(module):
    config = load_config(module.params)
    instance = config.describe()
    if module.params['probe_database']:
        probe = select_backend(config.database()).probe()
        instance['database'].update((key, probe[key]) for key in PROBED if key in probe)
    return {'changed': False, 'instance': instance}


def main():
    spec = dict(instance_spec(), probe_database={'type': 'bool', 'default': False})
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True)
    run(module, action)


if __name__ == '__main__':
    main()
