# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The pure part of _cms.schema: a snapshot is normalised to the same bytes whatever order the CMS listed its items
and keys in, and checked before use; a diff in the shape Directus 10.0.0's POST /schema/diff answers is summarised
per collection, field and relation, its deletions split off (prune off), shown per item; a snapshot of another CMS
version or vendor is refused naming both sides; a snapshot file is rewritten only when its bytes change."""

from __future__ import annotations

import json
import os
import random
import stat

import pytest

from ansible_collections.cairncms.ops.plugins.module_utils._cms import schema
from ansible_collections.cairncms.ops.plugins.module_utils._common import CairnError


def collection(name):
    return {'collection': name, 'meta': {'collection': name, 'icon': 'article', 'note': None},
            'schema': {'name': name}}


def field(coll, name, kind='string', **meta):
    return {'collection': coll, 'field': name, 'type': kind, 'meta': dict({'collection': coll, 'field': name}, **meta),
            'schema': {'name': name, 'table': coll, 'is_nullable': True}}


def relation(coll, name, related):
    return {'collection': coll, 'field': name, 'related_collection': related,
            'meta': {'many_collection': coll, 'many_field': name, 'one_collection': related},
            'schema': {'table': coll, 'column': name, 'foreign_key_table': related, 'on_delete': 'SET NULL'}}


def snapshot(vendor='sqlite', version='10.0.0'):
    return {'version': 1, 'directus': version, 'vendor': vendor,
            'collections': [collection('authors'), collection('books')],
            'fields': [field('authors', 'id', 'integer'), field('authors', 'name'),
                       field('books', 'author', 'integer', special=['m2o']), field('books', 'id', 'integer'),
                       field('books', 'title', note='Ünïcode title')],
            'relations': [relation('books', 'author', 'authors')]}


def shuffled(value, rng):
    """A copy of ``value`` with every dict's keys in another order."""
    if isinstance(value, dict):
        keys = list(value)
        rng.shuffle(keys)
        return {key: shuffled(value[key], rng) for key in keys}
    if isinstance(value, list):
        return [shuffled(item, rng) for item in value]
    return value


# A diff as Directus 10.0.0 answers it: whole items added (N without path), deleted (D without path), and changed
# keys (E with a path, N or D of a key inside the item).
DIFF = {
    'collections': [
        {'collection': 'books', 'diff': [{'kind': 'N', 'rhs': collection('books')}]},
        {'collection': 'pages', 'diff': [{'kind': 'D', 'lhs': collection('pages')}]},
    ],
    'fields': [
        {'collection': 'authors', 'field': 'name', 'diff': [
            {'kind': 'E', 'path': ['meta', 'note'], 'lhs': None, 'rhs': 'the name'},
            {'kind': 'E', 'path': ['schema', 'max_length'], 'lhs': 255, 'rhs': 100},
            {'kind': 'E', 'path': ['meta', 'note'], 'lhs': None, 'rhs': 'again'}]},
        {'collection': 'authors', 'field': 'born', 'diff': [{'kind': 'D', 'lhs': field('authors', 'born')}]},
        {'collection': 'books', 'field': 'title', 'diff': [{'kind': 'N', 'rhs': field('books', 'title')}]},
        {'collection': 'books', 'field': 'id', 'diff': [{'kind': 'D', 'path': ['meta', 'width'], 'lhs': 'full'}]},
        {'collection': 'books', 'field': 'tags', 'diff': [
            {'kind': 'A', 'path': ['meta', 'special'], 'index': 0, 'item': {'kind': 'N', 'rhs': 'cast-json'}}]},
    ],
    'relations': [
        {'collection': 'books', 'field': 'author', 'related_collection': 'authors',
         'diff': [{'kind': 'N', 'rhs': relation('books', 'author', 'authors')}]},
    ],
}


def test_two_orders_of_one_schema_are_the_same_bytes():
    rng = random.Random(7)
    original = snapshot()
    data = schema.render(original)
    for _round in range(5):
        other = shuffled(original, rng)
        for kind in schema.KINDS:
            rng.shuffle(other[kind])
        assert schema.render(other) == data
        assert json.dumps(other) != json.dumps(original)  # it was another order
    text = data.decode('utf-8')
    assert text.endswith('}\n') and '\n  "collections": [\n    {\n      "collection": "authors",' in text
    assert 'Ünïcode title' in text  # readable, not \u escapes
    loaded = json.loads(text)
    assert [item['collection'] for item in loaded['collections']] == ['authors', 'books']
    assert [(item['collection'], item['field']) for item in loaded['fields']] == [
        ('authors', 'id'), ('authors', 'name'), ('books', 'author'), ('books', 'id'), ('books', 'title')]
    assert loaded == dict(original)  # nothing dropped or changed, only ordered
    assert list(loaded) == sorted(loaded)
    # a list inside an item is data (choices, special): its order is kept
    choices = dict(original, fields=[field('books', 'kind', options={'choices': ['b', 'a']})])
    assert json.loads(schema.render(choices))['fields'][0]['meta']['options']['choices'] == ['b', 'a']
    assert schema.counts(original) == {'collections': 2, 'fields': 5, 'relations': 1}


@pytest.mark.parametrize('change, problem', [
    (lambda s: s.update(version=2), 'its version is 2, not 1'),
    (lambda s: s.update(version=True), 'its version is True, not 1'),
    (lambda s: s.pop('directus'), 'it names no CMS version (directus)'),
    (lambda s: s.update(vendor=5), 'its vendor is no string'),
    (lambda s: s.pop('relations'), 'it has no list of relations'),
    (lambda s: s['fields'].append({'collection': 'books'}), 'one of its fields is not an object with collection and '
                                                            'field'),
])
def test_what_is_no_snapshot_is_refused_saying_why(change, problem):
    broken = snapshot()
    change(broken)
    with pytest.raises(CairnError) as caught:
        schema.check_snapshot(broken, 'the schema snapshot /x.json')
    assert caught.value.message == 'the schema snapshot /x.json is no schema snapshot the CMS reads: %s' % problem
    with pytest.raises(CairnError, match='is no schema snapshot: it is not a JSON object'):
        schema.check_snapshot([], 'it')
    assert schema.check_snapshot(snapshot(), 'it') == snapshot()


def test_a_diff_is_summarised_per_item():
    assert schema.summarise(DIFF) == {
        'collections': {'added': ['books'], 'changed': [], 'deleted': ['pages']},
        'fields': {'added': ['books.title'], 'changed': ['authors.name', 'books.id', 'books.tags'],
                   'deleted': ['authors.born']},
        'relations': {'added': ['books.author'], 'changed': [], 'deleted': []}}
    assert schema.lines(DIFF) == [
        'create collection books', 'delete collection pages',
        'delete field authors.born', 'update field authors.name (meta.note, schema.max_length)',
        'update field books.id (meta.width)', 'update field books.tags (meta.special)', 'create field books.title',
        'create relation books.author -> authors']
    assert schema.is_empty(None) and schema.is_empty(schema.empty_diff()) and not schema.is_empty(DIFF)


def test_without_prune_the_deletions_are_kept():
    todo, kept = schema.split_deletions(DIFF)
    assert schema.names(kept) == {'collections': ['pages'], 'fields': ['authors.born'], 'relations': []}
    assert schema.summarise(todo)['collections'] == {'added': ['books'], 'changed': [], 'deleted': []}
    assert schema.summarise(todo)['fields']['deleted'] == [] and len(todo['fields']) == 4
    assert todo['fields'][2]['diff'] == DIFF['fields'][3]['diff']  # a key removed inside an item is a change
    assert schema.lines(todo, kept)[:2] == ['create collection books',
                                            'keep collection pages (not in the snapshot; prune is off)']
    nothing, only_kept = schema.split_deletions({'collections': [DIFF['collections'][1]], 'fields': [],
                                                 'relations': []})
    assert schema.is_empty(nothing) and not schema.is_empty(only_kept)


def test_each_item_is_shown_as_the_target_has_it_and_as_the_snapshot_has_it():
    current = dict(snapshot(), collections=[collection('authors'), collection('pages')],
                   fields=[field('authors', 'name'), field('authors', 'born')], relations=[])
    wanted = dict(snapshot(), fields=[field('authors', 'name', note='the name'), field('books', 'title')])
    shown = schema.item_diffs({'collections': DIFF['collections'], 'fields': DIFF['fields'][:3], 'relations': []},
                              current, wanted)
    assert [(item['before_header'], item['after_header']) for item in shown] == [
        ('collection books (target)', 'collection books (snapshot)'),
        ('collection pages (target)', 'collection pages (snapshot)'),
        ('field authors.born (target)', 'field authors.born (snapshot)'),
        ('field authors.name (target)', 'field authors.name (snapshot)'),
        ('field books.title (target)', 'field books.title (snapshot)')]
    assert shown[0]['before'] == '' and json.loads(shown[0]['after']) == collection('books')
    assert json.loads(shown[1]['before']) == collection('pages') and shown[1]['after'] == ''
    assert json.loads(shown[3]['before'])['meta'] == {'collection': 'authors', 'field': 'name'}
    assert json.loads(shown[3]['after'])['meta']['note'] == 'the name'


def test_another_vendor_or_version_is_refused_naming_both_sides():
    mine = snapshot()
    assert schema.refusal(mine, snapshot(), '/repo/schema.json', 'https://staging') is None
    message = schema.refusal(snapshot(vendor='postgres'), mine, '/repo/schema.json', 'https://staging')
    assert message == (
        'the schema snapshot /repo/schema.json was taken from directus 10.0.0 on postgres, and https://staging runs '
        'directus 10.0.0 on sqlite: its database vendor differs (postgres, not sqlite). A snapshot applies to the CMS '
        'version and the database vendor it was taken from (field types, defaults and constraints differ between '
        'them); set force to apply it anyway')
    both = schema.mismatch(snapshot(vendor=None, version='10.1.0'), mine, 'a', 'b')
    assert both == ('the schema snapshot a was taken from directus 10.1.0 on an unnamed vendor, and b runs directus '
                    '10.0.0 on sqlite: its CMS version differs (10.1.0, not 10.0.0) and its database vendor differs '
                    '(none named, not sqlite)')


def test_a_snapshot_file_is_rewritten_only_when_its_bytes_change(tmp_path):
    dest = str(tmp_path / 'schema' / 'schema.json')
    data = schema.render(snapshot())
    assert schema.write_if_changed(dest, data, check_mode=True) == (True, None) and not os.path.exists(dest)
    assert schema.write_if_changed(dest, data) == (True, None)
    assert stat.S_IMODE(os.stat(dest).st_mode) == 0o644
    os.chmod(dest, 0o640)
    inode = os.stat(dest).st_ino
    assert schema.write_if_changed(dest, data) == (False, data) and os.stat(dest).st_ino == inode
    other = schema.render(snapshot(vendor='postgres'))
    assert schema.write_if_changed(dest, other, check_mode=True) == (True, data)
    assert open(dest, 'rb').read() == data
    assert schema.write_if_changed(dest, other) == (True, data)
    assert open(dest, 'rb').read() == other and stat.S_IMODE(os.stat(dest).st_mode) == 0o640
    with pytest.raises(CairnError, match='is a directory; give the path of the snapshot file'):
        schema.write_if_changed(str(tmp_path), data)


def test_a_snapshot_file_is_read_checked(tmp_path):
    path = tmp_path / 'schema.json'
    path.write_bytes(schema.render(snapshot()))
    read, digest = schema.read_snapshot(str(path))
    assert read == snapshot() and len(digest) == 64
    path.write_text('{"version": 1')
    with pytest.raises(CairnError, match=r'the schema snapshot .*schema.json is not JSON'):
        schema.read_snapshot(str(path))
    path.write_text(json.dumps(dict(snapshot(), collections={})))
    with pytest.raises(CairnError, match='it has no list of collections'):
        schema.read_snapshot(str(path))
    with pytest.raises(CairnError, match=r'cannot read the schema snapshot .*missing.json: No such file'):
        schema.read_snapshot(str(tmp_path / 'missing.json'))
