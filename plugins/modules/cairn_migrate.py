#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: cairn_migrate
short_description: Move a CairnCMS restore point into an instance of another database vendor
version_added: 0.4.0
description:
  - Loads a restore point made on one database vendor (SQLite, PostgreSQL, MySQL/MariaDB) into an instance whose
    C(.env) names another, the way a dump cannot - the C(migrate) role's main step (docs/migrate.md).
  - The restore point must hold a C(rows) part (every table's rows as vendor-neutral typed records, made with
    C(cairn_backup_parts) including V(rows)) and a C(schema) part (the CMS's schema snapshot).
  - The target's system tables are made by the CMS itself (its C(bootstrap), through O(command)), the source's
    schema is applied by the CMS (C(schema apply)), both at the same CMS migration level as the source (another level
    is refused - upgrade first). Then every table's rows are loaded in one transaction, each value turned into what
    the target column takes. The CMS's own rows of the target (migrations, settings, the bootstrap's admin user and
    role) are replaced by the source's, so users log in with their passwords and static tokens stay valid with the
    same C(SECRET). Sequences and auto-increments go past the highest id.
  - A value the target column cannot hold as it is (text longer than a C(varchar), a number out of range, more
    decimal places than the column, a double in a single-precision column that would change) fails the load before
    it commits, naming table, column and row, unless O(allow_lossy).
  - Every loaded table is read back, and its row count and a checksum over a canonical form of every value must
    equal what was loaded. Then the file bytes are restored into the target's storage locations (O(location_map)
    when its location names differ).
  - The target must be empty (or not exist yet), unless O(replace). A refused run changes nothing; a failed run
    leaves the target empty, or puts back what it held (O(replace)).
  - Check mode gives the plan - tables, rows, and the columns whose stored type the target vendor changes,
    predicted from the schema - and writes nothing.
author:
  - cairncms.ops maintainers (!UNKNOWN)
extends_documentation_fragment:
  - cairncms.ops.instance
  - cairncms.ops.instance.REPOSITORY
  - cairncms.ops.instance.CLAIM
options:
  instance:
    description:
      - The source instance's name in the repository (the restore point's instance). The target is the instance of
        O(env_file).
    type: str
    required: true
  restore_point:
    description:
      - Id of the restore point, or V(latest).
    type: str
    default: latest
  command:
    description:
      - The target CMS's CLI, as a list, for example V([node, /opt/cairncms/node_modules/cairncms/cli.js]); run with
        C(bootstrap) and C(schema apply), its configuration from O(env_file), nothing of it on the command line.
      - Needed for a migration; a content move (O(tables)) does not run the CMS.
    type: list
    elements: str
    default: []
  tables:
    description:
      - A content move instead of a migration - the rows of these tables (data only) into the schema the target has,
        whatever the two vendors; the restore role's C(cairn_content_tables).
      - The junction tables of many-to-many fields between them (and of their file fields) move with them, whole,
        and the C(directus_files) rows their rows point at are added where the target has not got them, with their
        bytes (before the rows). The rows of the moved tables in the target are replaced (O(replace) when they hold
        any), other tables are left as they are.
      - What the moved rows would point at and neither moves nor is in the target (an author, a user, a file the
        restore point has not got) is listed in RV(dangling) before anything is written, and refuses the move unless
        O(allow_dangling).
    type: list
    elements: str
    default: []
  allow_dangling:
    description:
      - Move content whose rows point at rows the target has not got (RV(dangling)). A PostgreSQL target still refuses
        such rows where its foreign keys check them, and nothing is written then.
    type: bool
    default: false
  chdir:
    description:
      - The directory to run O(command) in; the instance directory by default.
    type: path
  timeout:
    description:
      - Seconds each run of O(command) may take.
    type: int
    default: 600
  replace:
    description:
      - Put the restore point in place of a target database that is not empty (kept aside and put back when the
        migration fails), and of files in the target's storage that differ.
    type: bool
    default: false
  allow_lossy:
    description:
      - Store values the target column cannot hold as they are as the column can (text cut to its length, numbers
        rounded to its scale or precision); each is listed in RV(lossy). Numbers out of range still fail.
    type: bool
    default: false
  location_map:
    description:
      - Storage location names of the restore point mapped to the target's (C(directus_files.storage) is not
        rewritten by a migration; map only to locations of the same name, or restore the rows first and relocate).
    type: dict
    default: {}
  parallel:
    description:
      - Files transferred at a time.
    type: int
    default: 8
  work_dir:
    description:
      - Where the safety copy of a replaced target is kept while the migration runs (in a private directory made
        there); by default beside the target's C(.env). It outlives a run that never ends (killed, its host down),
        so that the next run can put the target back from it.
      - A run that never ends leaves a journal beside the C(.env) (C(.cairn-migrate-<hash>.json)). The next run
        reads it - a target that was empty before is cleared of what that run left and migrated again; a replaced
        target is migrated again only with O(replace), going on from the safety copy of what it held before
        (put back from it if this run fails).
    type: path
'''

EXAMPLES = r'''
- name: Move the newest restore point of the SQLite site into the PostgreSQL instance
  cairncms.ops.cairn_migrate:
    repository: {type: local, path: /srv/cairn-backups}
    instance: blog
    env_file: /srv/blog-pg/.env
    command: [node, /srv/blog-pg/node_modules/cairncms/cli.js]

- name: Plan it (tables, rows, predicted type drift); nothing is written
  cairncms.ops.cairn_migrate:
    repository: {type: local, path: /srv/cairn-backups}
    instance: blog
    env_file: /srv/blog-pg/.env
    command: [node, /srv/blog-pg/node_modules/cairncms/cli.js]
  check_mode: true
'''

RETURN = r'''
restore_point:
  description: Id of the restore point moved.
  returned: always
  type: str
source_vendor:
  description: The vendor of the restore point's database.
  returned: always
  type: str
target_vendor:
  description: The vendor of the target's database (its C(DB_CLIENT)).
  returned: always
  type: str
target:
  description: Where the target database is (host, port and name, or the SQLite file).
  returned: always
  type: str
target_state:
  description:
    - V(absent), V(empty) or V(not_empty), before the migration; V(interrupted) when it holds only what a migration
      that never ended left in a target that was empty before (see O(work_dir)).
  returned: always
  type: str
replaced:
  description: Whether a target that held data was replaced (O(replace)).
  returned: always
  type: bool
migration_level:
  description: The CMS migration level of the restore point, which the target's bootstrap must reach.
  returned: always
  type: str
tables:
  description: Rows per table - of the restore point in check mode, loaded and checked otherwise.
  returned: always
  type: dict
  sample: {articles: 120, directus_users: 4}
rows:
  description: All rows.
  returned: always
  type: int
drift:
  description:
    - The columns whose stored type differs between the vendors - C(table), C(column), C(from) and C(to) (each
      with C(type), the value type, and C(native), the vendor's type). In check mode predicted from the schema
      (C(predicted), with the CMS's C(field_type)).
  returned: always
  type: list
  elements: dict
widened:
  description:
    - Float fields the CMS made narrower on the target than the source stored them (single precision, or a fixed
      number of decimals, for a source of doubles, as SQLite keeps every float and decimal) and that the migration
      made hold doubles before loading, so that no value changes - C(table), C(column), C(from), C(to).
  returned: always
  type: list
  elements: dict
lossy:
  description: Values stored as the target could (O(allow_lossy)) - C(table), C(column), C(row), C(problem); the
    first 50.
  returned: always
  type: list
  elements: dict
lossy_count:
  description: How many values were stored lossily.
  returned: always
  type: int
load_processes:
  description:
    - The tables whose rows were parsed, converted and checksummed by processes of their own side by side, and how
      many (a table of at least 50,000 rows into PostgreSQL or MySQL/MariaDB, on a host of two processors or more).
      Their text goes into the load's one session in the stream's order, so the load stays one transaction.
  returned: when migrated
  type: dict
  sample: {"directus_activity": 2}
dropped:
  description: Tables or columns of the source the target has not, left out (only with O(allow_lossy)).
  returned: when migrated
  type: list
  elements: dict
target_only_tables:
  description: Tables the target has and the restore point has not (left empty).
  returned: when migrated
  type: list
  elements: str
files:
  description: The file restore's result, as M(cairncms.ops.cairn_storage_sync) returns it.
  returned: when migrated or moved
  type: dict
content:
  description: Whether this was a content move (O(tables)).
  returned: for a content move
  type: bool
brought_tables:
  description: The junction tables a content move brought with the tables asked for.
  returned: for a content move
  type: list
  elements: str
files_brought:
  description: The C(directus_files) rows (and their bytes) a content move added to the target.
  returned: for a content move
  type: int
files_present:
  description: The files the moved rows point at that the target has already.
  returned: for a content move
  type: int
dangling:
  description:
    - What moved rows would point at and neither moves nor is in the target - C(table), C(field), C(related),
      C(missing) (how many), C(examples), C(reason).
  returned: for a content move
  type: list
  elements: dict
steps:
  description: Seconds of each step (C(bootstrap_s), C(schema_s), C(rows_s), C(check_s), C(files_s)).
  returned: always
  type: dict
duration_s:
  description: Seconds the migration took.
  returned: when migrated
  type: float
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.cairncms.ops.plugins.module_utils._args import instance_spec, repository_spec
from ansible_collections.cairncms.ops.plugins.module_utils._common import run
from ansible_collections.cairncms.ops.plugins.module_utils._migrate import migrate


def action(module):
    return migrate(module.params, check_mode=module.check_mode)


def main():
    spec = dict(instance_spec(), **repository_spec())
    spec.update({
        'command': {'type': 'list', 'elements': 'str', 'default': []},
        'tables': {'type': 'list', 'elements': 'str', 'default': []},
        'allow_dangling': {'type': 'bool', 'default': False},
        'chdir': {'type': 'path'},
        'timeout': {'type': 'int', 'default': 600},
        'replace': {'type': 'bool', 'default': False},
        'allow_lossy': {'type': 'bool', 'default': False},
        'location_map': {'type': 'dict', 'default': {}},
        'parallel': {'type': 'int', 'default': 8},
        'work_dir': {'type': 'path'},
    })
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True)
    run(module, action)


if __name__ == '__main__':
    main()
