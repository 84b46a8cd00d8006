#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: cairn_cms_process
short_description: Start or stop a CairnCMS process in the background, for a drill or a clone
version_added: 0.2.0
description:
  - With O(state=started), starts O(command) in O(chdir) in its own session, with its output in O(log_file), and
    waits until C(GET <url>/server/health) reports C(ok) or C(warn). A process already running from O(pid_file)
    is left alone (V(changed=false)).
  - The process reads its configuration from O(env_file) (C(CONFIG_PATH)); its environment is otherwise only
    C(PATH), C(HOME), the locale, C(TZ), C(TMPDIR) and O(environment). Nothing of the configuration is on its
    command line.
  - When it exits early or does not become healthy within O(timeout) seconds, its process group is stopped and
    the task fails with the end of its log, secret values of O(env_file) masked.
  - With O(state=stopped), stops the process group of O(pid_file) (SIGTERM, SIGKILL after O(stop_timeout)).
    The pid file records the process's kernel start time, so a process that reuses the pid is never signalled.
author:
  - cairncms.ops maintainers (!UNKNOWN)
options:
  state:
    description:
      - V(started) or V(stopped).
    type: str
    choices: [started, stopped]
    default: started
  command:
    description:
      - The command that starts the CMS in the foreground, as a list, for example
        C([node, /opt/cairncms/node_modules/@cairncms/api/cli.js, start]).
      - Required with O(state=started).
    type: list
    elements: str
  chdir:
    description:
      - Directory the CMS runs in (relative paths of its configuration resolve against it).
    type: path
    required: true
  env_file:
    description:
      - The C(.env) of the CMS. Defaults to C(.env) in O(chdir).
    type: path
  url:
    description:
      - Base URL the CMS serves, for the health check. Required with O(state=started).
    type: str
  pid_file:
    description:
      - Where the pid is kept. Defaults to C(.cairn-cms.pid) in O(chdir).
    type: path
  log_file:
    description:
      - The CMS's output (appended, mode 0600). Defaults to C(cms.log) in O(chdir).
    type: path
  environment:
    description:
      - More variables for the process, for example C(NODE_OPTIONS). Not for secrets; those belong in O(env_file).
    type: dict
    default: {}
  timeout:
    description:
      - Seconds to wait for the CMS to become healthy.
    type: int
    default: 180
  stop_timeout:
    description:
      - Seconds to wait after SIGTERM before SIGKILL.
    type: int
    default: 15
  validate_certs:
    description:
      - Verify TLS certificates of an C(https) O(url).
    type: bool
    default: true
attributes:
  check_mode:
    support: full
    description: Reports whether the process would be started or stopped.
  diff_mode:
    support: none
    description: Nothing to diff.
'''

EXAMPLES = r'''
- name: Start the sandbox CMS
  cairncms.ops.cairn_cms_process:
    command: [node, /opt/cairncms/node_modules/@cairncms/api/cli.js, start]
    chdir: /var/tmp/cairn-drill/blog
    url: http://127.0.0.1:40213
  register: drill_cms

- name: Stop it
  cairncms.ops.cairn_cms_process:
    chdir: /var/tmp/cairn-drill/blog
    state: stopped
'''

RETURN = r'''
pid:
  description: Pid of the CMS process (the leader of its process group).
  returned: state=started
  type: int
startup_s:
  description: Seconds from start to the first healthy answer (V(0) when it was already running).
  returned: state=started
  type: float
log_file:
  description: The CMS's log.
  returned: always
  type: str
'''

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.cairncms.ops.plugins.module_utils import _service
from ansible_collections.cairncms.ops.plugins.module_utils._common import run


def action(module):
    params = module.params
    chdir = params['chdir']
    pid_file = params['pid_file'] or os.path.join(chdir, _service.PID_FILE)
    log_file = params['log_file'] or os.path.join(chdir, 'cms.log')
    result = {'log_file': log_file}
    if params['state'] == 'stopped':
        if module.check_mode:
            return dict(result, changed=_service.running(pid_file) is not None)
        return dict(result, changed=_service.stop(pid_file, timeout=params['stop_timeout']))
    if module.check_mode:
        pid = _service.running(pid_file)
        return dict(result, changed=pid is None, pid=pid, startup_s=0.0)
    changed, facts = _service.start(params['command'], chdir, params['url'],
                                    params['env_file'] or os.path.join(chdir, '.env'), pid_file, log_file,
                                    environment=params['environment'], timeout=params['timeout'],
                                    validate_certs=params['validate_certs'])
    return dict(result, changed=changed, **facts)


def main():
    module = AnsibleModule(
        argument_spec={
            'state': {'type': 'str', 'choices': ['started', 'stopped'], 'default': 'started'},
            'command': {'type': 'list', 'elements': 'str'},
            'chdir': {'type': 'path', 'required': True},
            'env_file': {'type': 'path'},
            'url': {'type': 'str'},
            'pid_file': {'type': 'path'},
            'log_file': {'type': 'path'},
            'environment': {'type': 'dict', 'default': {}},
            'timeout': {'type': 'int', 'default': 180},
            'stop_timeout': {'type': 'int', 'default': 15},
            'validate_certs': {'type': 'bool', 'default': True},
        },
        required_if=[('state', 'started', ['command', 'url'])],
        supports_check_mode=True)
    run(module, action)


if __name__ == '__main__':
    main()
