#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: cairn_drill_record
short_description: Record a restore drill with its measured RTO and RPO
version_added: 0.2.0
description:
  - Turns the outcome of a restore drill into one record - the restore point drilled, every check, the error
    that ended the drill if one did, the step durations, and the measured RTO and RPO - and keeps it in the
    repository as C(<instance>/drills/<id>.json) (M(cairncms.ops.cairn_backup_info) returns the newest as
    RV(cairncms.ops.cairn_backup_info#module:last_drill)), and in O(report_file) when given.
  - "RTO: from O(started_at) (the drill began) to O(ended_at) (the last check), that is the time a restore of this
    instance takes from nothing to a CMS that serves. RPO: from the restore point's start to O(started_at), that
    is how much would be lost if the instance were lost when the drill began."
  - The drill fails when it ended in an error, when any check failed or none ran, or when the RTO or RPO is over
    O(max_rto) or O(max_rpo). The record is written first, so failed drills are recorded too.
author:
  - cairncms.ops maintainers (!UNKNOWN)
extends_documentation_fragment:
  - cairncms.ops.instance.REPOSITORY
options:
  restore_point:
    description:
      - Id of the restore point that was drilled.
    type: str
    required: true
  started_at:
    description:
      - When the drill began, as returned by M(cairncms.ops.cairn_drill_sandbox) (C(YYYY-MM-DDTHH:MM:SS.ffffffZ)).
    type: str
    required: true
  ended_at:
    description:
      - When the last check ended, in the same form (for example the RV(cairncms.ops.cairn_restore_verify#module:checked_at)
        of the HTTP checks). Defaults to now.
    type: str
  checks:
    description:
      - The checks of the drill (C(name), C(ok), C(detail)), as returned by M(cairncms.ops.cairn_restore_verify).
    type: list
    elements: dict
    default: []
  error:
    description:
      - The error that ended the drill early, if one did.
    type: str
  steps:
    description:
      - Durations of the drill's steps in seconds, by name, kept in the record.
    type: dict
    default: {}
  disabled:
    description:
      - What was turned off in the restored copy (RV(cairncms.ops.cairn_db_restore#module:disabled)), kept in
        the record.
    type: dict
    default: {}
  max_rto:
    description:
      - Fail when the RTO is over this many seconds; V(0) for no limit.
    type: int
    default: 0
  max_rpo:
    description:
      - Fail when the RPO is over this many seconds; V(0) for no limit.
    type: int
    default: 0
  host:
    description:
      - Where the drill ran, for the record. Defaults to this host's name.
    type: str
  report_file:
    description:
      - Also write the record to this JSON file (mode 0600).
    type: path
  record:
    description:
      - Keep the record in the repository. Set V(false) for a repository the drill may only read.
    type: bool
    default: true
  fail_on_problems:
    description:
      - Fail the task when the drill failed.
    type: bool
    default: true
attributes:
  check_mode:
    support: full
    description: Computes the record and writes nothing.
  diff_mode:
    support: none
    description: Nothing to diff.
'''

EXAMPLES = r'''
- name: Record the drill
  cairncms.ops.cairn_drill_record:
    repository: {type: local, path: /var/backups/cairn}
    instance: blog
    restore_point: "{{ drill_sandbox.restore_point.id }}"
    started_at: "{{ drill_sandbox.started_at }}"
    ended_at: "{{ drill_http.checked_at }}"
    checks: "{{ drill_http.checks }}"
    max_rto: 1800
    max_rpo: 93600
'''

RETURN = r'''
drill:
  description: The drill record.
  returned: always
  type: dict
  sample: {id: 20261122T030000.120Z, instance: blog, restore_point: 20261122T020000.042Z-1a2b3c, ok: true,
           rto_s: 48.2, rpo_s: 3600.1, problems: [], failed_checks: [], checks: [], steps: {},
           disabled: {flows: 2, webhooks: 0}}
ok:
  description: Whether the drill passed.
  returned: always
  type: bool
rto_s:
  description: Measured recovery time in seconds.
  returned: always
  type: float
rpo_s:
  description: Age of the drilled restore point when the drill began, in seconds.
  returned: always
  type: float
'''

import socket

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.cairncms.ops.plugins.module_utils import _drill
from ansible_collections.cairncms.ops.plugins.module_utils._args import load_repository, repository_spec
from ansible_collections.cairncms.ops.plugins.module_utils._common import CairnError, run, write_json


def action(module):
    params = module.params
    repository = load_repository(params)
    manifest = repository.load_manifest(params['instance'], params['restore_point'])
    try:
        drill = _drill.record(manifest, params['started_at'], params['checks'], error=params['error'],
                              steps=params['steps'], disabled=params['disabled'], ended_at=params['ended_at'],
                              max_rto_s=params['max_rto'],
                              max_rpo_s=params['max_rpo'], host=params['host'] or socket.gethostname())
    except ValueError as exc:
        raise CairnError('started_at and ended_at must look like 2026-11-22T03:00:00.120000Z (%s)' % exc)
    if not module.check_mode:
        if params['record']:
            repository.record_drill(params['instance'], drill)
        if params['report_file']:
            write_json(params['report_file'], drill)
    result = {'changed': not module.check_mode and (params['record'] or bool(params['report_file'])),
              'drill': drill, 'ok': drill['ok'], 'rto_s': drill['rto_s'], 'rpo_s': drill['rpo_s']}
    if not drill['ok'] and params['fail_on_problems']:
        raise CairnError('the restore drill of %s (restore point %s) failed: %s'
                         % (params['instance'], manifest['id'], '; '.join(drill['problems'])), **result)
    return result


def main():
    spec = repository_spec(point=False)
    spec.update({
        'restore_point': {'type': 'str', 'required': True},
        'started_at': {'type': 'str', 'required': True},
        'ended_at': {'type': 'str'},
        'checks': {'type': 'list', 'elements': 'dict', 'default': []},
        'error': {'type': 'str'},
        'steps': {'type': 'dict', 'default': {}},
        'disabled': {'type': 'dict', 'default': {}},
        'max_rto': {'type': 'int', 'default': 0},
        'max_rpo': {'type': 'int', 'default': 0},
        'host': {'type': 'str'},
        'report_file': {'type': 'path'},
        'record': {'type': 'bool', 'default': True},
        'fail_on_problems': {'type': 'bool', 'default': True},
    })
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True)
    run(module, action)


if __name__ == '__main__':
    main()
