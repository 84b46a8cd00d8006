#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: cairn_repository_claim
short_description: Claim a restore point for reading, so that no prune removes it meanwhile
version_added: 0.1.0
description:
  - O(state=present) resolves O(restore_point) (an id, or V(latest) - the newest restore point whose manifest can
    be used) and records a reader claim on it in the repository (C(readers/<claim>.json)). A prune
    (M(cairncms.ops.cairn_repository_prune), or O(state=absent) of M(cairncms.ops.cairn_restore_point)) never
    removes a restore point, or the file bytes it references, while a live claim holds it; it keeps such a point
    for a later run, with a warning. Returns the claim id and the resolved manifest.
  - The modules that read the restore point take the claim as their C(claim) option; each checks it is still held
    and keeps it fresh while it works. A claim that nothing refreshed for the prune's C(lock_stale_after) seconds
    (its run was killed) counts as gone.
  - While a prune is removing the restore point, the claim waits up to O(lock_wait) seconds, then fails.
  - O(state=absent) releases O(claim).
  - A claim is bookkeeping of the run that holds it; taking and releasing one reports no change. In check mode
    the restore point is resolved and no claim is recorded.
author:
  - cairncms.ops maintainers (!UNKNOWN)
extends_documentation_fragment:
  - cairncms.ops.instance.REPOSITORY
options:
  state:
    description:
      - V(present) to claim, V(absent) to release.
    type: str
    choices: [present, absent]
    default: present
  restore_point:
    description:
      - Id of the restore point to claim, or V(latest).
    type: str
    default: latest
  claim:
    description:
      - The claim to release, for O(state=absent).
    type: str
  purpose:
    description:
      - What reads the restore point (V(restore), V(clone), V(drill)...), shown to a prune that must keep it.
    type: str
    default: restore
  lock_wait:
    description:
      - Seconds to wait while a prune is removing the restore point.
    type: int
    default: 0
  lock_stale_after:
    description:
      - Seconds of silence after which a prune's record of what it removes counts as left by a dead run.
    type: int
    default: 900
attributes:
  check_mode:
    support: full
    description: Resolves the restore point; records no claim.
  diff_mode:
    support: none
    description: Nothing to diff.
'''

EXAMPLES = r'''
- name: Claim the newest restore point of blog
  cairncms.ops.cairn_repository_claim:
    repository: {type: local, path: /var/backups/cairn}
    instance: blog
  register: claimed

- name: Restore its database, keeping the claim fresh
  cairncms.ops.cairn_db_restore:
    env_file: /srv/cairn/.env
    repository: {type: local, path: /var/backups/cairn}
    instance: blog
    restore_point: "{{ claimed.restore_point.id }}"
    claim: "{{ claimed.claim }}"

- name: Release the claim
  cairncms.ops.cairn_repository_claim:
    repository: {type: local, path: /var/backups/cairn}
    instance: blog
    state: absent
    claim: "{{ claimed.claim }}"
'''

RETURN = r'''
claim:
  description: The claim id (null in check mode and for O(state=absent)).
  returned: always
  type: str
  sample: 20261122T030000-9f3a1c2b
restore_point:
  description: The manifest of the claimed restore point (its layout is docs/restore-point-format.md; read RV(summary)
    rather than its parts).
  returned: when O(state=present)
  type: dict
summary:
  description:
    - What the restore point holds, whatever its manifest format - as M(cairncms.ops.cairn_backup_info) lists it
      (C(format_version), C(vendor), C(migration_level), C(parts), C(secrets_captured), C(schema_captured),
      C(config_captured), C(size_bytes), C(database_bytes), ...).
  returned: when O(state=present)
  type: dict
failed_since:
  description:
    - Error logs of backups that failed after the claimed restore point was made (C(id), C(failed_at), C(error)),
      oldest first; a restore from a repository whose latest backup failed says so.
  returned: when O(state=present)
  type: list
  elements: dict
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.cairncms.ops.plugins.module_utils._args import load_repository, repository_spec
from ansible_collections.cairncms.ops.plugins.module_utils._common import CairnError, run
from ansible_collections.cairncms.ops.plugins.module_utils._manifest import summary


def action(module):
    params = module.params
    repository = load_repository(params, keys=False)  # manifests and claims only: nothing to decrypt
    instance = params['instance']
    if params['state'] == 'absent':
        if not params['claim']:
            raise CairnError('state=absent needs the claim to release')
        if not module.check_mode:
            repository.release_claim(instance, params['claim'])
        return {'changed': False, 'claim': None}
    warnings = []
    manifest = repository.resolve(instance, params['restore_point'], warnings)
    claim = None
    if not module.check_mode:
        claim = repository.claim(instance, [manifest['id']], params['purpose'], wait=params['lock_wait'],
                                 stale_after=params['lock_stale_after'])
    failed, later = repository.failed_since(instance, manifest['id'])
    return {'changed': False, 'claim': claim, 'restore_point': manifest, 'summary': summary(manifest),
            'failed_since': failed, 'warnings': warnings + later}


def main():
    spec = repository_spec(point=False)
    spec.update({
        'state': {'type': 'str', 'choices': ['present', 'absent'], 'default': 'present'},
        'restore_point': {'type': 'str', 'default': 'latest'},
        'claim': {'type': 'str'},
        'purpose': {'type': 'str', 'default': 'restore'},
        'lock_wait': {'type': 'int', 'default': 0},
        'lock_stale_after': {'type': 'int', 'default': 900},
    })
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True,
                           required_if=[('state', 'absent', ['claim'])])
    run(module, action)


if __name__ == '__main__':
    main()
