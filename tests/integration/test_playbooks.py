# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The playbooks and roles for real: ansible-playbook against local hosts."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import demo_instance
from conftest import ROOT, recap, run_playbook, write_inventory


def hosts(source, target, **extra):
    return {
        'blog': {'cairn_env_file': str(source / '.env')},
        'clone': dict({'cairn_env_file': str(target / '.env'), 'cairn_restore_from': 'blog'}, **extra),
    }


def secret_of(env_file):
    for line in open(env_file, encoding='utf-8'):
        if line.startswith('SECRET='):
            return line.split('=', 1)[1].strip().strip('"')
    raise AssertionError('no SECRET in %s' % env_file)


def test_backup_then_restore_another_host_then_idempotent(source, target, repo, tmp_path):
    inventory = write_inventory(str(tmp_path / 'inventory.json'), hosts(source, target), repo['path'])
    backup = run_playbook('backup.yml', inventory, limit='blog', extra=['-vvv'])
    assert backup.returncode == 0, backup.stdout + backup.stderr
    assert recap(backup.stdout, 'blog')['failed'] == 0
    points = os.listdir(os.path.join(repo['path'], 'blog', 'points'))
    assert len(points) == 1
    restore = run_playbook('restore.yml', inventory, limit='clone', extra=['-vvv'])
    assert restore.returncode == 0, restore.stdout + restore.stderr
    assert '5 of 5 checks passed' in restore.stdout
    assert (target / 'data.db').exists() and len(os.listdir(target / 'uploads')) == 6
    # Secrets of both instances appear nowhere, even at -vvv.
    for secret in (secret_of(source / '.env'), secret_of(target / '.env')):
        assert secret not in backup.stdout + backup.stderr + restore.stdout + restore.stderr
        for directory, _subdirs, files in os.walk(repo['path']):
            for name in files:
                assert secret.encode() not in open(os.path.join(directory, name), 'rb').read()
    again = run_playbook('restore.yml', inventory, limit='clone')
    assert again.returncode == 0, again.stdout + again.stderr
    assert recap(again.stdout, 'clone')['changed'] == 0, again.stdout


def test_check_mode_changes_nothing(source, target, repo, tmp_path):
    inventory = write_inventory(str(tmp_path / 'inventory.json'), hosts(source, target), repo['path'])
    dry = run_playbook('backup.yml', inventory, limit='blog', check=True)
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert not os.path.exists(repo['path'])
    assert run_playbook('backup.yml', inventory, limit='blog').returncode == 0
    dry = run_playbook('restore.yml', inventory, limit='clone', check=True)
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert recap(dry.stdout, 'clone')['changed'] == 1  # the database and the files: one cairn_restore run
    assert not (target / 'data.db').exists() and os.listdir(target / 'uploads') == []


def test_restore_into_a_different_instance_is_refused_without_replace(source, repo, tmp_path):
    other = tmp_path / 'other'
    demo_instance.populated(str(other), files=2, seed=5)
    before = (other / 'data.db').read_bytes(), sorted(os.listdir(other / 'uploads'))
    inventory = write_inventory(str(tmp_path / 'inventory.json'), hosts(source, other), repo['path'])
    assert run_playbook('backup.yml', inventory, limit='blog').returncode == 0
    refused = run_playbook('restore.yml', inventory, limit='clone')
    assert refused.returncode != 0
    assert 'Set replace (cairn_restore_replace: true)' in refused.stdout
    assert ((other / 'data.db').read_bytes(), sorted(os.listdir(other / 'uploads'))) == before
    replaced = run_playbook('restore.yml', inventory, limit='clone', extra=['-e', 'cairn_restore_replace=true'])
    assert replaced.returncode == 0, replaced.stdout + replaced.stderr
    assert len(os.listdir(other / 'uploads')) == 6


def test_failed_backup_is_not_a_restore_point_and_keeps_its_log(source, target, repo, tmp_path):
    inventory = write_inventory(str(tmp_path / 'inventory.json'),
                                hosts(source, target, cairn_instance='clone'), repo['path'])
    # The clone has no database yet: the dump fails after the restore point was begun.
    failed = run_playbook('backup.yml', inventory, limit='clone')
    assert failed.returncode != 0
    assert "failed in 'Dump the database'" in failed.stdout, failed.stdout
    instance_dir = os.path.join(repo['path'], 'clone')
    assert os.listdir(os.path.join(instance_dir, 'points')) == []
    assert os.listdir(os.path.join(instance_dir, 'staging')) == []
    [failed_id] = os.listdir(os.path.join(instance_dir, 'failed'))
    log = json.load(open(os.path.join(instance_dir, 'failed', failed_id, 'error.json')))
    assert log['error']['task'] == 'Dump the database' and 'does not exist' in log['error']['msg']


def test_invalid_inventory_is_caught_by_the_argument_spec(source, target, repo, tmp_path):
    inventory = write_inventory(str(tmp_path / 'inventory.json'), hosts(source, target), repo['path'])
    bad = run_playbook('backup.yml', inventory, limit='blog', extra=['-e', 'cairn_backup_compression=gzip'])
    assert bad.returncode != 0 and 'cairn_backup_compression' in bad.stdout and 'gzip' in bad.stdout


def test_collection_builds_and_installs(tmp_path):
    galaxy = os.path.join(os.path.dirname(sys.executable), 'ansible-galaxy')
    build = subprocess.run([galaxy, 'collection', 'build', '--output-path', str(tmp_path), ROOT],
                           capture_output=True, text=True, cwd=ROOT, check=False)
    assert build.returncode == 0, build.stdout + build.stderr
    [tarball] = [name for name in os.listdir(tmp_path) if name.endswith('.tar.gz')]
    install = subprocess.run([galaxy, 'collection', 'install', '--force', '-p', str(tmp_path / 'installed'),
                              str(tmp_path / tarball)], capture_output=True, text=True, check=False)
    assert install.returncode == 0, install.stdout + install.stderr
    installed = tmp_path / 'installed' / 'ansible_collections' / 'cairncms' / 'ops'
    for path in ('plugins/modules/cairn_db_dump.py', 'roles/backup/meta/argument_specs.yml', 'playbooks/backup.yml',
                 'docs/restore-point-format.md', 'MANIFEST.json'):
        assert (installed / path).exists(), path
    assert not (installed / '.build').exists() and not (installed / '.venv').exists()
    doc = subprocess.run([os.path.join(os.path.dirname(sys.executable), 'ansible-doc'), 'cairncms.ops.cairn_db_dump'],
                         capture_output=True, text=True, check=False,
                         env=dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(tmp_path / 'installed')))
    assert doc.returncode == 0 and 'online backup API' in doc.stdout, doc.stderr
