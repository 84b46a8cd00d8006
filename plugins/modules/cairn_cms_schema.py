#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: cairn_cms_schema
short_description: Take a CairnCMS schema snapshot, diff one against an instance, apply it
version_added: 0.4.0
description:
  - Works with the CMS's own schema snapshot - its collections, fields and relations (C(version), the CMS version
    as C(directus), C(vendor), C(collections), C(fields), C(relations)), as the CMS's C(schema snapshot) writes it
    and its C(schema apply) and C(POST /schema/diff) read it. The CMS does the work; nothing here reads or writes
    its database.
  - O(state=snapshot) takes the instance's snapshot and writes it to O(dest), normalised - collections, fields and
    relations sorted by their keys, object keys sorted, indented JSON - so that two snapshots of one schema are the
    same bytes and a change shows as a readable diff in version control. With O(command), the CMS's CLI takes it
    (O(command) plus C(schema snapshot --yes --format json), run like M(cairncms.ops.cairn_cms_bootstrap) runs
    C(bootstrap) - configuration from O(env_file), nothing of it on the command line); otherwise the running CMS
    at O(url) does (C(GET /schema/snapshot) with an admin O(token)).
  - O(state=diff) asks the CMS at O(url) what would make its schema that of the snapshot O(src)
    (C(POST /schema/diff)) and returns it, summarised per collection, field and relation. It never changes
    anything.
  - O(state=applied) diffs, then has the CMS apply the diff (C(POST /schema/apply)), and diffs again to show that
    nothing is left.
  - What the instance has and the snapshot lacks would be deleted by the CMS's diff - a collection with its
    content. It is kept (RV(kept)) unless O(prune) is on.
  - A snapshot of another CMS version or database vendor than the instance's is refused, naming both sides,
    unless O(force) is on.
author:
  - cairncms.ops maintainers (!UNKNOWN)
options:
  state:
    description:
      - V(snapshot) writes the instance's snapshot to O(dest); V(diff) shows what applying O(src) would change;
        V(applied) applies O(src).
    type: str
    choices: [snapshot, diff, applied]
    default: snapshot
  dest:
    description:
      - The file the snapshot is written to (with O(state=snapshot)), for example C(schema/schema.json) in a
        repository. It is replaced only when its bytes change; a new file is made with mode C(0644).
    type: path
  src:
    description:
      - The snapshot file to diff or apply (with O(state=diff) or O(state=applied)), as this module or the CMS's
        C(schema snapshot --format json) wrote it.
    type: path
  command:
    description:
      - The command that runs the CMS's CLI, for example C([node, /opt/cairncms/node_modules/cairncms/cli.js]);
        C(schema snapshot --yes --format json <file>) is added to it. With it, O(state=snapshot) takes the snapshot
        through the CLI, which needs O(env_file) (the CMS reads only that file).
    type: list
    elements: str
  chdir:
    description:
      - The directory the CLI runs in. Defaults to O(instance_dir), else the directory of O(env_file).
    type: path
  url:
    description:
      - Base URL of the running CMS, for example C(https://cms.example.com). Needed for O(state=diff) and
        O(state=applied), and for O(state=snapshot) without O(command).
    type: str
  token:
    description:
      - A static token of an admin user of O(url) (the schema endpoints are for administrators). Never logged.
    type: str
  validate_certs:
    description:
      - Verify the TLS certificate of an C(https) O(url).
    type: bool
    default: true
  timeout:
    description:
      - Seconds the CLI, and each request to O(url), may take.
    type: int
    default: 300
  force:
    description:
      - Diff and apply a snapshot of another CMS version or database vendor than the instance's (the CMS's own
        C(force)). The task warns, naming both sides.
    type: bool
    default: false
  prune:
    description:
      - Delete what the instance has and the snapshot lacks (collections with their content, fields with their
        values, relations), as the CMS's diff says. Off, those deletions are left out and listed in RV(kept).
    type: bool
    default: false
extends_documentation_fragment:
  - cairncms.ops.instance
notes:
  - The CLI's snapshot reads the database itself, so it works with the CMS stopped; the HTTP one needs it running.
    With C(CACHE_ENABLED), each C(GET /schema/snapshot) gets a query of its own, so the CMS's data cache never
    answers with an older schema.
  - The CMS applies a diff in one transaction. PostgreSQL and SQLite then have all of it or none; MySQL and MariaDB
    commit each schema change at once, so a failed apply may leave part of it. The error says which - it diffs
    again.
attributes:
  check_mode:
    support: full
    description:
      - O(state=snapshot) takes the snapshot and reports whether O(dest) would change, without writing it.
      - O(state=applied) reports the diff (C(changed) when there is one) and applies nothing.
  diff_mode:
    support: full
    description:
      - O(state=snapshot) shows the file before and after; O(state=applied) (in check mode too) shows each
        collection, field and relation to change as the instance has it and as the snapshot has it.
      - O(state=diff) never reports a change, so Ansible shows no diff; in diff mode its result holds the same
        per-item diff (C(diff)).
'''

EXAMPLES = r'''
- name: Take the schema of dev for version control
  cairncms.ops.cairn_cms_schema:
    env_file: /srv/cairn/.env
    command: [node, /opt/cairncms/node_modules/cairncms/cli.js]
    dest: /srv/repo/schema/schema.json
  register: taken
# taken.counts: {collections: 12, fields: 140, relations: 9}, taken.sha256: ...

- name: What would the snapshot change on staging?
  cairncms.ops.cairn_cms_schema:
    state: diff
    src: /srv/repo/schema/schema.json
    url: https://staging.example.com
    token: "{{ staging_admin_token }}"
  register: planned
# planned.changes: [create collection books, create field books.title, create relation books.author -> authors]

- name: Apply it
  cairncms.ops.cairn_cms_schema:
    state: applied
    src: /srv/repo/schema/schema.json
    url: https://staging.example.com
    token: "{{ staging_admin_token }}"
'''

RETURN = r'''
path:
  description: The snapshot file written (O(dest)).
  returned: O(state=snapshot)
  type: str
sha256:
  description: The sha256 of the normalised snapshot's bytes (what O(dest) holds).
  returned: O(state=snapshot)
  type: str
size_bytes:
  description: Its size.
  returned: O(state=snapshot)
  type: int
counts:
  description: How many collections, fields and relations the snapshot has.
  returned: O(state=snapshot)
  type: dict
  sample: {collections: 2, fields: 7, relations: 1}
vendor:
  description: The database vendor the snapshot was taken from, as the CMS names it.
  returned: O(state=snapshot)
  type: str
  sample: sqlite
cms_version:
  description: The CMS version that took it.
  returned: O(state=snapshot)
  type: str
  sample: 10.0.0
differences:
  description: Whether the instance's schema differs from the snapshot in what would be applied.
  returned: O(state=diff) or O(state=applied)
  type: bool
summary:
  description:
    - What is (with O(state=applied)) or would be applied, per C(collections), C(fields) and C(relations), each
      with the names (C(books), C(books.author)) C(added), C(changed) and C(deleted).
  returned: O(state=diff) or O(state=applied)
  type: dict
  sample: {collections: {added: [books], changed: [], deleted: []}, fields: {added: [books.id, books.title],
           changed: [], deleted: []}, relations: {added: [books.author], changed: [], deleted: []}}
changes:
  description: One line per item for display, with the keys a changed item changes and what is kept.
  returned: O(state=diff) or O(state=applied)
  type: list
  elements: str
  sample: [create collection books, update field books.pages (meta.note), keep collection pages (not in the
           snapshot; prune is off)]
kept:
  description:
    - The C(collections), C(fields) and C(relations) the instance has and the snapshot lacks, left alone because
      O(prune) is off (empty with O(prune)).
  returned: O(state=diff) or O(state=applied)
  type: dict
  sample: {collections: [pages], fields: [], relations: []}
hash:
  description: The CMS's hash of the instance's schema the diff was made against; null without differences.
  returned: O(state=diff) or O(state=applied)
  type: str
forced:
  description: Whether the CMS version or vendor differed and O(force) let it through.
  returned: O(state=diff) or O(state=applied)
  type: bool
snapshot:
  description: The snapshot O(src) - C(path), C(vendor), C(cms_version), C(counts).
  returned: O(state=diff) or O(state=applied)
  type: dict
target:
  description: The instance's schema before - C(url), C(vendor), C(cms_version), C(counts).
  returned: O(state=diff) or O(state=applied)
  type: dict
remaining:
  description: What still differs after the apply (like RV(summary); empty lists when the apply took).
  returned: O(state=applied) when a diff was applied
  type: dict
duration_s:
  description: Seconds the apply took.
  returned: O(state=applied) when a diff was applied
  type: float
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.cairncms.ops.plugins.module_utils._args import instance_spec, load_config
from ansible_collections.cairncms.ops.plugins.module_utils._cms import schema
from ansible_collections.cairncms.ops.plugins.module_utils._common import CairnError, run


def snapshot(params):
    """The instance's snapshot: through the CLI with ``command``, else over HTTP."""
    if params['command']:
        config = load_config(params)
        chdir = params['chdir'] or config.base_dir
        if chdir is None:
            raise CairnError('chdir is not set and there is no env_file or instance_dir to run the CMS\'s CLI in')
        return schema.snapshot_cli(config, params['command'], chdir, params['env_file'], params['timeout'])
    return schema.snapshot_http(params['url'], params['token'], params['timeout'], params['validate_certs'])


def action(module):
    params = module.params
    if params['state'] == 'snapshot':
        return schema.take(snapshot(params), params['dest'], module.check_mode, module._diff)
    wanted, _digest = schema.read_snapshot(params['src'])
    return schema.promote(params['url'], params['token'], wanted, params['src'], apply=params['state'] == 'applied',
                          force=params['force'], prune=params['prune'], check_mode=module.check_mode,
                          want_diff=module._diff, timeout=params['timeout'], validate_certs=params['validate_certs'])


def main():
    spec = dict(instance_spec(), **{
        'state': {'type': 'str', 'choices': ['snapshot', 'diff', 'applied'], 'default': 'snapshot'},
        'dest': {'type': 'path'},
        'src': {'type': 'path'},
        'command': {'type': 'list', 'elements': 'str'},
        'chdir': {'type': 'path'},
        'url': {'type': 'str'},
        'token': {'type': 'str', 'no_log': True},
        'validate_certs': {'type': 'bool', 'default': True},
        'timeout': {'type': 'int', 'default': 300},
        'force': {'type': 'bool', 'default': False},
        'prune': {'type': 'bool', 'default': False},
    })
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True,
                           required_if=[('state', 'snapshot', ('dest',)),
                                        ('state', 'snapshot', ('command', 'url'), True),
                                        ('state', 'diff', ('src', 'url', 'token')),
                                        ('state', 'applied', ('src', 'url', 'token'))],
                           required_together=[('url', 'token')])
    run(module, action)


if __name__ == '__main__':
    main()
