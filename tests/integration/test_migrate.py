# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Moving an instance to another database vendor, through ansible-playbook (playbooks/migrate.yml), against real
Directus 10.0.0 (CairnCMS's fork point) on SQLite, PostgreSQL and MariaDB servers of the tests' own.

A source instance is seeded over the CMS's API with every field type, relations of each kind, files, users with
passwords, a role with permissions and a flow (_seed_types). The playbook backs it up with typed rows, then loads
them into a target whose .env names another vendor and whose CMS runs under a service of the test's (_site): the
plan in check mode writes nothing; the real run stops the target's CMS, has it make its tables and apply the schema,
loads and checks the rows, restores the files, starts the CMS and checks it over HTTP. Afterwards the target serves
the same items field by field, the same asset bytes, and the source's users log in with their passwords; a second
run is refused (the target is not empty) unless replace. A value the target cannot hold fails the run, naming
table, column and row, and leaves the target empty, or as it was with replace; allowed, it is stored cut. So does
a forged rows stream holding a value of another type than its column's. A run
killed midway (the controller, the module and the CMS's CLI at once) is taken up by the next one."""

from __future__ import annotations

import json
import os
import sqlite3
import sys
import time

import pytest

import _directus
import _seed_types
import _site
from conftest import SHOW_STATS, Gate, custom_stats, run_playbook
from test_forged_restore_points import forge

PAIRS = [('sqlite', 'postgres'), ('postgres', 'mysql'), ('mysql', 'sqlite')]


class Vendors:
    """Databases for instances on each vendor: the .env settings of a new one (its database dropped at the end)."""

    def __init__(self, request, tmp_path):
        self.request, self.tmp_path, self.made = request, tmp_path, []

    def server(self, vendor):
        return self.request.getfixturevalue({'postgres': 'postgres_server', 'mysql': 'mariadb_server'}[vendor])

    def env(self, vendor, name, create=True):
        if vendor == 'sqlite':
            return {'DB_CLIENT': 'sqlite3', 'DB_FILENAME': str(self.tmp_path / name / _directus.DB_FILENAME)}
        server = self.server(vendor)
        database = 'cairn_mig_%s_%d' % (name, os.getpid())
        if create:
            server.create_database(database)
        self.made.append((server, database))
        env = server.env(database=database)
        if vendor == 'mysql':
            env['DB_CHARSET'] = 'utf8mb4'  # the CMS's connection takes 3-byte utf8 otherwise: no emoji
        return env

    def drop(self):
        for server, database in self.made:
            try:
                server.drop_database(database)
            except Exception:  # pylint: disable=broad-except  # a test that failed may have left it half made
                pass


@pytest.fixture
def world(request, tmp_path):
    vendors = Vendors(request, tmp_path)
    started = []

    def source(vendor):
        site = _site.Site(tmp_path / 'source', vendors.env(vendor, 'source')).start()
        started.append(site)
        return site, _seed_types.seed(site.url, site.token)

    def target(vendor, source_site):
        env = vendors.env(vendor, 'target', create=vendor == 'mysql')
        env.update(KEY=source_site.settings['KEY'], SECRET=source_site.settings['SECRET'])
        site = _site.Site(tmp_path / 'target', env, bootstrap=False)
        started.append(site)
        return site

    def play(source_site, target_site, seeded, check=False, playbook='migrate.yml', limit=None, **variables):
        """``playbook`` (migrate.yml) for two hosts, ``source`` and ``target`` (or the one of ``limit``); (the run,
        its cairn_migrate stats)."""
        cli = [_directus._node(), str(_directus.ensure_installed())]
        common = {'ansible_connection': 'local', 'ansible_python_interpreter': sys.executable,
                  'cairn_repository': {'type': 'local', 'path': str(tmp_path / 'repository')},
                  'cairn_cms_command': cli}
        # the source's admin: its password moved with the rows
        target = dict(common, cairn_instance='site-new', cairn_migrate_from='site',
                      cairn_env_file=str(target_site.workdir / '.env'), cairn_cms_service=target_site.service(),
                      cairn_verify_http={'url': target_site.url, 'email': _directus.DEFAULT_ADMIN_EMAIL,
                                         'password': _directus.DEFAULT_ADMIN_PASSWORD,
                                         'collections': seeded['collections'], 'assets': 10})
        source = dict(common, cairn_instance='site', cairn_env_file=str(source_site.workdir / '.env'))
        (source if playbook == 'backup.yml' else target).update(variables)
        inventory = {'all': {'children': {'cairn_migrate_sources': {'hosts': {'source': source}},
                                          'cairn_migrate_targets': {'hosts': {'target': target}}}}}
        path = tmp_path / 'inventory.json'
        path.write_text(json.dumps(inventory))
        run = run_playbook(playbook, str(path), check=check, environ=SHOW_STATS,
                           limit=limit or ('source' if playbook == 'backup.yml' else None))
        return run, (custom_stats(run.stdout).get('cairn_migrate') or {}).get('site-new')

    try:
        yield {'source': source, 'target': target, 'play': play, 'vendors': vendors}
    finally:
        for site in started:
            site.stop()
        vendors.drop()


def tables_of(vendors, vendor, site):
    """The tables of a target's database (none when it does not exist)."""
    if vendor == 'sqlite':
        path = site.settings['DB_FILENAME']
        if not os.path.exists(path):
            return []
        with sqlite3.connect(path) as db:
            rows = db.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
        return [row[0] for row in rows]
    server, database = vendors.made[-1]
    schema = "'public'" if vendor == 'postgres' else "'%s'" % database
    try:
        rows = server.rows('SELECT table_name FROM information_schema.tables WHERE table_schema = %s' % schema,
                           database)
    except Exception:  # pylint: disable=broad-except  # no database (yet)
        return []
    return [row[0] for row in rows if row and row[0]]


@pytest.mark.parametrize('source_vendor,target_vendor', PAIRS)
def test_an_instance_moves_to_another_vendor_with_every_field_type_its_files_and_logins(
        world, source_vendor, target_vendor):
    source, seeded = world['source'](source_vendor)
    before = _seed_types.snapshot_items(source.url, source.token, seeded)
    target = world['target'](target_vendor, source)

    # The plan needs a restore point with rows: a backup that makes them (the playbook's first play makes none in
    # check mode).
    run, _stats = world['play'](source, target, seeded, playbook='backup.yml',
                                cairn_backup_parts=['database', 'files', 'schema', 'rows'])
    assert run.returncode == 0, run.stdout + run.stderr
    run, plan = world['play'](source, target, seeded, check=True)
    assert run.returncode == 0, run.stdout + run.stderr
    assert plan['check_mode'] and plan['source_vendor'] == source_vendor and plan['target_vendor'] == target_vendor
    assert plan['tables'] > 20 and plan['rows'] > 0
    assert tables_of(world['vendors'], target_vendor, target) == [], 'check mode wrote into the target'
    assert not target.running

    run, result = world['play'](source, target, seeded)
    assert run.returncode == 0, run.stdout + run.stderr
    assert result['outcome'] == 'succeeded', result
    assert result['cms_running'] is True
    names = {check['name']: check['ok'] for check in result['checks']}
    for name in ('row counts', 'migration level', 'directus_files have their bytes', 'file bytes sha256',
                 'http health', 'http login', 'http assets sha256'):
        assert names.get(name) is True, (name, result['checks'])
    assert all(names.values()), result['checks']
    # every pair stores some of the CMS's own columns otherwise (char(36) and uuid, timestamp and datetime)
    assert result['drift_system_columns'] > 0

    target.token = _directus.login(target.url, _directus.DEFAULT_ADMIN_EMAIL, _directus.DEFAULT_ADMIN_PASSWORD)
    after = _seed_types.snapshot_items(target.url, target.token, seeded)
    # MySQL and MariaDB keep no fraction of a second in the columns the CMS makes: reported as drift, compared to
    # the second
    seconds = target_vendor == 'mysql'
    assert _seed_types.compare(before, after, seconds=seconds) == []
    assert _seed_types.check_logins(target.url, seeded) == []

    # A second run finds the target full: refused, the target as it was and its CMS running again.
    run, again = world['play'](source, target, seeded)
    assert run.returncode != 0
    assert again['outcome'] == 'failed' and 'not empty' in again['error'], again
    assert target.running
    assert _seed_types.compare(before, _seed_types.snapshot_items(target.url, target.token, seeded),
                               seconds=seconds) == []

    # With replace it loads the newest restore point of the source, which has an item more.
    _directus.create_item(source.url, source.token, 'specimens', {'title': 'made after the move'})
    newer = _seed_types.snapshot_items(source.url, source.token, seeded)
    run, replaced = world['play'](source, target, seeded, cairn_migrate_replace=True)
    assert run.returncode == 0, run.stdout + run.stderr
    assert replaced['replaced'] is True and replaced['target_state'] == 'not_empty'
    target.token = _directus.login(target.url, _directus.DEFAULT_ADMIN_EMAIL, _directus.DEFAULT_ADMIN_PASSWORD)
    assert _seed_types.compare(newer, _seed_types.snapshot_items(target.url, target.token, seeded),
                               seconds=seconds) == []


def _long_title(site):
    """A title longer than the varchar(255) the CMS declares, put in by SQL (SQLite does not enforce lengths)."""
    with sqlite3.connect(site.settings['DB_FILENAME']) as db:
        db.execute("UPDATE specimens SET title = ? WHERE id = (SELECT MIN(id) FROM specimens)", ('x' * 300,))
        row = db.execute('SELECT MIN(id) FROM specimens').fetchone()
    db.close()
    return row[0]


def _busy_activity(site, rows):
    """``rows`` more rows in the CMS's activity log (copies of its first), put in by SQL: a table large enough for
    the load to hand its rows to processes of their own; the last one's item longer than its varchar(255). That
    row's id and the rows the table holds."""
    with sqlite3.connect(site.settings['DB_FILENAME']) as db:
        names = ', '.join('"%s"' % row[1] for row in db.execute('PRAGMA table_info(directus_activity)')
                          if row[1] != 'id')
        db.execute('WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?) INSERT INTO '
                   'directus_activity (%s) SELECT %s FROM n, (SELECT * FROM directus_activity ORDER BY id LIMIT 1)'
                   % (names, names), (rows,))
        last = db.execute('SELECT MAX(id) FROM directus_activity').fetchone()[0]
        db.execute('UPDATE directus_activity SET item = ? WHERE id = ?', ('z' * 300, last))
        count = db.execute('SELECT count(*) FROM directus_activity').fetchone()[0]
    db.close()
    return last, count


def test_a_value_the_target_cannot_hold_fails_the_move_naming_it_and_leaves_the_target_as_it_was(world):
    source, seeded = world['source']('sqlite')
    collection = 'specimens'
    target = world['target']('postgres', source)
    row = _long_title(source)
    # and one in a table whose rows are loaded by processes of their own
    activity, logged = _busy_activity(source, 60000)

    run, failed = world['play'](source, target, seeded)
    assert run.returncode != 0
    assert failed['outcome'] == 'failed'
    assert ('table %s, column title, row %s' % (collection, row) in failed['error']
            or 'table directus_activity, column item, row %s' % activity in failed['error']), failed['error']
    assert 'left empty' in failed['error']
    assert tables_of(world['vendors'], 'postgres', target) == []
    assert not target.running

    # Allowed: stored cut at the column's length, and listed; the large table was loaded by processes of their own
    # and checked like any other.
    run, allowed = world['play'](source, target, seeded, cairn_migrate_allow_lossy=True)
    assert run.returncode == 0, run.stdout + run.stderr
    assert allowed['lossy_count'] == 2
    assert allowed['load_processes'] == {'directus_activity': min(4, os.cpu_count())}, allowed
    assert all(check['ok'] for check in allowed['checks']), allowed['checks']
    target.token = _directus.login(target.url, _directus.DEFAULT_ADMIN_EMAIL, _directus.DEFAULT_ADMIN_PASSWORD)
    item = _directus.request_json('GET', '%s/items/%s/%s' % (target.url, collection, row), target.token)
    assert item['title'] == 'x' * 255
    server, database = world['vendors'].made[-1]
    # (the logins since have logged rows of their own)
    assert server.rows('SELECT count(*), max(length(item)) FROM directus_activity WHERE id <= %d' % activity,
                       database) == [[str(logged), '255']]

    # With replace, a failing move puts the target back as it was, and its CMS runs again.
    served = _seed_types.snapshot_items(target.url, target.token, seeded)
    with sqlite3.connect(source.settings['DB_FILENAME']) as db:
        db.execute("UPDATE %s SET title = ? WHERE id = ?" % collection, ('y' * 400, row))
    db.close()
    run, failed = world['play'](source, target, seeded, cairn_migrate_replace=True)
    assert run.returncode != 0
    assert 'put back as it was' in failed['error'], failed['error']
    assert target.running
    target.token = _directus.login(target.url, _directus.DEFAULT_ADMIN_EMAIL, _directus.DEFAULT_ADMIN_PASSWORD)
    assert _seed_types.compare(served, _seed_types.snapshot_items(target.url, target.token, seeded)) == []


def _forge_a_value(repo, instance_name, table, column, value):
    """In the newest restore point of ``instance_name``, the first row of ``table`` with ``value`` in ``column``,
    every checksum of the manifest fixed up (an unsigned repository takes it); that row's id."""
    points = os.path.join(repo['path'], instance_name, 'points')
    newest = sorted(os.listdir(points))[-1]
    with open(os.path.join(points, newest, 'manifest.json'), encoding='utf-8') as handle:
        manifest = json.load(handle)
    changed = {}

    def transform(raw):
        lines, head = raw.split(b'\n'), None
        for number, line in enumerate(lines):
            item = json.loads(line) if line else None
            if isinstance(item, dict) and item.get('table') == table:
                head = item
            elif head is not None and isinstance(item, list):
                names = [entry['name'] for entry in head['columns']]
                changed['id'] = item[names.index('id')]
                item[names.index(column)] = value
                lines[number] = json.dumps(item).encode()
                return b'\n'.join(lines)
        raise AssertionError('no row of %s in the rows stream' % table)
    forge(repo, instance_name, manifest, transform, part='rows')
    return changed['id']


def test_a_forged_rows_stream_fails_the_move_naming_the_value_and_leaves_the_target_empty(world, tmp_path):
    """The rows part is untrusted input: a value of another JSON type than its column's (a number where the column
    holds text), in a stream whose checksums were all fixed up, fails the move naming table, column and row, and
    the target is left empty."""
    source, seeded = world['source']('sqlite')
    target = world['target']('postgres', source)
    run, _stats = world['play'](source, target, seeded, playbook='backup.yml',
                                cairn_backup_parts=['database', 'files', 'schema', 'rows'])
    assert run.returncode == 0, run.stdout + run.stderr
    row = _forge_a_value({'path': str(tmp_path / 'repository')}, 'site', 'specimens', 'title', 12345)

    run, failed = world['play'](source, target, seeded, limit='target')
    assert run.returncode != 0
    assert failed['outcome'] == 'failed', failed
    assert 'table specimens, column title, row %s: 12345 is not a string value' % row in failed['error'], failed
    assert 'left empty' in failed['error'] and 'Traceback' not in run.stdout + run.stderr
    assert tables_of(world['vendors'], 'postgres', target) == []
    assert not target.running


def _journals(site):
    return sorted(name for name in os.listdir(str(site.workdir)) if name.startswith('.cairn-migrate-'))


def test_a_migration_killed_midway_is_taken_up_by_the_next_run(world, tmp_path):
    source, seeded = world['source']('sqlite')
    before = _seed_types.snapshot_items(source.url, source.token, seeded)
    target = world['target']('postgres', source)
    run, _stats = world['play'](source, target, seeded, playbook='backup.yml',
                                cairn_backup_parts=['database', 'files', 'schema', 'rows'])
    assert run.returncode == 0, run.stdout + run.stderr
    run, _plan = world['play'](source, target, seeded, check=True)  # and the inventory of the migration
    assert run.returncode == 0, run.stdout + run.stderr

    # Killed, the whole playbook at once, while the target's CMS makes its tables.
    gate = Gate('migrate.yml', str(tmp_path / 'inventory.json'),
                "Move the restore point's rows, schema and files into this instance", tmp_path / 'gate')
    gate.wait()
    gate.release()
    deadline = time.monotonic() + 120
    while not tables_of(world['vendors'], 'postgres', target):
        assert gate.proc.poll() is None, 'the migration ended before it was killed'
        assert time.monotonic() < deadline, 'the migration made no table in 120 s'
        time.sleep(0.05)
    gate.kill()
    assert tables_of(world['vendors'], 'postgres', target), 'the kill left nothing to take up'
    assert len(_journals(target)) == 1, _journals(target)

    # The next run, without replace, finds what the killed one left, clears it and migrates.
    run, result = world['play'](source, target, seeded)
    assert run.returncode == 0, run.stdout + run.stderr
    assert result['outcome'] == 'succeeded' and result['target_state'] == 'interrupted', result
    assert 'never ended' in run.stdout + run.stderr and 'the target was empty before it' in run.stdout + run.stderr
    assert all(check['ok'] for check in result['checks']), result['checks']
    assert _journals(target) == []
    target.token = _directus.login(target.url, _directus.DEFAULT_ADMIN_EMAIL, _directus.DEFAULT_ADMIN_PASSWORD)
    assert _seed_types.compare(before, _seed_types.snapshot_items(target.url, target.token, seeded)) == []
    assert _seed_types.check_logins(target.url, seeded) == []

    # Killed again while replacing what it migrated: the next run without replace is refused, naming the copy of
    # what the target held; with replace it goes on from that copy.
    gate = Gate('migrate.yml', str(tmp_path / 'inventory.json'),
                "Move the restore point's rows, schema and files into this instance", tmp_path / 'gate2',
                extra=['-e', 'cairn_migrate_replace=true'])
    gate.wait()
    gate.release()
    deadline = time.monotonic() + 120
    while 'specimens' in tables_of(world['vendors'], 'postgres', target):  # emptied once the copy is taken
        assert gate.proc.poll() is None, 'the migration ended before it was killed'
        assert time.monotonic() < deadline, 'the migration did not empty the target in 120 s'
        time.sleep(0.02)
    gate.kill()
    work, journal = _journals(target)  # the safety copy's directory, then the journal
    assert journal.endswith('.json') and os.listdir(str(target.workdir / work)), (journal, work)
    run, refused = world['play'](source, target, seeded)
    assert run.returncode != 0
    assert 'never ended' in refused['error'] and 'is kept in %s' % (target.workdir / work) in refused['error'], refused
    run, result = world['play'](source, target, seeded, cairn_migrate_replace=True)
    assert run.returncode == 0, run.stdout + run.stderr
    assert result['outcome'] == 'succeeded' and result['replaced'] is True, result
    assert 'goes on from the safety copy' in run.stdout + run.stderr
    assert _journals(target) == []
    target.token = _directus.login(target.url, _directus.DEFAULT_ADMIN_EMAIL, _directus.DEFAULT_ADMIN_PASSWORD)
    assert _seed_types.compare(before, _seed_types.snapshot_items(target.url, target.token, seeded)) == []
