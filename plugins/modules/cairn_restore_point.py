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
    repository. A run that is interrupted never becomes visible; the next run removes its staging data.
  - One run at a time per instance - V(staged) takes the instance lock (waiting up to O(lock_wait) seconds)
    and V(complete) or V(failed) releases it; a lock left by a run silent for O(lock_stale_after) seconds is
    taken over.
  - V(absent) deletes a restore point (and the file bytes no other restore point uses); it refuses the
    last one unless O(force=true), and one that a restore, clone or drill is reading (see
    M(cairncms.ops.cairn_repository_claim)).
  - With O(signing_key), V(complete) also signs the manifest (ed25519) and writes the signature beside it
    (C(manifest.sig)) before the restore point becomes visible; restores that list the key in C(trusted_signers)
    accept only restore points it signed.
author:
  - cairncms.ops maintainers (!UNKNOWN)
requirements:
  - cryptography >= 3.1 (only to sign, with O(signing_key))
extends_documentation_fragment:
  - cairncms.ops.instance
  - cairncms.ops.instance.REPOSITORY
options:
  state:
    description:
      - V(staged) begins a new restore point and returns its id.
      - V(complete) writes the manifest of a staged restore point and makes it visible.
      - V(failed) records the error of a staged run and removes its data.
      - V(absent) deletes a complete restore point.
    type: str
    choices: [staged, complete, failed, absent]
    default: staged
  restore_point:
    description:
      - Id of the staged restore point; required with V(complete), V(failed) and V(absent).
    type: str
  force:
    description:
      - With O(state=absent), delete even the last restore point of the instance.
    type: bool
    default: false
  lock_wait:
    description:
      - Seconds to wait for another run of the same instance to finish before failing.
    type: int
    default: 0
  lock_stale_after:
    description:
      - Seconds of silence after which another run's lock counts as left by a dead run and is taken over.
      - Runs keep their lock fresh while they work, so this can be much shorter than the longest backup.
    type: int
    default: 900
  signing_key:
    description:
      - With O(state=complete), an ed25519 private key file (OpenSSH or PEM, unencrypted; C(ssh-keygen -t ed25519))
        to sign the manifest with.
    type: path
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

- name: Delete an old restore point
  cairncms.ops.cairn_restore_point:
    repository: {type: local, path: /var/backups/cairn}
    instance: blog
    restore_point: 20261121T101500.042Z-1a2b3c
    state: absent

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
signed_by:
  description: The public key that signed the manifest (C(ssh-ed25519 AAAA...)), for O(state=complete) with O(signing_key).
  returned: when O(state=complete) and O(signing_key) is given
  type: str
error_log:
  description: Where the error log of a failed run was kept, for O(state=failed).
  returned: when O(state=failed)
  type: str
interrupted_runs:
  description: Staging areas of earlier runs that died, cleaned by O(state=staged) (error logs kept).
  returned: when O(state=staged)
  type: list
  elements: str
bytes_freed:
  description: File bytes no longer used by any restore point, removed with O(state=absent).
  returned: when O(state=absent) and changed
  type: int
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.cairncms.ops.plugins.module_utils._args import (
    instance_spec, load_config, load_repository, repository_spec)
from ansible_collections.cairncms.ops.plugins.module_utils import _lifecycle, _signing
from ansible_collections.cairncms.ops.plugins.module_utils._common import check_name, run, utc_now
from ansible_collections.cairncms.ops.plugins.module_utils._manifest import build
from ansible_collections.cairncms.ops.plugins.module_utils._repository._base import new_point_id


def action(module):
    params = module.params
    repository = load_repository(params)
    instance, state, point = params['instance'], params['state'], params['restore_point']
    locking = {'stale_after': params['lock_stale_after'], 'wait': params['lock_wait']}
    if state == 'staged':
        started = utc_now()
        if module.check_mode:
            return {'changed': True, 'restore_point': new_point_id(started)}
        point, cleaned = repository.begin(instance, started, **locking)
        return {'changed': True, 'restore_point': point, 'interrupted_runs': cleaned}
    check_name('restore point id', point)
    if state == 'absent':
        result = _lifecycle.delete(repository, instance, point, force=params['force'],
                                   check_mode=module.check_mode, **locking)
        result['restore_point'] = point
        return result
    if state == 'failed':
        if module.check_mode:
            return {'changed': True, 'restore_point': point}
        return {'changed': True, 'restore_point': point,
                'error_log': repository.fail(instance, point, params['error'])}
    key = _signing.load_signing_key(params['signing_key']) if params['signing_key'] else None
    if module.check_mode:
        return {'changed': True, 'restore_point': point}
    parts = repository.read_parts(instance, point)
    facts = load_config(params)
    manifest = build(parts['run'], parts, {'key': facts.key, 'public_url': facts.public_url,
                                           'instance_dir': facts.base_dir},
                     lambda name: repository.staged_artifact_stat(instance, point, name))
    result = {'changed': True, 'restore_point': point, 'manifest': manifest}
    signature = None
    if key is not None:
        record = _signing.sign(manifest, key)
        signature, result['signed_by'] = _signing.encode(record), record['public_key']
    repository.finalize(instance, point, manifest, signature)
    return result


def main():
    spec = dict(instance_spec(), **repository_spec(point=False))
    spec.update({
        'state': {'type': 'str', 'choices': ['staged', 'complete', 'failed', 'absent'], 'default': 'staged'},
        'restore_point': {'type': 'str'},
        'error': {'type': 'dict', 'default': {}},
        'signing_key': {'type': 'path'},
        'force': {'type': 'bool', 'default': False},
        'lock_wait': {'type': 'int', 'default': 0},
        'lock_stale_after': {'type': 'int', 'default': 900},
    })
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True,
                           required_if=[('state', 'complete', ['restore_point']),
                                        ('state', 'failed', ['restore_point']),
                                        ('state', 'absent', ['restore_point'])])
    run(module, action)


if __name__ == '__main__':
    main()
