# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""cairn_cms_schema through ansible-playbook against real Directus 10.0.0 (CairnCMS's fork point): a dev instance
gets two collections with fields and an M2O relation over its HTTP API; its snapshot taken by the CMS's CLI and by
GET /schema/snapshot are the same bytes once normalised, and a second snapshot changes no file. A staging instance
with content of its own: check mode (with --diff) shows what the snapshot would change and changes nothing; the
apply creates the collections, which then work over HTTP (an item with its M2O created and read back), its own
collection and item stay, its schema equals dev's (after a snapshot the CMS fails to apply, which it rolls back, as
the error says); a second apply changes nothing; a snapshot of another vendor
is refused naming both sides, and passes with force. On PostgreSQL the same: its CLI and HTTP snapshots agree,
it applies to a PostgreSQL staging, and it is refused by a SQLite target without force."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time

import _directus
from conftest import ROOT, _env

DEV_SCHEMA = ['authors', 'books']


def _cli():
    return [_directus._node(), str(_directus.ensure_installed())]


def play(tmp_path, tasks, module_defaults=None):
    """Run ``tasks`` (name: module args, with task keywords under ``_keywords``) of cairn_cms_schema in one playbook
    on localhost; ({name: its registered result}, the run)."""
    out = tmp_path / ('results-%d.json' % time.monotonic_ns())
    steps = []
    for name, (args, keywords) in tasks.items():
        steps.append(dict({'name': name, 'cairncms.ops.cairn_cms_schema': args, 'register': 'r_' + name,
                           'ignore_errors': True}, **keywords))
    collected = '{%s}' % ', '.join('"%s": r_%s' % (name, name) for name in tasks)
    steps.append({'name': 'Keep the results', 'ansible.builtin.copy': {
        'content': '{{ %s | to_json }}' % collected, 'dest': str(out)}, 'check_mode': False, 'diff': False})
    playbook = [{'hosts': 'cms', 'gather_facts': False, 'tasks': steps,
                 'module_defaults': module_defaults or {}}]
    (tmp_path / 'play.yml').write_text(json.dumps(playbook))
    (tmp_path / 'inventory.json').write_text(json.dumps({'all': {'hosts': {'cms': {
        'ansible_connection': 'local', 'ansible_python_interpreter': sys.executable}}}}))
    run = subprocess.run([os.path.join(os.path.dirname(sys.executable), 'ansible-playbook'), '-i',
                          str(tmp_path / 'inventory.json'), str(tmp_path / 'play.yml')], capture_output=True,
                         text=True, env=_env(), cwd=ROOT, timeout=900, check=False)
    assert run.returncode == 0, run.stdout + run.stderr
    return json.loads(out.read_text()), run


def task(args, **keywords):
    return args, keywords


def seed_dev(url, token):
    """Two collections with fields and an M2O relation (books.author -> authors), made over HTTP."""
    _directus.create_collection(url, token, 'authors', [{'field': 'name', 'type': 'string', 'schema': {}}])
    _directus.create_collection(url, token, 'books', [
        {'field': 'pages', 'type': 'integer', 'schema': {'default_value': 1}, 'meta': {'note': 'printed pages'}},
        {'field': 'author', 'type': 'integer', 'schema': {},
         'meta': {'interface': 'select-dropdown-m2o', 'special': ['m2o']}}])
    _directus.request_json('POST', url + '/relations', token, json_body={
        'collection': 'books', 'field': 'author', 'related_collection': 'authors',
        'schema': {'on_delete': 'SET NULL'}})


def live_snapshot(url, token):
    return json.loads(_directus.request('GET', url + '/schema/snapshot', token))['data']


def without(snapshot, collections):
    """``snapshot`` without the items of ``collections``."""
    return dict(snapshot, **{kind: [item for item in snapshot[kind] if item['collection'] not in collections]
                             for kind in ('collections', 'fields', 'relations')})


def canonical(snapshot):
    """A snapshot's content, independent of the order of its lists (to compare with what the module wrote)."""
    return json.dumps({key: sorted(json.dumps(item, sort_keys=True) for item in value) if isinstance(value, list)
                       else value for key, value in snapshot.items()}, sort_keys=True)


def take_both(tmp_path, workdir, url, token):
    """The dev snapshot taken by the CLI (twice) and over HTTP: (results, run); the files are in ``tmp_path``."""
    return play(tmp_path, {
        'cli': task({'command': _cli(), 'dest': str(tmp_path / 'cli.json')}),
        'http': task({'url': url, 'token': token, 'dest': str(tmp_path / 'http.json')}),
        'again': task({'command': _cli(), 'dest': str(tmp_path / 'cli.json')}),
        'no_cli': task({'command': [_directus._node(), str(tmp_path / 'gone.js')], 'dest': str(tmp_path / 'x.json'),
                        'chdir': str(tmp_path)}),
    }, module_defaults={'group/cairncms.ops.instance': {'env_file': str(workdir / '.env')}})


def assert_same_snapshots(tmp_path, taken, live, vendor):
    cli, http, again = taken['cli'], taken['http'], taken['again']
    assert taken['no_cli']['failed'] is True and not (tmp_path / 'x.json').exists()
    expected = ("the CMS's schema snapshot (%s %s schema snapshot, in %s) failed (exit 1); the end of its output:\n"
                % (_directus._node(), tmp_path / 'gone.js', tmp_path))
    assert taken['no_cli']['msg'].startswith(expected), taken['no_cli']['msg']
    assert "Cannot find module '%s'" % (tmp_path / 'gone.js') in taken['no_cli']['msg']
    assert not cli.get('failed') and not http.get('failed'), (cli, http)
    assert (cli['changed'], http['changed'], again['changed']) == (True, True, False)
    data = (tmp_path / 'cli.json').read_bytes()
    assert data == (tmp_path / 'http.json').read_bytes()
    assert cli['sha256'] == http['sha256'] == again['sha256'] == hashlib.sha256(data).hexdigest()
    assert (cli['counts'], cli['vendor'], cli['cms_version']) == (
        {'collections': 2, 'fields': 7, 'relations': 1}, vendor, '10.0.0')
    written = json.loads(data)
    assert canonical(written) == canonical(live)  # the CMS's own snapshot, only ordered
    assert data == (json.dumps(written, indent=2, sort_keys=True, ensure_ascii=False) + '\n').encode()
    assert [item['collection'] for item in written['collections']] == DEV_SCHEMA
    assert [(item['collection'], item['field']) for item in written['fields']] == sorted(
        (item['collection'], item['field']) for item in live['fields'])
    return written


def test_a_dev_schema_promoted_to_staging_through_the_cms(tmp_path):
    dev, staging = tmp_path / 'dev', tmp_path / 'staging'
    dev_env = _directus.bootstrap(dev)
    staging_env = _directus.bootstrap(staging)
    with _directus.running(dev) as url:
        dev_token = _directus.login(url, dev_env['ADMIN_EMAIL'], dev_env['ADMIN_PASSWORD'])
        seed_dev(url, dev_token)
        taken, run = take_both(tmp_path, dev, url, dev_token)
        dev_snapshot = live_snapshot(url, dev_token)
    assert dev_token not in run.stdout + run.stderr and dev_env['SECRET'] not in run.stdout + run.stderr
    written = assert_same_snapshots(tmp_path, taken, dev_snapshot, 'sqlite')
    src = str(tmp_path / 'cli.json')
    other_vendor = tmp_path / 'postgres.json'
    other_vendor.write_text(json.dumps(dict(written, vendor='postgres')))
    broken = tmp_path / 'broken.json'  # books.editor -> a collection that is nowhere: the CMS fails at the relation
    broken.write_text(json.dumps(dict(written, fields=written['fields'] + [
        dict(field, field='editor', meta=dict(field['meta'], field='editor'),
             schema=dict(field['schema'], name='editor', foreign_key_table='ghosts'))
        for field in written['fields'] if field['field'] == 'author'], relations=written['relations'] + [
        dict(relation, field='editor', related_collection='ghosts',
             meta=dict(relation['meta'], many_field='editor', one_collection='ghosts'),
             schema=dict(relation['schema'], column='editor', foreign_key_table='ghosts'))
        for relation in written['relations']])))

    with _directus.running(staging) as url:
        token = _directus.login(url, staging_env['ADMIN_EMAIL'], staging_env['ADMIN_PASSWORD'])
        _directus.create_collection(url, token, 'pages')  # staging's own content
        home = _directus.create_item(url, token, 'pages', {'title': 'Home'})
        before = live_snapshot(url, token)
        target = {'url': url, 'token': token, 'src': src}

        planned, run = play(tmp_path, {
            'check': task(dict(target, state='applied'), check_mode=True, diff=True),
            'diff': task(dict(target, state='diff')),
            'pruning': task(dict(target, state='diff', prune=True)),
            'refused': task(dict(target, state='applied', src=str(other_vendor))),
        })
        assert live_snapshot(url, token) == before  # nothing changed
        check = planned['check']
        assert (check['changed'], check['differences'], check['forced']) == (True, True, False), check
        assert check['summary'] == {
            'collections': {'added': DEV_SCHEMA, 'changed': [], 'deleted': []},
            'fields': {'added': ['authors.id', 'authors.name', 'authors.title', 'books.author', 'books.id',
                                 'books.pages', 'books.title'], 'changed': [], 'deleted': []},
            'relations': {'added': ['books.author'], 'changed': [], 'deleted': []}}
        assert check['kept'] == {'collections': ['pages'], 'fields': [], 'relations': []}
        assert 'create relation books.author -> authors' in check['changes']
        assert 'keep collection pages (not in the snapshot; prune is off)' in check['changes']
        assert (check['target']['vendor'], check['snapshot']['vendor']) == ('sqlite', 'sqlite')
        shown = {item['after_header']: item for item in check['diff']}
        assert len(shown) == 10 and shown['field books.author (snapshot)']['before'] == ''
        assert json.loads(shown['field books.author (snapshot)']['after'])['meta']['special'] == ['m2o']
        assert '+    "interface": "select-dropdown-m2o",' in run.stdout  # --diff shows it
        assert planned['diff']['changed'] is False and planned['diff']['summary'] == check['summary']
        assert planned['pruning']['summary']['collections']['deleted'] == ['pages']
        assert planned['pruning']['kept'] == {'collections': [], 'fields': [], 'relations': []}
        refused = planned['refused']
        assert refused['failed'] is True
        assert refused['msg'].startswith(
            'the schema snapshot %s was taken from directus 10.0.0 on postgres, and %s runs directus 10.0.0 on '
            'sqlite: its database vendor differs (postgres, not sqlite).' % (other_vendor, url)), refused['msg']
        assert token not in run.stdout + run.stderr

        applied, run = play(tmp_path, {
            'broken': task(dict(target, state='applied', src=str(broken))),
            'apply': task(dict(target, state='applied')),
            'again': task(dict(target, state='applied')),
            'forced': task(dict(target, state='applied', src=str(other_vendor), force=True)),
        })
        done, again, forced = applied['apply'], applied['again'], applied['forced']
        assert applied['broken']['failed'] is True
        assert applied['broken']['msg'] == (
            'POST %s/schema/apply failed: HTTP 400: Collection "ghosts" doesn\'t exist. The CMS rolled it back: %s has '
            'the schema it had before' % (url, url))
        assert 'create relation books.editor -> ghosts' in applied['broken']['changes']
        assert not done.get('failed'), done
        assert (done['changed'], done['summary'], done['hash']) == (True, check['summary'], check['hash'])
        assert done['remaining'] == {kind: {'added': [], 'changed': [], 'deleted': []}
                                     for kind in ('collections', 'fields', 'relations')}
        assert (again['changed'], again['differences'], again['hash']) == (False, False, None), again
        assert again['changes'] == ['keep collection pages (not in the snapshot; prune is off)']
        assert (forced['changed'], forced['forced']) == (False, True) and not forced.get('failed'), forced
        assert 'vendor differs (postgres, not sqlite); going on anyway (force is on)' in ' '.join(run.stderr.split())
        assert token not in run.stdout + run.stderr

        after = live_snapshot(url, token)
        assert canonical(without(after, ['pages'])) == canonical(dev_snapshot)
        assert canonical(without(after, DEV_SCHEMA)) == canonical(before)
        author = _directus.create_item(url, token, 'authors', {'name': 'Ada', 'title': 'Countess'})
        book = _directus.create_item(url, token, 'books', {'title': 'Notes', 'author': author['id']})
        read = _directus.request_json('GET', '%s/items/books/%s' % (url, book['id']), token,
                                      params={'fields': 'title,pages,author.name'})
        assert read == {'title': 'Notes', 'pages': 1, 'author': {'name': 'Ada'}}
        assert _directus.request_json('GET', url + '/items/pages', token) == [home]


def test_a_postgresql_schema_applies_to_postgresql_and_is_refused_by_sqlite(tmp_path, pg_pair):
    dev, staging, lite = tmp_path / 'dev', tmp_path / 'staging', tmp_path / 'lite'
    dev_env = _directus.bootstrap(dev, pg_pair[0])
    staging_env = _directus.bootstrap(staging, pg_pair[1])
    lite_env = _directus.bootstrap(lite)
    with _directus.running(dev) as url:
        token = _directus.login(url, dev_env['ADMIN_EMAIL'], dev_env['ADMIN_PASSWORD'])
        seed_dev(url, token)
        taken, run = take_both(tmp_path, dev, url, token)
        dev_snapshot = live_snapshot(url, token)
    assert dev_env['DB_PASSWORD'] not in run.stdout + run.stderr
    assert_same_snapshots(tmp_path, taken, dev_snapshot, 'postgres')
    src = str(tmp_path / 'cli.json')

    with _directus.running(staging) as url:
        token = _directus.login(url, staging_env['ADMIN_EMAIL'], staging_env['ADMIN_PASSWORD'])
        applied, _run = play(tmp_path, {'apply': task({'state': 'applied', 'src': src, 'url': url, 'token': token}),
                                        'again': task({'state': 'applied', 'src': src, 'url': url, 'token': token})})
        assert applied['apply']['changed'] is True and applied['apply']['target']['vendor'] == 'postgres'
        assert applied['again']['changed'] is False, applied['again']
        assert canonical(live_snapshot(url, token)) == canonical(dev_snapshot)
        author = _directus.create_item(url, token, 'authors', {'name': 'Ada'})
        book = _directus.create_item(url, token, 'books', {'title': 'Notes', 'author': author['id']})
        assert _directus.request_json('GET', '%s/items/books/%s' % (url, book['id']), token,
                                      params={'fields': 'author.name'}) == {'author': {'name': 'Ada'}}

    with _directus.running(lite) as url:
        token = _directus.login(url, lite_env['ADMIN_EMAIL'], lite_env['ADMIN_PASSWORD'])
        before = live_snapshot(url, token)
        refused, _run = play(tmp_path, {'apply': task({'state': 'applied', 'src': src, 'url': url, 'token': token})})
        assert refused['apply']['failed'] is True
        assert 'taken from directus 10.0.0 on postgres, and %s runs directus 10.0.0 on sqlite' % url in (
            refused['apply']['msg'])
        assert live_snapshot(url, token) == before
