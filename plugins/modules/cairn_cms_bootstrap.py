#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: cairn_cms_bootstrap
short_description: Bring a CairnCMS database up to the installed CMS and clear its cache
version_added: 0.2.0
description:
  - Runs the CMS's own C(bootstrap) (O(command) plus C(bootstrap)) for the instance, which runs every migration of
    the installed CMS its database has not had yet - after a restore point made by an older CMS has been restored,
    say (and installs the system tables into a database that has none). The migrations it ran are read from
    C(directus_migrations) before and after, with the collection's own database client code.
  - The CLI reads its configuration from O(env_file) (C(CONFIG_PATH)), and runs in O(chdir) with only C(PATH),
    C(HOME), the locale and C(TZ) of the environment; nothing of the configuration is on its command line. Its
    output (the end of it) is returned and, when it fails or runs longer than O(timeout), is the task's error,
    with every secret value of the configuration masked.
  - Then, with O(clear_cache), clears the CMS's cache when it is in Redis (C(CACHE_STORE=redis)) - the keys of its
    C(CACHE_NAMESPACE) only (the data cache, the system, schema and lock caches and keyv's namespace sets), with
    C(SCAN) and C(UNLINK), never C(FLUSHDB). The connection comes from C(CACHE_REDIS) or C(CACHE_REDIS_HOST),
    C(CACHE_REDIS_PORT), C(CACHE_REDIS_PASSWORD), C(CACHE_REDIS_DB) as the CMS reads them. A memory cache is
    cleared by the CMS's restart; a memcache one is left to expire.
  - Run it with the CMS stopped, after a restore and before the CMS starts.
author:
  - cairncms.ops maintainers (!UNKNOWN)
options:
  command:
    description:
      - The command that runs the CMS's CLI, for example C([node, /opt/cairncms/node_modules/cairncms/cli.js]);
        C(bootstrap) is added to it.
    type: list
    elements: str
    required: true
  chdir:
    description:
      - The directory the CLI runs in. Defaults to O(instance_dir), else the directory of O(env_file) (where the
        CMS resolves its relative paths).
    type: path
  timeout:
    description:
      - Seconds the bootstrap may take; a longer one is killed (with what it started) and the task fails.
    type: int
    default: 600
  clear_cache:
    description:
      - Clear the CMS's Redis cache after the bootstrap.
    type: bool
    default: true
extends_documentation_fragment:
  - cairncms.ops.instance
notes:
  - O(env_file) must exist - the CMS reads only that file; O(env_overrides) and O(env_secret_overrides) change what
    this module reads (which database to look at, which Redis to clear), not what the CMS reads.
attributes:
  check_mode:
    support: partial
    description: Runs nothing and removes nothing.
    details:
      - Check mode cannot know what C(bootstrap) would run (that is up to the CMS) - it reports no migration run
        (RV(migrations_ran) empty) and the database's current RV(migration_level). It counts the cache keys that
        would be removed (C(keys_removed) of RV(cache)) without removing any.
  diff_mode:
    support: none
    description: Nothing to diff.
'''

EXAMPLES = r'''
- name: Bring the restored database up to the installed CMS and clear its cache
  cairncms.ops.cairn_cms_bootstrap:
    env_file: /srv/cairn/.env
    command: [node, /opt/cairncms/node_modules/cairncms/cli.js]
  register: bootstrapped
# bootstrapped.migrations_ran: [20260814A, 20260909A]
'''

RETURN = r'''
migrations_ran:
  description: The migrations the bootstrap ran, oldest first (empty when the database was up to date).
  returned: always
  type: list
  elements: str
  sample: [20230401A]
migration_level:
  description: The newest migration of the database afterwards (null when it has none).
  returned: always
  type: str
  sample: 20230401A
migrations_before_level:
  description: The newest migration of the database before the bootstrap.
  returned: always
  type: str
  sample: 20221201A
duration_s:
  description: Seconds the bootstrap took.
  returned: always
  type: float
output_tail:
  description: The end of the bootstrap's output, secret values masked.
  returned: when the bootstrap ran
  type: str
cache:
  description:
    - The cache cleared - C(store) (C(redis), C(memory), C(memcache)), C(namespace) (C(CACHE_NAMESPACE)),
      C(keys_removed) (in check mode, the keys that would be removed), for Redis C(server) (where, never the
      password), and C(note) when nothing was cleared here. Null without O(clear_cache).
  returned: always
  type: dict
  sample: {store: redis, namespace: system-cache, keys_removed: 14, server: 'redis://10.0.0.5:6379/0'}
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.cairncms.ops.plugins.module_utils._args import instance_spec, load_config
from ansible_collections.cairncms.ops.plugins.module_utils._cms import bootstrap, cache
from ansible_collections.cairncms.ops.plugins.module_utils._common import CairnError, run


def action(module):
    params = module.params
    config = load_config(params)
    chdir = params['chdir'] or config.base_dir
    if chdir is None:
        raise CairnError('chdir is not set and there is no env_file or instance_dir to run the CMS\'s bootstrap in')
    if module.check_mode:
        level = bootstrap.applied_migrations(config)
        result = {'migrations_ran': [], 'migration_level': level[-1] if level else None,
                  'migrations_before_level': level[-1] if level else None, 'duration_s': 0.0}
    else:
        result = bootstrap.run_bootstrap(config, params['command'], chdir, params['env_file'], params['timeout'])
    result['cache'] = None
    if params['clear_cache']:
        try:
            result['cache'] = cache.clear(config.values, check_mode=module.check_mode)
        except CairnError as exc:
            if module.check_mode:
                raise
            raise CairnError('%s; the bootstrap ran (%d migration(s): %s), only clearing the cache failed'
                             % (exc.message, len(result['migrations_ran']),
                                ', '.join(result['migrations_ran']) or 'none'), **result) from None
        if result['cache'].get('note') and result['cache']['store'] != 'memory':
            result['warnings'] = ['the CMS cache was not cleared: %s' % result['cache']['note']]
    result['changed'] = bool(result['migrations_ran'] or (result['cache'] or {}).get('keys_removed'))
    return result


def main():
    spec = dict(instance_spec(), **{
        'command': {'type': 'list', 'elements': 'str', 'required': True},
        'chdir': {'type': 'path'},
        'timeout': {'type': 'int', 'default': 600},
        'clear_cache': {'type': 'bool', 'default': True},
    })
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True)
    run(module, action)


if __name__ == '__main__':
    main()
