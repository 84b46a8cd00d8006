# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The typed seed (_seed_types) against real Directus 10.0.0 on SQLite, PostgreSQL and MariaDB. On each vendor the
seed holds every field type with the values given (read back over HTTP, each the same value as the input) and each
vendor's own way of returning them (the raw values below are what 10.0.0 returns: the facts a migration's type
mapping needs); its files, hashes and users are intact and every user logs in. Seeded on two different vendors, the
snapshots compare equal; a field changed on one side is reported, by name and value."""

from __future__ import annotations

import contextlib
import hashlib
import os

import pytest

import _directus
import _seed_types as seed_types

VENDORS = ('sqlite', 'postgres', 'mariadb')
# One seeding of the three instances for the module (the fixture below): with `--dist loadgroup` every test of this
# file runs on one xdist worker, instead of each worker seeding all three again for its share.
pytestmark = pytest.mark.xdist_group('seed_types')

# what each vendor's Directus returns for an input, over HTTP: (specimen id, field) -> raw value
RAW = {
    'sqlite': {(1, 'f_biginteger'): 9007199254740992, (2, 'f_biginteger'): -9007199254740992,
               (1, 'f_decimal'): 12345.6789, (3, 'f_decimal'): 0, (5, 'f_decimal'): 1e-05,
               (2, 'f_date'): 0, (1, 'f_timestamp'): '2024-02-29T11:45:30.000Z'},
    'postgres': {(1, 'f_biginteger'): '9007199254740993', (2, 'f_biginteger'): '-9007199254740993',
                 (1, 'f_decimal'): '12345.67890', (3, 'f_decimal'): '0.00000', (5, 'f_decimal'): '0.00001',
                 (2, 'f_date'): '1970-01-01', (1, 'f_timestamp'): '2024-02-29T11:45:30.000Z'},
    'mariadb': {(1, 'f_biginteger'): 9007199254740992, (2, 'f_biginteger'): -9007199254740992,
                (1, 'f_decimal'): 12345.6789, (3, 'f_decimal'): 0, (5, 'f_decimal'): 1e-05,
                (2, 'f_date'): '1970-01-01', (1, 'f_timestamp'): '2024-02-29T11:45:30.000Z'},
}
# the type /fields says for the seeded types, where it is not the type the field was created with
FIELD_TYPE_QUIRKS = {'sqlite': {'f_decimal': 'float', 'f_uuid': 'string'}, 'postgres': {},
                     'mariadb': {'f_uuid': 'string'}}
FILESIZE_TYPE = {'sqlite': int, 'postgres': str, 'mariadb': int}  # directus_files.filesize (bigInteger)


def _env(request, vendor, name):
    if vendor == 'sqlite':
        return {}
    server = request.getfixturevalue('postgres_server' if vendor == 'postgres' else 'mariadb_server')
    database = 'cairn_seed_%s_%d' % (name, os.getpid())
    server.create_database(database)
    request.addfinalizer(lambda: server.running and server.drop_database(database))
    env = server.env(database=database)
    if vendor == 'mariadb':
        # Directus connects with the mysql driver's default charset utf8 (3 bytes): an emoji is refused
        # (ER_TRUNCATED_WRONG_VALUE_FOR_FIELD, HTTP 500) unless the connection is utf8mb4
        env['DB_CHARSET'] = 'utf8mb4'
    return env


@pytest.fixture(scope='module')
def instances(request, tmp_path_factory):
    """One seeded, running instance per vendor: {vendor: {url, token, seeded, snapshot}}."""
    with contextlib.ExitStack() as stack:
        made = {}
        for vendor in VENDORS:
            workdir = tmp_path_factory.mktemp('seed-' + vendor)
            settings = _directus.bootstrap(workdir, _env(request, vendor, vendor))
            url = stack.enter_context(_directus.running(workdir))
            token = _directus.login(url, settings['ADMIN_EMAIL'], settings['ADMIN_PASSWORD'])
            seeded = seed_types.seed(url, token)
            made[vendor] = {'url': url, 'token': token, 'seeded': seeded,
                            'snapshot': seed_types.snapshot_items(url, token, seeded)}
        yield made


def _by_id(records):
    return {record['id']: record for record in records}


@pytest.mark.parametrize('vendor', VENDORS)
def test_the_seed_holds_every_type_with_its_values(instances, vendor):
    instance = instances[vendor]
    seeded, snapshot = instance['seeded'], instance['snapshot']
    fields = snapshot['fields']['specimens']
    for name, (kind, _schema) in seed_types.FIELD_TYPES.items():
        assert fields[name]['type'] == FIELD_TYPE_QUIRKS[vendor].get(name, kind), name
    assert fields['f_file']['type'] == 'uuid' and fields['f_file']['foreign_key_table'] == 'directus_files'
    assert fields['author']['foreign_key_table'] == 'authors' and fields['tags']['special'] == ['m2m']
    assert snapshot['fields']['authors']['specimens']['special'] == ['o2m']

    items = _by_id(snapshot['items']['specimens'])
    assert sorted(items) == seeded['items']['specimens'] == [1, 2, 3, 4, 5]
    for number, given in enumerate(seeded['values']['specimens'], 1):
        got = items[number]
        for name, value in given.items():
            kind = seed_types.FIELD_TYPES.get(name, ('uuid' if name == 'f_file' else 'integer',))[0]
            if kind == 'hash':
                assert (got[name] is None) == (value is None), (number, name)
                assert value is None or got[name].startswith('$argon2'), (number, name)
            else:
                assert seed_types.values_equal(kind, value, got[name]), (number, name, value, got[name])
    assert snapshot['hash_verifies'] == {'1': True, '2': True, '5': True}
    for (number, name), raw in RAW[vendor].items():
        assert seed_types._same(items[number][name], raw), (number, name, items[number][name])
    assert all(value is None for name, value in items[4].items() if name not in ('id', 'tags'))
    assert items[3]['f_string'] == '' and items[3]['f_text'] == '' and items[4]['f_string'] is None
    assert items[2]['f_text'] == 'quotes \' " backslash \\ newline \n tab \t cr \r end'
    assert items[2]['f_string'] == 'emoji \U0001f389 CJK \u6f22\u5b57 \u00fc\u00df'

    # relations, read by id
    assert [item['tags'] for item in snapshot['items']['specimens']] == [[1, 2], [3], [], [], [4, 5, 6]]
    assert [(link['specimens_id'], link['tags_id']) for link in snapshot['items']['specimens_tags']] == list(
        seed_types.LINKS)
    assert [author['specimens'] for author in snapshot['items']['authors']] == [[1, 3], [2]]
    assert [tag['id'] for tag in snapshot['items']['tags']] == ['blue', 'gr\u00fcn', 'red']
    assert len(snapshot['relations']) == 4

    files = _by_id(snapshot['files'])
    for index, file_id in enumerate(seed_types.FILES):
        assert files[file_id]['sha256'] == hashlib.sha256(seed_types.file_bytes(index)).hexdigest()
        assert files[file_id]['uploaded_by'] == seed_types.CHIEF
        assert isinstance(files[file_id]['filesize'], FILESIZE_TYPE[vendor])
    assert files[seed_types.FILES[0]]['width'] == 2 and files[seed_types.FILES[0]]['title'] == 'A pixel'
    assert files[seed_types.FILES[1]]['filename_download'] == 'notes \u00fc.txt'

    users = _by_id(snapshot['users'])
    assert sorted(users) == sorted(user['id'] for user in seed_types.USERS)
    assert users[seed_types.EDITOR]['last_name'] == '\u7de8\u96c6\u8005' and 'last_access' not in users[
        seed_types.EDITOR]
    assert [len(snapshot[kind]) for kind in ('roles', 'permissions', 'flows', 'operations')] == [2, 6, 1, 2]
    assert snapshot['flows'][0]['operation'] == seed_types.OPERATIONS[0]
    assert seed_types.check_logins(instance['url'], seeded) == []


def test_a_wrong_password_or_token_is_reported(instances):
    instance = instances['sqlite']
    users = [dict(user) for user in instance['seeded']['users']]
    users[1]['password'] += 'x'
    users[2]['token'] = 'not-the-token'
    problems = seed_types.check_logins(instance['url'], dict(instance['seeded'], users=users))
    assert problems == ['editor@example.com cannot log in: HTTP 401',
                        'the static token of guest@example.com is refused: HTTP 401']


@pytest.mark.parametrize('source, target', [('sqlite', 'postgres'), ('postgres', 'mariadb'),
                                            ('mariadb', 'sqlite')])
def test_the_same_seed_on_two_vendors_compares_equal(instances, source, target):
    left, right = instances[source]['snapshot'], instances[target]['snapshot']
    assert seed_types.compare(left, right, independent=True) == []
    assert seed_types.compare(right, left, independent=True) == []
    # compared as a copy of each other, what the CMS made at random or at seeding time differs
    strict = seed_types.compare(left, right)
    assert {line.split(':')[0] for line in strict if line.startswith('specimens ')} == {
        'specimens 1.f_hash', 'specimens 2.f_hash', 'specimens 5.f_hash'}
    assert any('.uploaded_on' in line for line in strict) and any('.date_created' in line for line in strict)


def test_a_changed_field_is_reported(instances):
    postgres, sqlite = instances['postgres'], instances['sqlite']
    url, token = postgres['url'], postgres['token']

    def change(collection, number, values):
        _directus.request_json('PATCH', '%s/items/%s/%s' % (url, collection, number), token, json_body=values)
        return seed_types.compare(sqlite['snapshot'], seed_types.snapshot_items(url, token, postgres['seeded']),
                                  independent=True)

    assert change('specimens', 2, {'f_decimal': '-99999.99998'}) == [
        'specimens 2.f_decimal: -99999.99999 != "-99999.99998"']
    # one more than 2**53 + 1 is not what SQLite's rounded number stands for
    assert change('specimens', 2, {'f_decimal': '-99999.99999', 'f_biginteger': '9007199254740994'}) == [
        'specimens 2.f_biginteger: -9007199254740992 != "9007199254740994"']
    assert change('specimens', 2, {'f_biginteger': '-9007199254740993', 'f_boolean': None}) == [
        'specimens 2.f_boolean: false != null']
    assert change('specimens', 2, {'f_boolean': False, 'f_timestamp': '2024-12-31T23:30:00-04:00'}) == [
        'specimens 2.f_timestamp: "2025-01-01T04:30:00.000Z" != "2025-01-01T03:30:00.000Z"']
    assert change('specimens', 2, {'f_timestamp': '2025-01-01T04:30:00Z', 'f_date': '1970-01-02'}) == [
        'specimens 2.f_date: 0 != "1970-01-02"']
    # the junction row the PATCH replaced keeps its id, without its specimen; the new one is only in the target
    assert change('specimens', 2, {'f_date': '1970-01-01', 'tags': [{'tags_id': 'red'}]}) == [
        'specimens 2.tags: [3] != [7]', 'specimens_tags 7: only in the target',
        'specimens_tags 3.specimens_id: 2 != null']
    assert change('authors', 1, {'name': 'Ada'})[0] == 'authors 1.name: "Ada \u00c5berg" != "Ada"'


def test_compare_keeps_values_apart():
    """The normalisations are for serialisation only: a value that differs stays different."""
    same = seed_types.values_equal

    def differ(*args):
        return not seed_types.values_equal(*args)

    assert same('bigInteger', '42', 42) and same('bigInteger', 9007199254740992, '9007199254740993')
    assert differ('bigInteger', 9007199254740992, '9007199254740995')
    assert differ('bigInteger', 9007199254740990, '9007199254740991')
    assert same('decimal', '0.00000', 0) and same('decimal', 1e-05, '0.00001') and differ('decimal', 1.5, '1.50001')
    assert same('date', 0, '1970-01-01') and differ('date', 86400000, '1970-01-01')
    assert same('timestamp', '2026-11-29T01:14:19', '2026-11-29T01:14:19.000Z')
    # SQLite serves a timestamp the CMS wrote in whole seconds without a zone: to the second, not beyond
    assert same('timestamp', '2026-11-29T01:14:19', '2026-11-29T01:14:19.358Z')
    assert differ('timestamp', '2026-11-29T01:14:19', '2026-11-29T01:14:20.358Z')
    assert differ('timestamp', '2026-11-29T01:14:19.000Z', '2026-11-29T01:14:19.358Z')
    assert differ('boolean', True, 1) and differ('integer', 1, '1') and differ('string', '', None)
    assert differ('float', 1048576.25, 1048576.2) and differ('json', {'a': 1}, {'a': '1'})
    assert differ('dateTime', '2024-02-29T13:45:30', '2024-02-29T13:45:30Z')
