#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: cairn_secret_restore
short_description: Write a CairnCMS instance's .env from the secrets bundle of a restore point
version_added: 0.1.0
description:
  - Decrypts the secrets bundle of a restore point (checking it before anything is written) and writes the
    target's C(.env) (mode 0600) from it, with O(env_overrides) and O(env_secret_overrides) applied for the
    new home (for example C(PUBLIC_URL), C(PORT), C(DB_FILENAME), C(STORAGE_LOCAL_ROOT)).
  - C(KEY) and C(SECRET) are kept (so existing sessions stay valid) unless named in O(rotate).
  - An existing C(.env) that differs is left alone, with a warning, unless O(replace=true).
  - With O(restore_files=true), the files the bundle holds (C(*_FILE) targets, TLS material) are written back
    to their original paths, but only inside the target's instance directory (O(instance_dir), or the directory
    of O(env_file)) and the paths listed in O(restore_file_paths). The restore point is untrusted input, so a
    path anywhere else refuses the restore of the files before any is written. They are written without
    following a symlink, with their captured permission bits but never setuid, setgid or sticky, and owned like
    the file they replace (or like the directory they are confined to).
author:
  - cairncms.ops maintainers (!UNKNOWN)
extends_documentation_fragment:
  - cairncms.ops.instance
  - cairncms.ops.instance.REPOSITORY
  - cairncms.ops.instance.CLAIM
options:
  env_file:
    description:
      - The C(.env) to write (it need not exist).
    type: path
    required: true
  restore_point:
    description:
      - Id of the restore point, or V(latest).
    type: str
    default: latest
  replace:
    description:
      - Overwrite an existing C(.env) (and files) that differ.
    type: bool
    default: false
  rotate:
    description:
      - Variables to give new values instead of the captured ones (C(KEY) gets a new UUID, C(SECRET) a new
        random value; rotating C(SECRET) ends every session).
    type: list
    elements: str
    choices: [KEY, SECRET]
    default: []
  restore_files:
    description:
      - Also write the captured files back to their original paths.
    type: bool
    default: false
  restore_file_paths:
    description:
      - With O(restore_files), further absolute paths (files, or directories for everything below them) where the
        captured files may be written, beside the instance directory; for example C(/etc/ssl/cms).
    type: list
    elements: path
    default: []
  rotate_once:
    description:
      - With O(rotate), give the rotated variables new values only where the existing C(.env) has none; a C(.env)
        written before keeps its own, so writing it again changes nothing. A clone keeps its C(KEY) and C(SECRET)
        across refreshes this way.
    type: bool
    default: false
  refuse_shared:
    description:
      - Refuse, writing nothing, a configuration whose database or a storage location is that of the source
        instance as captured in the restore point (SQLite files, local directories and database servers on
        loopback only when the restore point was made on this host; buckets and named database hosts always).
        For copies of an instance, which are restored with replace.
    type: bool
    default: false
notes:
  - O(instance) names the instance whose restore points are used (the source).
requirements:
  - pyrage >= 1.2.0
attributes:
  check_mode:
    support: full
    description: Decrypts and returns what would be written.
  diff_mode:
    support: full
    description:
      - The change of the C(.env) (also in check mode), with the value of every secret masked - C(KEY), C(SECRET),
        passwords, tokens, storage keys, what the restore point's capture classed as secret and the names in
        O(env_secret_overrides); a secret whose value changes shows as C(<secret, changed>), never its value.
      - Files written back with O(restore_files) are listed in RV(files), not diffed.
'''

EXAMPLES = r'''
- name: Give the clone the configuration of blog, at its own address and paths
  cairncms.ops.cairn_secret_restore:
    env_file: /srv/clone/.env
    repository: {type: local, path: /var/backups/cairn}
    instance: blog
    encryption_identity_file: /root/.config/cairn/backup-key.txt
    env_overrides:
      PUBLIC_URL: https://clone.example.com
      DB_FILENAME: /srv/clone/data.db
      STORAGE_LOCAL_ROOT: /srv/clone/uploads

- name: The same with the key handed over as text (a vault, an AWX credential), showing the change with --diff
  cairncms.ops.cairn_secret_restore:
    env_file: /srv/clone/.env
    repository: {type: local, path: /var/backups/cairn}
    instance: blog
    encryption_identity: "{{ vault_backup_key }}"
    replace: true
'''

RETURN = r'''
path:
  description: The .env written (or left alone).
  returned: always
  type: str
overridden:
  description: Names of the variables set from the overrides.
  returned: always
  type: list
  elements: str
rotated:
  description: Names of the variables given new values (with O(rotate_once), those the C(.env) had none of).
  returned: always
  type: list
  elements: str
files:
  description: Files written back.
  returned: always
  type: list
  elements: str
kept:
  description: True when an existing, different .env was left alone (without O(replace)).
  returned: always
  type: bool
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.cairncms.ops.plugins.module_utils import _secrets
from ansible_collections.cairncms.ops.plugins.module_utils._args import instance_spec, load_repository, repository_spec
from ansible_collections.cairncms.ops.plugins.module_utils._common import run
from ansible_collections.cairncms.ops.plugins.module_utils._manifest import check


def action(module):
    params = module.params
    repository = load_repository(params)
    manifest = check(repository.resolve(params['instance'], params['restore_point']))
    overrides = dict(params['env_overrides'], **params['env_secret_overrides'])
    result = _secrets.restore(repository, params['instance'], manifest, params['env_file'], overrides,
                              rotate=params['rotate'], replace=params['replace'],
                              restore_files=params['restore_files'], check_mode=module.check_mode,
                              rotate_once=params['rotate_once'], refuse_shared=params['refuse_shared'],
                              instance_dir=params['instance_dir'], allowed=params['restore_file_paths'],
                              diff=module._diff, secret_names=params['env_secret_overrides'])
    result['restore_point'] = manifest['id']
    return result


def main():
    spec = dict(instance_spec(), **repository_spec())
    spec.update({
        'env_file': {'type': 'path', 'required': True},
        'replace': {'type': 'bool', 'default': False},
        'rotate': {'type': 'list', 'elements': 'str', 'choices': ['KEY', 'SECRET'], 'default': []},
        'restore_files': {'type': 'bool', 'default': False},
        'restore_file_paths': {'type': 'list', 'elements': 'path', 'default': []},
        'rotate_once': {'type': 'bool', 'default': False},
        'refuse_shared': {'type': 'bool', 'default': False},
    })
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True)
    run(module, action)


if __name__ == '__main__':
    main()
