# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Make the live instance of the restore_drill scenario with the integration tests' Directus harness.

    directus_instance.py INSTANCE_DIR FACTS_FILE

A real Directus 10.0.0 (CairnCMS's fork point) on SQLite with local uploads, bootstrapped in INSTANCE_DIR and
filled while it runs (a collection of 4 articles, 2 uploads), then stopped; an active scheduled flow and an active
webhook go into its database, as a drill must not run them. FACTS_FILE (JSON, 0600) gets what the drill needs to
start and check a CMS: the command and the admin's email and password. The pinned Directus is installed on first
use (`npm ci` in tests/integration/directus), as for the integration tests.
"""

from __future__ import annotations

import json
import os
import sqlite3
import sys

HARNESS = os.path.join(os.environ['MOLECULE_PROJECT_DIRECTORY'], 'tests', 'integration')
sys.path[:0] = [HARNESS, os.path.join(os.path.dirname(HARNESS), 'support')]

import _directus  # noqa: E402  pylint: disable=import-error,wrong-import-position


def main(instance_dir, facts_file):
    settings = _directus.bootstrap(instance_dir)
    with _directus.running(instance_dir) as url:
        token = _directus.login(url, settings['ADMIN_EMAIL'], settings['ADMIN_PASSWORD'])
        _directus.seed_drill_content(url, token)
    database = sqlite3.connect(os.path.join(instance_dir, _directus.DB_FILENAME))
    with database:
        for statement in (_directus.OUTWARD_FLOW, _directus.OUTWARD_WEBHOOK):
            database.execute(statement)
    database.close()
    facts = {'cms_command': [_directus._node(), str(_directus.ensure_installed()), 'start'],  # pylint: disable=protected-access
             'email': settings['ADMIN_EMAIL'], 'password': settings['ADMIN_PASSWORD']}
    with open(os.open(facts_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), 'w', encoding='utf-8') as handle:
        json.dump(facts, handle)


if __name__ == '__main__':
    main(*sys.argv[1:])
