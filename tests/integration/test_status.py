# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The status role over a small fleet: one report of every instance on the controller, and the instances
without a recent restore point or with a failed drill fail."""

from __future__ import annotations

import json
import time

import demo_instance
from conftest import recap, run_module, run_playbook, write_inventory


def test_fleet_status_report_and_failures(tmp_path):
    hosts = {}
    for name in ('blog', 'shop', 'empty'):
        demo_instance.populated(str(tmp_path / name))
        hosts[name] = {'cairn_env_file': str(tmp_path / name / '.env')}
    repository = str(tmp_path / 'repository')
    inventory = write_inventory(str(tmp_path / 'inventory.json'), hosts, repository)
    backup = run_playbook('backup.yml', inventory, limit='blog,shop')
    assert backup.returncode == 0, backup.stdout + backup.stderr
    # A failed drill of shop, recorded as the drill role records it.
    point = run_module('cairn_backup_info', repository={'type': 'local', 'path': repository}, instance='shop',
                       restore_point='latest')['restore_point']
    drill = run_module('cairn_drill_record', repository={'type': 'local', 'path': repository}, instance='shop',
                       restore_point=point['id'], started_at=point['finished_at'], fail_on_problems=False,
                       checks=[{'name': 'http login', 'ok': False, 'detail': 'HTTP 401'}])
    assert drill['changed'] and not drill['ok'], drill
    report_file = tmp_path / 'status.json'
    run = run_playbook('status.yml', inventory, extra=['-e', 'cairn_status_report_file=%s' % report_file])
    assert run.returncode != 0
    assert (recap(run.stdout, 'blog')['failed'], recap(run.stdout, 'shop')['failed'],
            recap(run.stdout, 'empty')['failed']) == (0, 1, 1), run.stdout
    report = json.loads(report_file.read_text())
    by_name = {entry['instance']: entry for entry in report['instances']}
    assert sorted(report['problems']) == ['empty', 'shop']
    assert by_name['blog']['problems'] == [] and by_name['blog']['restore_points'] == 1
    # Never re-hashed by cairn_repository_check: unknown, not a problem.
    assert by_name['blog']['newest_point_verified_ok'] is None and 0 <= by_name['blog']['newest_point_age_s'] < 600
    assert by_name['shop']['last_drill_ok'] is False
    assert by_name['shop']['problems'] == ['the last restore drill failed: failed checks: http login']
    assert by_name['empty']['problems'] == ['no restore point'] and by_name['empty']['newest_point'] is None
    # An age limit the restore points are over, and a drill required of every instance.
    time.sleep(1.2)
    run = run_playbook('status.yml', inventory, limit='blog', extra=[
        '-e', 'cairn_status_report_file=%s' % report_file, '-e', 'cairn_status_max_point_age=1',
        '-e', 'cairn_status_max_drill_age=86400'])
    assert run.returncode != 0
    [blog] = json.loads(report_file.read_text())['instances']
    assert blog['problems'][0].startswith('the newest restore point is') and 'over the limit of 1 s' in blog['problems'][0]
    assert blog['problems'][1] == 'no restore drill in the last 86400 s'
