#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: cairn_db_restore
short_description: Restore a CairnCMS database from a restore point
version_added: 0.1.0
description:
  - Restores the database of a restore point into the instance found from its configuration (which may
    be another instance than the one backed up).
  - The artifact's sha256 is checked before the target is touched.
  - Refuses, changing nothing, a target that holds other data unless O(replace=true). A target that
    already holds exactly the restore point is left alone (V(changed=false)).
  - What is replaced is set aside as a safety copy and put back if the restore fails; it is removed once
    the restore has succeeded unless O(keep_safety_copy=true).
  - A dump of one vendor is never restored into another vendor's database.
  - A content move (a restore point made with the C(tables) option of M(cairncms.ops.cairn_db_dump)) replaces
    the rows of those tables only, in one transaction, and reports rows whose file fields point at
    C(directus_files) rows the target does not have.
  - PostgreSQL is restored with C(pg_restore --clean --if-exists --no-owner --exit-on-error), in one
    transaction for custom-format dumps, creating the database when it does not exist (given the right),
    then C(ANALYZE). MySQL and MariaDB through the client, stopping at the first error.
  - A restore point is untrusted input (whoever can write the repository can forge one); restoring it only puts
    data into the target database. A content move's plain SQL reaches C(psql) in restricted mode (C(\restrict),
    psql 13.22, 14.19, 15.14, 16.10, 17.6 or newer, else refused); the MySQL/MariaDB client runs with C(--sandbox)
    (MariaDB 10.5.25, 10.6.18, 10.11.8, 11.0.6 or newer), or for Oracle MySQL C(--commands=OFF) or
    C(--system-command=OFF --binary-mode) (8.0.40 or newer), and C(--local-infile=0), else the restore is refused;
    SQLite SQL and our own updates of a restored file run under an authorizer that refuses C(ATTACH), extension
    loading, file functions, PRAGMAs that write and, in a content move, anything but inserting rows into the named
    tables. Each refusal changes nothing and names the restore point and what was refused.
  - With O(location_map), the restored C(directus_files) rows of a restore point location go to another
    storage location of the target (its bytes are put there by M(cairncms.ops.cairn_storage_sync) with the same
    map), and C(directus_files.storage) is rewritten old to new for every pair in one C(UPDATE) (so swaps work),
    inside the restore's transaction for SQLite and content moves, right after the load for PostgreSQL and
    MySQL/MariaDB full restores, with the safety copy still there to put back. C(filename_disk) stays as it is,
    since CairnCMS names files C(<id>.<ext>) for every driver.
  - Stop CairnCMS before restoring its database.
author:
  - cairncms.ops maintainers (!UNKNOWN)
extends_documentation_fragment:
  - cairncms.ops.instance
  - cairncms.ops.instance.REPOSITORY
  - cairncms.ops.instance.CLAIM
options:
  restore_point:
    description:
      - Id of the restore point, or V(latest).
    type: str
    default: latest
  replace:
    description:
      - Overwrite a target database that holds other data.
    type: bool
    default: false
  keep_safety_copy:
    description:
      - Keep the safety copy of the replaced database after a successful restore - beside it for SQLite
        (C(<DB_FILENAME>.cairn-safety-*)), for servers as a private (0600) file in O(work_dir), or in the system's
        temporary directory when O(work_dir) is not set. RV(safety_copy) says where.
    type: bool
    default: false
  jobs:
    description:
      - PostgreSQL directory-format dumps only; parallel C(pg_restore) workers.
    type: int
    default: 1
  work_dir:
    description:
      - Directory for temporary files of a server restore (the safety dump, an unpacked directory dump).
      - By default a private directory of the run (C(<TMPDIR>/cairncms-ops-<uid>/...), mode 0700), removed when
        the module ends; a directory left by a killed run is removed by the next.
    type: path
  on_version_mismatch:
    description:
      - What to do when the target server's major version differs from the one the dump came from.
    type: str
    choices: [warn, refuse]
    default: warn
  on_migration_mismatch:
    description:
      - What to do when the target database holds another CMS migration level than the restore point.
    type: str
    choices: [warn, refuse]
    default: warn
  location_map:
    description:
      - Storage location names of the restore point mapped to storage location names of this instance, for
        example V(local) to V(cloud); names not in the map stay as they are. Every target name must be in this
        instance's C(STORAGE_LOCATIONS).
      - The map is part of what a restore records, so a second identical restore (same restore point, same map)
        changes nothing, while another map counts as another restore.
    type: dict
    default: {}
  quiesce:
    description:
      - What to turn off in the restored data, for a copy that must not act on the outside world as the live
        instance does (a drill sandbox, a clone) - V(flows) (scheduled and event-triggered flows, and the requests,
        mails and scripts they run) and V(webhooks) - by setting C(status) to C(inactive) on their active rows.
      - Done before the file is put in place for SQLite, right after the load (safety copy still there) for
        PostgreSQL and MySQL/MariaDB. Like O(location_map) it is part of what a restore records, so a second
        identical restore changes nothing. Not applied to content moves.
    type: list
    elements: str
    choices: [flows, webhooks]
    default: []
notes:
  - O(instance) names the instance whose restore points are used (the source), not the target.
requirements:
  - zstandard >= 0.21.0 (for zstd-compressed restore points)
attributes:
  check_mode:
    support: full
    description: Compares the target with the restore point and returns the plan; refuses as a real run would.
  diff_mode:
    support: none
    description: Nothing to diff.
'''

EXAMPLES = r'''
- name: Restore the newest restore point of blog into this host's instance
  cairncms.ops.cairn_db_restore:
    env_file: /srv/cairn/.env
    repository: {type: local, path: /var/backups/cairn}
    instance: blog
    restore_point: latest
    replace: true
'''

RETURN = r'''
restore_point:
  description: Id of the restore point restored.
  returned: success
  type: str
target:
  description: The target database (for SQLite, its file).
  returned: success
  type: str
target_state:
  description: What the target held before, C(absent), C(empty), C(identical) or C(different).
  returned: success
  type: str
replaced:
  description: Whether other data was replaced.
  returned: changed
  type: bool
safety_copy:
  description:
    - Where the replaced database was kept, when O(keep_safety_copy=true) (V(null) otherwise, or when the target
      held nothing) - a directory beside the database for SQLite, a dump file in O(work_dir) or the system's
      temporary directory for servers.
  returned: changed
  type: str
leftovers_removed:
  description:
    - SQLite - the staged files (C(.cairn-restore-*.sqlite3)) that interrupted restores had left beside the
      database, removed by this restore. A safety copy left there is never removed; it is named in a warning.
  returned: changed and the target is SQLite
  type: list
  elements: str
dangling_file_references:
  description: For a content move, per C(collection.field), rows that point at a missing file.
  returned: changed and the restore point is a content move
  type: dict
  sample: {articles.cover: 2}
relocated_rows:
  description:
    - C(directus_files) rows whose C(storage) was rewritten by O(location_map); V(null) in check mode, where they
      are not counted.
  returned: success
  type: int
  sample: 12
relocations:
  description: Per pair of O(location_map), the rows moved (C(rows) is V(null) in check mode).
  returned: success
  type: list
  elements: dict
  sample: [{from: local, to: cloud, rows: 12}]
disabled:
  description: Rows turned off by O(quiesce), by kind (V(null) counts in check mode).
  returned: success
  type: dict
  sample: {flows: 2, webhooks: 1}
duration_s:
  description: Seconds the restore took.
  returned: changed
  type: float
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.cairncms.ops.plugins.module_utils import _db
from ansible_collections.cairncms.ops.plugins.module_utils._args import (
    db_restore_spec, instance_spec, load_config, load_repository, repository_spec)
from ansible_collections.cairncms.ops.plugins.module_utils._common import run
from ansible_collections.cairncms.ops.plugins.module_utils._manifest import check


def action(module):
    params = module.params
    repository = load_repository(params)
    manifest = check(repository.resolve(params['instance'], params['restore_point']))
    return _db.restore(load_config(params, repository, manifest), repository, params['instance'], manifest,
                       replace=params['replace'], keep_safety_copy=params['keep_safety_copy'],
                       check_mode=module.check_mode, options={'jobs': params['jobs']},
                       scratch_dir=params['work_dir'], on_version_mismatch=params['on_version_mismatch'],
                       on_migration_mismatch=params['on_migration_mismatch'],
                       location_map=params['location_map'], quiesce=params['quiesce'])


def main():
    spec = dict(instance_spec(), **repository_spec())
    spec.update(db_restore_spec())
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True)
    run(module, action)


if __name__ == '__main__':
    main()
