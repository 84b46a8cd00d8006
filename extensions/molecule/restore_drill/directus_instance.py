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
import demo_instance  # noqa: E402  pylint: disable=import-error,wrong-import-position

OUTWARD = (
    "INSERT INTO directus_flows (id, name, status, trigger, options) VALUES ('6f1c9d2e-0000-4000-8000-00000000f10a', "
    "'nightly export', 'active', 'schedule', '{\"cron\": \"0 3 * * *\"}')",
    "INSERT INTO directus_webhooks (name, method, url, status, data, actions, collections) VALUES "
    "('notify', 'POST', 'http://127.0.0.1:9/hook', 'active', true, 'create', 'articles')",
)


def main(instance_dir, facts_file):
    settings = _directus.bootstrap(instance_dir)
    with _directus.running(instance_dir) as url:
        token = _directus.login(url, settings['ADMIN_EMAIL'], settings['ADMIN_PASSWORD'])
        _directus.create_collection(url, token, 'articles')
        for number in range(4):
            _directus.create_item(url, token, 'articles', {'title': 'Article %d' % number})
        _directus.upload_file(url, token, 'cover.png', demo_instance.png(40, 30, 2), 'image/png')
        _directus.upload_file(url, token, 'notes.txt', b'drill attachment\n' * 200, 'text/plain')
    database = sqlite3.connect(os.path.join(instance_dir, _directus.DB_FILENAME))
    with database:
        for statement in OUTWARD:
            database.execute(statement)
    database.close()
    facts = {'cms_command': [_directus._node(), str(_directus.ensure_installed()), 'start'],  # pylint: disable=protected-access
             'email': settings['ADMIN_EMAIL'], 'password': settings['ADMIN_PASSWORD']}
    with open(os.open(facts_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), 'w', encoding='utf-8') as handle:
        json.dump(facts, handle)


if __name__ == '__main__':
    main(*sys.argv[1:])
