#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: cairn_repository_prune
short_description: Apply a retention policy to the restore points of an instance
version_added: 0.1.0
description:
  - Decides which restore points stay, with the rules that keep each one, the way restic's C(forget) combines
    C(keep_last), C(keep_hourly), C(keep_daily), C(keep_weekly), C(keep_monthly), C(keep_yearly) and
    C(keep_within); a point is kept when any rule keeps it. C(min_keep) is a floor never pruned below, and the
    newest restore point is always kept.
  - Removes the others, then the file bytes no remaining restore point references, holding the instance lock
    so that no backup runs meanwhile.
  - Never removes a restore point that a restore, clone, drill, check or copy is reading (a live reader claim,
    see M(cairncms.ops.cairn_repository_claim)). It waits up to O(lock_wait) seconds for the readers, then keeps
    the point for a later prune and says so (RV(held), a warning). Claims silent for O(lock_stale_after) seconds
    count as left by dead runs.
  - A restore point whose manifest cannot be read is kept (its age is unknown) and reported in RV(unreadable);
    then no file bytes are removed at all, since those it references are unknown.
  - Refuses, changing nothing, when the latest backup of the instance failed after its newest restore point,
    unless O(force=true).
  - In check mode, returns the decisions without removing anything.
author:
  - cairncms.ops maintainers (!UNKNOWN)
extends_documentation_fragment:
  - cairncms.ops.instance.REPOSITORY
options:
  retention:
    description:
      - "The policy, for example C({keep_daily: 7, keep_weekly: 4, keep_monthly: 12, min_keep: 3})."
      - Counts are whole numbers, V(-1) meaning unlimited; C(keep_within) is a duration such as C(30d), C(2y6m),
        C(12h).
    type: dict
    required: true
  timezone:
    description:
      - IANA time zone in which hours, days, ISO weeks, months and years are counted.
    type: str
    default: UTC
  force:
    description:
      - Prune even when the latest backup failed.
    type: bool
    default: false
  lock_wait:
    description:
      - Seconds to wait for a run of the same instance to finish, and then for the readers of restore points to
        be removed.
    type: int
    default: 0
  lock_stale_after:
    description:
      - Seconds of silence after which another run's lock is taken over.
    type: int
    default: 900
attributes:
  check_mode:
    support: full
    description: Returns what would be removed and why each restore point is kept.
  diff_mode:
    support: none
    description: Nothing to diff.
'''

EXAMPLES = r'''
- name: Keep a week of dailies, a month of weeklies and a year of monthlies
  cairncms.ops.cairn_repository_prune:
    repository: {type: local, path: /var/backups/cairn}
    instance: blog
    retention: {keep_daily: 7, keep_weekly: 4, keep_monthly: 12, min_keep: 3}
    timezone: Europe/Berlin
'''

RETURN = r'''
decisions:
  description: Every restore point, newest first, with C(keep) and the C(reasons) (rules) that keep it.
  returned: success
  type: list
  elements: dict
  sample: [{id: 20261121T020000.000Z-1a2b3c, keep: true, reasons: [daily 1/7 (2026-11-21), newest]}]
removed:
  description: Ids of the restore points removed (or that would be, in check mode).
  returned: success
  type: list
  elements: str
kept:
  description: Ids of the restore points kept.
  returned: success
  type: list
  elements: str
held:
  description: Ids of restore points the policy would remove but that a live reader holds; kept for a later prune.
  returned: success
  type: list
  elements: str
unreadable:
  description: Restore points whose manifest cannot be read (C(id), C(problem)); kept.
  returned: success
  type: list
  elements: dict
garbage_collection:
  description: V(done), or why no file bytes were removed (C(skipped...)).
  returned: changed
  type: str
blobs_removed:
  description: File blobs no remaining restore point referenced, removed.
  returned: changed
  type: int
bytes_freed:
  description: Bytes of those blobs.
  returned: changed
  type: int
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.cairncms.ops.plugins.module_utils import _lifecycle
from ansible_collections.cairncms.ops.plugins.module_utils._args import load_repository, repository_spec
from ansible_collections.cairncms.ops.plugins.module_utils._common import run


def main():
    spec = repository_spec(point=False)
    spec.update({
        'retention': {'type': 'dict', 'required': True},
        'timezone': {'type': 'str', 'default': 'UTC'},
        'force': {'type': 'bool', 'default': False},
        'lock_wait': {'type': 'int', 'default': 0},
        'lock_stale_after': {'type': 'int', 'default': 900},
    })
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True)
    run(module, lambda m: _lifecycle.prune(
        load_repository(m.params), m.params['instance'], m.params['retention'], tz=m.params['timezone'],
        check_mode=m.check_mode, force=m.params['force'], stale_after=m.params['lock_stale_after'],
        wait=m.params['lock_wait']))


if __name__ == '__main__':
    main()
