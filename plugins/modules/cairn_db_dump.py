#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: cairn_db_dump
short_description: Dump a CairnCMS database into a staged restore point
version_added: 0.1.0
description:
  - Dumps the instance's database (found from its configuration) into a restore point begun by
    M(cairncms.ops.cairn_restore_point), compressing and hashing while it streams.
  - SQLite is copied with the online backup API in one step, so the dump is consistent while CairnCMS
    keeps writing; it is checked with C(PRAGMA integrity_check) before it is stored.
  - PostgreSQL is dumped with C(pg_dump) in a snapshot exported by a helper session, so the recorded row
    counts are exactly those of the dump. C(pg_dump) must be at least the server's major version.
  - MySQL and MariaDB are dumped with C(mariadb-dump) or C(mysqldump) C(--single-transaction --routines
    --triggers --events --hex-blob); see the collection docs for how row counts are kept consistent.
  - Passwords reach the tools in their environment or a 0600 options file, never on a command line.
    A dump tool that fails or dies fails the task and leaves no artifact.
  - Temporary files (the SQLite copy, the MySQL option files, a PostgreSQL directory dump) are written to a
    private directory of the run (C(<TMPDIR>/cairncms-ops-<uid>/...), mode 0700), never into the repository, and
    removed when the module ends.
  - Records row counts per table and the CMS migration level for the manifest.
author:
  - cairncms.ops maintainers (!UNKNOWN)
extends_documentation_fragment:
  - cairncms.ops.instance
  - cairncms.ops.instance.REPOSITORY
options:
  restore_point:
    description:
      - Id of the staged restore point to write into.
    type: str
    required: true
  compression:
    description:
      - Compression of the dump artifact.
    type: str
    choices: [zstd, none]
    default: zstd
  compression_level:
    description:
      - zstd level, 1 (fastest) to 19.
    type: int
    default: 3
  compression_threads:
    description:
      - zstd worker threads. V(1) compresses in one thread beside the one reading the dump, so both overlap;
        V(0) compresses in the reading thread; V(-1) uses one per CPU.
    type: int
    default: 1
  format:
    description:
      - PostgreSQL only. V(custom) streams one C(pg_dump --format=custom) archive through zstd.
      - V(directory) runs C(pg_dump --format=directory) with O(jobs) parallel workers and pg_dump's own
        compression at O(compression_level) (at most 9), then stores the directory as one tar artifact.
    type: str
    choices: [custom, directory]
    default: custom
  jobs:
    description:
      - PostgreSQL with O(format=directory) only; parallel dump workers.
    type: int
    default: 1
  tables:
    description:
      - A content move - dump only these tables, data only (no schema), for a restore that replaces the
        rows of these tables and leaves everything else of the target (users, roles, sessions, activity)
        untouched.
      - Names as in the manifest's row counts (PostgreSQL tables outside C(public) as C(schema.table)).
      - All tables, schema and data, when empty.
    type: list
    elements: str
    default: []
requirements:
  - zstandard >= 0.21.0 (for O(compression=zstd))
attributes:
  check_mode:
    support: full
    description: Probes the database and returns what would be dumped.
  diff_mode:
    support: none
    description: Nothing to diff.
'''

EXAMPLES = r'''
- name: Dump the database into the staged restore point
  cairncms.ops.cairn_db_dump:
    env_file: /srv/cairn/.env
    repository: {type: local, path: /var/backups/cairn}
    instance: blog
    restore_point: "{{ point.restore_point }}"
'''

RETURN = r'''
vendor:
  description: Database vendor.
  returned: success
  type: str
  sample: sqlite
artifact:
  description: Name of the dump artifact in the restore point.
  returned: success
  type: str
  sample: database.sqlite3.zst
server_version:
  description: Version of the database server or library.
  returned: success
  type: str
  sample: 3.40.1
server_flavor:
  description: For MySQL-compatible servers, C(mariadb) or C(mysql).
  returned: changed and the database is MySQL or MariaDB
  type: str
dump_tool:
  description: The dump tool used (C(pg_dump), C(mariadb-dump), C(mysqldump)).
  returned: changed and the database is a server
  type: str
dump_tool_version:
  description: Version of the dump tool.
  returned: changed and the database is a server
  type: str
size_bytes:
  description: Size of the stored (compressed) artifact.
  returned: changed
  type: int
sha256:
  description: sha256 of the stored artifact.
  returned: changed
  type: str
raw_size_bytes:
  description: Size of the dump before compression.
  returned: changed
  type: int
duration_s:
  description: Seconds the dump took.
  returned: changed
  type: float
row_counts:
  description: Rows per table in the dump.
  returned: changed
  type: dict
  sample: {directus_files: 12, articles: 40}
migration_level:
  description: Newest C(directus_migrations.version) in the dump.
  returned: changed
  type: str
  sample: 20230101A
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.cairncms.ops.plugins.module_utils import _db
from ansible_collections.cairncms.ops.plugins.module_utils._args import (
    instance_spec, load_config, load_repository, repository_spec)
from ansible_collections.cairncms.ops.plugins.module_utils._common import check_name, run


def action(module):
    params = module.params
    return _db.dump(load_config(params), load_repository(params, writes=True), params['instance'],
                    check_name('restore point id', params['restore_point']),
                    compression=params['compression'], level=params['compression_level'],
                    threads=params['compression_threads'], check_mode=module.check_mode,
                    options={'format': params['format'], 'jobs': params['jobs'], 'tables': params['tables']})


def main():
    spec = dict(instance_spec(), **repository_spec(point=False))
    spec.update({
        'restore_point': {'type': 'str', 'required': True},
        'compression': {'type': 'str', 'choices': ['zstd', 'none'], 'default': 'zstd'},
        'compression_level': {'type': 'int', 'default': 3},
        'compression_threads': {'type': 'int', 'default': 1},
        'format': {'type': 'str', 'choices': ['custom', 'directory'], 'default': 'custom'},
        'jobs': {'type': 'int', 'default': 1},
        'tables': {'type': 'list', 'elements': 'str', 'default': []},
    })
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True)
    run(module, action)


if __name__ == '__main__':
    main()
