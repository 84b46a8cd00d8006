# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The restore_drill role against a real Directus 10.0.0 (CairnCMS's fork point) on SQLite: an encrypted backup
of a running instance is restored into a sandbox, the CMS is started there and checked over HTTP, and the drill
is recorded with its RTO and RPO; failures are recorded too, and the guard keeps a drill off the live instance."""

from __future__ import annotations

import json
import os
import sqlite3
import sys

import pyrage
import pytest

import _directus
import _s3
import demo_instance
from conftest import digest_tree, processes_under, recap, run_module, run_playbook


FLOW, WEBHOOK = _directus.OUTWARD_FLOW, _directus.OUTWARD_WEBHOOK


ECHO_FLOW = {'name': 'echo', 'status': 'active', 'trigger': 'webhook',
             'options': {'method': 'POST', 'async': False, 'return': '$last'}}


def _create_echo_flow(url, token):
    """A webhook flow of the live instance whose one transform operation answers the trigger body's word; the
    drill may run it in its sandbox (cairn_drill_flow), never here."""
    flow = _directus.request_json('POST', url + '/flows', token, json_body=ECHO_FLOW)['id']
    operation = _directus.request_json('POST', url + '/operations', token, json_body={
        'flow': flow, 'key': 'echo', 'name': 'Echo', 'type': 'transform', 'position_x': 19, 'position_y': 1,
        'options': {'json': {'echo': '{{ $trigger.body.word }}', 'from': 'flow'}}})['id']
    _directus.request_json('PATCH', url + '/flows/' + flow, token, json_body={'operation': operation})
    return flow


def _flow_traces(database, flow):
    """What the live instance keeps of a flow: its row, and how often it ran (activity action run)."""
    with sqlite3.connect(str(database)) as db:
        row = db.execute('SELECT status, options, operation FROM directus_flows WHERE id = ?', (flow,)).fetchall()
        runs = db.execute("SELECT COUNT(*) FROM directus_activity WHERE action = 'run' AND item = ?",
                          (flow,)).fetchone()[0]
        drill_flows = db.execute("SELECT COUNT(*) FROM directus_flows WHERE name LIKE 'cairncms.ops%'").fetchone()[0]
    db.close()
    return row, runs, drill_flows


def _live_content(database):
    """The live instance's content, files, users and settings (not its activity log, which its every-minute flow
    writes to while the tests run)."""
    with sqlite3.connect(str(database)) as db:
        found = {table: db.execute('SELECT * FROM %s ORDER BY 1' % table).fetchall()
                 for table in ('articles', 'directus_files', 'directus_users', 'directus_settings', 'directus_flows')}
    db.close()
    return found


def _outward(execute):
    """A scheduled flow and a webhook in the live instance, as a drill must not run them."""
    execute(FLOW)
    execute(WEBHOOK)


def _sqlite_execute(path, statement):
    with sqlite3.connect(str(path)) as db:
        db.execute(statement)
    db.close()


@pytest.fixture(scope='module')
def backed_up(tmp_path_factory):
    """A running Directus with a collection and two files, backed up (encrypted, configuration captured); the
    CMS keeps running while the drills run beside it."""
    base = tmp_path_factory.mktemp('drill')
    source = base / 'source'
    settings = _directus.bootstrap(source, {'SERVE_APP': 'true'})  # the admin app, as a CairnCMS serves it
    identity = pyrage.x25519.Identity.generate()
    key_file = base / 'backup-key.txt'
    key_file.write_text('%s\n' % identity)
    key_file.chmod(0o600)
    repository = {'type': 'local', 'path': str(base / 'repository')}
    with _directus.running(source) as url:
        token = _directus.login(url, settings['ADMIN_EMAIL'], settings['ADMIN_PASSWORD'])
        _directus.seed_drill_content(url, token)
        echo = _create_echo_flow(url, token)
        _outward(lambda statement: _sqlite_execute(source / 'data.db', statement))
        common = {'ansible_connection': 'local', 'ansible_python_interpreter': sys.executable,
                  'cairn_repository': repository, 'cairn_encryption_recipients': [str(identity.to_public())],
                  'cairn_encryption_identity_file': str(key_file), 'cairn_env_file': str(source / '.env'),
                  'cairn_drill_cms_command': [_directus._node(), str(_directus.ensure_installed()), 'start'],
                  'cairn_cms_command': [_directus._node(), str(_directus.ensure_installed())],
                  'cairn_drill_cms_environment': {'NODE_ENV': 'production'},
                  'cairn_drill_http_email': settings['ADMIN_EMAIL'],
                  'cairn_drill_http_password': settings['ADMIN_PASSWORD'],
                  'cairn_drill_collections': ['articles']}
        inventory = base / 'inventory.json'
        inventory.write_text(json.dumps({'all': {'vars': common, 'hosts': {'cms': {}}}}))
        backup = run_playbook('backup.yml', str(inventory))
        assert backup.returncode == 0, backup.stdout + backup.stderr
        yield {'base': base, 'source': source, 'settings': settings, 'repository': repository,
               'key_file': str(key_file), 'common': common, 'url': url, 'echo': echo}


def _drill(backed_up, name, check=False, **variables):
    inventory = backed_up['base'] / ('%s.json' % name)
    variables.setdefault('cairn_drill_dir', str(backed_up['base'] / name))
    variables.setdefault('cairn_drill_report_file', str(backed_up['base'] / ('%s-report.json' % name)))
    inventory.write_text(json.dumps({'all': {'vars': dict(backed_up['common'], **variables),
                                             'hosts': {'cms': {}}}}))
    run = run_playbook('restore_drill.yml', str(inventory), check=check)
    report = variables['cairn_drill_report_file']
    return run, (json.load(open(report)) if os.path.exists(report) else None), variables['cairn_drill_dir']


def test_drill_restores_starts_checks_and_records(backed_up):
    source = backed_up['source']
    before = digest_tree(str(source / 'uploads'))
    live_echo = _flow_traces(source / 'data.db', backed_up['echo'])
    # The live instance's echo flow, run in the sandbox: its answer holds the word sent.
    run, report, sandbox = _drill(backed_up, 'passing', cairn_drill_flow={
        'id': backed_up['echo'], 'payload': {'word': 'granite'}, 'expect': {'echo': 'granite', 'from': 'flow'}})
    assert run.returncode == 0, run.stdout + run.stderr
    assert recap(run.stdout, 'cms')['failed'] == 0
    assert backed_up['settings']['ADMIN_PASSWORD'] not in run.stdout + run.stderr
    assert backed_up['settings']['SECRET'] not in run.stdout + run.stderr
    assert report['ok'] is True and report['problems'] == [], report
    assert report['disabled'] == {'flows': 2, 'webhooks': 1}, report
    passed = {check['name']: check['detail'] for check in report['checks'] if check['ok']}
    for wanted in ('row counts', 'file bytes sha256', 'http health', 'http login', 'http items articles',
                   'http assets sha256', 'http admin app', 'http activity login', 'http flow',
                   'http named flow %s' % backed_up['echo']):
        assert wanted in passed, report['checks']
    assert len(passed) == len(report['checks'])
    assert 'login of %s recorded at' % backed_up['settings']['ADMIN_EMAIL'] in passed['http activity login']
    assert 'answered the nonce' in passed['http flow']
    assert passed['http named flow %s' % backed_up['echo']] == 'flow echo answered as expected'
    # The flows ran in the sandbox only: the live echo flow neither ran nor changed, no drill flow was made here.
    assert _flow_traces(source / 'data.db', backed_up['echo']) == live_echo
    assert live_echo[1:] == (0, 0), live_echo
    # RTO covers restore, start-up and checks; RPO is the age of the restore point when the drill began.
    steps = report['steps']
    assert steps['startup_s'] > 0 and report['rto_s'] > steps['startup_s'], report
    # where the RTO went: the restore, the CMS's bootstrap in the sandbox, its start, the HTTP checks
    assert all(steps[name] > 0 for name in ('database_s', 'files_s', 'bootstrap_s', 'checks_s')), report
    assert report['rto_s'] >= sum(steps.values()), report
    manifest_dir = os.path.join(backed_up['repository']['path'], 'cms', 'points', report['restore_point'])
    manifest = json.load(open(os.path.join(manifest_dir, 'manifest.json')))
    assert 0 <= report['rpo_s'] < 600 and report['restore_point'] == manifest['id']
    # Gone: the sandbox (it held a copy of the secrets) and every process that ran in it.
    assert not os.path.exists(sandbox)
    assert processes_under(sandbox) == []
    # The live instance was not touched and still serves.
    assert digest_tree(str(source / 'uploads')) == before
    with sqlite3.connect(str(source / 'data.db')) as db:
        assert db.execute('SELECT COUNT(*) FROM articles').fetchone()[0] == 4
        assert db.execute('SELECT status FROM directus_flows').fetchall() == [('active',), ('active',)]
    db.close()
    assert json.loads(_directus.request('GET', backed_up['url'] + '/server/health'))['status'] == 'ok'
    # The record is in the repository, where cairn_backup_info finds it.
    info = run_module('cairn_backup_info', repository=backed_up['repository'], instance='cms')
    assert info['last_drill'] == report


def test_a_flow_answering_wrong_fails_the_drill(backed_up):
    """An operator-named flow whose answer is not the expected one fails the drill; the record names the check and
    what differed, and the live instance's flow neither ran nor changed."""
    source = backed_up['source']
    live_echo = _flow_traces(source / 'data.db', backed_up['echo'])
    name = 'http named flow %s' % backed_up['echo']
    run, report, sandbox = _drill(backed_up, 'wrong-answer', cairn_drill_flow={
        'id': backed_up['echo'], 'payload': {'word': 'granite'}, 'expect': {'echo': 'basalt'}})
    assert run.returncode != 0, run.stdout
    assert report['ok'] is False and report['failed_checks'] == [name], report
    failed = [check for check in report['checks'] if check['name'] == name][0]
    assert failed['detail'] == 'flow echo answered something else than expected: echo is "granite", expected "basalt"'
    assert [problem for problem in report['problems'] if name in problem], report
    assert name in run.stdout and backed_up['settings']['ADMIN_PASSWORD'] not in run.stdout + run.stderr
    # The other checks still ran and passed; the sandbox is gone; the live flow is as it was.
    assert {'http admin app', 'http activity login', 'http flow'} <= {c['name'] for c in report['checks'] if c['ok']}
    assert not os.path.exists(sandbox) and processes_under(sandbox) == []
    assert _flow_traces(source / 'data.db', backed_up['echo']) == live_echo


def test_drill_in_check_mode_only_plans(backed_up):
    drills = os.path.join(backed_up['repository']['path'], 'cms', 'drills')
    before = sorted(os.listdir(drills)) if os.path.isdir(drills) else []
    run, report, sandbox = _drill(backed_up, 'checked', check=True)
    assert run.returncode == 0, run.stdout + run.stderr
    assert report is None and not os.path.exists(sandbox)
    assert (sorted(os.listdir(drills)) if os.path.isdir(drills) else []) == before


def test_failed_drills_are_recorded_and_cleaned_up(backed_up):
    # The CMS does not start: the log's end is in the error, and the record says so.
    run, report, sandbox = _drill(backed_up, 'no-start', cairn_drill_cms_command=[
        _directus._node(), '-e', 'console.log("cannot start: missing extension"); process.exit(3)'])
    assert run.returncode != 0
    assert report['ok'] is False and report['steps']['startup_s'] is None, report
    assert 'exited with code 3' in report['problems'][0] and 'missing extension' in report['problems'][0]
    assert not os.path.exists(sandbox)
    # An RPO limit below the restore point's age fails the drill although every check passed.
    run, report, sandbox = _drill(backed_up, 'too-old', cairn_drill_max_rpo=1)
    assert run.returncode != 0 and 'RPO' in run.stdout, run.stdout
    assert report['ok'] is False and report['failed_checks'] == [], report
    assert [problem for problem in report['problems'] if 'cairn_drill_max_rpo' in problem], report
    assert not os.path.exists(sandbox) and processes_under(sandbox) == []
    info = run_module('cairn_backup_info', repository=backed_up['repository'], instance='cms')
    assert info['last_drill']['id'] == report['id'] and info['last_drill']['ok'] is False


def test_the_guard_keeps_a_drill_off_the_live_instance(backed_up):
    source = backed_up['source']
    args = {'repository': backed_up['repository'], 'instance': 'cms',
            'encryption_identity_file': backed_up['key_file'], 'live_env_file': str(source / '.env')}
    sandbox = str(backed_up['base'] / 'guarded')
    live_db = _live_content(source / 'data.db')
    for overrides, wanted in (({'DB_FILENAME': str(source / 'data.db')}, 'would use the database of'),
                              ({'STORAGE_LOCAL_DRIVER': 'local', 'STORAGE_LOCAL_ROOT': str(source / 'uploads')},
                               'storage location local of the drill sandbox is location local of')):
        refused = run_module('cairn_drill_sandbox', path=sandbox, env_overrides=overrides, **args)
        assert refused.failed and wanted in refused['msg'], refused
        assert not os.path.exists(sandbox)
    assert _live_content(source / 'data.db') == live_db
    # Secrets are refused in env_overrides.
    refused = run_module('cairn_drill_sandbox', path=sandbox, env_overrides={'DB_PASSWORD': 'x'}, **args)
    assert refused.failed and 'cairn_drill_env_secret_overrides' in refused['msg']
    # A directory the drill does not own is neither used nor removed.
    os.makedirs(sandbox)
    with open(os.path.join(sandbox, 'keep.txt'), 'w') as handle:
        handle.write('operator data\n')
    for state in ('present', 'absent'):
        refused = run_module('cairn_drill_sandbox', path=sandbox, state=state, **args)
        assert refused.failed and 'not a drill sandbox' in refused['msg'], refused
    assert os.listdir(sandbox) == ['keep.txt']


def test_sandbox_plan_check_mode_and_idempotent_removal(backed_up):
    args = {'repository': backed_up['repository'], 'instance': 'cms',
            'encryption_identity_file': backed_up['key_file']}
    sandbox = str(backed_up['base'] / 'planned')
    plan = run_module('cairn_drill_sandbox', check_mode=True, path=sandbox, port=18555, **args)
    assert not plan.failed and plan['url'] == 'http://127.0.0.1:18555', plan
    assert not os.path.exists(sandbox)
    made = run_module('cairn_drill_sandbox', path=sandbox, **args)
    assert made['changed'] and os.stat(made['env_file']).st_mode & 0o777 == 0o600
    written = open(made['env_file']).read()
    assert 'DB_FILENAME=%s/database/data.db' % sandbox in written
    assert 'STORAGE_LOCAL_ROOT=%s/storage/local' % sandbox in written
    assert 'KEY=%s' % backed_up['settings']['KEY'] in written  # the captured configuration, KEY kept
    assert os.path.isdir(os.path.join(sandbox, 'storage', 'local'))
    assert run_module('cairn_drill_sandbox', path=sandbox, state='absent', **args)['changed']
    assert not os.path.exists(sandbox)
    assert not run_module('cairn_drill_sandbox', path=sandbox, state='absent', **args)['changed']


def test_a_failed_backup_in_the_history_does_not_stop_a_drill(backed_up):
    """After a backup of the instance failed (its log kept in the repository), the drill still restores the
    newest restore point, passes, and says that a later backup failed; no reader claim is left behind."""
    repository = backed_up['repository']
    begun = run_module('cairn_restore_point', repository=repository, instance='cms')
    failed = run_module('cairn_restore_point', repository=repository, instance='cms', state='failed',
                        restore_point=begun['restore_point'],
                        error={'task': 'Dump the database', 'msg': 'the database is locked'})
    assert failed['changed'] and not failed.failed, failed
    run, report, sandbox = _drill(backed_up, 'after-failure')
    assert run.returncode == 0, run.stdout + run.stderr
    assert report['ok'] is True, report
    assert "failed (run %s, in 'Dump the database'): the database is locked" % begun['restore_point'] in run.stderr
    assert os.listdir(os.path.join(repository['path'], 'cms', 'readers')) == []
    assert not os.path.exists(sandbox)
    info = run_module('cairn_backup_info', repository=repository, instance='cms')
    assert not info.failed and info['failed_runs'][-1] == begun['restore_point'], info
    assert info['status']['last_backup_failed'] is True


def test_drill_of_a_postgresql_instance_into_a_scratch_database(tmp_path, postgres_server):
    live = 'cms_live_%s' % tmp_path.name[-8:].replace('-', '_')
    scratch = live + '_drill'
    postgres_server.create_database(live)
    source = tmp_path / 'source'
    try:
        settings = _directus.bootstrap(source, dict(postgres_server.env(database=live), SERVE_APP='true'))
        identity = pyrage.x25519.Identity.generate()
        key_file = tmp_path / 'backup-key.txt'
        key_file.write_text('%s\n' % identity)
        with _directus.running(source) as url:
            token = _directus.login(url, settings['ADMIN_EMAIL'], settings['ADMIN_PASSWORD'])
            _directus.create_collection(url, token, 'articles')
            for number in range(3):
                _directus.create_item(url, token, 'articles', {'title': 'PG article %d' % number})
            _directus.upload_file(url, token, 'notes.txt', b'postgres drill\n' * 50, 'text/plain')
        _outward(lambda statement: postgres_server.sql(statement, live))
        server = {'DB_HOST': postgres_server.host, 'DB_PORT': postgres_server.port, 'DB_USER': postgres_server.user}
        variables = {
            'ansible_connection': 'local', 'ansible_python_interpreter': sys.executable,
            'cairn_repository': {'type': 'local', 'path': str(tmp_path / 'repository')},
            'cairn_encryption_recipients': [str(identity.to_public())],
            'cairn_encryption_identity_file': str(key_file), 'cairn_env_file': str(source / '.env'),
            'cairn_drill_cms_command': [_directus._node(), str(_directus.ensure_installed()), 'start'],
            'cairn_drill_cms_environment': {'NODE_ENV': 'production'},
            'cairn_drill_http_email': settings['ADMIN_EMAIL'], 'cairn_drill_http_password': settings['ADMIN_PASSWORD'],
            'cairn_drill_collections': ['articles'], 'cairn_drill_dir': str(tmp_path / 'sandbox'),
            'cairn_drill_report_file': str(tmp_path / 'report.json'),
            'cairn_drill_env_secret_overrides': {'DB_PASSWORD': postgres_server.password}}
        inventory = tmp_path / 'inventory.json'

        def play(name, **extra):
            inventory.write_text(json.dumps({'all': {'vars': dict(variables, **extra), 'hosts': {'cms': {}}}}))
            return run_playbook(name, str(inventory))

        backup = play('backup.yml')
        assert backup.returncode == 0, backup.stdout + backup.stderr
        # Without a scratch database the drill cannot begin, and says what to set.
        refused = play('restore_drill.yml')
        assert refused.returncode != 0 and 'Set DB_DATABASE' in refused.stdout, refused.stdout
        # The live database as the "scratch" one is refused by the guard.
        refused = play('restore_drill.yml', cairn_drill_env_overrides=dict(server, DB_DATABASE=live))
        assert refused.returncode != 0 and 'would use the database of' in refused.stdout, refused.stdout
        assert postgres_server.password not in refused.stdout + refused.stderr
        drilled = play('restore_drill.yml', cairn_drill_env_overrides=dict(server, DB_DATABASE=scratch))
        assert drilled.returncode == 0, drilled.stdout + drilled.stderr
        report = json.load(open(tmp_path / 'report.json'))
        assert report['ok'], report
        assert {'row counts', 'http login', 'http items articles', 'http assets sha256', 'http admin app',
                'http activity login', 'http flow'} <= {check['name'] for check in report['checks'] if check['ok']}
        assert postgres_server.rows('SELECT COUNT(*) FROM articles', scratch) == [['3']]
        assert postgres_server.rows('SELECT COUNT(*) FROM articles', live) == [['3']]
        # The scratch copy's flows and webhooks are off; the live instance's are not.
        assert report['disabled'] == {'flows': 1, 'webhooks': 1}, report
        for database, status in ((scratch, 'inactive'), (live, 'active')):
            assert postgres_server.rows('SELECT status FROM directus_flows UNION ALL '
                                        'SELECT status FROM directus_webhooks', database) == [[status], [status]]
        assert postgres_server.password not in drilled.stdout + drilled.stderr
        assert not (tmp_path / 'sandbox').exists()
    finally:
        for name in (live, scratch):
            try:
                postgres_server.drop_database(name)
            except Exception:  # the scratch database exists only after a drill got that far
                pass


def test_drill_of_an_instance_whose_uploads_are_in_s3(tmp_path, s3_server, s3_bucket):
    """The live instance keeps its uploads in S3; the drill restores them into a directory of the sandbox and
    the sandbox CMS serves them from there, never touching the bucket."""
    source = tmp_path / 'source'
    storage = {'STORAGE_LOCATIONS': 'cloud', 'STORAGE_CLOUD_DRIVER': 's3', 'STORAGE_CLOUD_BUCKET': s3_bucket,
               'STORAGE_CLOUD_REGION': _s3.REGION, 'STORAGE_CLOUD_ENDPOINT': s3_server.endpoint,
               'STORAGE_CLOUD_FORCE_PATH_STYLE': 'true', 'STORAGE_CLOUD_KEY': _s3.ACCESS_KEY,
               'STORAGE_CLOUD_SECRET': _s3.SECRET_KEY}
    settings = _directus.bootstrap(source, storage)
    identity = pyrage.x25519.Identity.generate()
    key_file = tmp_path / 'backup-key.txt'
    key_file.write_text('%s\n' % identity)
    with _directus.running(source) as url:
        token = _directus.login(url, settings['ADMIN_EMAIL'], settings['ADMIN_PASSWORD'])
        _directus.upload_file(url, token, 'cover.png', demo_instance.png(32, 24, 3), 'image/png')
        _directus.upload_file(url, token, 'notes.txt', b'bytes kept in s3\n' * 64, 'text/plain')
    client = s3_server.client()
    before = {item['Key']: item['ETag'] for item in client.list_objects_v2(Bucket=s3_bucket).get('Contents', [])}
    assert len(before) == 2, before
    variables = {
        'ansible_connection': 'local', 'ansible_python_interpreter': sys.executable,
        'cairn_repository': {'type': 'local', 'path': str(tmp_path / 'repository')},
        'cairn_encryption_recipients': [str(identity.to_public())], 'cairn_encryption_identity_file': str(key_file),
        'cairn_env_file': str(source / '.env'),
        'cairn_drill_cms_command': [_directus._node(), str(_directus.ensure_installed()), 'start'],
        'cairn_drill_cms_environment': {'NODE_ENV': 'production'},
        'cairn_drill_http_email': settings['ADMIN_EMAIL'], 'cairn_drill_http_password': settings['ADMIN_PASSWORD'],
        'cairn_drill_dir': str(tmp_path / 'sandbox'), 'cairn_drill_report_file': str(tmp_path / 'report.json'),
        'cairn_drill_keep_sandbox': True, 'cairn_drill_http_flow': False}
    inventory = tmp_path / 'inventory.json'
    inventory.write_text(json.dumps({'all': {'vars': variables, 'hosts': {'cms': {}}}}))
    backup = run_playbook('backup.yml', str(inventory))
    assert backup.returncode == 0, backup.stdout + backup.stderr
    drilled = run_playbook('restore_drill.yml', str(inventory))
    assert drilled.returncode == 0, drilled.stdout + drilled.stderr
    report = json.load(open(tmp_path / 'report.json'))
    assert report['ok'] and {'directus_files have their bytes', 'file bytes sha256', 'http assets sha256'} <= {
        check['name'] for check in report['checks'] if check['ok']}, report
    # This instance does not serve its admin app (SERVE_APP=false), so that check is left out, saying so; the
    # flow check was switched off.
    names = {check['name'] for check in report['checks']}
    assert 'http admin app' not in names and 'http flow' not in names and 'http activity login' in names, report
    assert 'http admin app not checked: the configuration of the instance' in drilled.stdout + drilled.stderr
    # Kept on request: the bytes came back into the sandbox's directory for the location, not into the bucket.
    kept = tmp_path / 'sandbox' / 'storage' / 'cloud'
    assert sorted(os.listdir(kept)) == sorted(before)
    after = {item['Key']: item['ETag'] for item in client.list_objects_v2(Bucket=s3_bucket).get('Contents', [])}
    assert after == before
    assert _s3.SECRET_KEY not in drilled.stdout + drilled.stderr
    removed = run_module('cairn_drill_sandbox', path=str(tmp_path / 'sandbox'), state='absent',
                         repository=variables['cairn_repository'], instance='cms')
    assert removed['changed'] and not (tmp_path / 'sandbox').exists()
