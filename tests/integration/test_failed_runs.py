# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A failed or interrupted backup never stops a restore: with failed runs in the repository's history, the
restore, clone and status roles work through ansible-playbook and say that the latest backup failed; a killed
run's leftovers are cleaned by the next one."""

from __future__ import annotations

import json
import os
import sys

import pyrage

import demo_instance
from conftest import recap, run_module, run_playbook


def _inventory(tmp_path, hosts, **common):
    identity = pyrage.x25519.Identity.generate()
    key_file = tmp_path / 'backup-key.txt'
    key_file.write_text('%s\n' % identity)
    variables = {'ansible_connection': 'local', 'ansible_python_interpreter': sys.executable,
                 'cairn_repository': {'type': 'local', 'path': str(tmp_path / 'repository')},
                 'cairn_encryption_recipients': [str(identity.to_public())],
                 'cairn_encryption_identity_file': str(key_file)}
    variables.update(common)
    path = tmp_path / 'inventory.json'
    path.write_text(json.dumps({'all': {'vars': variables, 'hosts': hosts}}))
    return str(path)


def test_restore_clone_and_status_work_after_failed_and_killed_backups(tmp_path, source, target):
    broken = tmp_path / 'broken'
    demo_instance.empty(str(broken))  # no database: its backup fails in the dump
    hosts = {'blog': {'cairn_env_file': str(source / '.env')},
             'broken': {'cairn_env_file': str(broken / '.env'), 'cairn_instance': 'blog'},
             'target': {'cairn_env_file': str(target / '.env'), 'cairn_restore_from': 'blog',
                        'cairn_restore_replace': True},
             'staging': {'cairn_env_file': str(tmp_path / 'staging' / '.env'), 'cairn_clone_from': 'blog',
                         'cairn_clone_env_overrides': {'PUBLIC_URL': 'https://staging.example.com'}}}
    inventory = _inventory(tmp_path, hosts)
    repository = {'type': 'local', 'path': str(tmp_path / 'repository')}
    good = run_playbook('backup.yml', inventory, limit='blog')
    assert good.returncode == 0, good.stdout + good.stderr
    failed = run_playbook('backup.yml', inventory, limit='broken')
    assert failed.returncode != 0 and "failed in 'Dump the database'" in failed.stdout, failed.stdout
    # A backup killed after it began: its staging area stays behind, its lock goes stale.
    killed = run_module('cairn_restore_point', repository=repository, instance='blog', lock_stale_after=1)
    assert killed['changed'] and not killed.failed, killed
    info = run_module('cairn_backup_info', repository=repository, instance='blog', restore_point='latest')
    assert not info.failed, info
    assert len(info['failed_runs']) == 1 and info['last_failed_run']['error']['task'] == 'Dump the database'
    assert info['status']['last_backup_failed'] is True and info['status']['locked'] is True
    newest = info['restore_point']['id']

    # Restore into a new home: works, and says that a later backup failed.
    restore = run_playbook('restore.yml', inventory, limit='target', extra=['-v'])
    assert restore.returncode == 0, restore.stdout + restore.stderr
    assert 'checks passed; NOTE: 1 later backup(s) of blog failed, the newest %s' % info['failed_runs'][0] \
        in restore.stdout, restore.stdout
    assert 'a later backup of blog than restore point %s failed' % newest in restore.stderr
    assert len(os.listdir(target / 'uploads')) == 6

    # A clone: works, and warns the same way.
    clone = run_playbook('clone.yml', inventory, limit='staging')
    assert clone.returncode == 0, clone.stdout + clone.stderr
    assert 'a later backup of blog than restore point %s failed' % newest in clone.stderr
    assert recap(clone.stdout, 'staging')['failed'] == 0
    # No reader claim is left behind by either.
    assert os.listdir(os.path.join(repository['path'], 'blog', 'readers')) == []

    # Status: one report, and the instance fails because its latest backup failed.
    report_file = tmp_path / 'status.json'
    status = run_playbook('status.yml', inventory, limit='blog',
                          extra=['-e', 'cairn_status_report_file=%s' % report_file])
    assert status.returncode != 0 and recap(status.stdout, 'blog')['failed'] == 1, status.stdout
    [entry] = json.loads(report_file.read_text())['instances']
    assert entry['restore_points'] == 1 and entry['failed_runs'] == 1 and entry['last_backup_failed'] is True
    assert any("the latest backup failed (%s, in 'Dump the database')" % info['failed_runs'][0] in problem
               for problem in entry['problems']), entry

    # The next backup takes over the killed run's stale lock and keeps its log; then status is clean again.
    again = run_playbook('backup.yml', inventory, limit='blog', extra=['-e', 'cairn_lock_stale_after=1'])
    assert again.returncode == 0, again.stdout + again.stderr
    staging_dir = os.path.join(repository['path'], 'blog', 'staging')
    assert os.listdir(staging_dir) == []
    assert killed['restore_point'] in os.listdir(os.path.join(repository['path'], 'blog', 'failed'))
    status = run_playbook('status.yml', inventory, limit='blog')
    assert status.returncode == 0, status.stdout + status.stderr
