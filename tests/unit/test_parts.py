# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure logic: the part kinds' registry, manifest format 2 and its reading of format 1 (tests/fixtures/format1),
and the shapes a damaged or forged manifest is refused for."""

from __future__ import annotations

import copy
import io
import json
import os
import types

import pytest

from ansible_collections.cairncms.ops.plugins.module_utils import _manifest, _parts
from ansible_collections.cairncms.ops.plugins.module_utils._common import CairnError

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FORMAT1 = os.path.join(ROOT, 'tests', 'fixtures', 'format1', 'repository')
RUN = {'id': 'p1', 'instance': 'blog', 'started_at': '2026-01-01T00:00:00.000000Z'}


def staged(**extra):
    parts = {
        'database': {'vendor': 'postgres', 'client': 'pg', 'server_version': '15.4', 'format': 'pg_dump-custom',
                     'compression': 'zstd', 'artifact': 'database.pgdump.zst', 'size_bytes': 10, 'sha256': 'a' * 64,
                     'raw_size_bytes': 20, 'row_counts': {'t': 1}, 'migration_level': '20230401A',
                     'dump_tool': 'pg_dump', 'dump_tool_version': '15.4', 'snapshot_at': '2026-01-01T00:00:01.000000Z'},
        'storage': {'inventory': 'files.jsonl', 'inventory_size_bytes': 5, 'inventory_sha256': 'c' * 64,
                    'locations': [], 'files': 0, 'bytes': 0, 'listed_at': '2026-01-01T00:00:02.000000Z'},
        'schema': {'captured': True, 'via': 'cli', 'vendor': 'postgres', 'cms_version': '10.0.0', 'consistent': True,
                   'counts': {'collections': 1, 'fields': 2, 'relations': 0}, 'artifact': 'schema.json',
                   'size_bytes': 7, 'sha256': 'd' * 64, 'encrypted': False},
        'config': {'captured': False, 'reason': 'not asked (cairn_backup_parts)'},
    }
    parts.update(extra)
    return parts


def sizes(manifest_parts):
    found = {}
    for record in manifest_parts.values():
        for name, size in ((record.get('artifact'), record.get('size_bytes')),
                           (record.get('inventory'), record.get('inventory_size_bytes'))):
            if name:
                found[name] = size
    return lambda name: types.SimpleNamespace(st_size=found[name]) if name in found else None


def build(parts=None):
    parts = parts or staged()
    return _manifest.build(RUN, parts, {'key': 'k'}, sizes(parts))


def test_the_registry_has_one_file_per_kind_in_manifest_order():
    assert _parts.kinds() == ('database', 'files', 'secrets', 'schema', 'config', 'rows')
    for name, module in _parts.registry().items():
        assert module.KIND == name
        for function in ('describe', 'legacy', 'problem', 'view', 'summary', 'produce', 'check'):
            assert callable(getattr(module, function)), (name, function)
        assert callable(module.restore) == (name in ('database', 'files', 'secrets')), name
    with pytest.raises(CairnError, match="part kind 'charts' is not known .* made by a newer release"):
        _parts.kind('charts')


def test_format2_lists_typed_parts_with_producers_and_artifacts():
    manifest = build()
    assert manifest['format_version'] == 2 and 'database' not in manifest and 'artifacts' not in manifest
    kinds = [(entry['kind'], entry.get('captured', True)) for entry in manifest['parts']]
    assert kinds == [('database', True), ('files', True), ('secrets', False), ('schema', True), ('config', False)]
    database = _manifest.part(manifest, 'database')
    assert database['producer'] == {'name': 'pg_dump', 'version': '15.4'} and database['vendor'] == 'postgres'
    assert database['artifact'] == 'database.pgdump.zst' and 'artifact' not in manifest['parts'][0]
    assert _manifest.part(manifest, 'files')['inventory'] == 'files.jsonl'
    assert _manifest.part(manifest, 'schema')['producer'] == {'name': 'cms', 'version': '10.0.0', 'via': 'cli'}
    assert _manifest.part(manifest, 'config') == {'kind': 'config', 'captured': False, 'artifacts': [],
                                                  'reason': 'not asked (cairn_backup_parts)'}
    assert [(a['path'], a['kind']) for a in _manifest.artifacts(manifest)] == [
        ('database.pgdump.zst', 'database'), ('files.jsonl', 'files'), ('schema.json', 'schema')]
    assert manifest['capture_skew_s'] == 1.0
    summary = _manifest.summary(manifest)
    assert summary['parts'] == ['database', 'files', 'schema'] and summary['schema_captured'] is True
    assert summary['config_captured'] is False and summary['vendor'] == 'postgres' and summary['size_bytes'] == 22
    assert _manifest.validate(json.loads(json.dumps(manifest)), 'here', 'p1')


def test_format1_points_of_the_fixture_read_as_parts():
    for instance, kinds in (('blog', ['database', 'files', 'secrets']),
                            ('blog-encrypted', ['database', 'files', 'secrets'])):
        [point] = os.listdir(os.path.join(FORMAT1, instance, 'points'))
        with open(os.path.join(FORMAT1, instance, 'points', point, 'manifest.json'), encoding='utf-8') as handle:
            manifest = _manifest.validate(json.load(handle), 'fixture', point)
        assert manifest['format_version'] == 1
        assert [entry['kind'] for entry in _manifest.parts(manifest)] == kinds
        database = _manifest.part(manifest, 'database')
        assert database['artifact'] == 'database.sqlite3.zst' and database['vendor'] == 'sqlite'
        assert database['artifacts'][0]['path'] == 'database.sqlite3.zst'
        assert _manifest.part(manifest, 'files')['inventory'] == 'files.jsonl'
        assert _manifest.part(manifest, 'schema') is None
        secrets = _manifest.part(manifest, 'secrets')
        assert secrets['captured'] is (instance == 'blog-encrypted')
        assert sorted(a['kind'] for a in _manifest.artifacts(manifest)) == sorted(
            ['database', 'files'] + (['secrets'] if secrets['captured'] else []))
        assert _manifest.blobs_encrypted(manifest) is (instance == 'blog-encrypted')
        assert _manifest.summary(manifest)['format_version'] == 1


def damaged(change):
    manifest = json.loads(json.dumps(build()))
    change(manifest)
    with pytest.raises(_manifest.DamagedManifest) as caught:
        _manifest.validate(manifest, 'M', 'p1')
    return caught.value.message


def _without(kind):
    return lambda m: m.__setitem__('parts', [entry for entry in m['parts'] if entry['kind'] != kind])


@pytest.mark.parametrize('change, problem', [
    (_without('database'), 'it has no database part'),
    (_without('files'), 'it has no files part'),
    (lambda m: m['parts'].append(copy.deepcopy(m['parts'][0])), 'it has two database parts'),
    (lambda m: m['parts'][3]['artifacts'][0].__setitem__('path', 'files.jsonl'), 'artifact files.jsonl is listed twice'),
    (lambda m: m['parts'].append({'kind': 'charts', 'artifacts': []}), "part kind 'charts' is not known"),
    (lambda m: m['parts'].append('x'), 'a part entry is not an object with a kind'),
    (lambda m: m.__setitem__('parts', {}), 'its parts are {}, not a list'),
    (lambda m: m.pop('parts'), 'its parts are missing'),
    (lambda m: m['parts'][0]['artifacts'][0].__setitem__('path', '../../etc/passwd'), 'is not a relative path'),
    (lambda m: m['parts'][0]['artifacts'][0].__setitem__('sha256', 'x'), 'has no valid sha256'),
    (lambda m: m['parts'][0]['artifacts'].append(dict(m['parts'][0]['artifacts'][0], path='b')), 'not one'),
    (lambda m: m['parts'][0].pop('vendor'), 'its database part has no vendor'),
    (lambda m: m['parts'][1]['artifacts'][0].__setitem__('encrypted', True), 'inventories are stored in plaintext'),
    (lambda m: m['parts'][2].update(captured=True), 'does not have exactly one artifact'),
    (lambda m: m['parts'][3].__setitem__('artifacts', 'x'), 'its schema part has no artifact list'),
    (lambda m: m['parts'][4].update(kinds='roles'), 'config kinds are not a list'),
    (lambda m: m['parts'][0].__setitem__('producer', 'pg_dump'), 'producer of its database part is not an object'),
    (lambda m: m.__setitem__('format_version', 3), 'reads versions 1, 2'),
])
def test_damaged_or_forged_format2_manifests_are_named(change, problem):
    assert problem in damaged(change)


def test_read_document_checks_the_artifact_before_parsing():
    manifest = build(staged(schema=dict(staged()['schema'], size_bytes=len(b'{"version": 1}'),
                                        sha256='0' * 64)))

    class Repository:
        def __init__(self, data):
            self.data = data

        def open_artifact(self, instance, point, name, encrypted=False):
            assert (instance, point, name, encrypted) == ('blog', 'p1', 'schema.json', False)
            return io.BytesIO(self.data)
    with pytest.raises(CairnError, match='does not match its manifest'):
        _parts.read_document(Repository(b'{"version": 1}'), 'blog', manifest, 'schema')
    with pytest.raises(CairnError, match='holds no config: not asked'):
        _parts.read_document(Repository(b''), 'blog', manifest, 'config')
    legacy = {'format': _manifest.FORMAT, 'format_version': 1, 'id': 'p0', 'database': {}, 'storage': {},
              'artifacts': []}
    with pytest.raises(CairnError, match='has no schema part'):
        _parts.read_document(Repository(b''), 'blog', legacy, 'schema')
