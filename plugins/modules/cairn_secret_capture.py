#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: cairn_secret_capture
short_description: Capture a CairnCMS instance's configuration and secrets into a staged restore point
version_added: 0.1.0
description:
  - Stores the instance's whole C(.env), the files its C(<NAME>_FILE) variables name, and the listed extra
    files (TLS certificates and keys, GCS key files) as one age-encrypted bundle (C(secrets.tar)) in a
    restore point begun by M(cairncms.ops.cairn_restore_point).
  - The manifest lists every variable name, whether it counts as a secret, and a keyed fingerprint of its
    value (HMAC-SHA256 under a key derived from the instance's C(SECRET)); never a value.
  - Without an encryption recipient nothing is stored, the task warns, and the manifest says the secrets
    were not captured (with O(encryption_required=true) the task fails instead).
author:
  - cairncms.ops maintainers (!UNKNOWN)
extends_documentation_fragment:
  - cairncms.ops.instance
  - cairncms.ops.instance.REPOSITORY
options:
  restore_point:
    description:
      - Id of the staged restore point.
    type: str
    required: true
  files:
    description:
      - Extra files to include, for example TLS certificates and keys.
    type: list
    elements: path
    default: []
  secret_variables:
    description:
      - Regular expressions of further variable names that count as secrets, beyond the defaults (C(KEY),
        C(SECRET), C(DB_PASSWORD), C(*_PASSWORD), C(*_SECRET), C(*_TOKEN), storage keys, C(AUTH_*_CLIENT_SECRET)).
    type: list
    elements: str
    default: []
requirements:
  - pyrage >= 1.2.0
attributes:
  check_mode:
    support: full
    description: Reads the configuration and returns what would be captured.
  diff_mode:
    support: none
    description: Nothing to diff.
'''

EXAMPLES = r'''
- name: Capture the configuration and secrets, encrypted to the operational and the offline recovery key
  cairncms.ops.cairn_secret_capture:
    env_file: /srv/cairn/.env
    repository: {type: local, path: /var/backups/cairn}
    instance: blog
    restore_point: "{{ point.restore_point }}"
    encryption_recipients:
      - age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p
      - age1lggyhqrw2nlhcxprm67z43rta597azn8gknawjehu9d9dl0jq3yqqvfafg
    files: [/etc/ssl/private/cms.key, /etc/ssl/certs/cms.pem]
'''

RETURN = r'''
captured:
  description: Whether the bundle was stored.
  returned: always
  type: bool
variables:
  description: Names of the variables captured (values never appear).
  returned: when captured
  type: list
  elements: str
files:
  description: Files captured besides the .env.
  returned: when captured
  type: list
  elements: str
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.cairncms.ops.plugins.module_utils import _secrets
from ansible_collections.cairncms.ops.plugins.module_utils._args import (
    instance_spec, load_config, load_repository, repository_spec)
from ansible_collections.cairncms.ops.plugins.module_utils._common import check_name, run


def main():
    spec = dict(instance_spec(), **repository_spec(point=False))
    spec.update({
        'restore_point': {'type': 'str', 'required': True},
        'files': {'type': 'list', 'elements': 'path', 'default': []},
        'secret_variables': {'type': 'list', 'elements': 'str', 'default': [], 'no_log': False},
    })
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True)
    run(module, lambda m: _secrets.capture(
        load_config(m.params), load_repository(m.params, writes=True), m.params['instance'],
        check_name('restore point id', m.params['restore_point']), extra_files=m.params['files'],
        secret_patterns=m.params['secret_variables'], check_mode=m.check_mode))


if __name__ == '__main__':
    main()
