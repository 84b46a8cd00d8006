#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: cairn_restore
short_description: Restore a CairnCMS instance's database and file bytes from a restore point in one run
version_added: 0.4.0
description:
  - The restore of the M(cairncms.ops.cairn_db_restore) and M(cairncms.ops.cairn_storage_sync) modules, with the
    checks of M(cairncms.ops.cairn_restore_verify) before and after, in one module run; the C(restore) role's
    main step.
  - Everything that can refuse runs first and changes nothing - the database plan (another vendor, a target that
    holds other data without O(replace), a loader that is too old to be safe), the file plan (files that differ
    without O(replace), a file where a directory is needed) and, with O(verify_repository), every artifact of the
    restore point (the database dump) against its sha256.
  - Then the database is loaded while the file bytes are staged beside their places in the target, each checked
    against its sha256 as it is read (one read of each blob). The staged files are put in place only once the
    database is in; when the database restore fails they are removed and no file has changed. When a file fails
    (a damaged blob, a full disk), every staged file is removed and the database load is stopped, or the loaded
    database is put back from its safety copy (SQLite - the database file is not touched). A target database that
    held no tables keeps what was loaded of it by then, and the error says so.
  - Then, with O(verify), the database (migration level, row counts) and the files (every C(directus_files) row has
    its bytes, every file its sha256) are checked against the restore point, and the running instance over HTTP
    with O(http.url).
  - O(phase=check) plans and reads every checksum, file blobs too, and changes nothing (for a restore that stops
    the CMS in between); O(phase=apply) then plans again and restores without a second pass.
  - The options of the two restores have their meanings there; the configuration and secrets are restored by
    M(cairncms.ops.cairn_secret_restore).
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
  phase:
    description:
      - V(all) plans, checks the checksums (O(verify_repository)), restores and verifies.
      - V(check) plans and checks the checksums; it changes nothing.
      - V(apply) plans (refusing as before, the target may have changed), restores and verifies.
    type: str
    choices: [all, check, apply]
    default: all
  replace:
    description:
      - Overwrite a target database that holds other data, and files of the target that differ from the restore
        point, and remove files it does not have.
    type: bool
    default: false
  keep_safety_copy:
    description:
      - Keep the safety copy of a replaced database after a successful restore; see
        M(cairncms.ops.cairn_db_restore).
    type: bool
    default: false
  jobs:
    description:
      - PostgreSQL directory-format dumps only; parallel C(pg_restore) workers.
    type: int
    default: 1
  parallel:
    description:
      - Files transferred at a time (1 to 64).
    type: int
    default: 8
  work_dir:
    description:
      - Directory for temporary files of a server restore; see M(cairncms.ops.cairn_db_restore).
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
      - Storage location names of the restore point mapped to storage location names of this instance; see
        M(cairncms.ops.cairn_db_restore).
    type: dict
    default: {}
  quiesce:
    description:
      - What to turn off in the restored data; see M(cairncms.ops.cairn_db_restore).
    type: list
    elements: str
    choices: [flows, webhooks]
    default: []
  verify_repository:
    description:
      - Read every artifact of the restore point and compare its sha256 before anything is written, and with
        O(phase=check) or in check mode every file blob too (O(phase=all) checks each blob as its file is staged,
        whatever this says).
    type: bool
    default: true
  verify:
    description:
      - Check the restored database and files against the restore point afterwards (not in check mode).
    type: bool
    default: true
  http:
    description:
      - The HTTP checks of the running instance after the restore, as O(cairncms.ops.cairn_restore_verify#module:http)
        (without the flow checks, which are for a drill's sandbox); none without C(url).
    type: dict
    default: {}
    suboptions:
      url:
        description: Base URL of the instance.
        type: str
      email:
        description: Administrator to log in as.
        type: str
      password:
        description: Password of O(http.email).
        type: str
      collections:
        description: Collections whose item counts are compared with the restore point.
        type: list
        elements: str
        default: []
      assets:
        description: How many files to fetch through C(/assets) and compare.
        type: int
        default: 10
      app:
        description: Check that the admin app loads.
        type: bool
        default: false
      activity:
        description: Check that the activity log records the login.
        type: bool
        default: false
      timeout:
        description: Seconds each request may take.
        type: int
        default: 30
      validate_certs:
        description: Verify the server's TLS certificate.
        type: bool
        default: true
  time_limits:
    description:
      - Seconds each step may take, V(0) for no limit - re-reading the checksums (V(repository)), the database
        restore (V(database)), the file restore (V(files)), the verification (V(verify)). When one runs out, the
        module stops on the host as for O(time_limit), naming the step; the database and file restores run side by
        side, and either running out stops both.
    type: dict
    default: {}
    suboptions:
      repository:
        description: Re-reading every checksum of the restore point.
        type: int
        default: 0
      database:
        description: Restoring the database.
        type: int
        default: 0
      files:
        description: Restoring the file bytes.
        type: int
        default: 0
      verify:
        description: Verifying the restored instance.
        type: int
        default: 0
  take_claim:
    description:
      - Claim the restore point for this run, as M(cairncms.ops.cairn_repository_claim) does, so that no prune
        removes it while it is read, and keep the claim fresh meanwhile. One module run instead of three (claim,
        restore, release) where no other step reads the restore point before this one.
      - Not taken when O(claim) names a claim the caller holds, nor in check mode.
      - The claim is released at the end of the run, whether it succeeds or fails, unless the run succeeds and the
        restore point holds one of the parts in O(take_claim.keep_for). It is then kept, and returned in RV(claim),
        for the later steps that read those parts. Release it with M(cairncms.ops.cairn_repository_claim)
        O(cairncms.ops.cairn_repository_claim#module:state=absent).
    type: dict
    suboptions:
      purpose:
        description: What the claim is for, shown to a prune that finds it.
        type: str
        default: restore
      lock_wait:
        description: Seconds to wait while a prune is removing the restore point, as for
          M(cairncms.ops.cairn_repository_claim).
        type: int
        default: 0
      lock_stale_after:
        description: Seconds after which a prune's record of its removals counts as stale, as for
          M(cairncms.ops.cairn_repository_claim).
        type: int
        default: 900
      keep_for:
        description: Part kinds (C(secrets), C(schema), C(config)...) that later steps read; the claim is kept
          after a successful run when the restore point holds one of them.
        type: list
        elements: str
        default: []
notes:
  - O(instance) names the instance whose restore points are used (the source), not the target.
  - Stop CairnCMS before restoring it (the C(restore) role does, with C(cairn_cms_service)).
requirements:
  - zstandard >= 0.21.0 (for zstd-compressed restore points)
attributes:
  check_mode:
    support: full
    description: Plans and checks the checksums; returns the plans; changes nothing.
  diff_mode:
    support: none
    description: Nothing to diff.
'''

EXAMPLES = r'''
- name: Restore the newest restore point of blog into this host's instance
  cairncms.ops.cairn_restore:
    env_file: /srv/cairn/.env
    repository: {type: local, path: /var/backups/cairn}
    instance: blog
    restore_point: latest
    replace: true
'''

RETURN = r'''
restore_point:
  description: Id of the restore point.
  returned: always
  type: str
database:
  description: What the database restore returned (in check mode and O(phase=check), its plan); see
    M(cairncms.ops.cairn_db_restore).
  returned: success
  type: dict
files:
  description: What the file restore returned (in check mode and O(phase=check), its plan); see
    M(cairncms.ops.cairn_storage_sync).
  returned: success
  type: dict
repository_checks:
  description: The checksum checks of the restore point, one C(name), C(ok), C(detail) each.
  returned: when O(verify_repository) ran
  type: list
  elements: dict
checks:
  description: The checks of the restored instance, one C(name), C(ok), C(detail) each.
  returned: when O(verify) ran
  type: list
  elements: dict
unreferenced:
  description: Objects of the target's storage that no C(directus_files) row references; never removed.
  returned: when O(verify) ran
  type: dict
step:
  description:
    - On failure, the step that failed - V(plan), V(repository), V(database), V(files) or V(verify).
  returned: failure
  type: str
steps:
  description: Seconds of each step that ran (V(plan_s), V(repository_s), V(database_s), V(files_s),
    V(verify_s)); the database and files run side by side.
  returned: always
  type: dict
duration_s:
  description: Seconds the run took.
  returned: success
  type: float
claim:
  description: The claim this run took and kept (O(take_claim.keep_for)), to be released by the caller; null when
    it released its claim or took none.
  returned: when O(take_claim) is given
  type: str
  sample: 20261122T030000-9f3a1c2b
summary:
  description: What the restore point holds, as M(cairncms.ops.cairn_repository_claim) returns it.
  returned: when O(take_claim) is given
  type: dict
failed_since:
  description: Error logs of backups that failed after the restore point was made, as
    M(cairncms.ops.cairn_repository_claim) returns them.
  returned: when O(take_claim) is given
  type: list
  elements: dict
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.cairncms.ops.plugins.module_utils._args import (
    db_restore_spec, http_spec, instance_spec, load_config, load_repository, repository_spec)
from ansible_collections.cairncms.ops.plugins.module_utils._common import CairnError, run
from ansible_collections.cairncms.ops.plugins.module_utils._manifest import check, summary
from ansible_collections.cairncms.ops.plugins.module_utils._restore import Run


def action(module):
    params = module.params
    if not 1 <= params['parallel'] <= 64:
        raise CairnError('parallel must be between 1 and 64 (files transferred at a time), got %d'
                         % params['parallel'])
    repository = load_repository(params)
    warnings = []
    manifest = check(repository.resolve(params['instance'], params['restore_point'], warnings))
    taking = params['take_claim']
    if taking is None:
        result = run_restore(module, repository, manifest)
        result['warnings'] = (result.get('warnings') or []) + warnings
        return result
    instance, described = params['instance'], summary(manifest)
    failed, later = repository.failed_since(instance, manifest['id'])
    told = {'summary': described, 'failed_since': failed}
    claim = stop = None
    if not params['claim'] and not module.check_mode:
        claim = repository.claim(instance, [manifest['id']], taking['purpose'], wait=taking['lock_wait'],
                                 stale_after=taking['lock_stale_after'])
        stop = repository.keep_claim(instance, claim)
    keep = False
    try:
        result = run_restore(module, repository, manifest)
        keep = bool(set(taking['keep_for']) & set(described['parts']))
    except CairnError as exc:
        exc.details.update(told)
        raise
    finally:
        if claim:
            stop()
            if not keep:
                repository.release_claim(instance, claim)
    result.update(told, claim=claim if keep else None)
    result['warnings'] = (result.get('warnings') or []) + warnings + later
    return result


def run_restore(module, repository, manifest):
    """Plan, check, restore and verify, as far as the phase and check mode say."""
    params = module.params
    restore = Run(load_config(params, repository, manifest), repository, params['instance'], manifest, params,
                  limits=params['time_limits'])
    phase = params['phase']
    restore.plan()
    if phase != 'apply' and params['verify_repository']:
        # A run that goes on to restore reads each file blob once, as its file is staged.
        restore.check_checksums(blobs=phase == 'check' or module.check_mode)
    if phase == 'check' or module.check_mode:
        return restore.finish()
    restore.apply(verify_after=params['verify'])
    if params['verify']:
        http = dict(params['http'], flow=False, named_flow=None)
        restore.verify(http if http.get('url') else None)
    return restore.finish()


def main():
    spec = dict(instance_spec(), **repository_spec())
    spec.update(db_restore_spec())
    spec.update({
        'phase': {'type': 'str', 'choices': ['all', 'check', 'apply'], 'default': 'all'},
        'parallel': {'type': 'int', 'default': 8},
        'verify_repository': {'type': 'bool', 'default': True},
        'verify': {'type': 'bool', 'default': True},
        'http': http_spec(flows=False),
        'time_limits': {'type': 'dict', 'default': {}, 'options': {
            step: {'type': 'int', 'default': 0} for step in ('repository', 'database', 'files', 'verify')}},
        'take_claim': {'type': 'dict', 'options': {
            'purpose': {'type': 'str', 'default': 'restore'},
            'lock_wait': {'type': 'int', 'default': 0},
            'lock_stale_after': {'type': 'int', 'default': 900},
            'keep_for': {'type': 'list', 'elements': 'str', 'default': []},
        }},
    })
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True)
    run(module, action)


if __name__ == '__main__':
    main()
