# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Seed a Directus 10.0.0 (CairnCMS) instance with every field type over its HTTP API, read it back, compare two.

For cross-vendor migration tests (SQLite <-> PostgreSQL <-> MariaDB)::

    seeded = seed(url, token)                    # fixed ids and values, the same on every vendor
    before = snapshot_items(url, token, seeded)  # what a user sees of it over HTTP
    ...                                          # migrate the instance
    assert compare(before, snapshot_items(new_url, new_token, seeded)) == []
    assert check_logins(new_url, seeded) == []

``seed`` makes:

* ``authors`` (integer ids 1-2), ``tags`` (string ids), ``specimens`` (integer ids 1-5) with one field of each type
  (``FIELD_TYPES``), a file field, an M2O to ``authors`` (with its O2M ``authors.specimens``) and an M2M to
  ``tags`` through ``specimens_tags``; items with edge values (``SPECIMENS``);
* an admin role and user of its own (everything else is created with that user's token, so ``user_created`` and
  ``uploaded_by`` are fixed ids), an editor role with permissions and its user, a flow with two operations, three
  uploaded files with fixed ids.

Two instances seeded independently differ in what the CMS makes at random or at the time of the request: the
argon2 hash of a ``hash`` field (salted) and the dates of creation. ``compare(a, b, independent=True)`` compares those
by meaning (the hash verifies against the seeded string, the dates are left out); without it (one instance and its
migrated copy) they must be equal.

Only the standard library and ``_directus`` are used.
"""

from __future__ import annotations

import datetime
import decimal
import hashlib
import json
import re
from collections.abc import Mapping
from typing import Any

import _directus

ADMIN_ROLE = '5eed0000-0000-4000-8000-00000000ad01'
EDITOR_ROLE = '5eed0000-0000-4000-8000-00000000ed01'
CHIEF = '5eed0000-0000-4000-8000-0000000c41ef'
EDITOR = '5eed0000-0000-4000-8000-0000000ed170'
GUEST = '5eed0000-0000-4000-8000-000000009e57'
FLOW = '5eed0000-0000-4000-8000-00000000f10a'
OPERATIONS = ('5eed0000-0000-4000-8000-00000000f1a1', '5eed0000-0000-4000-8000-00000000f1a2')
FILES = ('5eed0000-0000-4000-8000-00000000f11e', '5eed0000-0000-4000-8000-00000000f12e',
         '5eed0000-0000-4000-8000-00000000f13e')

USERS = (
    {'id': CHIEF, 'email': 'chief@example.com', 'password': 'chief-pass-1234', 'role': ADMIN_ROLE,
     'first_name': 'Chief', 'last_name': 'Seeder'},
    {'id': EDITOR, 'email': 'editor@example.com', 'password': 'editor-pass-1234', 'role': EDITOR_ROLE,
     'first_name': 'Édith', 'last_name': '編集者'},
    # a password with quotes, a backslash and non-ASCII characters, and a static token set by us
    {'id': GUEST, 'email': 'guest@example.com', 'password': 'p\u00e4ss "w\'rd" \\ \U0001f511', 'role': EDITOR_ROLE,
     'first_name': None, 'last_name': '', 'token': 'seeded-static-token-0001'},
)

# field name -> (Directus type, extra schema); the name says the type
FIELD_TYPES = {
    'f_string': ('string', {'max_length': 255}),
    'f_text': ('text', {}),
    'f_integer': ('integer', {}),
    'f_biginteger': ('bigInteger', {}),
    'f_float': ('float', {}),
    'f_decimal': ('decimal', {'numeric_precision': 10, 'numeric_scale': 5}),
    'f_boolean': ('boolean', {}),
    'f_json': ('json', {}),
    'f_csv': ('csv', {}),
    'f_uuid': ('uuid', {}),
    'f_hash': ('hash', {}),
    'f_date': ('date', {}),
    'f_time': ('time', {}),
    'f_datetime': ('dateTime', {}),
    'f_timestamp': ('timestamp', {}),
}
SPECIALS = {'json': ['cast-json'], 'csv': ['cast-csv'], 'boolean': ['cast-boolean'], 'hash': ['hash'],
            'uuid': None, 'timestamp': None}
BEYOND_2_53 = '9007199254740993'  # 2**53 + 1: the first integer a JS number cannot hold
MAX_SAFE = '9007199254740991'  # 2**53 - 1

NULLS = dict.fromkeys(list(FIELD_TYPES) + ['f_file', 'author'])

# the specimens, in id order (ids 1..5); big integers are strings so that no JSON parser rounds them on the way in
SPECIMENS = (
    {'title': 'typical', 'f_string': 'plain ascii', 'f_text': 'line one\nline two', 'f_integer': 42,
     'f_biginteger': BEYOND_2_53, 'f_float': 3.14159, 'f_decimal': '12345.67890', 'f_boolean': True,
     'f_json': {'nested': {'list': [1, 2, {'deep': None}], 'flag': False}, 'n': 1.5, 'ü': 'ünï'},
     'f_csv': ['a', 'b', 'c'], 'f_uuid': '3f2504e0-4f89-41d3-9a0c-0305e82c3301', 'f_hash': 'hash me 1',
     'f_date': '2024-02-29', 'f_time': '13:45:30', 'f_datetime': '2024-02-29T13:45:30',
     'f_timestamp': '2024-02-29T13:45:30+02:00', 'f_file': FILES[0], 'author': 1},
    {'title': 'negative and unicode', 'f_string': 'emoji \U0001f389 CJK \u6f22\u5b57 \u00fc\u00df',
     'f_text': 'quotes \' " backslash \\ newline \n tab \t cr \r end', 'f_integer': -2147483648,
     'f_biginteger': '-' + BEYOND_2_53, 'f_float': -0.5, 'f_decimal': '-99999.99999', 'f_boolean': False,
     'f_json': [1, 'two', None, True, {'k': 'v \U0001f389', 'q': '"\\'}], 'f_csv': ['single'],
     'f_uuid': 'ffffffff-ffff-4fff-bfff-ffffffffffff', 'f_hash': 'p\u00e4ss "q" \\',
     'f_date': '1970-01-01', 'f_time': '00:00:00', 'f_datetime': '1999-12-31T23:59:59',
     'f_timestamp': '2024-12-31T23:30:00-05:00', 'f_file': FILES[1], 'author': 2},
    {'title': 'empty, zero', 'f_string': '', 'f_text': '', 'f_integer': 0, 'f_biginteger': '0', 'f_float': 0,
     'f_decimal': '0.00000', 'f_boolean': False, 'f_json': {}, 'f_csv': [], 'f_uuid': None, 'f_hash': None,
     'f_date': '2000-01-01', 'f_time': '23:59:59', 'f_datetime': '2000-01-01T00:00:00',
     'f_timestamp': '2000-01-01T00:00:00Z', 'f_file': FILES[2], 'author': 1},
    dict(NULLS, title=None),
    {'title': 'limits', 'f_string': 'x' * 255, 'f_text': 'long ' * 2000, 'f_integer': 2147483647,
     'f_biginteger': MAX_SAFE, 'f_float': 12345.5, 'f_decimal': '0.00001', 'f_boolean': True,
     'f_json': {'deep': {'a': {'b': {'c': [[], {}]}}}, 'quote': 'it\'s "x"'}, 'f_csv': ['with space', 'ümlaut'],
     'f_uuid': '00000000-0000-4000-8000-000000000000',
     'f_hash': 'x', 'f_date': '2038-01-19', 'f_time': '03:14:07', 'f_datetime': '2038-01-19T03:14:07',
     'f_timestamp': '2038-01-19T03:14:08+05:30', 'f_file': FILES[0], 'author': None},
)
AUTHORS = ({'name': 'Ada \u00c5berg'}, {'name': '\u674e\u767d "Li Bai"'})
TAGS = ({'id': 'red', 'label': 'Red'}, {'id': 'gr\u00fcn', 'label': '\u7dd1'}, {'id': 'blue', 'label': None})
LINKS = ((1, 'red'), (1, 'gr\u00fcn'), (2, 'blue'), (5, 'red'), (5, 'blue'), (5, 'gr\u00fcn'))  # specimens_tags

UPLOADS = (
    (FILES[0], 'pixel.png', 'image/png', {'title': 'A pixel', 'description': 'tiny \u6f22'}),
    (FILES[1], 'notes \u00fc.txt', 'text/plain', {'title': 'Notes "quoted"'}),
    (FILES[2], 'blob.bin', 'application/octet-stream', {}),
)
COLLECTIONS = ('authors', 'tags', 'specimens', 'specimens_tags')

# fields that differ between two instances seeded independently (not between an instance and its copy)
PER_SEED = {'files': ('uploaded_on', 'modified_on'), 'flows': ('date_created',), 'operations': ('date_created',)}
# fields that change by using an instance: never compared
USAGE = {'users': ('last_access', 'last_page')}


def _png() -> bytes:
    """A 2x1 PNG (fixed bytes)."""
    import struct
    import zlib

    def chunk(kind, data):
        return struct.pack('>I', len(data)) + kind + data + struct.pack('>I', zlib.crc32(kind + data))

    raw = b'\x00\xff\x00\x00\x00\x00\xff'
    return (b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', 2, 1, 8, 2, 0, 0, 0))
            + chunk(b'IDAT', zlib.compress(raw)) + chunk(b'IEND', b''))


def file_bytes(index: int) -> bytes:
    if index == 0:
        return _png()
    if index == 1:
        return 'notes \u00fc\u00df \U0001f389\r\nline 2\n'.encode() * 50
    return bytes(range(256)) * 64


def _call(url, token, method, path, body=None, params=None):
    return _directus.request_json(method, url + path, token, json_body=body, params=params)


def _field(name, kind, schema=None, meta=None):
    meta = dict(meta or {})
    if SPECIALS.get(kind):
        meta.setdefault('special', SPECIALS[kind])
    return {'field': name, 'type': kind, 'meta': meta, 'schema': dict(schema or {})}


def _create_collection(url, token, name, primary, fields):
    _call(url, token, 'POST', '/collections',
          {'collection': name, 'meta': {'icon': 'box'}, 'schema': {}, 'fields': [primary] + fields})


def _integer_id():
    return {'field': 'id', 'type': 'integer', 'meta': {'hidden': True, 'readonly': True},
            'schema': {'is_primary_key': True, 'has_auto_increment': True}}


def _schema(url, token):
    _create_collection(url, token, 'authors', _integer_id(), [_field('name', 'string')])
    _create_collection(url, token, 'tags', {'field': 'id', 'type': 'string', 'meta': {},
                                            'schema': {'is_primary_key': True, 'max_length': 64}},
                       [_field('label', 'string')])
    fields = [_field('title', 'string')]
    fields += [_field(name, kind, schema) for name, (kind, schema) in FIELD_TYPES.items()]
    fields += [_field('f_file', 'uuid', meta={'special': ['file'], 'interface': 'file'}),
               _field('author', 'integer', meta={'special': ['m2o'], 'interface': 'select-dropdown-m2o'})]
    _create_collection(url, token, 'specimens', _integer_id(), fields)
    _create_collection(url, token, 'specimens_tags', _integer_id(),
                       [_field('specimens_id', 'integer'), _field('tags_id', 'string', {'max_length': 64})])
    _call(url, token, 'POST', '/fields/authors',
          _field('specimens', 'alias', meta={'special': ['o2m'], 'interface': 'list-o2m'}))
    _call(url, token, 'POST', '/fields/specimens',
          _field('tags', 'alias', meta={'special': ['m2m'], 'interface': 'list-m2m'}))
    for relation in (
            {'collection': 'specimens', 'field': 'f_file', 'related_collection': 'directus_files',
             'schema': {'on_delete': 'SET NULL'}},
            {'collection': 'specimens', 'field': 'author', 'related_collection': 'authors',
             'meta': {'one_field': 'specimens'}, 'schema': {'on_delete': 'SET NULL'}},
            {'collection': 'specimens_tags', 'field': 'specimens_id', 'related_collection': 'specimens',
             'meta': {'one_field': 'tags', 'junction_field': 'tags_id'}, 'schema': {'on_delete': 'CASCADE'}},
            {'collection': 'specimens_tags', 'field': 'tags_id', 'related_collection': 'tags',
             'meta': {'one_field': None, 'junction_field': 'specimens_id'}, 'schema': {'on_delete': 'CASCADE'}}):
        _call(url, token, 'POST', '/relations', relation)


def _create_items(url, token, collection, items, key='id'):
    ids = []
    for number, item in enumerate(items, 1):
        created = _call(url, token, 'POST', '/items/' + collection, dict(item))
        expected = item.get(key, number)
        if created[key] != expected:
            raise _directus.DirectusError('%s: item %r got id %r' % (collection, expected, created[key]))
        ids.append(created[key])
    return ids


def seed(url: str, token: str, *, beyond_2_53: bool = True) -> dict[str, Any]:
    """Create the seeded content in an empty instance with the admin ``token``; return what was made.

    ``beyond_2_53=False`` seeds 2**53 - 1 instead of 2**53 + 1 in the bigInteger field (for a vendor whose API
    rounds larger values, see ``test_seed_types``).
    """
    _call(url, token, 'POST', '/roles', {'id': ADMIN_ROLE, 'name': 'Seed admins', 'icon': 'shield',
                                         'admin_access': True, 'app_access': True})
    _call(url, token, 'POST', '/users', dict(USERS[0], status='active'))
    token = _directus.login(url, USERS[0]['email'], USERS[0]['password'])  # from now on, a user with a fixed id

    _call(url, token, 'POST', '/roles', {'id': EDITOR_ROLE, 'name': 'Seed editors \u270e', 'icon': 'edit',
                                         'description': 'reads all, writes specimens', 'admin_access': False,
                                         'app_access': True, 'enforce_tfa': False})
    for user in USERS[1:]:
        _call(url, token, 'POST', '/users', dict(user, status='active'))

    for (file_id, name, content_type, fields), index in zip(UPLOADS, range(3)):
        got = _directus.upload_file(url, token, name, file_bytes(index), content_type, fields=dict(fields, id=file_id))
        if got != file_id:
            raise _directus.DirectusError('file %s uploaded as %s' % (file_id, got))

    _schema(url, token)
    specimens = [dict(item) for item in SPECIMENS]
    if not beyond_2_53:
        for item in specimens:
            if item['f_biginteger'] and item['f_biginteger'].lstrip('-') == BEYOND_2_53:
                item['f_biginteger'] = item['f_biginteger'].replace(BEYOND_2_53, MAX_SAFE)
    items = {'authors': _create_items(url, token, 'authors', AUTHORS),
             'tags': _create_items(url, token, 'tags', TAGS),
             'specimens': _create_items(url, token, 'specimens', specimens),
             'specimens_tags': _create_items(url, token, 'specimens_tags',
                                             [{'specimens_id': s, 'tags_id': t} for s, t in LINKS])}

    permissions = []
    for collection, action, extra in (
            ('specimens', 'read', {'fields': ['*'], 'permissions': {'title': {'_nnull': True}}}),
            ('specimens', 'create', {'fields': ['title', 'f_string', 'author'],
                                     'validation': {'title': {'_contains': 'draft'}},
                                     'presets': {'f_string': 'from \u270e'}}),
            ('authors', 'read', {'fields': ['*']}),
            ('tags', 'read', {'fields': ['id', 'label']}),
            ('specimens_tags', 'read', {'fields': ['*']}),
            ('directus_files', 'read', {'fields': ['*']})):
        created = _call(url, token, 'POST', '/permissions', dict(extra, role=EDITOR_ROLE, collection=collection,
                                                                 action=action))
        permissions.append(created['id'])

    _call(url, token, 'POST', '/flows', {'id': FLOW, 'name': 'Seeded flow', 'icon': 'bolt', 'trigger': 'manual',
                                         'status': 'active', 'accountability': 'all',
                                         'options': {'collections': ['specimens'], 'location': 'item'}})
    _call(url, token, 'POST', '/operations', {'id': OPERATIONS[1], 'flow': FLOW, 'key': 'second', 'type': 'log',
                                              'position_x': 37, 'position_y': 1,
                                              'options': {'message': 'second \U0001f389'}})
    _call(url, token, 'POST', '/operations', {'id': OPERATIONS[0], 'flow': FLOW, 'key': 'first', 'type': 'log',
                                              'position_x': 19, 'position_y': 1, 'options': {'message': 'first'},
                                              'resolve': OPERATIONS[1]})
    _call(url, token, 'PATCH', '/flows/' + FLOW, {'operation': OPERATIONS[0]})

    return {
        'collections': list(COLLECTIONS),
        'items': items,
        'values': {'authors': list(AUTHORS), 'tags': list(TAGS), 'specimens': specimens,
                   'specimens_tags': [{'specimens_id': s, 'tags_id': t} for s, t in LINKS]},
        'users': [{key: user[key] for key in ('id', 'email', 'password', 'token') if key in user} for user in USERS],
        'roles': [ADMIN_ROLE, EDITOR_ROLE],
        'permissions': permissions,
        'files': list(FILES),
        'flow': FLOW,
        'operations': list(OPERATIONS),
        'hashes': {str(number): item['f_hash'] for number, item in enumerate(specimens, 1) if item['f_hash']},
    }


# --------------------------------------------------------------------------
# Snapshot
# --------------------------------------------------------------------------

# what is read of a field's schema; left out, because each vendor's introspection says it its own way (observed
# on 10.0.0): is_unique of a primary key (PostgreSQL true, SQLite/MariaDB false), default_value of an auto-increment
# key (PostgreSQL "nextval('<table>_id_seq'::regclass)", others null), numeric_precision/scale of integers and
# booleans (PostgreSQL 32/64 bits, MariaDB 10/19/3 digits, SQLite null), max_length of text, json and uuid columns
# (MariaDB 65535 / 4294967295 / 36, SQLite 36 for char(36), PostgreSQL null)
SCHEMA_KEYS = ('is_nullable', 'is_primary_key', 'has_auto_increment', 'max_length', 'numeric_precision',
               'numeric_scale', 'foreign_key_table', 'foreign_key_column')


def _fields(url, token, collection):
    described = {}
    for field in _call(url, token, 'GET', '/fields/' + collection):
        meta, schema = field.get('meta') or {}, field.get('schema') or {}
        entry = {'type': field['type'], 'special': meta.get('special'), 'interface': meta.get('interface')}
        if field['type'] != 'alias':
            entry.update({key: schema.get(key) for key in SCHEMA_KEYS})
            if field['type'] not in ('string', 'decimal') or (entry['special'] or []) == ['file']:
                entry['max_length'] = entry['numeric_precision'] = entry['numeric_scale'] = None  # see SCHEMA_KEYS
        described[field['field']] = entry
    return described


def _without(record, names):
    return {key: value for key, value in record.items() if key not in names}


def snapshot_items(url: str, token: str, seeded: Mapping[str, Any]) -> dict[str, Any]:
    """Everything a user sees of ``seeded`` over HTTP (admin ``token``), as plain JSON values."""
    snapshot: dict[str, Any] = {'fields': {}, 'items': {}}
    for collection in seeded['collections']:
        snapshot['fields'][collection] = _fields(url, token, collection)
        items = _call(url, token, 'GET', '/items/' + collection, params={'fields': '*', 'sort': 'id', 'limit': -1})
        for item in items:
            for name, value in item.items():
                if isinstance(value, list) and snapshot['fields'][collection][name]['type'] == 'alias':
                    item[name] = sorted(value, key=str)
        snapshot['items'][collection] = sorted(items, key=lambda item: (str(type(item['id'])), item['id']))
    snapshot['relations'] = sorted(
        ({'collection': rel['collection'], 'field': rel['field'], 'related_collection': rel['related_collection'],
          'one_field': (rel.get('meta') or {}).get('one_field'),
          'junction_field': (rel.get('meta') or {}).get('junction_field'),
          'on_delete': (rel.get('schema') or {}).get('on_delete')}
         for rel in _call(url, token, 'GET', '/relations') if rel['collection'] in seeded['collections']),
        key=lambda rel: (rel['collection'], rel['field']))
    # a hash field holds a salted argon2 hash: also record whether it verifies against the seeded string
    snapshot['hash_verifies'] = {
        number: _call(url, token, 'POST', '/utils/hash/verify', {'string': plain, 'hash': _item_hash(snapshot, number)})
        for number, plain in sorted(seeded.get('hashes', {}).items())}

    files = _call(url, token, 'GET', '/files', params={'filter': json.dumps({'id': {'_in': seeded['files']}}),
                                                       'sort': 'id', 'limit': -1})
    for record in files:
        record['sha256'] = hashlib.sha256(_directus.get_asset(url, token, record['id'])).hexdigest()
    snapshot['files'] = files
    users = _call(url, token, 'GET', '/users', params={  # password and a static token read as "**********"
        'filter': json.dumps({'id': {'_in': [user['id'] for user in seeded['users']]}}), 'sort': 'id', 'limit': -1})
    snapshot['users'] = [_without(user, USAGE['users']) for user in users]
    snapshot['roles'] = _call(url, token, 'GET', '/roles', params={
        'filter': json.dumps({'id': {'_in': seeded['roles']}}), 'sort': 'id', 'limit': -1})
    snapshot['permissions'] = _call(url, token, 'GET', '/permissions', params={
        'filter': json.dumps({'role': {'_in': seeded['roles']}}), 'sort': 'id', 'limit': -1})
    snapshot['flows'] = [_call(url, token, 'GET', '/flows/' + seeded['flow'])]
    snapshot['operations'] = _call(url, token, 'GET', '/operations', params={
        'filter': json.dumps({'flow': {'_eq': seeded['flow']}}), 'sort': 'id', 'limit': -1})
    for kind in ('roles', 'flows'):
        for record in snapshot[kind]:
            for name in ('users', 'operations'):
                if isinstance(record.get(name), list):
                    record[name] = sorted(record[name])
    return snapshot


def _item_hash(snapshot, number):
    for item in snapshot['items']['specimens']:
        if str(item['id']) == str(number):
            return item['f_hash']
    return None


# --------------------------------------------------------------------------
# Compare
# --------------------------------------------------------------------------

# system fields whose Directus type is not in the snapshot's ``fields``
SYSTEM_TYPES = {'files': {'uploaded_on': 'timestamp', 'modified_on': 'timestamp', 'filesize': 'bigInteger'},
                'flows': {'date_created': 'timestamp'}, 'operations': {'date_created': 'timestamp'}}
JS_SAFE = 2 ** 53


def _same(left, right):
    """Equal as JSON: ``True`` is not ``1``, ``"1"`` is not ``1``."""
    return json.dumps(left, sort_keys=True) == json.dumps(right, sort_keys=True)


def _bigint_equal(left, right):
    # PostgreSQL returns a bigInteger as a string ("9007199254740993"), SQLite and MariaDB as a JSON number. The
    # number is a JavaScript double: beyond 2**53 it is the stored value rounded (SQLite and MariaDB hold
    # 9007199254740993 exactly and return 9007199254740992). So a string equals a number when they are the same
    # integer, or, for a number beyond 2**53, when the string's value rounds to that number; anything else differs.
    try:
        exact = [int(value) for value in (left, right)]
    except (TypeError, ValueError):
        return False
    if exact[0] == exact[1]:
        return True
    for number, other in ((left, exact[1]), (right, exact[0])):
        if isinstance(number, int) and not isinstance(number, bool) and abs(number) >= JS_SAFE \
                and float(other) == float(number):
            return True
    return False


def _decimal_equal(left, right):
    # PostgreSQL returns a decimal as a string with the column's full scale ("12345.67890", "0.00000"); MariaDB
    # (decimal(10,5) column) and SQLite (Directus 10.0.0 makes a decimal a float column there) return a JSON number
    # (12345.6789, 0, 1e-05). Equal when they are the same number.
    try:
        return decimal.Decimal(str(left)) == decimal.Decimal(str(right))
    except (TypeError, ValueError, decimal.InvalidOperation):
        return False


def _date_value(value):
    # SQLite stores a date as epoch milliseconds, and Directus 10.0.0 returns the number for 1970-01-01 (0, a falsy
    # value its date formatting skips) where PostgreSQL and MariaDB return "1970-01-01".
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return datetime.datetime.fromtimestamp(value / 1000, datetime.timezone.utc).date().isoformat()
    return value


_WHOLE_SECONDS = re.compile(r'^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d$')


def _instant(value):
    # A timestamp reads as "2024-02-29T11:45:30.000Z" on every vendor when Directus wrote it; a database default
    # (directus_files.uploaded_on, directus_flows.date_created) reads as "2026-11-29T01:14:19" on SQLite (text from
    # CURRENT_TIMESTAMP, UTC, no zone, whole seconds), "...:22.358Z" on PostgreSQL and "...:25.000Z" on MariaDB:
    # compared as instants, a value without a zone taken as UTC.
    if not isinstance(value, str):
        return value
    try:
        moment = datetime.datetime.fromisoformat(value.replace('Z', '+00:00'))
    except ValueError:
        return value
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.timezone.utc)
    return moment.astimezone(datetime.timezone.utc).isoformat(timespec='milliseconds')


def values_equal(kind: str | None, left: Any, right: Any, seconds: bool = False) -> bool:
    """Whether two values of a field of Directus type ``kind`` read over HTTP are the same value (``seconds``:
    dates and times to the second)."""
    if left is None or right is None:
        return left is None and right is None
    if seconds and kind in ('timestamp', 'dateTime', 'time') and isinstance(left, str) and isinstance(right, str):
        cut = 8 if kind == 'time' else 19
        return _same(_instant(left)[:cut] if kind == 'timestamp' else left[:cut],
                     _instant(right)[:cut] if kind == 'timestamp' else right[:cut])
    if kind == 'bigInteger':
        return _bigint_equal(left, right)
    if kind == 'decimal':
        return _decimal_equal(left, right)
    if kind == 'date':
        return _same(_date_value(left), _date_value(right))
    if kind == 'timestamp':
        if _WHOLE_SECONDS.match(str(left)) or _WHOLE_SECONDS.match(str(right)):
            # SQLite serves a system timestamp the CMS wrote (epoch milliseconds, files.modified_on) in whole
            # seconds without a zone, "2026-11-29T01:29:05", where another vendor serves the same stored value
            # as "...:05.310Z": compared to the second
            return _same(_instant(left)[:19], _instant(right)[:19])
        return _same(_instant(left), _instant(right))
    return _same(left, right)


def _field_differences(where, left, right):
    left, right = dict(left), dict(right)
    for entry in (left, right):
        # SQLite adds the special "cast-timestamp" to a timestamp field (its values are epoch milliseconds there)
        if entry.get('special') and 'cast-timestamp' in entry['special']:
            entry['special'] = [name for name in entry['special'] if name != 'cast-timestamp'] or None
    kinds = {left.get('type'), right.get('type')}
    if kinds == {'float', 'decimal'}:
        # Directus 10.0.0 on SQLite creates a decimal field as a float column and then reads it as type "float"
        # without precision or scale; the values are compared as decimals (a double holds 10 digits exactly)
        sqlite = left if left['type'] == 'float' else right
        if sqlite.get('numeric_precision') is None:
            for entry in (left, right):
                entry.update(type='decimal', numeric_precision=None, numeric_scale=None)
    if kinds == {'string', 'uuid'}:
        # a uuid field (no "uuid" special) is a char(36) column on SQLite and MariaDB, read as type "string" with
        # max_length 36; PostgreSQL has a uuid column and says "uuid"
        text = left if left['type'] == 'string' else right
        if text.get('max_length') == 36:
            for entry in (left, right):
                entry.update(type='uuid', max_length=None)
    return ['%s.%s: %s != %s' % (where, key, json.dumps(left.get(key)), json.dumps(right.get(key)))
            for key in sorted(set(left) | set(right)) if not _same(left.get(key), right.get(key))]


def _field_kind(source, target, collection, name):
    for snapshot in (source, target):
        entry = snapshot.get('fields', {}).get(collection, {}).get(name)
        if entry:
            if entry['type'] == 'float' and entry.get('numeric_precision') is None:
                other = (target if snapshot is source else source).get('fields', {}).get(collection, {}).get(name)
                if other and other['type'] == 'decimal':
                    return 'decimal'  # see _field_differences
            return entry['type']
    return SYSTEM_TYPES.get(collection, {}).get(name)


def _records_differences(where, left, right, kind_of, skip=(), seconds=False):
    """Differences between two lists of records matched by id."""
    problems = []
    left_ids = {json.dumps(record.get('id')): record for record in left}
    right_ids = {json.dumps(record.get('id')): record for record in right}
    for key in sorted(set(left_ids) - set(right_ids)):
        problems.append('%s %s: only in the source' % (where, key))
    for key in sorted(set(right_ids) - set(left_ids)):
        problems.append('%s %s: only in the target' % (where, key))
    for key in sorted(set(left_ids) & set(right_ids)):
        one, two = left_ids[key], right_ids[key]
        for name in sorted(set(one) | set(two)):
            if name in skip:
                continue
            if name not in one or name not in two:
                problems.append('%s %s.%s: only in the %s' % (where, key, name, 'source' if name in one else 'target'))
            elif not values_equal(kind_of(name), one[name], two[name], seconds):
                problems.append('%s %s.%s: %s != %s' % (where, key, name, json.dumps(one[name], ensure_ascii=False),
                                                        json.dumps(two[name], ensure_ascii=False)))
    return problems


def compare(source: Mapping[str, Any], target: Mapping[str, Any], *, independent: bool = False,
            seconds: bool = False) -> list[str]:
    """Human-readable differences between two ``snapshot_items`` results; ``[]`` when they hold the same.

    ``independent``: the two instances were seeded separately (not one copied from the other), so the values the
    CMS makes at random or at request time (``PER_SEED``, the salted hash of a hash field) are not compared; a hash
    must still verify against the seeded string on both sides. ``seconds``: one side keeps dates and times to the
    second only (the columns the CMS makes on MySQL and MariaDB keep no fraction), so they are compared to the
    second.
    """
    problems = []
    for collection in sorted(set(source['fields']) | set(target['fields'])):
        left, right = source['fields'].get(collection, {}), target['fields'].get(collection, {})
        for name in sorted(set(left) | set(right)):
            if name not in left or name not in right:
                side = 'source' if name in left else 'target'
                problems.append('field %s.%s: only in the %s' % (collection, name, side))
            else:
                problems += _field_differences('field %s.%s' % (collection, name), left[name], right[name])
    for collection in sorted(set(source['items']) | set(target['items'])):
        kinds = {name: _field_kind(source, target, collection, name)
                 for name in set(source['fields'].get(collection, {})) | set(target['fields'].get(collection, {}))}
        skip = [name for name, kind in kinds.items() if kind == 'hash'] if independent else []
        problems += _records_differences(collection, source['items'].get(collection, []),
                                         target['items'].get(collection, []), kinds.get, skip, seconds)
    for left, right in zip(source['relations'], target['relations']):
        if not _same(left, right):
            problems.append('relation %s.%s: %s != %s' % (left['collection'], left['field'], json.dumps(left),
                                                          json.dumps(right)))
    if len(source['relations']) != len(target['relations']):
        problems.append('relations: %d in the source, %d in the target'
                        % (len(source['relations']), len(target['relations'])))
    for side, snapshot in (('source', source), ('target', target)):
        problems += ['%s: hash of specimens %s does not verify' % (side, number)
                     for number, verifies in sorted(snapshot['hash_verifies'].items()) if verifies is not True]
    for kind in ('files', 'users', 'roles', 'permissions', 'flows', 'operations'):
        skip = PER_SEED.get(kind, ()) if independent else ()
        problems += _records_differences(kind, source[kind], target[kind],
                                         lambda name, kind=kind: SYSTEM_TYPES.get(kind, {}).get(name), skip, seconds)
    return problems


# --------------------------------------------------------------------------
# Logins
# --------------------------------------------------------------------------


def check_logins(url: str, seeded: Mapping[str, Any]) -> list[str]:
    """Every seeded user logs in with its password (``POST /auth/login``) and is itself; a static token works."""
    problems = []
    for user in seeded['users']:
        try:
            token = _directus.login(url, user['email'], user['password'])
            me = _call(url, token, 'GET', '/users/me', params={'fields': 'id,email'})
            if me != {'id': user['id'], 'email': user['email']}:
                problems.append('%s logs in as %s' % (user['email'], json.dumps(me)))
        except _directus.DirectusError as error:
            problems.append('%s cannot log in: HTTP %s' % (user['email'], error.status))
        if user.get('token'):
            try:
                me = _call(url, user['token'], 'GET', '/users/me', params={'fields': 'id'})
                if me != {'id': user['id']}:
                    problems.append('the static token of %s is %s' % (user['email'], json.dumps(me)))
            except _directus.DirectusError as error:
                problems.append('the static token of %s is refused: HTTP %s' % (user['email'], error.status))
    return problems
