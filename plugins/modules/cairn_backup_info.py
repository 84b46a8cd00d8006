#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: cairn_backup_info
short_description: List the restore points of an instance, or resolve one
version_added: 0.1.0
description:
  - Lists the complete restore points of an instance in a repository, oldest first, and the failed runs
    whose error logs are kept.
  - A restore point whose manifest cannot be used (damaged, of the wrong shape, or - with O(trusted_signers) -
    not signed by a trusted key) is listed in RV(unreadable_points) with the reason, and reported as a problem;
    the others are listed as usual.
  - With O(restore_point), also resolves it (an id or V(latest)) and returns its manifest; V(latest) is the newest
    usable restore point (newer unreadable ones are passed over with a warning).
author:
  - cairncms.ops maintainers (!UNKNOWN)
extends_documentation_fragment:
  - cairncms.ops.instance.REPOSITORY
options:
  restore_point:
    description:
      - A restore point id or V(latest) to resolve; fails when it does not exist.
    type: str
  max_point_age:
    description:
      - Report a problem when the newest restore point is older than this many seconds; V(0) for no limit.
    type: int
    default: 0
  max_drill_age:
    description:
      - Report a problem when there was no restore drill in this many seconds; V(0) for no limit.
    type: int
    default: 0
  drill_history:
    description:
      - How many of the newest drill records to return in RV(drills), for a history of the RTO and RPO;
        V(0) (the default) for none.
      - A damaged drill record is left out of RV(drills) with a warning.
    type: int
    default: 0
attributes:
  check_mode:
    support: full
    description: Reads only.
  diff_mode:
    support: none
    description: Nothing to diff.
'''

EXAMPLES = r'''
- name: List restore points of blog
  cairncms.ops.cairn_backup_info:
    repository: {type: local, path: /var/backups/cairn}
    instance: blog

- name: The newest 30 restore drills of blog, for a chart of its RTO and RPO
  cairncms.ops.cairn_backup_info:
    repository: {type: local, path: /var/backups/cairn}
    instance: blog
    drill_history: 30
  register: blog_history

- name: Resolve the newest restore point
  cairncms.ops.cairn_backup_info:
    repository: {type: local, path: /var/backups/cairn}
    instance: blog
    restore_point: latest
  register: newest
'''

RETURN = r'''
restore_points:
  description: Summaries of the complete restore points, oldest first.
  returned: success
  type: list
  elements: dict
  sample: [{id: 20261121T101500.042Z-1a2b3c, started_at: '2026-11-21T10:15:00.042311Z', vendor: sqlite,
            migration_level: 20230401A, size_bytes: 48213, files: 12, encryption: none,
            verified_at: '2026-11-22T03:00:01.000000Z', verified_ok: true}]
lock:
  description: The run holding the instance (C(run), C(host), C(pid), C(since), C(idle_s)), or null.
  returned: success
  type: dict
failed_runs:
  description: Ids of failed runs whose error log is kept in the repository, oldest first.
  returned: success
  type: list
  elements: str
last_failed_run:
  description: The error log of the newest failed run (C(id), C(failed_at), C(error) with C(task) and C(msg)), or null.
  returned: success
  type: dict
  sample: {id: 20261122T020000.042Z-1a2b3c, failed_at: '2026-11-22T02:00:09.000000Z',
           error: {task: Dump the database, msg: the database blog does not exist}}
unreadable_points:
  description: Restore points whose manifest cannot be used, each with C(id) and C(problem).
  returned: success
  type: list
  elements: dict
last_drill:
  description:
    - The record of the newest restore drill (see M(cairncms.ops.cairn_drill_record)), or null; C(ok), C(rto_s),
      C(rpo_s), C(restore_point), C(started_at), C(problems) and the checks.
  returned: success
  type: dict
  sample: {id: 20261122T030000.120Z, restore_point: 20261122T020000.042Z-1a2b3c, ok: true, rto_s: 48.2, rpo_s: 3600.1}
drills:
  description:
    - The newest O(drill_history) drill records (see M(cairncms.ops.cairn_drill_record)), oldest first - each with
      C(id), C(started_at), C(ended_at), C(ok), C(rto_s), C(rpo_s), C(restore_point), C(problems) and C(checks)
      (C(name), C(ok), C(detail)).
  returned: when O(drill_history) is over 0
  type: list
  elements: dict
  sample: [{id: 20261121T030000.120Z-4f2a9c, started_at: '2026-11-21T03:00:00.120311Z', ok: true, rto_s: 48.2,
            rpo_s: 3600.1, restore_point: 20261121T020000.042Z-1a2b3c, problems: [],
            checks: [{name: http login, ok: true, detail: HTTP 200}]}]
status:
  description:
    - What watching a fleet needs of the instance - C(restore_points), C(newest_point), C(newest_point_age_s),
      C(newest_point_verified_ok), C(secrets_captured), C(last_drill), C(last_drill_ok), C(last_drill_age_s),
      C(last_drill_rto_s), C(last_drill_rpo_s), C(failed_runs) (a count), C(last_backup_failed) (the newest run
      failed after the newest restore point), C(unreadable_points) (a count), C(locked).
  returned: success
  type: dict
  sample: {restore_points: 14, newest_point: 20261122T020000.042Z-1a2b3c, newest_point_age_s: 3600.2,
           newest_point_verified_ok: true, last_drill_ok: true, last_drill_age_s: 86400.0, failed_runs: 0, locked: false}
problems:
  description:
    - What is wrong, in words - no restore point, the newest older than O(max_point_age), the latest backup failed
      after the newest restore point, restore points that cannot be read, the newest one's last check failed,
      the last drill failed, no drill within O(max_drill_age). Reported, never a failure of the task.
  returned: success
  type: list
  elements: str
restore_point:
  description: The manifest of the resolved restore point.
  returned: when O(restore_point) is given
  type: dict
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.cairncms.ops.plugins.module_utils import _lifecycle
from ansible_collections.cairncms.ops.plugins.module_utils._args import load_repository, repository_spec
from ansible_collections.cairncms.ops.plugins.module_utils._common import CairnError, run
from ansible_collections.cairncms.ops.plugins.module_utils._manifest import summary


def _tolerant(what, read, problems):
    """``read()``, or None with a problem when the record it reads is damaged: one bad record never hides the
    rest of the report."""
    try:
        return read()
    except CairnError as exc:
        problems.append('%s: %s' % (what, exc.message))
        return None


def action(module):
    params = module.params
    if params['drill_history'] < 0:
        raise CairnError('drill_history is %d: give the number of drill records to return, or 0 for none'
                         % params['drill_history'])
    repository = load_repository(params)
    instance = params['instance']
    manifests, unreadable = repository.scan(instance)
    record_problems, points = [], []
    for manifest in manifests:
        entry = summary(manifest)
        last = _tolerant('check record of %s' % manifest['id'],
                         lambda: repository.last_check(instance, manifest['id']), record_problems)
        entry['verified_at'] = last.get('checked_at') if last else None
        entry['verified_ok'] = last.get('ok') if last else None
        points.append(entry)
    failed = repository.list_failed(instance)
    result = {'changed': False, 'restore_points': points, 'unreadable_points': unreadable, 'failed_runs': failed,
              'last_failed_run': repository.failed_run(instance, failed[-1]) if failed else None,
              'lock': repository.read_lock(instance),
              'last_drill': _tolerant('the newest drill record', lambda: repository.last_drill(instance),
                                      record_problems)}
    result['status'], result['problems'] = _lifecycle.status(
        points, result['last_drill'], failed, result['lock'], max_point_age=params['max_point_age'],
        max_drill_age=params['max_drill_age'], last_failed=result['last_failed_run'], unreadable=unreadable)
    result['problems'] += record_problems
    warnings = []
    if params['drill_history'] > 0:
        result['drills'] = repository.drills(instance, params['drill_history'], warnings)
    if params['restore_point']:
        result['restore_point'] = repository.resolve(instance, params['restore_point'], warnings)
    if warnings or params['restore_point']:
        result['warnings'] = warnings
    return result


def main():
    spec = repository_spec(point=False)
    spec['restore_point'] = {'type': 'str'}
    spec['max_point_age'] = {'type': 'int', 'default': 0}
    spec['max_drill_age'] = {'type': 'int', 'default': 0}
    spec['drill_history'] = {'type': 'int', 'default': 0}
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True)
    run(module, action)


if __name__ == '__main__':
    main()
