#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: cairn_restore_verify
short_description: Check a restore point, and an instance against it
version_added: 0.1.0
description:
  - V(repository) re-reads every artifact and file blob of the restore point and compares sha256 with
    the manifest and inventory.
  - V(database) opens the instance's database (C(PRAGMA integrity_check) for SQLite) and compares the
    migration level and the row count of every table with the manifest.
  - V(key) checks that the instance's C(KEY) equals the one recorded in the restore point (after the
    configuration was restored with M(cairncms.ops.cairn_secret_restore)).
  - V(files) checks that every C(directus_files) row has an object of its recorded size (C(filesize)) in its
    storage location (rows of a location that is not configured fail), and that every file of the inventory has
    the recorded sha256. Every location is listed once, local or object store. Objects that no row references
    (regenerable derivatives and health probes aside) are reported in RV(unreferenced); they are never deleted
    and are not a failure.
  - With O(http.url), checks the running instance over HTTP; see O(http). O(http.flow) and O(http.named_flow)
    write into that instance, so they are for a drill's sandbox.
  - Returns one entry per check and fails when any check fails.
author:
  - cairncms.ops maintainers (!UNKNOWN)
extends_documentation_fragment:
  - cairncms.ops.instance
  - cairncms.ops.instance.REPOSITORY
  - cairncms.ops.instance.CLAIM
options:
  restore_point:
    description:
      - Id of the restore point to check against, or V(latest).
    type: str
    default: latest
  checks:
    description:
      - Which groups of checks to run.
    type: list
    elements: str
    choices: [repository, database, files, key]
    default: [database, files]
  location_map:
    description:
      - The location map the instance was restored with (restore point location names to this instance's), so
        that the files of the inventory are looked for where the restore put them.
    type: dict
    default: {}
  http:
    description:
      - HTTP checks of the running instance; skipped without O(http.url).
    type: dict
    default: {}
    suboptions:
      url:
        description:
          - Base URL of the instance, for example C(http://127.0.0.1:8055). C(GET /server/health) must be ok.
        type: str
      email:
        description:
          - With O(http.password), log in with C(POST /auth/login), then run the checks that need a login (item
            counts, asset bytes, and those asked for with O(http.app), O(http.activity), O(http.flow) and
            O(http.named_flow)).
        type: str
      password:
        description:
          - Password of O(http.email).
        type: str
      collections:
        description:
          - Collections whose C(GET /items/<collection>) total count must equal the restore point's row count.
        type: list
        elements: str
        default: []
      assets:
        description:
          - How many files to fetch with C(GET /assets/<id>) and compare by sha256; V(0) for none.
        type: int
        default: 10
      app:
        description:
          - After the login, check that C(GET /admin) answers the admin app's page - C(text/html) with the
            C(<base href=".../admin/">) the CMS writes into it and the app's C(<div id="app">) mount point. An error
            status, a JSON answer or another page fails. Check named C(http admin app).
          - Not run, with a warning, when the instance's configuration (O(env_file)) sets C(SERVE_APP=false), as
            such an instance serves no app.
        type: bool
        default: false
      activity:
        description:
          - After the login, check that the activity log (C(GET /activity), action C(login) of the logged-in user,
            newest first) has a record of that login, made when it began or later (compared from its whole second).
            Check named C(http activity login).
        type: bool
        default: false
      flow:
        description:
          - After the login, create a throwaway webhook-triggered flow (synchronous, answering its last operation's
            data) with one C(transform) operation that answers the C(nonce) of the trigger's body, trigger it with
            C(POST /flows/trigger/<id>) and a random nonce, check the answer carries that nonce, and remove the flow.
            Check named C(http flow).
          - B(This writes into the instance checked) (a flow, its operation, activity records), so it is meant for a
            drill's sandbox, not for a live instance.
        type: bool
        default: false
      named_flow:
        description:
          - After the login, activate this flow of the instance (C(PATCH /flows/<id>) status C(active)), trigger it
            with O(http.named_flow.payload) and check its answer against O(http.named_flow.expect); its status is set
            back afterwards. It must be a synchronous webhook- (or manual-) triggered flow. Check named
            C(http named flow <id>).
          - B(This runs the flow in the instance checked), with whatever its operations do (mail, requests), so it is
            meant for a drill's sandbox, whose flows are otherwise off.
        type: dict
        suboptions:
          id:
            description:
              - The flow's id (a UUID).
            type: str
            required: true
          payload:
            description:
              - The trigger's JSON body (for a flow triggered with C(GET), its query string, plain values only).
            type: dict
            default: {}
          expect:
            description:
              - What the answer must hold. A dict - the answer is a JSON object holding every key of it, dict values
                matched the same way (the answer may hold more), any other value equal (C(true) is not C(1)). A
                string - the answer contains it (the value of a JSON string answer, else the answer's text).
            type: raw
            required: true
      timeout:
        description:
          - Seconds to wait for each request.
        type: int
        default: 30
      validate_certs:
        description:
          - Validate TLS certificates.
        type: bool
        default: true
attributes:
  check_mode:
    support: full
    description: Reads only; runs the same checks, but for O(http.flow) and O(http.named_flow), which write.
  diff_mode:
    support: none
    description: Nothing to diff.
'''

EXAMPLES = r'''
- name: Verify the restored instance against the restore point
  cairncms.ops.cairn_restore_verify:
    env_file: /srv/clone/.env
    repository: {type: local, path: /var/backups/cairn}
    instance: blog
    restore_point: latest

- name: Verify the repository copy and the running instance
  cairncms.ops.cairn_restore_verify:
    env_file: /srv/clone/.env
    repository: {type: local, path: /var/backups/cairn}
    instance: blog
    checks: [repository, database, files]
    http:
      url: http://127.0.0.1:8055
      email: admin@example.com
      password: "{{ vault_cms_admin_password }}"
      collections: [articles]

- name: Check a drill sandbox deeper - admin app, the login's activity record, flows
  cairncms.ops.cairn_restore_verify:
    env_file: /var/tmp/cairn-drill/blog/.env
    repository: {type: local, path: /var/backups/cairn}
    instance: blog
    checks: []
    http:
      url: http://127.0.0.1:18055
      email: admin@example.com
      password: "{{ vault_cms_admin_password }}"
      app: true
      activity: true
      flow: true
      named_flow:
        id: 6f1c9d2e-0000-4000-8000-00000000f10a
        payload: {order: 42}
        expect: {status: accepted}
'''

RETURN = r'''
restore_point:
  description: Id of the restore point checked against.
  returned: always
  type: str
checks:
  description: One entry per check, with C(name), C(ok) and C(detail).
  returned: always
  type: list
  elements: dict
  sample: [{name: row counts, ok: true, detail: 7 table(s) equal}]
failed_checks:
  description: Names of the checks that failed.
  returned: always
  type: list
  elements: str
checked_at:
  description: When the checks ended (UTC).
  returned: always
  type: str
  sample: '2026-11-22T03:00:48.301000Z'
duration_s:
  description: Seconds the checks took.
  returned: always
  type: float
  sample: 2.41
unreferenced:
  description:
    - Objects in the configured locations that no C(directus_files) row references, regenerable ones aside
      (reported, never deleted); C(examples) are C(location:filename_disk), C(locations) counts per location.
  returned: when V(files) ran with the database readable
  type: dict
  sample: {count: 1, bytes: 2048, examples: ["cloud:stray.bin"], locations: {cloud: 1}}
'''

import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.cairncms.ops.plugins.module_utils._args import (
    http_spec, instance_spec, load_config, load_repository, repository_spec)
from ansible_collections.cairncms.ops.plugins.module_utils._common import CairnError, iso, run, utc_now
from ansible_collections.cairncms.ops.plugins.module_utils._manifest import check
from ansible_collections.cairncms.ops.plugins.module_utils._verify import verify


def _serves_app(params, config):
    """Whether the instance serves its admin app: unless its configuration, when there is one, says SERVE_APP=false
    (CairnCMS's default is to serve it)."""
    if config is None:
        if not params.get('env_file'):
            return True
        try:
            config = load_config(params)
        except CairnError:
            return True  # the check itself says what it finds
    return config.get('SERVE_APP', True) is not False


def action(module):
    params = module.params
    started = time.monotonic()
    repository = load_repository(params)
    manifest = check(repository.resolve(params['instance'], params['restore_point']))
    config = load_config(params, repository, manifest) if set(params['checks']) - {'repository'} else None
    http = dict(params['http'])
    if module.check_mode:  # the flow checks write into the instance
        http.update(flow=False, named_flow=None)
    if http['app'] and not _serves_app(params, config):
        http['app'] = False
        module.warn('http admin app not checked: the configuration of the instance (%s) has SERVE_APP=false'
                    % params['env_file'])
    report = verify(config, repository, params['instance'], manifest, params['checks'], http,
                    location_map=params['location_map'])
    failed = [entry['name'] for entry in report.failed]
    result = {'changed': False, 'restore_point': manifest['id'], 'checks': report.checks, 'failed_checks': failed,
              'checked_at': iso(utc_now()), 'duration_s': round(time.monotonic() - started, 3)}
    if report.unreferenced is not None:
        result['unreferenced'] = report.unreferenced
    if failed:
        raise CairnError('%d of %d check(s) failed: %s' % (len(failed), len(report.checks), ', '.join(failed)),
                         **result)
    return result


def main():
    spec = dict(instance_spec(), **repository_spec())
    spec.update({
        'checks': {'type': 'list', 'elements': 'str', 'choices': ['repository', 'database', 'files', 'key'],
                   'default': ['database', 'files']},
        'location_map': {'type': 'dict', 'default': {}},
        'http': http_spec(),
    })
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True)
    run(module, action)


if __name__ == '__main__':
    main()
