#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: cairn_backup
short_description: Back up a CairnCMS instance into one restore point, in one module run
version_added: 0.1.0
description:
  - The whole backup in one run - the steps that M(cairncms.ops.cairn_instance_info),
    M(cairncms.ops.cairn_restore_point), M(cairncms.ops.cairn_db_dump), M(cairncms.ops.cairn_storage_sync),
    M(cairncms.ops.cairn_secret_capture), M(cairncms.ops.cairn_restore_verify),
    M(cairncms.ops.cairn_repository_prune) and M(cairncms.ops.cairn_storage_posture) take one task each, with the
    same code, without a module start and a task round trip per step.
  - "Steps, in order: C(discover) (the configuration, and whether the newest restore point is younger than
    O(min_interval)), C(begin) (the instance lock and a staged restore point), C(dump) (the database), C(files)
    (the file bytes of every storage location), C(secrets) (the encrypted secrets bundle, when O(secrets) and a
    recipient allow it; otherwise the result says why not), C(finalize) (manifest, signature with O(signing_key),
    the restore point becomes visible), C(verify) (every checksum of the new restore point, with O(verify)),
    C(prune) (O(retention)) and C(posture) (the buckets of the instance and the repository, with O(posture) and
    only when there are buckets)."
  - A step that fails marks the staged restore point failed with the step's name and message (its error log stays
    in the repository; M(cairncms.ops.cairn_backup_info) shows it), which releases the instance lock, and the module
    fails with one line naming the step. A failure after C(finalize) (verify, prune, posture with enforcement) leaves
    the new restore point in place.
  - O(timeouts) gives steps a deadline; a step over it is stopped (the dump tool and every other process the module
    started are killed) and fails the run, naming the step and the option to raise.
  - O(dump_slots) limits the dumps that run at once against one database server (vendor, host and port), counted by
    locks in the repository, so that backups on other hosts and in other jobs into the same repository count too.
    Instances in different repositories are not counted together.
  - The single modules stay, for runs composed by hand.
author:
  - cairncms.ops maintainers (!UNKNOWN)
requirements:
  - zstandard >= 0.21.0 (for O(compression=zstd))
  - cryptography >= 3.1 (only to sign, with O(signing_key))
extends_documentation_fragment:
  - cairncms.ops.instance
  - cairncms.ops.instance.REPOSITORY
options:
  compression:
    description:
      - Compression of the database dump.
    type: str
    choices: [zstd, none]
    default: zstd
  compression_level:
    description:
      - zstd level of the database dump, 1 (fastest) to 19.
    type: int
    default: 3
  compression_threads:
    description:
      - zstd worker threads for the database dump, as in M(cairncms.ops.cairn_db_dump).
    type: int
    default: 1
  format:
    description:
      - PostgreSQL dump format, V(custom) (streamed) or V(directory) (parallel with O(jobs)).
    type: str
    choices: [custom, directory]
    default: custom
  jobs:
    description:
      - Parallel pg_dump workers with O(format=directory).
    type: int
    default: 1
  include_regenerable:
    description:
      - Also back up resized images and health probes CairnCMS can regenerate.
    type: bool
    default: false
  checksum:
    description:
      - Read and hash every file even when size and time are unchanged since the last restore point.
    type: bool
    default: false
  parallel:
    description:
      - Files transferred at a time between the storage locations and the repository (1 to 64).
    type: int
    default: 8
  secrets:
    description:
      - Capture the C(.env), the files its C(*_FILE) variables name and O(secret_files) as an encrypted bundle.
      - Needs an encryption recipient (or a passphrase); without one nothing is captured and the result says so.
    type: bool
    default: true
  secret_files:
    description:
      - Extra files for the secrets bundle, such as TLS certificates and keys.
    type: list
    elements: path
    default: []
  secret_variables:
    description:
      - Regular expressions of further variable names that count as secrets.
    type: list
    elements: str
    default: []
  signing_key:
    description:
      - An ed25519 private key file (OpenSSH or PEM, unencrypted) that signs the manifest of the new restore point.
    type: path
  verify:
    description:
      - Re-read the new restore point and check every checksum.
    type: bool
    default: true
  retention:
    description:
      - Retention policy applied after the backup, as in M(cairncms.ops.cairn_repository_prune); nothing is pruned
        when empty.
    type: dict
    default: {}
  timezone:
    description:
      - Time zone in which O(retention) counts days, weeks, months and years.
    type: str
    default: UTC
  lock_wait:
    description:
      - Seconds to wait for another run of the same instance (the instance lock) before failing.
    type: int
    default: 0
  lock_stale_after:
    description:
      - Seconds of silence after which a lock (of the instance, or a dump slot) counts as left by a dead run and is
        taken over. Runs keep theirs fresh while they work.
    type: int
    default: 900
  posture:
    description:
      - Report the posture of the buckets of the storage locations and of the repository (see
        M(cairncms.ops.cairn_storage_posture)). Skipped when there is no bucket. A report that cannot be made is
        recorded in RV(posture_error) and fails nothing, unless O(posture_enforce) is given.
    type: bool
    default: true
  posture_enforce:
    description:
      - On the repository bucket only, turn on C(versioning) and a C(lifecycle) rule expiring noncurrent versions.
    type: list
    elements: str
    choices: [versioning, lifecycle]
    default: []
  posture_noncurrent_days:
    description:
      - Days a noncurrent version of the repository bucket is kept by the enforced lifecycle rule.
    type: int
    default: 30
  min_interval:
    description:
      - Seconds; when the newest complete restore point of the instance started less than this long ago, no new
        one is made, the module reports no change and RV(fresh) names that restore point. V(0) always backs up.
    type: int
    default: 0
  dump_slots:
    description:
      - At most this many database dumps at once against one database server (the same vendor, host and port,
        lower-cased host names compared as written), counted by slot locks in the repository
        (C(dump-slot-<hash>-<n>) beside the instances), which runs on other hosts and in other jobs backing up into
        the same repository see too. Instances in different repositories are not counted together. V(0) - no limit.
      - A slot is held for the dump step only, kept fresh while held, and taken over after O(lock_stale_after)
        seconds of silence when its run died.
      - SQLite databases have no server and take no slot.
    type: int
    default: 0
  dump_slot_wait:
    description:
      - Seconds to wait for a free dump slot before failing.
    type: int
    default: 3600
  timeouts:
    description:
      - Seconds each step may take; a step over its limit is stopped (every process the module started, such as
        C(pg_dump), is killed) and the run fails naming the step. Unset or V(0) - no limit.
    type: dict
    default: {}
    suboptions:
      discover:
        description: Reading the configuration and the repository's newest restore point.
        type: int
      begin:
        description: Taking the instance lock (including O(lock_wait)) and staging the restore point.
        type: int
      dump:
        description: The database dump (not the wait for a dump slot, see O(dump_slot_wait)).
        type: int
      files:
        description: Copying the file bytes.
        type: int
      secrets:
        description: Capturing the secrets bundle.
        type: int
      schema:
        description: Taking the CMS's schema snapshot.
        type: int
      config:
        description: Capturing the roles and permissions (and the other config kinds of O(config_kinds)).
        type: int
      rows:
        description: Staging the rows part (the dump step reads the rows, inside its snapshot).
        type: int
      finalize:
        description: Writing the manifest (and signature).
        type: int
      verify:
        description: Checking the new restore point.
        type: int
      prune:
        description: Applying the retention policy.
        type: int
      posture:
        description: Reading (and enforcing) the posture of the buckets.
        type: int
  parts:
    description:
      - The parts the restore point is made of (docs/restore-point-format.md). C(database) and C(files) are always
        there; C(secrets) (with O(secrets)), C(schema) (the CMS's schema snapshot, through O(cms)) and C(config)
        (the roles and permissions, read inside the dump's snapshot) are optional and made by default.
      - C(rows) (every table's rows as vendor-neutral typed records, read inside the dump's snapshot; what a
        migration to another database vendor loads) is made only when listed.
    type: list
    elements: str
    choices: [database, files, secrets, schema, config, rows]
    default: [database, files, secrets, schema, config]
  config_kinds:
    description:
      - What the C(config) part holds. C(roles) and C(permissions) by default; C(flows) (with their operations),
        C(webhooks), C(presets), C(dashboards) (with their panels), C(translations) and C(settings) on request.
    type: list
    elements: str
    choices: [roles, permissions, flows, webhooks, presets, dashboards, translations, settings]
    default: [roles, permissions]
  cms:
    description:
      - What the restore point records of the CMS beside its migration level (the manifest's C(cms.name),
        C(cms.version), C(cms.source) and C(cms.window)), so that a restore can tell which CMS made it.
      - The CMS is described as M(cairncms.ops.cairn_cms_info) does, from its install (O(cms.install_dir) or
        O(cms.command)), else from O(cms.url) with O(cms.token). A CMS that cannot be described is a warning; the
        backup goes on without its name and version.
      - Nothing recorded of the CMS but its migration level when not given.
      - The same O(cms.command) (the CMS's CLI, C(schema snapshot)), else O(cms.url) with O(cms.token)
        (C(GET /schema/snapshot)), makes the restore point's C(schema) part; without either the part is recorded
        as not captured, with the reason, and the backup goes on.
    type: dict
    suboptions:
      install_dir:
        description: The directory holding the CMS's C(node_modules).
        type: path
      command:
        description: The command that runs the CMS's CLI (its install is the directory above its C(node_modules)).
        type: list
        elements: str
      url:
        description: Base URL of the running CMS, asked (C(/server/info)) when no package file is found.
        type: str
      token:
        description: A static token of an admin user for O(cms.url); never recorded or returned.
        type: str
      validate_certs:
        description: Verify the TLS certificate of an C(https) O(cms.url).
        type: bool
        default: true
      window:
        description:
          - Whether the CMS ran during the capture (V(running)) or was stopped for it (V(stopped), a maintenance
            window); recorded as C(cms.window).
        type: str
        choices: [running, stopped]
        default: running
attributes:
  check_mode:
    support: full
    description:
      - Reads the configuration, the database (a probe) and the storage locations, and returns what would be dumped,
        copied, captured and pruned, with the id the restore point would get; takes no lock and writes nothing.
  diff_mode:
    support: none
    description: Nothing to diff.
'''

EXAMPLES = r'''
- name: Back up the instance
  cairncms.ops.cairn_backup:
    env_file: /srv/cairn/.env
    repository: {type: local, path: /var/backups/cairn}
    instance: blog
    encryption_recipients: [age1qyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqs3290gq]
    retention: {keep_daily: 7, keep_weekly: 4, min_keep: 3}
  register: backup

- name: At most two dumps at once against each database server, nothing more often than hourly
  cairncms.ops.cairn_backup:
    env_file: /srv/cairn/.env
    repository: {type: s3, bucket: cairn-backups, prefix: prod}
    instance: shop
    min_interval: 3600
    dump_slots: 2
    timeouts: {dump: 1800, files: 3600}
'''

RETURN = r'''
restore_point:
  description:
    - Id of the new restore point (in check mode, the id it would get); of the fresh one when RV(fresh) is set.
  returned: always
  type: str
  sample: 20261121T020000.042Z-1a2b3c
made:
  description: Whether a new restore point was made.
  returned: always
  type: bool
fresh:
  description:
    - The newest restore point when it is younger than O(min_interval) (C(restore_point), C(started_at), C(age_s),
      C(min_interval)), so that no new one was made; null otherwise.
  returned: always
  type: dict
  sample: {restore_point: 20261121T020000.042Z-1a2b3c, started_at: '2026-11-21T02:00:00.042000Z', age_s: 120.4,
           min_interval: 3600}
schema:
  description:
    - The schema part - C(captured), and C(reason) when not; when captured C(via) (C(cli) or C(http)), C(vendor),
      C(cms_version), C(counts) (collections, fields, relations), C(consistent) (the CMS's schema rows were the
      same in the dump's snapshot and when the CMS took its snapshot), C(artifact), C(size_bytes), C(sha256).
  returned: when a restore point was made or planned
  type: dict
  sample: {captured: true, via: cli, vendor: sqlite, cms_version: 10.0.0, consistent: true,
           counts: {collections: 2, fields: 9, relations: 1}, artifact: schema.json}
config:
  description:
    - The config part - C(captured), and C(reason) when not; when captured C(kinds), C(counts) per kind,
      C(vendor), C(snapshot_at) (the dump's snapshot it was read in), C(artifact), C(size_bytes), C(sha256).
  returned: when a restore point was made or planned
  type: dict
  sample: {captured: true, kinds: [roles, permissions], counts: {roles: 3, permissions: 12}, artifact: config.json}
rows:
  description:
    - The rows part - C(captured), and C(reason) when not; when captured C(artifact), C(size_bytes), C(sha256),
      C(rows) (all tables) and C(duration_s) (of reading them, inside the dump step).
  returned: when a restore point was made or planned
  type: dict
  sample: {captured: true, artifact: rows.jsonl.zst, size_bytes: 48213, rows: 1520, duration_s: 0.8}
database:
  description: The dump step's result, as M(cairncms.ops.cairn_db_dump) returns it, with C(started_at) and
    C(finished_at) of the step (UTC).
  returned: when a restore point was made or planned
  type: dict
  sample: {vendor: postgres, artifact: database.pgdump.zst, size_bytes: 1048576, tables: 40,
           migration_level: 20230401A, started_at: '2026-11-21T02:00:01.002000Z',
           finished_at: '2026-11-21T02:00:09.310000Z'}
files:
  description: The file step's result, as M(cairncms.ops.cairn_storage_sync) returns it for a backup.
  returned: when a restore point was made or planned
  type: dict
  sample: {files: 6, bytes: 51200, transferred: 1, transferred_bytes: 4096, reused: 5, skipped_regenerable: 3}
secrets:
  description:
    - The secrets step's result - C(captured), C(reason) when not captured, the number of C(variables) and C(files)
      in the bundle (never their names or values) and the bundle's C(size_bytes).
  returned: when a restore point was made or planned
  type: dict
  sample: {captured: false, reason: 'no encryption recipient is configured (cairn_encryption_recipients): secrets
           are never stored in plaintext', variables: 0, files: 0}
encrypted:
  description: Whether the restore point's dump, file bytes and secrets are encrypted.
  returned: always
  type: bool
verified:
  description: Whether every checksum of the new restore point was checked and found right.
  returned: always
  type: bool
checks:
  description: The checks of the verify step (C(name), C(ok), C(detail)).
  returned: always
  type: list
  elements: dict
pruned:
  description:
    - The retention step's C(removed), C(kept), C(held), C(unreadable), C(blobs_removed), C(bytes_freed) and
      C(garbage_collection) (see M(cairncms.ops.cairn_repository_prune)); null without O(retention).
  returned: always
  type: dict
posture:
  description:
    - The posture report (C(locations), C(repository), C(findings), C(changes)) as
      M(cairncms.ops.cairn_storage_posture) returns it; null when not asked or there is no bucket.
  returned: always
  type: dict
posture_error:
  description: Why the posture report could not be made (the run goes on unless O(posture_enforce) is given).
  returned: always
  type: str
dump_slot:
  description: The dump slot taken (C(server), C(slot), C(slots), C(waited_s), C(taken_over)); null without O(dump_slots).
  returned: always
  type: dict
  sample: {server: 'postgres://db1.example.com:5432', slot: 1, slots: 2, waited_s: 12.5, taken_over: []}
interrupted_runs:
  description: Staged runs of the instance that a dead run left, marked failed when this one began.
  returned: always
  type: list
  elements: str
bytes:
  description: Bytes written - the database artifact, the file bytes copied and the secrets bundle.
  returned: always
  type: int
steps:
  description: Seconds each step took, in the order they ran (C(dump_slot) is the wait for a dump slot).
  returned: always
  type: dict
  sample: {discover: 0.012, dump_slot: 0.004, begin: 0.008, dump: 8.31, files: 0.42, secrets: 0.01, finalize: 0.02,
           verify: 0.35}
capture_skew_s:
  description:
    - Seconds between the database snapshot and the end of the file listing of the restore point made (the
      manifest's C(capture_skew_s)); files and rows changed in between may not match. Null when no point was made.
  returned: always
  type: float
  sample: 0.42
newest_point:
  description: C(id) and C(started_at) of the newest usable restore point of the instance when the run ended.
  returned: always
  type: dict
rpo_s:
  description: Age in seconds of that restore point when the run ended (null when there is none).
  returned: always
  type: float
signed_by:
  description: The public key that signed the manifest, with O(signing_key).
  returned: when a restore point was made
  type: str
cms:
  description:
    - What the restore point records of the CMS (C(window), and C(name), C(version), C(source) when it could be
      described); null without O(cms).
  returned: always
  type: dict
  sample: {name: directus, version: 10.0.0, source: package.json, window: running}
failed_step:
  description: On failure, the name of the step that failed (for example C(Dump the database)); also C(step), its
    key (C(dump)), C(cause), its message, C(timed_out), and C(point_failed), whether the staged restore point was
    marked failed.
  returned: failure
  type: str
'''


from ansible.module_utils.basic import AnsibleModule

from ansible_collections.cairncms.ops.plugins.module_utils import _backup
from ansible_collections.cairncms.ops.plugins.module_utils._args import instance_spec, repository_spec
from ansible_collections.cairncms.ops.plugins.module_utils._common import run


def main():
    timeouts = {step: {'type': 'int'} for step in _backup.STEPS}
    timeouts['secrets']['no_log'] = False  # seconds, not a secret
    spec = dict(instance_spec(), **repository_spec(point=False))
    spec.update({
        'compression': {'type': 'str', 'choices': ['zstd', 'none'], 'default': 'zstd'},
        'compression_level': {'type': 'int', 'default': 3},
        'compression_threads': {'type': 'int', 'default': 1},
        'format': {'type': 'str', 'choices': ['custom', 'directory'], 'default': 'custom'},
        'jobs': {'type': 'int', 'default': 1},
        'include_regenerable': {'type': 'bool', 'default': False},
        'checksum': {'type': 'bool', 'default': False},
        'parallel': {'type': 'int', 'default': 8},
        'secrets': {'type': 'bool', 'default': True, 'no_log': False},
        'secret_files': {'type': 'list', 'elements': 'path', 'default': [], 'no_log': False},
        'secret_variables': {'type': 'list', 'elements': 'str', 'default': [], 'no_log': False},
        'signing_key': {'type': 'path', 'no_log': False},
        'verify': {'type': 'bool', 'default': True},
        'retention': {'type': 'dict', 'default': {}},
        'timezone': {'type': 'str', 'default': 'UTC'},
        'lock_wait': {'type': 'int', 'default': 0},
        'lock_stale_after': {'type': 'int', 'default': 900},
        'posture': {'type': 'bool', 'default': True},
        'posture_enforce': {'type': 'list', 'elements': 'str', 'choices': ['versioning', 'lifecycle'], 'default': []},
        'posture_noncurrent_days': {'type': 'int', 'default': 30},
        'min_interval': {'type': 'int', 'default': 0},
        'dump_slots': {'type': 'int', 'default': 0},
        'dump_slot_wait': {'type': 'int', 'default': 3600},
        'timeouts': {'type': 'dict', 'default': {}, 'options': timeouts},
        'parts': {'type': 'list', 'elements': 'str', 'choices': list(_backup.PARTS),
                  'default': list(_backup.DEFAULT_PARTS)},
        'config_kinds': {'type': 'list', 'elements': 'str', 'default': ['roles', 'permissions'],
                         'choices': ['roles', 'permissions', 'flows', 'webhooks', 'presets', 'dashboards',
                                     'translations', 'settings']},
        'cms': {'type': 'dict', 'options': {
            'install_dir': {'type': 'path'},
            'command': {'type': 'list', 'elements': 'str'},
            'url': {'type': 'str'},
            'token': {'type': 'str', 'no_log': True},
            'validate_certs': {'type': 'bool', 'default': True},
            'window': {'type': 'str', 'choices': ['running', 'stopped'], 'default': 'running'},
        }},
    })
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True)
    run(module, lambda m: _backup.backup(m.params, check_mode=m.check_mode))


if __name__ == '__main__':
    main()
