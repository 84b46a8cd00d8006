#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: cairn_cms_info
short_description: Tell which CMS is installed, at which version, knowing which migrations
version_added: 0.2.0
description:
  - Finds the CMS installed in O(install_dir), or where O(command) runs it from (the directory holding its
    C(node_modules)), and reads its name and version from the package file of C(cairncms) or C(directus) (or their
    API packages C(@cairncms/api), C(@directus/api)), and the migrations it knows from the file names of the API
    package's C(dist/database/migrations).
  - Without a package file there, and with O(url), asks the running CMS (C(GET <url>/server/info) with an admin
    O(token)) for its version; the migrations it knows are then unknown.
  - With O(restore_point_level), says whether the install knows that migration. A level it does not know (made by
    a newer CMS, or by another fork) cannot be brought up by its C(bootstrap); with O(refuse_unknown) the task
    fails, naming the level and the newest migration the install knows. Use it before a restore stops anything.
  - What is read is untrusted input - nothing is followed by a symlink out of the install directory, package files
    are size-limited, and a damaged one is one clear error.
author:
  - cairncms.ops maintainers (!UNKNOWN)
options:
  install_dir:
    description:
      - The directory holding the CMS's C(node_modules), for example C(/opt/cairncms).
      - Defaults to the one O(command) runs the CMS from.
    type: path
  command:
    description:
      - The command that runs the CMS's CLI, for example C([node, /opt/cairncms/node_modules/cairncms/cli.js]) or
        C([/opt/cairncms/node_modules/.bin/cairncms]); the install is the directory above its C(node_modules).
    type: list
    elements: str
  url:
    description:
      - Base URL of the running CMS, asked for its version only when no package file is found.
    type: str
  token:
    description:
      - A static token of an admin user for O(url) (the CMS tells its version to administrators only).
    type: str
  validate_certs:
    description:
      - Verify the TLS certificate of an C(https) O(url).
    type: bool
    default: true
  extensions_dir:
    description:
      - The instance's C(EXTENSIONS_PATH); the migrations in its C(migrations) folder (custom migrations, which the
        CMS runs too) count as known.
    type: path
  restore_point_level:
    description:
      - The migration level of a restore point (its manifest's C(cms.migration_level), the newest migration its
        database had) to check against the install.
    type: str
  restore_point:
    description:
      - The id of that restore point, for the message.
    type: str
  refuse_unknown:
    description:
      - Fail when the install does not know O(restore_point_level). Otherwise RV(unknown_migrations) says so and
        the task succeeds with a warning.
      - When the install's migrations are unknown (its version came from O(url)), nothing is refused; a warning
        says why.
    type: bool
    default: true
attributes:
  check_mode:
    support: full
    description: Reads only.
  diff_mode:
    support: none
    description: Nothing to diff.
'''

EXAMPLES = r'''
- name: Which CMS is installed?
  cairncms.ops.cairn_cms_info:
    command: [node, /opt/cairncms/node_modules/cairncms/cli.js]
  register: cms
# cms.name: cairncms, cms.version: 1.2.0, cms.known_level: 20260909A

- name: Refuse a restore point the installed CMS cannot bring up (before anything stops)
  cairncms.ops.cairn_cms_info:
    install_dir: /opt/cairncms
    restore_point: "{{ point.restore_point.id }}"
    restore_point_level: "{{ point.restore_point.cms.migration_level }}"
'''

RETURN = r'''
name:
  description: The CMS's package name (C(cairncms), C(directus), an API package name, or from O(url) C(cairncms) or
    C(directus)).
  returned: always
  type: str
  sample: directus
version:
  description: Its version.
  returned: always
  type: str
  sample: 10.0.0
source:
  description: Where the version was read - C(package.json) or C(server/info).
  returned: always
  type: str
  sample: package.json
install_dir:
  description: The install directory (symlinks resolved); null when only O(url) was asked.
  returned: always
  type: str
  sample: /opt/cairncms
known_level:
  description: The newest migration the install knows; null when its migrations are unknown.
  returned: always
  type: str
  sample: 20230401A
migrations_known:
  description: How many migrations the install knows; null when unknown.
  returned: always
  type: int
  sample: 63
unknown_migrations:
  description:
    - With O(restore_point_level), the migrations of the restore point the install does not know (empty - it can
      restore the point and bring it up); null when its migrations are unknown.
  returned: when O(restore_point_level) is given
  type: list
  elements: str
  sample: []
note:
  description: Why the version came from O(url) (what was not found on disk).
  returned: when RV(source) is C(server/info)
  type: str
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.cairncms.ops.plugins.module_utils._cms import install
from ansible_collections.cairncms.ops.plugins.module_utils._common import CairnError, run


def action(module):
    params = module.params
    described = install.describe(params['install_dir'], params['command'], params['url'], params['token'],
                                 params['validate_certs'], params['extensions_dir'])
    known = described['migrations']
    result = {'changed': False, 'name': described['name'], 'version': described['version'],
              'source': described['source'], 'install_dir': described['install_dir'],
              'known_level': known[-1] if known else None, 'migrations_known': None if known is None else len(known)}
    if described.get('note'):
        result['note'] = described['note']
    level = params['restore_point_level']
    if level is None:
        return result
    unknown = result['unknown_migrations'] = install.unknown_migrations(level, known)
    if unknown is None:
        result['warnings'] = ['cannot tell whether %s %s knows migration %s: its migrations are unknown (%s); set '
                              'install_dir or command so its files can be read' % (
                                  described['name'], described['version'], level,
                                  described.get('note') or 'no migration files')]
    elif unknown:
        message = install.refusal(described, unknown, params['restore_point'])
        if params['refuse_unknown']:
            raise CairnError(message, **{key: value for key, value in result.items() if key != 'changed'})
        result['warnings'] = [message.replace('; upgrade the target CMS first, then restore',
                                              '; going on anyway (refuse_unknown is off)')]
    return result


def main():
    module = AnsibleModule(
        argument_spec={
            'install_dir': {'type': 'path'},
            'command': {'type': 'list', 'elements': 'str'},
            'url': {'type': 'str'},
            'token': {'type': 'str', 'no_log': True},
            'validate_certs': {'type': 'bool', 'default': True},
            'extensions_dir': {'type': 'path'},
            'restore_point_level': {'type': 'str'},
            'restore_point': {'type': 'str'},
            'refuse_unknown': {'type': 'bool', 'default': True},
        },
        required_one_of=[('install_dir', 'command', 'url')],
        supports_check_mode=True)
    run(module, action)


if __name__ == '__main__':
    main()
