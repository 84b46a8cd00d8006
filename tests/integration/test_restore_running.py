# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Restoring a running CMS, through ansible-playbook, against a real Directus 10.0.0 (CairnCMS's fork point) on
SQLite under a service the test controls (cairn_cms_service of kind ``command``: tests/integration/_cmsctl.py,
since systemd is not available here): the CMS is stopped and found down while the restore writes, bootstrapped,
its Redis cache cleared, started and checked; a failure after the stop puts the old state back and starts the
CMS on it; a restore point from a newer migration level is refused with the CMS untouched; an older one is
brought up by bootstrap; a backup in a maintenance window stops and starts the CMS."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys

import pytest

import _directus
import _redis
import _site
from conftest import SHOW_STATS, Gate, custom_stats, run_playbook

NAMESPACE = 'cairn-test-cache'
_health, _ctl, _pid, _wait_healthy = _site.health, _site.ctl, _site.pid, _site.wait_healthy


class Instance(_site.Site):
    """A bootstrapped Directus in ``workdir``, run by the test's service manager."""

    def titles(self, **params):
        items = _directus.request_json('GET', self.url + '/items/articles', self.token, params=dict(params, sort='id'))
        return [item['title'] for item in items]

    def file_ids(self):
        return sorted(row['id'] for row in _directus.request_json('GET', self.url + '/files', self.token,
                                                                  params={'fields': 'id'}))

    def sql(self, statement, args=()):
        with sqlite3.connect(str(self.workdir / _directus.DB_FILENAME)) as db:
            rows = db.execute(statement, args).fetchall()
        db.close()
        return rows

    def migrations(self):
        return [row[0] for row in self.sql('SELECT version FROM directus_migrations ORDER BY version')]


@pytest.fixture
def world(tmp_path):
    started = []

    def instance(name, env=None, seed=True):
        made = Instance(tmp_path / name, env).start()
        started.append(made)
        if seed:
            _directus.create_collection(made.url, made.token, 'articles')
            for number in range(3):
                _directus.create_item(made.url, made.token, 'articles', {'title': 'Article %d' % number})
            _directus.upload_file(made.url, made.token, 'notes.txt', b'kept in the restore point\n' * 50,
                                  'text/plain')
        return made

    def inventory(instance, **variables):
        """An inventory of one host, ``cms``, for ``instance`` (its CMS a service of the test's)."""
        path = tmp_path / 'inventory.json'
        host = {'ansible_connection': 'local', 'ansible_python_interpreter': sys.executable,
                'cairn_repository': {'type': 'local', 'path': str(tmp_path / 'repository')},
                'cairn_env_file': str(instance.workdir / '.env'), 'cairn_instance': 'cms',
                'cairn_cms_service': instance.service(),
                'cairn_cms_command': [_directus._node(), str(_directus.ensure_installed())]}
        host.update(variables)
        path.write_text(json.dumps({'all': {'hosts': {'cms': host}}}))
        return str(path)

    def play(playbook, instance, check=False, **variables):
        """Run ``playbook`` on one host for ``instance``; (the run, what it published for AWX)."""
        run = run_playbook(playbook, inventory(instance, **variables), check=check, environ=SHOW_STATS)
        return run, custom_stats(run.stdout)

    try:
        yield {'base': tmp_path, 'instance': instance, 'inventory': inventory, 'play': play}
    finally:
        for made in started:
            made.stop()


def test_restore_into_a_running_instance_stops_restores_bootstraps_clears_the_cache_and_starts(world, tmp_path):
    with _redis.Redis() as redis:
        cms = world['instance']('prod', {'CACHE_ENABLED': 'true', 'CACHE_STORE': 'redis', 'CACHE_REDIS': redis.url,
                                         'CACHE_NAMESPACE': NAMESPACE, 'CACHE_TTL': '1h', 'CACHE_AUTO_PURGE': 'false'})
        backup, _stats = world['play']('backup.yml', cms, cairn_cms_service={})
        assert backup.returncode == 0, backup.stdout + backup.stderr
        point_titles, point_files = cms.titles(), cms.file_ids()

        # After the restore point: one item changed, one added, a file added; read once in a query of its own, so
        # that the cache holds the answer (the first query's answer is cached from before the change).
        _directus.request_json('PATCH', cms.url + '/items/articles/1', cms.token, json_body={'title': 'Changed'})
        _directus.create_item(cms.url, cms.token, 'articles', {'title': 'Added later'})
        _directus.upload_file(cms.url, cms.token, 'later.txt', b'not in the restore point\n', 'text/plain')
        assert cms.titles() == point_titles  # served from the cache
        assert cms.titles(limit=100) == ['Changed', 'Article 1', 'Article 2', 'Added later']
        assert any(key.startswith(NAMESPACE) for key in redis.command('KEYS', '*'))
        redis.command('SET', 'another-app:keep', '1')
        pid = _pid(cms.workdir)

        inventory = world['inventory'](cms, cairn_restore_replace=True, cairn_verify_http={
            'url': cms.url, 'email': cms.settings['ADMIN_EMAIL'], 'password': cms.settings['ADMIN_PASSWORD'],
            'collections': ['articles']})
        gate = Gate('restore.yml', inventory, 'Restore the database and the file bytes', tmp_path / 'gate')
        gate.wait()
        # While the restore writes, the CMS is down: no answer on its URL, no process of the service.
        down = (_health(cms.url), cms.running)
        gate.release()
        run = gate.finish()
        assert run.returncode == 0, run.stdout
        assert down == (None, False)

        assert cms.titles(limit=100) == point_titles  # not the answer cached before the restore
        assert cms.file_ids() == point_files
        assert _pid(cms.workdir) != pid and cms.running
        keys = redis.command('KEYS', '*')
        assert 'another-app:keep' in keys
        assert 'CMS stopped, 0 migration(s) run by bootstrap, running again' in run.stdout, run.stdout
        checked = run.stdout.split('TASK [cairncms.ops.restore : Check the running instance over HTTP]', 1)[1]
        assert checked.split('TASK [', 1)[0].strip(' *\n').startswith('ok: [cms]'), run.stdout
        passed = [line for line in run.stdout.splitlines() if 'checks passed' in line]
        assert passed and ' of 0 checks' not in passed[0], run.stdout


def test_a_failure_after_the_stop_puts_the_old_state_back_and_starts_the_cms(world):
    cms = world['instance']('prod')
    backup, _stats = world['play']('backup.yml', cms, cairn_cms_service={})
    assert backup.returncode == 0, backup.stdout + backup.stderr
    _directus.create_item(cms.url, cms.token, 'articles', {'title': 'Added later'})
    _directus.upload_file(cms.url, cms.token, 'later.txt', b'not in the restore point\n', 'text/plain')
    before_titles, before_files = cms.titles(), cms.file_ids()
    assert len(before_files) == 2

    # The restore writes, bootstraps and starts, then its HTTP check fails (a wrong password): a failure after the
    # stop, with the restored data in place and the CMS running on it.
    run, stats = world['play']('restore.yml', cms, cairn_restore_replace=True,
                               cairn_verify_http={'url': cms.url, 'email': cms.settings['ADMIN_EMAIL'],
                                                  'password': 'not-the-password'})
    assert run.returncode != 0
    result = stats['cairn_restore']['cms']
    assert result['outcome'] == 'failed', result
    assert result['failed_step'] == 'Check the running instance over HTTP', result
    assert result['cms']['rolled_back'] is True and result['cms']['running'] is True, result
    assert result['cms']['safety_point'], result
    assert 'the instance was put back from safety restore point %s, and the CMS runs again' % (
        result['cms']['safety_point']) in result['error'], result['error']
    cms.token = _directus.login(cms.url, cms.settings['ADMIN_EMAIL'], cms.settings['ADMIN_PASSWORD'])
    assert cms.titles() == before_titles and cms.file_ids() == before_files
    assert 'not-the-password' not in run.stdout + run.stderr


def test_a_cms_that_cannot_start_again_is_said_to_be_left_stopped(world):
    cms = world['instance']('prod')
    backup, _stats = world['play']('backup.yml', cms, cairn_cms_service={})
    assert backup.returncode == 0, backup.stdout + backup.stderr
    _directus.create_item(cms.url, cms.token, 'articles', {'title': 'Added later'})
    before = cms.sql('SELECT title FROM articles ORDER BY id')

    run, stats = world['play']('restore.yml', cms, cairn_restore_replace=True,
                               cairn_cms_service=cms.service(start=['/bin/false'], start_timeout=5))
    assert run.returncode != 0
    result = stats['cairn_restore']['cms']
    assert result['cms']['running'] is False and result['cms']['rolled_back'] is True, result
    assert 'THE CMS IS LEFT STOPPED: starting it again failed' in result['error'], result['error']
    assert not cms.running and _health(cms.url) is None
    assert cms.sql('SELECT title FROM articles ORDER BY id') == before


def test_a_restore_point_from_a_newer_cms_is_refused_before_anything_stops(world):
    cms = world['instance']('prod')
    cms.sql("INSERT INTO directus_migrations (version, name, timestamp) VALUES ('20991231A', 'From the future', "
            "'2099-12-31 00:00:00')")
    backup, _stats = world['play']('backup.yml', cms, cairn_cms_service={})
    assert backup.returncode == 0, backup.stdout + backup.stderr
    cms.sql("DELETE FROM directus_migrations WHERE version = '20991231A'")
    _directus.create_item(cms.url, cms.token, 'articles', {'title': 'Added later'})
    pid, before = _pid(cms.workdir), cms.sql('SELECT title FROM articles ORDER BY id')

    run, stats = world['play']('restore.yml', cms, cairn_restore_replace=True)
    assert run.returncode != 0
    result = stats['cairn_restore']['cms']
    assert 'is at migration 20991231A' in result['error'] and 'upgrade the target' in result['error'], result
    assert result['cms']['was_running'] is None and result['cms']['safety_point'] is None, result
    assert _pid(cms.workdir) == pid and _health(cms.url) == 'ok'
    assert cms.sql('SELECT title FROM articles ORDER BY id') == before


def test_an_older_restore_point_is_brought_up_by_bootstrap(world):
    old = world['instance']('old')
    old.stop()
    known = old.migrations()
    cli = [_directus._node(), str(_directus.ensure_installed())]
    for _round in range(2):  # a real older schema: the newest two migrations taken down by the CMS itself
        down = subprocess.run(cli + ['database', 'migrate:down'], cwd=old.workdir, env=_directus._child_env(),
                              capture_output=True, text=True, check=False)
        assert down.returncode == 0, down.stdout + down.stderr
    assert old.migrations() == known[:-2]
    backup, _stats = world['play']('backup.yml', old, cairn_cms_service={}, cairn_instance='old')
    assert backup.returncode == 0, backup.stdout + backup.stderr

    cms = world['instance']('prod', seed=False)
    run, stats = world['play']('restore.yml', cms, cairn_restore_replace=True, cairn_restore_from='old',
                               cairn_verify_http={'url': cms.url, 'email': old.settings['ADMIN_EMAIL'],
                                                  'password': old.settings['ADMIN_PASSWORD']})
    assert run.returncode == 0, run.stdout
    result = stats['cairn_restore']['cms']
    assert result['cms']['migrations_ran'] == known[-2:], result['cms']
    assert cms.migrations() == known and _health(cms.url) == 'ok'
    cms.token = _directus.login(cms.url, old.settings['ADMIN_EMAIL'], old.settings['ADMIN_PASSWORD'])
    assert cms.titles() == ['Article 0', 'Article 1', 'Article 2']


def test_a_backup_in_a_maintenance_window_stops_and_always_starts_the_cms(world, tmp_path):
    cms = world['instance']('prod')
    pid = _pid(cms.workdir)
    run, stats = world['play']('backup.yml', cms, cairn_backup_window='stop')
    assert run.returncode == 0, run.stdout
    result = stats['cairn_backup']['cms']
    assert result['window'] == 'stop' and result['window_down_s'] > 0, result
    assert _pid(cms.workdir) != pid and _health(cms.url) == 'ok'
    [point] = os.listdir(tmp_path / 'repository' / 'cms' / 'points')
    manifest = json.loads((tmp_path / 'repository' / 'cms' / 'points' / point / 'manifest.json').read_text())
    assert manifest['cms']['window'] == 'stopped' and manifest['cms']['version'] == '10.0.0', manifest['cms']

    # A backup that fails inside the window still starts the CMS again.
    (tmp_path / 'not-a-directory').write_text('')
    pid = _pid(cms.workdir)
    failed, _stats = world['play']('backup.yml', cms, cairn_backup_window='stop',
                                   cairn_repository={'type': 'local', 'path': str(tmp_path / 'not-a-directory')})
    assert failed.returncode != 0
    assert _pid(cms.workdir) != pid and _health(cms.url) == 'ok'

    # Without a way to stop the CMS, the window is refused, naming the fix.
    refused, _stats = world['play']('backup.yml', cms, cairn_backup_window='stop', cairn_cms_service={})
    assert refused.returncode != 0 and 'cairn_cms_service is not set' in refused.stdout
