#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: cairn_promote
short_description: Promote a CairnCMS structure (schema and config) from one environment to another
version_added: 0.4.0
description:
  - Structure promotion - dev to staging to production - moves the data model (the CMS's schema snapshot - its
    collections, fields and relations) and the config (roles and permissions, by option flows, webhooks, presets,
    dashboards, translations and settings), never content rows, users, sessions, activity or files.
  - The source (O(source)) is read whole, once - a CairnCMS instance on this host, the C(schema) and C(config) parts
    of a restore point, or a directory in version control as O(state=snapshot) writes it.
  - O(state=snapshot) writes the source to the directory O(dest) for a commit - C(schema.json), the schema snapshot
    normalised (as M(cairncms.ops.cairn_cms_schema) writes it), and C(config/), one file per role and per
    collection's permissions. A file is rewritten only when its bytes change.
  - O(state=diff) diffs the source against the target at O(url) - the schema through the CMS (C(POST /schema/diff)),
    the config against the target's own, permissions matched by role, collection and action, roles by id - and
    shows it per collection, field, relation, role and permission. It never changes anything.
  - O(state=applied) diffs, then applies the schema through the CMS (C(POST /schema/apply)) and then the config
    through the CMS's API, in that order. What the target has and the source lacks is kept (listed in RV(schema.kept)
    and RV(config.kept)) unless O(prune) is on. A schema of another CMS version or database vendor is refused,
    naming both sides, unless O(force) is on.
  - The role C(cairncms.ops.promote) takes a restore point of the target before it applies and puts the target back
    from it when the apply fails.
author:
  - cairncms.ops maintainers (!UNKNOWN)
options:
  state:
    description:
      - V(snapshot) writes the source to O(dest); V(diff) shows what promoting it to O(url) would change;
        V(applied) promotes it.
    type: str
    choices: [snapshot, diff, applied]
    default: diff
  source:
    description:
      - Where the structure comes from - one of an instance on this host (O(source.env_file) with
        O(source.command), or O(source.url) with O(source.token)), a restore point (O(source.restore_point) with
        O(source.instance) and O(source.repository)) or a directory (O(source.directory)).
    type: dict
    required: true
    suboptions:
      name:
        description:
          - How messages name the source, for example C(dev). Defaults to what it is (its URL, C(.env), restore
            point or directory).
        type: str
      directory:
        description:
          - A directory as O(state=snapshot) writes it (C(schema.json), C(config/)), for example a checkout of the
            repository that keeps the structure.
        type: path
      env_file:
        description:
          - The source instance's C(.env). The CMS's CLI (O(source.command)) reads its configuration from it, and
            the config is read from the database it names.
        type: path
      instance_dir:
        description: Directory relative paths of the source's configuration are resolved against.
        type: path
      command:
        description:
          - The CMS's CLI of the source instance, for example C([node, /opt/cairncms/node_modules/cairncms/cli.js]);
            its C(schema snapshot) takes the schema (the CMS may be stopped).
        type: list
        elements: str
      chdir:
        description: The directory the CLI runs in; defaults to the directory of O(source.env_file).
        type: path
      url:
        description: Base URL of the running source instance; with O(source.token) its API gives the schema.
        type: str
      token:
        description: A static token of an admin user of O(source.url). Never logged.
        type: str
      validate_certs:
        description: Verify the TLS certificate of an C(https) O(source.url).
        type: bool
        default: true
      restore_point:
        description: A restore point id, or V(latest), whose C(schema) and C(config) parts are the source.
        type: str
      instance:
        description: The name in the repository of the instance the restore point belongs to.
        type: str
      repository:
        description: The repository of the restore point, as the backup role's C(cairn_repository).
        type: dict
      repository_credentials:
        description: Credentials of an object-store O(source.repository). Never logged.
        type: dict
      encryption_identity_file:
        description: An age identity file on the host that decrypts an encrypted restore point.
        type: path
      encryption_identity:
        description: The text of an age identity that decrypts it. Never logged.
        type: str
      encryption_passphrase:
        description: The passphrase that unwraps the instance's repository key. Never logged.
        type: str
      trusted_signers:
        description: Accept only restore points signed by one of these ed25519 public keys.
        type: list
        elements: str
  dest:
    description:
      - The directory O(state=snapshot) writes, made when missing; C(schema.json) and C(config/) in it are the
        module's, other files are left alone.
    type: path
  parts:
    description: What to promote or write - the schema, the config, or both (the schema first).
    type: list
    elements: str
    choices: [schema, config]
    default: [schema, config]
  config_kinds:
    description:
      - What the config holds - V(roles), V(permissions), and by option V(flows) (with their operations),
        V(webhooks), V(presets), V(dashboards) (with their panels), V(translations), V(settings).
      - Read from an instance, the config has these kinds (default roles and permissions). From a restore point or
        a directory, only these kinds of what the config has are promoted (default all it has); a kind it lacks is
        an error.
    type: list
    elements: str
    choices: [roles, permissions, flows, webhooks, presets, dashboards, translations, settings]
  url:
    description: Base URL of the target instance (O(state=diff) and O(state=applied)).
    type: str
  token:
    description:
      - A static token of an admin user of the target (the schema endpoints and roles are for administrators).
        Never logged.
    type: str
  validate_certs:
    description: Verify the TLS certificate of an C(https) O(url).
    type: bool
    default: true
  force:
    description:
      - Promote a schema of another CMS version or database vendor than the target's (the CMS's own C(force)). The
        task warns, naming both sides.
    type: bool
    default: false
  prune:
    description:
      - Remove what the target has and the source lacks - collections with their content, fields with their values,
        relations, roles, permissions. Off, they are kept and listed in RV(schema.kept) and RV(config.kept).
    type: bool
    default: false
  timeout:
    description: Seconds the CLI, and each request, may take.
    type: int
    default: 300
notes:
  - The CMS records its own activity and revisions for the roles and permissions changed through its API, as for any
    change an administrator makes. Nothing else of the target's activity, and none of its content, users, sessions
    or files, is touched - except with O(prune), where a collection the CMS deletes goes with its content, activity,
    revisions and presets.
  - The CMS applies a schema diff in one transaction (on MySQL and MariaDB each schema change commits at once). The
    config is applied one change at a time; a failed apply says which part failed and what was applied before it
    (RV(failed_part), RV(applied)). The role C(cairncms.ops.promote) puts the target back from the restore point it
    took first.
attributes:
  check_mode:
    support: full
    description:
      - O(state=applied) reports the diff (C(changed) when there is one) and applies nothing; O(state=snapshot)
        reports which files would change and writes none.
  diff_mode:
    support: full
    description:
      - O(state=applied) shows each collection, field, relation, role and permission to change as the target has
        it and as the source has it; O(state=snapshot) shows each file that changes.
'''

EXAMPLES = r'''
- name: Write dev's structure into the repository that keeps it
  cairncms.ops.cairn_promote:
    state: snapshot
    source:
      name: dev
      env_file: /srv/cairn-dev/.env
      command: [node, /opt/cairncms/node_modules/cairncms/cli.js]
    dest: /srv/structure

- name: What would the structure in version control change on staging?
  cairncms.ops.cairn_promote:
    state: diff
    source:
      directory: /srv/structure
    url: https://staging.example.com
    token: "{{ staging_admin_token }}"
  register: planned
# planned.changes: [create collection books, create field books.title, create role Editors, ...]

- name: Promote production's newest restore point's structure to staging
  cairncms.ops.cairn_promote:
    state: applied
    source:
      restore_point: latest
      instance: blog
      repository: {type: local, path: /var/backups/cairn}
    url: https://staging.example.com
    token: "{{ staging_admin_token }}"
'''

RETURN = r'''
directory:
  description: The directory written (O(dest)).
  returned: O(state=snapshot)
  type: str
files:
  description: The files of O(dest) the snapshot wrote, each C(changed), C(unchanged) or C(removed).
  returned: O(state=snapshot)
  type: dict
source:
  description:
    - The source - C(kind) (C(instance), C(restore_point), C(directory)), C(name), and of its schema C(vendor),
      C(cms_version) and C(counts); C(restore_point), the id, for a restore point.
  returned: always
  type: dict
  sample: {kind: directory, name: directory /srv/structure, vendor: postgres, cms_version: 10.0.0,
           counts: {collections: 2, fields: 7, relations: 1}}
target:
  description: The target - C(url), and the C(vendor) and C(cms_version) of its schema.
  returned: O(state=diff) or O(state=applied)
  type: dict
differences:
  description: Whether the target differs from the source in what would be applied.
  returned: O(state=diff) or O(state=applied)
  type: bool
changes:
  description: One line per collection, field, relation, role and permission to change, the schema first.
  returned: O(state=diff) or O(state=applied)
  type: list
  elements: str
  sample: [create collection books, create relation books.author -> authors, create role Editors,
           create permission Editors books read]
schema:
  description:
    - The schema part. With O(state=snapshot), what was written - C(sha256), C(size_bytes), C(counts), C(vendor),
      C(cms_version) of C(schema.json).
  returned: when O(parts) has V(schema)
  type: dict
  contains:
    differences:
      description: Whether the target's schema differs from the source's in what would be applied.
      type: bool
    summary:
      description: Per C(collections), C(fields) and C(relations), the names C(added), C(changed) and C(deleted).
      type: dict
    changes:
      description: One line per collection, field and relation.
      type: list
      elements: str
    kept:
      description: The collections, fields and relations the target has and the source lacks, kept (prune off).
      type: dict
      sample: {collections: [pages], fields: [], relations: []}
    hash:
      description: The CMS's hash of the target's schema the diff was made against; null without differences.
      type: str
    remaining:
      description: What still differs after the apply (empty lists when it took).
      type: dict
      returned: when the schema was applied
config:
  description:
    - The config part. With O(state=snapshot), what was written in C(config/) - C(written), C(removed) (relative
      paths), C(unchanged) (how many), C(counts).
  returned: when O(parts) has V(config)
  type: dict
  contains:
    differences:
      description: Whether the target's config differs from the source's in what would be applied.
      type: bool
    summary:
      description: Per kind (C(roles), C(permissions), ...), the keys C(added), C(changed) and C(deleted).
      type: dict
    changes:
      description: One line per role, permission and other config item.
      type: list
      elements: str
    kept:
      description: What the target has and the source lacks, kept (prune off).
      type: list
      elements: str
applied:
  description: What was applied - C(schema) (true or false) and C(config) (how many config changes).
  returned: O(state=diff) or O(state=applied), and when the apply fails
  type: dict
forced:
  description: Whether the CMS version or vendor differed and O(force) let it through.
  returned: O(state=diff) or O(state=applied)
  type: bool
failed_part:
  description: The part whose apply failed, C(schema) or C(config).
  returned: when the apply fails
  type: str
duration_s:
  description: Seconds the apply took.
  returned: O(state=applied) when something was applied
  type: float
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.cairncms.ops.plugins.module_utils import _promote
from ansible_collections.cairncms.ops.plugins.module_utils._common import run


def action(module):
    params = module.params
    parts = _promote.check_parts(params['parts'])
    found = _promote.read_source(params['source'], parts, params['config_kinds'], params['timeout'])
    if params['state'] == 'snapshot':
        return _promote.snapshot(found, params['dest'], parts, module.check_mode, module._diff)
    return _promote.promote(found, params['url'], params['token'], parts, kinds=params['config_kinds'],
                            apply=params['state'] == 'applied', force=params['force'], prune=params['prune'],
                            check_mode=module.check_mode, want_diff=module._diff, timeout=params['timeout'],
                            validate_certs=params['validate_certs'])


def main():
    source = {
        'name': {'type': 'str'},
        'directory': {'type': 'path'},
        'env_file': {'type': 'path'},
        'instance_dir': {'type': 'path'},
        'command': {'type': 'list', 'elements': 'str'},
        'chdir': {'type': 'path'},
        'url': {'type': 'str'},
        'token': {'type': 'str', 'no_log': True},
        'validate_certs': {'type': 'bool', 'default': True},
        'restore_point': {'type': 'str'},
        'instance': {'type': 'str'},
        'repository': {'type': 'dict'},
        'repository_credentials': {'type': 'dict', 'no_log': True},
        'encryption_identity_file': {'type': 'path'},
        'encryption_identity': {'type': 'str', 'no_log': True},
        'encryption_passphrase': {'type': 'str', 'no_log': True},
        'trusted_signers': {'type': 'list', 'elements': 'str'},
    }
    spec = {
        'state': {'type': 'str', 'choices': ['snapshot', 'diff', 'applied'], 'default': 'diff'},
        'source': {'type': 'dict', 'required': True, 'options': source,
                   'mutually_exclusive': [('directory', 'restore_point', 'env_file'),
                                          ('directory', 'restore_point', 'command'),
                                          ('directory', 'restore_point', 'url')],
                   'required_one_of': [('directory', 'restore_point', 'env_file', 'command', 'url')],
                   'required_together': [('url', 'token')],
                   'required_by': {'restore_point': ('instance', 'repository'), 'command': ('env_file',)}},
        'dest': {'type': 'path'},
        'parts': {'type': 'list', 'elements': 'str', 'choices': ['schema', 'config'], 'default': ['schema', 'config']},
        'config_kinds': {'type': 'list', 'elements': 'str',
                         'choices': ['roles', 'permissions', 'flows', 'webhooks', 'presets', 'dashboards',
                                     'translations', 'settings']},
        'url': {'type': 'str'},
        'token': {'type': 'str', 'no_log': True},
        'validate_certs': {'type': 'bool', 'default': True},
        'force': {'type': 'bool', 'default': False},
        'prune': {'type': 'bool', 'default': False},
        'timeout': {'type': 'int', 'default': 300},
    }
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True,
                           required_if=[('state', 'snapshot', ('dest',)),
                                        ('state', 'diff', ('url', 'token')),
                                        ('state', 'applied', ('url', 'token'))])
    run(module, action)


if __name__ == '__main__':
    main()
