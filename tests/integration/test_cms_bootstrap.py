# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""cairn_cms_bootstrap and cairn_cms_info through ansible-playbook against a real Directus 10.0.0 (CairnCMS's fork
point) on SQLite: a database taken two migrations down by the CMS itself is brought up by its bootstrap, which runs
exactly those two, and the CMS then starts healthy; check mode and a second run change nothing; a failing or
hanging bootstrap fails the task with its output, secrets masked, and leaves no process behind; the install's
migrations are those the CMS applies, a level it does not know is refused and its own accepted, and its version
comes from /server/info when there is no install to read; with CACHE_STORE=redis (a throwaway redis-server) the
keys Directus itself wrote are removed and the keys of others stay. cairn_backup records the CMS's name, version
and window in the manifest (and cairn_backup_info lists them); a CMS it cannot describe is a warning."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time

import pytest

import _directus
import _redis
from conftest import ROOT, _env, processes_under, run_module

SMTP_PASSWORD = 'Smtp-Secret-Pw-9041'


def _migrations(workdir):
    with sqlite3.connect(str(workdir / _directus.DB_FILENAME)) as db:
        rows = db.execute('SELECT version FROM directus_migrations ORDER BY version').fetchall()
    db.close()
    return [row[0] for row in rows]


def _cli():
    return [_directus._node(), str(_directus.ensure_installed())]


def play(tmp_path, module, args, check=False):
    """Run ``module`` with ``args`` in a playbook on localhost; (its registered result, the run)."""
    out = tmp_path / ('result-%d.json' % time.monotonic_ns())
    playbook = [{'hosts': 'cms', 'gather_facts': False, 'tasks': [
        {'name': 'Run %s' % module, 'cairncms.ops.%s' % module: args, 'register': 'out', 'ignore_errors': True,
         'check_mode': check},
        {'name': 'Keep its result', 'ansible.builtin.copy': {'content': '{{ out | to_json }}', 'dest': str(out)},
         'check_mode': False},
    ]}]
    (tmp_path / 'play.yml').write_text(json.dumps(playbook))
    (tmp_path / 'inventory.json').write_text(json.dumps({'all': {'hosts': {'cms': {
        'ansible_connection': 'local', 'ansible_python_interpreter': sys.executable}}}}))
    run = subprocess.run([os.path.join(os.path.dirname(sys.executable), 'ansible-playbook'), '-i',
                          str(tmp_path / 'inventory.json'), str(tmp_path / 'play.yml')], capture_output=True,
                         text=True, env=_env(), cwd=ROOT, timeout=900, check=False)
    assert run.returncode == 0, run.stdout + run.stderr
    return json.loads(out.read_text()), run


@pytest.fixture(scope='module')
def known(tmp_path_factory):
    """The migrations a freshly bootstrapped Directus 10.0.0 database has: every one the install knows."""
    workdir = tmp_path_factory.mktemp('fresh')
    _directus.bootstrap(workdir)
    return _migrations(workdir)


def test_bootstrap_runs_exactly_the_migrations_an_older_database_lacks(tmp_path, known):
    workdir = tmp_path / 'cms'
    settings = _directus.bootstrap(workdir, {'EMAIL_SMTP_PASSWORD': SMTP_PASSWORD})
    for _step in range(2):  # a real older schema: the CMS takes its newest two migrations down itself
        down = subprocess.run(_cli() + ['database', 'migrate:down'], cwd=workdir, env=_directus._child_env(),
                              capture_output=True, text=True, check=False)
        assert down.returncode == 0, down.stdout + down.stderr
    assert _migrations(workdir) == known[:-2]
    args = {'env_file': str(workdir / '.env'), 'command': _cli()}

    planned, _run = play(tmp_path, 'cairn_cms_bootstrap', args, check=True)
    assert not planned.get('failed'), planned
    assert (planned['changed'], planned['migrations_ran'], planned['migration_level']) == (False, [], known[-3])
    assert _migrations(workdir) == known[:-2]

    done, run = play(tmp_path, 'cairn_cms_bootstrap', args)
    assert not done.get('failed'), done
    assert done['changed'] is True and done['migrations_ran'] == known[-2:]
    assert (done['migrations_before_level'], done['migration_level']) == (known[-3], known[-1])
    assert done['cache'] == {'store': 'memory', 'namespace': 'system-cache', 'keys_removed': 0,
                             'note': 'cleared by the restart'}
    assert done['duration_s'] > 0 and 'output_tail' in done  # (LOG_LEVEL=warn: the CLI says little)
    assert _migrations(workdir) == known
    for secret in (settings['SECRET'], settings['ADMIN_PASSWORD'], SMTP_PASSWORD):
        assert secret not in run.stdout + run.stderr

    again, _run = play(tmp_path, 'cairn_cms_bootstrap', args)
    assert (again['changed'], again['migrations_ran'], again['migration_level']) == (False, [], known[-1])

    with _directus.running(workdir) as url:
        assert _directus._health(url) == 'ok'
        token = _directus.login(url, settings['ADMIN_EMAIL'], settings['ADMIN_PASSWORD'])
        assert _directus.request_json('GET', url + '/server/info', token)['directus']['version'] == '10.0.0'


def test_a_failing_or_hanging_bootstrap_fails_with_its_output_masked(tmp_path):
    workdir = tmp_path / 'cms'
    settings = _directus.bootstrap(workdir, {'EMAIL_SMTP_PASSWORD': SMTP_PASSWORD})
    migrations = workdir / 'extensions' / 'migrations'
    migrations.mkdir(parents=True)
    # A custom migration of the instance (the CMS runs those too) that fails, printing a secret of the .env.
    (migrations / '20991231A-break.js').write_text(
        "exports.up = async function () { throw new Error('migration broke near %s'); };\n"
        "exports.down = async function () {};\n" % SMTP_PASSWORD)
    args = {'env_file': str(workdir / '.env'), 'command': _cli(), 'timeout': 300}
    failed, run = play(tmp_path, 'cairn_cms_bootstrap', args)
    assert failed['failed'] is True
    assert "the CMS's bootstrap (%s bootstrap, in %s) failed (exit 1)" % (' '.join(_cli()), workdir) in failed['msg']
    assert 'migration broke near ********' in failed['msg'], failed['msg']
    assert failed['migrations_ran'] == [] and failed['migrations_before_level'] == _migrations(workdir)[-1]
    assert SMTP_PASSWORD not in run.stdout + run.stderr and settings['SECRET'] not in run.stdout + run.stderr

    # One that never ends is killed at the timeout, with what it started.
    (migrations / '20991231A-break.js').write_text(
        "exports.up = function () { setInterval(function () {}, 1000); return new Promise(function () {}); };\n"
        "exports.down = async function () {};\n")
    started = time.monotonic()
    hung, _run = play(tmp_path, 'cairn_cms_bootstrap', dict(args, timeout=8))
    assert hung['failed'] is True and 'ran longer than its timeout of 8 s and was stopped' in hung['msg'], hung
    assert time.monotonic() - started < 120
    assert processes_under(workdir) == []


def test_cms_info_knows_what_the_install_applies_and_refuses_what_it_does_not(tmp_path, known):
    args = {'command': _cli()}
    info, _run = play(tmp_path, 'cairn_cms_info', dict(args, restore_point_level=known[-1]))
    assert not info.get('failed'), info
    assert (info['name'], info['version'], info['source'], info['install_dir']) == (
        'directus', '10.0.0', 'package.json', str(_directus.PACKAGE_DIR))
    assert (info['known_level'], info['migrations_known'], info['unknown_migrations']) == (known[-1], len(known), [])
    older, _run = play(tmp_path, 'cairn_cms_info', dict(args, restore_point_level=known[-3]))
    assert older['unknown_migrations'] == [] and not older.get('failed')

    refused, _run = play(tmp_path, 'cairn_cms_info', dict(args, restore_point_level='20991231A',
                                                          restore_point='20260101T000000.000Z-abcdef'))
    assert refused['failed'] is True
    assert refused['msg'] == (
        'restore point 20260101T000000.000Z-abcdef is at migration 20991231A, which directus 10.0.0 at %s does not '
        'know (newest it knows: %s); upgrade the target CMS first, then restore' % (_directus.PACKAGE_DIR, known[-1]))
    warned, run = play(tmp_path, 'cairn_cms_info', dict(args, restore_point_level='20991231A', refuse_unknown=False))
    assert not warned.get('failed') and warned['unknown_migrations'] == ['20991231A']
    assert 'going on anyway (refuse_unknown is off)' in run.stdout + run.stderr

    # Without an install to read, the running CMS says its version to an admin.
    workdir = tmp_path / 'cms'
    settings = _directus.bootstrap(workdir)
    with _directus.running(workdir) as url:
        token = _directus.login(url, settings['ADMIN_EMAIL'], settings['ADMIN_PASSWORD'])
        asked, run = play(tmp_path, 'cairn_cms_info', {'install_dir': str(tmp_path / 'nothing'), 'url': url,
                                                       'token': token, 'restore_point_level': known[-1]})
    assert not asked.get('failed'), asked
    assert (asked['name'], asked['version'], asked['source'], asked['known_level']) == (
        'directus', '10.0.0', 'server/info', None)
    assert asked['unknown_migrations'] is None and 'does not exist' in asked['note']
    assert token not in run.stdout + run.stderr


def test_the_keys_directus_wrote_in_redis_are_removed_and_others_stay(tmp_path):
    namespace = 'cairn-boot-cache'
    with _redis.Redis() as redis:
        workdir = tmp_path / 'cms'
        settings = _directus.bootstrap(workdir, {
            'CACHE_ENABLED': 'true', 'CACHE_STORE': 'redis', 'CACHE_REDIS': redis.url, 'CACHE_NAMESPACE': namespace,
            'CACHE_TTL': '1h', 'CACHE_SCHEMA': 'true', 'CACHE_PERMISSIONS': 'true', 'CACHE_AUTO_PURGE': 'false'})
        with _directus.running(workdir) as url:
            token = _directus.login(url, settings['ADMIN_EMAIL'], settings['ADMIN_PASSWORD'])
            _directus.create_collection(url, token, 'articles')
            _directus.create_item(url, token, 'articles', {'title': 'Cached'})
            for _read in range(2):
                _directus.request_json('GET', url + '/items/articles', token)
        written = redis.command('KEYS', '*')
        ours = [key for key in written if key.startswith((namespace + ':', namespace + '_', 'namespace:' + namespace))]
        assert ours == written and any(key.startswith(namespace + ':') for key in ours), written  # the data cache
        assert 'namespace:%s' % namespace in ours
        for key in ('another-app:keep', namespace + '2:keep', 'namespace:%s2' % namespace):
            redis.command('SET', key, '1')

        args = {'env_file': str(workdir / '.env'), 'command': _cli()}
        planned, _run = play(tmp_path, 'cairn_cms_bootstrap', args, check=True)
        assert planned['cache']['keys_removed'] == len(ours) and planned['changed'] is True
        assert len(redis.command('KEYS', '*')) == len(ours) + 3

        done, run = play(tmp_path, 'cairn_cms_bootstrap', args)
        assert not done.get('failed'), done
        assert done['migrations_ran'] == [] and done['changed'] is True
        assert done['cache'] == {'store': 'redis', 'namespace': namespace, 'keys_removed': len(ours),
                                 'server': 'redis://127.0.0.1:%d/0' % redis.port}
        assert sorted(redis.command('KEYS', '*')) == sorted(['another-app:keep', namespace + '2:keep',
                                                             'namespace:%s2' % namespace])
        assert redis.password not in run.stdout + run.stderr


def test_the_backup_records_the_cms_and_a_cms_it_cannot_describe_is_a_warning(source, repo, tmp_path):
    args = {'env_file': str(source / '.env'), 'repository': repo, 'instance': 'blog', 'posture': False}
    made = run_module('cairn_backup', **dict(args, cms={'command': _cli(), 'token': 'Tok-Secret-77',
                                                        'window': 'stopped'}))
    assert not made.failed, made
    assert made['cms'] == {'name': 'directus', 'version': '10.0.0', 'source': 'package.json', 'window': 'stopped'}
    points = os.path.join(repo['path'], 'blog', 'points')
    manifest = json.loads(open(os.path.join(points, made['restore_point'], 'manifest.json')).read())
    assert {key: manifest['cms'].get(key) for key in ('name', 'version', 'source', 'window')} == made['cms']
    assert 'Tok-Secret-77' not in json.dumps(made) + json.dumps(manifest)
    listed = run_module('cairn_backup_info', repository=repo, instance='blog')
    [entry] = [point for point in listed['restore_points'] if point['id'] == made['restore_point']]
    assert (entry['cms_name'], entry['cms_version']) == ('directus', '10.0.0')

    blind = run_module('cairn_backup', **dict(args, cms={'install_dir': str(tmp_path / 'no-cms')}))
    assert not blind.failed and blind['made'], blind
    assert blind['cms'] == {'window': 'running'}
    assert "the CMS's name and version are not recorded in the restore point: the install directory" in json.dumps(
        blind['warnings']), blind
