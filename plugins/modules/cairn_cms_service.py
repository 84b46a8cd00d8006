#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: cairn_cms_service
short_description: Stop, start or check the CairnCMS service of a host
version_added: 0.2.0
description:
  - Stops, starts or restarts the CairnCMS of a host through what runs it (O(service), the inventory's
    C(cairn_cms_service)), a C(systemd) unit, a Docker C(compose) service or start and stop C(command)s of your own,
    and says whether it ran before and runs now. A restore stops the CMS with it, restores, and starts it again.
  - With O(state=stopped), when the CMS runs (its service says so, or its health URL answers at all), runs the
    stop action and waits until it is down, that is both - C(<url>/server/health) gets no HTTP answer (refused or
    timed out; any answer of the CMS, a 503 too, means it is up) and the service reports nothing of it left (no
    process in the unit's cgroup, no running container, the pid of the pid file gone). Fails after
    C(stop_timeout) seconds saying what is still up.
  - With O(state=started), when the CMS does not run, runs the start action and waits until
    C(GET <url>/server/health) answers status C(ok) or C(warn) (the CMS's 503 with status C(error) is not healthy).
    Fails after C(start_timeout) seconds with the last answer seen (and the end of the start command's output).
  - O(state=restarted) stops, then starts. O(state=checked) only reports.
  - The spec's keys, an example of each kind and how "down" is checked are in docs/cms-service.md of the
    collection.
author:
  - cairncms.ops maintainers (!UNKNOWN)
options:
  service:
    description:
      - The service spec, a mapping with C(kind) (V(systemd), V(compose) or V(command)) and that kind's keys,
        plus C(url), C(stop_timeout) (seconds, default 60), C(start_timeout) (seconds, default 180) and
        C(validate_certs) (default true).
      - V(systemd) - C(unit) (required), C(scope) (V(system) or V(user)).
      - V(compose) - C(project_dir) and C(service) (required), C(files), C(project_name), C(command) (default
        C([docker, compose])).
      - V(command) - C(start) and C(stop) (required, lists), C(status) (a list; exit 0 while the CMS runs),
        C(chdir), C(pid_file), C(environment). The commands run without a shell, with only C(PATH), C(HOME), the
        locale, C(TZ) and C(environment) in their environment. C(environment) is not the place for secrets; the
        values of variables named like one are masked anyway.
      - An unknown kind or key, or a missing required key, fails the task naming it and the valid ones.
    type: dict
    required: true
  url:
    description:
      - Base URL of the CMS for its health, used when O(service) has no C(url), for example
        V(http://127.0.0.1:8055). Best the address the CMS itself listens on; a reverse proxy's C(502) and C(504)
        count as no answer.
      - Without either, the instance's C(PUBLIC_URL), from O(env_file) with the overrides.
    type: str
  state:
    description:
      - V(stopped), V(started), V(restarted), or V(checked) to report only.
    type: str
    choices: [stopped, started, restarted, checked]
    default: checked
extends_documentation_fragment:
  - cairncms.ops.instance
attributes:
  check_mode:
    support: full
    description: Runs only the read-only probes (health, status) and reports whether it would stop or start the CMS.
  diff_mode:
    support: none
    description: Nothing to diff.
'''

EXAMPLES = r'''
- name: Stop the CMS and check that it is down
  cairncms.ops.cairn_cms_service:
    service:
      kind: systemd
      unit: cairncms.service
      url: http://127.0.0.1:8055
    state: stopped
  register: cms_stopped

- name: Start it again and wait until it is healthy
  cairncms.ops.cairn_cms_service:
    service:
      kind: compose
      project_dir: /opt/cairncms
      service: cms
      url: http://127.0.0.1:8055
    state: started

- name: Restart a CMS run by commands of its own
  cairncms.ops.cairn_cms_service:
    service:
      kind: command
      start: [/opt/cairncms/bin/cmsctl, start]
      stop: [/opt/cairncms/bin/cmsctl, stop]
      status: [/opt/cairncms/bin/cmsctl, status]
      pid_file: /run/cairncms/cms.pid
      stop_timeout: 30
    url: http://127.0.0.1:8055
    state: restarted
'''

RETURN = r'''
kind:
  description: The kind of service the spec names.
  returned: always
  type: str
  sample: systemd
was_running:
  description: Whether the CMS ran before this task (its service said so, or its health URL answered at all).
  returned: always
  type: bool
running:
  description: Whether the CMS runs after this task; in check mode, whether it would.
  returned: always
  type: bool
health:
  description:
    - The status in the last answer of C(<url>/server/health) (C(ok), C(warn), C(error)), V(null) without one.
    - After a stop V(null); in check mode the answer seen now.
  returned: always
  type: str
  sample: ok
stop_s:
  description: Seconds from the stop action until the CMS was down, V(null) when it was not stopped.
  returned: always
  type: float
start_s:
  description:
    - Seconds from the start action (or from finding it up but not yet healthy) until it was healthy, V(null) when
      it was healthy at once or was not started.
  returned: always
  type: float
'''

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.cairncms.ops.plugins.module_utils._args import instance_spec, load_config
from ansible_collections.cairncms.ops.plugins.module_utils._cms import service as cms_service
from ansible_collections.cairncms.ops.plugins.module_utils._common import run
from ansible_collections.cairncms.ops.plugins.module_utils._secrets import is_secret


def action(module):
    params = module.params
    environment = (params['service'] or {}).get('environment')
    if isinstance(environment, dict) and hasattr(module, 'no_log_values'):  # masked in the result, invocation too
        module.no_log_values.update(str(value) for name, value in environment.items()
                                    if is_secret(str(name)) and value not in (None, ''))
    url = params['url']
    if not url and not (params['service'] or {}).get('url') and params['env_file'] and os.path.exists(params['env_file']):
        url = load_config(params).get('PUBLIC_URL') or None
    service = cms_service.load(params['service'], url=url)
    return cms_service.ensure(service, params['state'], check_mode=module.check_mode)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            instance_spec(),
            service={'type': 'dict', 'required': True},
            url={'type': 'str'},
            state={'type': 'str', 'choices': ['stopped', 'started', 'restarted', 'checked'], 'default': 'checked'},
        ),
        supports_check_mode=True)
    run(module, action)


if __name__ == '__main__':
    main()
