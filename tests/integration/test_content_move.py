# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A content move through the restore role (cairn_content_tables), from a restore point's typed rows, against real
Directus 10.0.0 (CairnCMS's fork point): a SQLite source with articles that have an author (many-to-one), an image
(a file field) and tags (many-to-many through a junction collection); a PostgreSQL target with the same schema and
content of its own. Moving articles alone is refused before anything is written, naming the authors that would
dangle; articles with authors and tags bring the junction rows between them and the image files (rows and bytes),
replace nothing else, and the target serves the same articles, tags and asset bytes; a second move is refused
(the tables hold rows) unless replace."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys

import pytest

import _directus
import _site
from conftest import SHOW_STATS, custom_stats, run_playbook

IMAGES = [b'first image bytes\n' * 40, b'second image bytes\n' * 30]


def call(site, method, path, body=None, **params):
    return _directus.request_json(method, site.url + path, site.token, json_body=body, params=params or None)


def schema(site):
    """The content model: authors, tags, articles (author, image, tags through articles_tags)."""
    for name in ('authors', 'tags', 'articles'):
        _directus.create_collection(site.url, site.token, name)
    call(site, 'POST', '/collections', {'collection': 'articles_tags', 'meta': {'hidden': True}, 'schema': {},
                                        'fields': [{'field': 'id', 'type': 'integer', 'meta': {'hidden': True},
                                                    'schema': {'is_primary_key': True, 'has_auto_increment': True}},
                                                   {'field': 'articles_id', 'type': 'integer', 'meta': {},
                                                    'schema': {}},
                                                   {'field': 'tags_id', 'type': 'integer', 'meta': {}, 'schema': {}}]})
    call(site, 'POST', '/fields/articles', {'field': 'author', 'type': 'integer', 'schema': {},
                                            'meta': {'interface': 'select-dropdown-m2o', 'special': ['m2o']}})
    call(site, 'POST', '/relations', {'collection': 'articles', 'field': 'author', 'related_collection': 'authors'})
    call(site, 'POST', '/fields/articles', {'field': 'image', 'type': 'uuid', 'schema': {},
                                            'meta': {'interface': 'file', 'special': ['file']}})
    call(site, 'POST', '/relations', {'collection': 'articles', 'field': 'image',
                                      'related_collection': 'directus_files'})
    call(site, 'POST', '/fields/articles', {'field': 'tags', 'type': 'alias',
                                            'meta': {'interface': 'list-m2m', 'special': ['m2m']}})
    call(site, 'POST', '/relations', {'collection': 'articles_tags', 'field': 'articles_id',
                                      'related_collection': 'articles',
                                      'meta': {'one_field': 'tags', 'junction_field': 'tags_id'}})
    call(site, 'POST', '/relations', {'collection': 'articles_tags', 'field': 'tags_id',
                                      'related_collection': 'tags', 'meta': {'junction_field': 'articles_id'}})


def content(site):
    authors = [call(site, 'POST', '/items/authors', {'title': name})['id'] for name in ('Ada', 'Brendan')]
    tags = [call(site, 'POST', '/items/tags', {'title': name})['id'] for name in ('news', 'howto')]
    images = [_directus.upload_file(site.url, site.token, 'image-%d.txt' % number, data, 'text/plain')
              for number, data in enumerate(IMAGES)]
    for number in range(3):
        call(site, 'POST', '/items/articles', {
            'title': 'Article %d' % number, 'author': authors[number % 2], 'image': images[number % 2],
            'tags': {'create': [{'tags_id': tags[number % 2]}] + ([{'tags_id': tags[1]}] if number == 0 else []),
                     'update': [], 'delete': []}})


def served(site):
    """The articles as the CMS serves them (with author, tags and the image's bytes), and the tags."""
    articles = call(site, 'GET', '/items/articles', fields='id,title,author.title,image,tags.tags_id.title',
                    sort='id', limit=-1)
    for article in articles:
        article['tags'] = sorted(tag['tags_id']['title'] for tag in article['tags'])
        article['image'] = hashlib.sha256(_directus.get_asset(site.url, site.token, article['image'])).hexdigest()
    return {'articles': articles, 'tags': call(site, 'GET', '/items/tags', fields='id,title', sort='id', limit=-1)}


def cli(site, *args):
    return subprocess.run([_directus._node(), str(_directus.ensure_installed())] + list(args), cwd=site.workdir,
                          env=_directus._child_env(), capture_output=True, text=True, timeout=300, check=True)


@pytest.fixture
def sites(tmp_path, postgres_server):
    database = 'cairn_content_%d' % os.getpid()
    postgres_server.create_database(database)
    made = []
    try:
        source = _site.Site(tmp_path / 'source').start()
        made.append(source)
        target = _site.Site(tmp_path / 'target', postgres_server.env(database=database)).start()
        made.append(target)
        schema(source)
        cli(source, 'schema', 'snapshot', '--yes', '--format', 'json', str(tmp_path / 'schema.json'))
        cli(target, 'schema', 'apply', '--yes', str(tmp_path / 'schema.json'))
        target.stop()
        target.start()  # the CMS reads the schema it was given at its start
        content(source)
        call(target, 'POST', '/items/tags', {'title': 'the target\'s own tag'})
        yield source, target
    finally:
        for site in made:
            site.stop()
        postgres_server.drop_database(database)


def test_a_content_move_brings_the_junction_rows_and_the_files_and_refuses_what_would_dangle(sites, tmp_path):
    source, target = sites
    repository = {'type': 'local', 'path': str(tmp_path / 'repository')}
    common = {'ansible_connection': 'local', 'ansible_python_interpreter': sys.executable,
              'cairn_repository': repository}
    inventory = tmp_path / 'inventory.json'

    def play(playbook, host, **variables):
        hosts = {'source': dict(common, cairn_instance='site', cairn_env_file=str(source.workdir / '.env'),
                                cairn_backup_parts=['database', 'files', 'schema', 'rows'],
                                cairn_cms_command=[_directus._node(), str(_directus.ensure_installed())]),
                 'target': dict(common, cairn_instance='target', cairn_restore_from='site',
                                cairn_env_file=str(target.workdir / '.env'), **variables)}
        inventory.write_text(json.dumps({'all': {'hosts': hosts}}))
        run = run_playbook(playbook, str(inventory), limit=host, environ=SHOW_STATS)
        return run, (custom_stats(run.stdout).get('cairn_restore') or {}).get('target')

    run, _stats = play('backup.yml', 'source')
    assert run.returncode == 0, run.stdout + run.stderr
    before = served(source)
    own_tags = call(target, 'GET', '/items/tags', fields='id,title')
    files_before = sorted(os.listdir(target.settings['STORAGE_LOCAL_ROOT']))

    # Articles alone: their authors would dangle. Refused, nothing written.
    run, refused = play('restore.yml', 'target', cairn_content_tables=['articles'])
    assert run.returncode != 0
    assert refused['outcome'] == 'failed' and 'authors of articles.author' in refused['error'], refused
    assert call(target, 'GET', '/items/articles', fields='id') == []
    assert sorted(os.listdir(target.settings['STORAGE_LOCAL_ROOT'])) == files_before

    # With their authors and tags, only the files' uploader (the source's admin) would dangle; allowed, it is
    # stored as NULL, and the junction rows and the image files come along.
    run, refused = play('restore.yml', 'target', cairn_content_tables=['articles', 'authors', 'tags'],
                        cairn_restore_replace=True)
    assert run.returncode != 0
    assert '1 directus_users of directus_files.uploaded_by' in refused['error'], refused
    run, moved = play('restore.yml', 'target', cairn_content_tables=['articles', 'authors', 'tags'],
                      cairn_restore_replace=True, cairn_content_allow_dangling=True)
    assert run.returncode == 0, run.stdout + run.stderr
    assert moved['content']['brought_tables'] == ['articles_tags']
    assert moved['content']['files_brought'] == 2
    assert [(entry['table'], entry['field'], entry['related']) for entry in moved['content']['dangling']] == [
        ('directus_files', 'uploaded_by', 'directus_users')]
    assert moved['content']['tables'] == {'articles': 3, 'authors': 2, 'tags': 2, 'articles_tags': 4}
    target.stop()
    target.start()
    assert served(target) == before
    assert own_tags[0] not in call(target, 'GET', '/items/tags', fields='id,title')  # replaced: its rows moved
    assert len(os.listdir(target.settings['STORAGE_LOCAL_ROOT'])) == len(files_before) + 2
    uploaders = {row['uploaded_by'] for row in call(target, 'GET', '/files', fields='id,uploaded_by')
                 if row['id'] in {article['image'] for article in call(target, 'GET', '/items/articles',
                                                                       fields='image')}}
    assert uploaders == {None}

    # Again without replace: the tables hold rows now.
    run, again = play('restore.yml', 'target', cairn_content_tables=['articles', 'authors', 'tags'])
    assert run.returncode != 0
    assert 'hold rows' in again['error'], again
