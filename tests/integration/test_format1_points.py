# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Restore points of manifest format 1, made by the release before typed parts (tests/fixtures/format1), stay
usable through the playbooks: listed and checked, restored into a new instance (a plain point into a prepared one,
an encrypted point onto a bare host from its captured configuration), and kept apart from the format-2 points that
new backups of the same instance add beside them, until retention prunes them."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3

import demo_instance
from conftest import ROOT, SHOW_STATS, custom_stats, recap, run_module, run_playbook, write_inventory
from demo import digests, table_counts

FIXTURE = os.path.join(ROOT, 'tests', 'fixtures', 'format1')
EXPECTED = json.load(open(os.path.join(FIXTURE, 'expected.json'), encoding='utf-8'))


def fixture_repository(tmp_path):
    path = tmp_path / 'repository'
    shutil.copytree(os.path.join(FIXTURE, 'repository'), path)
    for directory, subdirs, files in os.walk(path):
        os.chmod(directory, 0o700)
        for name in files:
            os.chmod(os.path.join(directory, name), 0o600)
    return str(path)


def originals(directory):
    return {name: digest for name, digest in digests(directory).items() if '__' not in name}


def test_format1_points_are_listed_checked_and_restored(tmp_path):
    repository = fixture_repository(tmp_path)
    identity = os.path.join(FIXTURE, 'test-identity.txt')
    repo = {'type': 'local', 'path': repository}
    for instance in ('blog', 'blog-encrypted'):
        listed = run_module('cairn_backup_info', repository=repo, instance=instance)
        assert not listed.failed, listed
        [point] = listed['restore_points']
        assert point['format_version'] == 1 and point['vendor'] == 'sqlite' and point['files'] == 6, point
        assert point['parts'] == (['database', 'files'] if instance == 'blog' else ['database', 'files', 'secrets'])
        checked = run_module('cairn_repository_check', repository=repo, instance=instance,
                             encryption_identity_file=identity)
        assert not checked.failed and not checked['problems'], checked

    plain, bare = tmp_path / 'plain', tmp_path / 'bare'
    demo_instance.empty(str(plain))
    os.makedirs(bare)
    hosts = {'plain': {'cairn_env_file': str(plain / '.env'), 'cairn_restore_from': 'blog'},
             'bare': {'cairn_env_file': str(bare / '.env'), 'cairn_restore_from': 'blog-encrypted',
                      'cairn_encryption_identity_file': identity}}
    inventory = write_inventory(str(tmp_path / 'inventory.json'), hosts, repository)
    run = run_playbook('restore.yml', inventory, environ=SHOW_STATS)
    assert run.returncode == 0, run.stdout + run.stderr
    stats = custom_stats(run.stdout)['cairn_restore']
    for host, origin, directory in (('plain', 'blog', plain), ('bare', 'blog-encrypted', bare)):
        assert recap(run.stdout, host)['failed'] == 0
        assert (stats[host]['outcome'], stats[host]['restored_from']) == ('succeeded', origin), stats[host]
        assert all(check['ok'] for check in stats[host]['checks']) and len(stats[host]['checks']) >= 5, stats[host]
        assert table_counts(str(directory / 'data.db')) == EXPECTED['tables'], host
        assert originals(str(directory / 'uploads')) == {name: digest for name, digest in EXPECTED['uploads'].items()
                                                         if '__' not in name}, host
    # The bare host got the configuration captured in the point: the KEY of the instance it was made from.
    with open(bare / '.env', encoding='utf-8') as handle:
        assert any(line.startswith('KEY=') and '4ba0fbd6' in line for line in handle)
    again = run_playbook('restore.yml', inventory)
    assert again.returncode == 0 and recap(again.stdout, 'plain')['changed'] == 0, again.stdout


def test_format2_points_join_format1_ones_and_retention_prunes_across(tmp_path):
    repository = fixture_repository(tmp_path)
    source = tmp_path / 'source'
    demo_instance.populated(str(source))
    inventory = write_inventory(str(tmp_path / 'inventory.json'), {'blog': {'cairn_env_file': str(source / '.env')}},
                                repository)
    backup = run_playbook('backup.yml', inventory)
    assert backup.returncode == 0, backup.stdout + backup.stderr
    listed = run_module('cairn_backup_info', repository={'type': 'local', 'path': repository}, instance='blog')
    assert [point['format_version'] for point in listed['restore_points']] == [1, 2], listed
    newest = listed['restore_points'][-1]
    assert newest['parts'][:2] == ['database', 'files'] and 'config' not in newest['parts'], newest
    pruned = run_module('cairn_repository_prune', repository={'type': 'local', 'path': repository}, instance='blog',
                        retention={'keep_last': 1})
    assert not pruned.failed and len(pruned['removed']) == 1, pruned
    # The blobs both points shared stay for the format-2 point, which still restores whole.
    target = tmp_path / 'target'
    demo_instance.empty(str(target))
    inventory = write_inventory(str(tmp_path / 'inventory2.json'), {'clone': {
        'cairn_env_file': str(target / '.env'), 'cairn_restore_from': 'blog'}}, repository)
    restored = run_playbook('restore.yml', inventory)
    assert restored.returncode == 0, restored.stdout + restored.stderr
    assert originals(str(target / 'uploads')) == originals(str(source / 'uploads'))
    with sqlite3.connect(str(target / 'data.db')) as conn:
        assert conn.execute('PRAGMA integrity_check').fetchone()[0] == 'ok'
