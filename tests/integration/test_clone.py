# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The clone role on SQLite instances: a clone gets the source's data with its own configuration, keys,
database and uploads, its flows and webhooks off; a second run changes nothing; a refresh needs replace and keeps
the clone's keys; the guard refuses a clone that would share the source's database or uploads."""

from __future__ import annotations

import json
import os
import sqlite3
import sys

import pyrage
import pytest

from conftest import recap, run_playbook
from test_drill import FLOW, _sqlite_execute
from test_relocation import db_rows, originals


def env_values(path):
    values = {}
    for line in open(path, encoding='utf-8'):
        if '=' in line and not line.startswith('#'):
            name, value = line.split('=', 1)
            values[name.strip()] = value.split('#')[0].strip().strip('"')
    return values


@pytest.fixture
def cloning(tmp_path, source):
    _sqlite_execute(source / 'data.db', 'CREATE TABLE directus_flows (id TEXT PRIMARY KEY, name TEXT, status TEXT, '
                                        'trigger TEXT, options TEXT)')
    _sqlite_execute(source / 'data.db', FLOW)
    identity = pyrage.x25519.Identity.generate()
    key_file = tmp_path / 'backup-key.txt'
    key_file.write_text('%s\n' % identity)
    common = {'ansible_connection': 'local', 'ansible_python_interpreter': sys.executable,
              'cairn_repository': {'type': 'local', 'path': str(tmp_path / 'repository')},
              'cairn_encryption_recipients': [str(identity.to_public())], 'cairn_encryption_identity_file': str(key_file)}
    staging = tmp_path / 'staging'
    hosts = {'blog': {'cairn_env_file': str(source / '.env')},
             'staging': {'cairn_env_file': str(staging / '.env'), 'cairn_clone_from': 'blog',
                         'cairn_clone_env_overrides': {'PUBLIC_URL': 'https://staging.example.com', 'PORT': 8066}}}
    inventory = tmp_path / 'inventory.json'

    def play(name, limit, check=False, **extra):
        inventory.write_text(json.dumps({'all': {'vars': common, 'hosts': {
            host: dict(values, **(extra if host == limit else {})) for host, values in hosts.items()}}}))
        return run_playbook(name, str(inventory), limit=limit, check=check)
    return play, staging


def test_clone_has_the_data_and_its_own_everything_and_reruns_change_nothing(cloning, source):
    play, staging = cloning
    run = play('backup.yml', 'blog')
    assert run.returncode == 0, run.stdout + run.stderr
    planned = play('clone.yml', 'staging', check=True)
    assert planned.returncode == 0, planned.stdout + planned.stderr
    assert not staging.exists()
    run = play('clone.yml', 'staging')
    assert run.returncode == 0, run.stdout + run.stderr
    assert '1 flows and 0' in run.stdout, run.stdout
    mine, theirs = env_values(staging / '.env'), env_values(source / '.env')
    assert mine['PUBLIC_URL'] == 'https://staging.example.com' and mine['PORT'] == '8066'
    assert mine['KEY'] != theirs['KEY'] and mine['SECRET'] != theirs['SECRET'] and len(mine['SECRET']) >= 32
    assert mine['DB_CLIENT'] == 'sqlite3' and os.stat(staging / '.env').st_mode & 0o777 == 0o600
    assert theirs['SECRET'] not in run.stdout + run.stderr and mine['SECRET'] not in run.stdout + run.stderr
    # The source's data in the clone's own database file and uploads; its flow off there only.
    assert db_rows(staging / 'data.db', 'SELECT COUNT(*) FROM articles') == db_rows(source / 'data.db',
                                                                                    'SELECT COUNT(*) FROM articles')
    assert originals(staging / 'uploads') == originals(source / 'uploads')
    assert db_rows(staging / 'data.db', 'SELECT status FROM directus_flows') == [('inactive',)]
    assert db_rows(source / 'data.db', 'SELECT status FROM directus_flows') == [('active',)]
    again = play('clone.yml', 'staging')
    assert again.returncode == 0 and recap(again.stdout, 'staging')['changed'] == 0, again.stdout
    assert env_values(staging / '.env') == mine

    # A refresh from a newer restore point: refused without replace, then done, keeping the clone's keys.
    with sqlite3.connect(str(source / 'data.db')) as db:
        db.execute("INSERT INTO articles (status, title) VALUES ('published', 'after the clone')")
    db.close()
    run = play('backup.yml', 'blog')
    assert run.returncode == 0, run.stdout + run.stderr
    refused = play('clone.yml', 'staging')
    assert refused.returncode != 0 and 'cairn_restore_replace' in refused.stdout, refused.stdout
    refreshed = play('clone.yml', 'staging', cairn_clone_replace=True)
    assert refreshed.returncode == 0, refreshed.stdout + refreshed.stderr
    assert db_rows(staging / 'data.db', "SELECT COUNT(*) FROM articles WHERE title = 'after the clone'") == [(1,)]
    assert env_values(staging / '.env')['KEY'] == mine['KEY'] and env_values(staging / '.env')['SECRET'] == mine['SECRET']


def test_clone_guard_refuses_the_source_database_and_uploads(cloning, source, tmp_path):
    play, staging = cloning
    run = play('backup.yml', 'blog')
    assert run.returncode == 0, run.stdout + run.stderr
    before = (source / 'data.db').read_bytes()
    for overrides, wanted in (({'DB_FILENAME': str(source / 'data.db')}, 'would use the database of'),
                              ({'STORAGE_LOCAL_ROOT': str(source / 'uploads')}, 'storage location local of')):
        refused = play('clone.yml', 'staging', cairn_clone_env_overrides=overrides)
        assert refused.returncode != 0 and wanted in refused.stdout, refused.stdout
        assert not (staging / '.env').exists()
    # The source's own .env as the clone's: its relative paths are the source's files.
    refused = play('clone.yml', 'staging', cairn_env_file=str(source / '.env'), cairn_clone_replace=True)
    assert refused.returncode != 0 and 'would use the database of' in refused.stdout, refused.stdout
    assert (source / 'data.db').read_bytes() == before
