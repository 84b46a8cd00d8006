#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: cairn_drill_sandbox
short_description: Make or remove the sandbox a restore drill restores into
version_added: 0.2.0
description:
  - With O(state=present), makes O(path) the home of a throwaway CairnCMS instance for a drill of a restore point,
    and writes its C(.env) (mode 0600) from the configuration captured in the restore point, with the drill's
    values over it.
  - "The drill's values: C(HOST), C(PORT) (a free port unless O(port) is given) and C(PUBLIC_URL) on O(host); for
    SQLite, C(DB_FILENAME) in the sandbox; every storage location as a local directory in the sandbox
    (C(STORAGE_<LOC>_DRIVER=local), C(STORAGE_<LOC>_ROOT)); an empty C(EXTENSIONS_PATH); and caches, rate
    limiters and messages in the sandbox's own memory (C(CACHE_ENABLED=false), C(CACHE_STORE=memory),
    C(RATE_LIMITER_ENABLED=false), C(RATE_LIMITER_GLOBAL_ENABLED=false), C(RATE_LIMITER_STORE=memory),
    C(MESSENGER_STORE=memory)), so the sandbox shares nothing with the live instance through Redis.
    O(env_overrides) and O(env_secret_overrides) win over all of them."
  - A restore point of a PostgreSQL or MySQL/MariaDB instance is drilled into a scratch database named in
    O(env_overrides) (C(DB_DATABASE), C(DB_HOST), ...); the drill replaces that database.
  - "The guard: the sandbox is refused, and removed again, when its database or any storage location is one of
    the instance as captured in the restore point, or of the live instance of O(live_env_file). A drill restores
    with replace, so it must only ever touch what it owns."
  - The sandbox carries a marker file C(.cairn-drill.json). A directory that holds files but no marker is never
    written to or removed; a sandbox left by an earlier drill is emptied first.
  - With O(state=absent), removes the sandbox (only one with the marker).
  - The restore point must hold the captured configuration (secrets are captured only when restore points are
    encrypted); a CMS cannot start without its C(KEY) and C(SECRET).
author:
  - cairncms.ops maintainers (!UNKNOWN)
extends_documentation_fragment:
  - cairncms.ops.instance.REPOSITORY
  - cairncms.ops.instance.CLAIM
options:
  path:
    description:
      - The sandbox directory (absolute); made with mode 0700.
    type: path
    required: true
  state:
    description:
      - V(present) makes the sandbox and writes its C(.env); V(absent) removes it.
    type: str
    choices: [present, absent]
    default: present
  restore_point:
    description:
      - Id of the restore point to drill, or V(latest).
    type: str
    default: latest
  host:
    description:
      - Address the sandbox CMS listens on. The default keeps it off the network.
    type: str
    default: 127.0.0.1
  port:
    description:
      - Port of the sandbox CMS; V(0) picks a free one.
    type: int
    default: 0
  env_overrides:
    description:
      - Variables of the sandbox C(.env) that win over the drill's own, for example a scratch database
        (C(DB_HOST), C(DB_PORT), C(DB_DATABASE), C(DB_USER)) or C(EXTENSIONS_PATH).
      - Secrets (C(DB_PASSWORD) and the like) are refused here and go in O(env_secret_overrides).
    type: dict
    default: {}
  env_secret_overrides:
    description:
      - Like O(env_overrides), for secret values (C(DB_PASSWORD) of the scratch database); never logged.
    type: dict
    default: {}
  live_env_file:
    description:
      - The C(.env) of the live instance on this host; the sandbox must not share its database or storage.
    type: path
notes:
  - O(instance) names the instance whose restore point is drilled.
requirements:
  - pyrage >= 1.2.0
attributes:
  check_mode:
    support: full
    description: Returns the plan (URL, port, variables) without writing anything.
  diff_mode:
    support: full
    description:
      - The sandbox C(.env) it writes (also in check mode), with the value of every secret masked - C(KEY), C(SECRET),
        passwords, tokens, storage keys, what the restore point's capture classed as secret and the names in
        O(env_secret_overrides); never a secret's value.
'''

EXAMPLES = r'''
- name: Make the sandbox for a drill of the newest restore point of blog
  cairncms.ops.cairn_drill_sandbox:
    path: /var/tmp/cairn-drill/blog
    repository: {type: local, path: /var/backups/cairn}
    instance: blog
    encryption_identity_file: /root/.config/cairn/backup-key.txt
    live_env_file: /srv/cairn/.env
  register: drill_sandbox

- name: Drill a PostgreSQL instance into a scratch database
  cairncms.ops.cairn_drill_sandbox:
    path: /var/tmp/cairn-drill/shop
    repository: {type: s3, bucket: cairn-backups, prefix: prod}
    instance: shop
    encryption_identity_file: /root/.config/cairn/backup-key.txt
    env_overrides: {DB_HOST: 127.0.0.1, DB_PORT: 5432, DB_DATABASE: shop_drill, DB_USER: drill}
    env_secret_overrides: {DB_PASSWORD: "{{ vault_drill_db_password }}"}

- name: Remove the sandbox
  cairncms.ops.cairn_drill_sandbox:
    path: /var/tmp/cairn-drill/blog
    state: absent
    repository: {type: local, path: /var/backups/cairn}
    instance: blog
'''

RETURN = r'''
sandbox:
  description: The sandbox directory.
  returned: always
  type: str
  sample: /var/tmp/cairn-drill/blog
env_file:
  description: The sandbox C(.env).
  returned: state=present
  type: str
  sample: /var/tmp/cairn-drill/blog/.env
url:
  description: Base URL the sandbox CMS will serve.
  returned: state=present
  type: str
  sample: http://127.0.0.1:40213
port:
  description: Port of the sandbox CMS.
  returned: state=present
  type: int
env_overrides:
  description: Names of the variables the drill set over the captured configuration.
  returned: state=present
  type: list
  elements: str
started_at:
  description: When the drill began (UTC); the drill's RTO is measured from here.
  returned: state=present
  type: str
  sample: '2026-11-22T03:00:00.120000Z'
restore_point:
  description: Id and start time of the restore point drilled.
  returned: state=present
  type: dict
  sample: {id: 20261122T020000.042Z-1a2b3c, started_at: '2026-11-22T02:00:00.042311Z'}
vendor:
  description: Database vendor of the restore point.
  returned: state=present
  type: str
  sample: sqlite
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.cairncms.ops.plugins.module_utils import _drill
from ansible_collections.cairncms.ops.plugins.module_utils._args import load_repository, repository_spec
from ansible_collections.cairncms.ops.plugins.module_utils._common import CairnError, run
from ansible_collections.cairncms.ops.plugins.module_utils._manifest import check


def action(module):
    params = module.params
    sandbox = params['path']
    if not sandbox.startswith('/'):
        raise CairnError('the drill sandbox path %s is not absolute; give cairn_drill_dir as an absolute path' % sandbox)
    if params['state'] == 'absent':
        return {'changed': _drill.remove(sandbox, check_mode=module.check_mode), 'sandbox': sandbox}
    repository = load_repository(params)
    manifest = check(repository.resolve(params['instance'], params['restore_point']))
    plan = _drill.prepare(repository, params['instance'], manifest, sandbox, host=params['host'],
                          port=params['port'], overrides=params['env_overrides'],
                          secret_overrides=params['env_secret_overrides'], live_env_file=params['live_env_file'],
                          check_mode=module.check_mode, diff=module._diff)
    return dict(plan, changed=True)


def main():
    spec = repository_spec()
    spec.update({
        'path': {'type': 'path', 'required': True},
        'state': {'type': 'str', 'choices': ['present', 'absent'], 'default': 'present'},
        'host': {'type': 'str', 'default': '127.0.0.1'},
        'port': {'type': 'int', 'default': 0},
        'env_overrides': {'type': 'dict', 'default': {}},
        'env_secret_overrides': {'type': 'dict', 'default': {}, 'no_log': True},
        'live_env_file': {'type': 'path'},
    })
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True)
    run(module, action)


if __name__ == '__main__':
    main()
