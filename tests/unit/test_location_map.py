# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure logic of restoring into other storage locations: the map, collisions, the SQL, the markers."""

from __future__ import annotations

import sqlite3

import pytest

from ansible_collections.cairncms.ops.plugins.module_utils import _relocate
from ansible_collections.cairncms.ops.plugins.module_utils._common import CairnError
from ansible_collections.cairncms.ops.plugins.module_utils._db._base import marker_matches, restore_marker
from ansible_collections.cairncms.ops.plugins.module_utils._db.mysql import MysqlBackend
from ansible_collections.cairncms.ops.plugins.module_utils._env import InstanceConfig
from ansible_collections.cairncms.ops.plugins.module_utils._sync import plan_restore


def test_pairs_drop_identity_and_sort():
    assert _relocate.pairs({'b': 'a', 'a': 'b', 'same': 'same'}) == [('a', 'b'), ('b', 'a')]
    assert _relocate.pairs({}) == [] and _relocate.pairs(None) == []
    with pytest.raises(CairnError, match='must map storage location names'):
        _relocate.pairs({'local': 3})
    with pytest.raises(CairnError, match='must map storage location names'):
        _relocate.pairs({'local': ''})


def test_resolve_maps_and_names_the_fix():
    assert _relocate.resolve(['local', 'assets'], ['cloud', 'assets'], {'local': 'cloud'}) == {
        'local': 'cloud', 'assets': 'assets'}
    with pytest.raises(CairnError) as error:
        _relocate.resolve(['local', 'assets'], ['cloud'], {'local': 'cloud'})
    message = error.value.message
    assert 'assets' in message and 'STORAGE_LOCATIONS=cloud' in message and 'cairn_restore_location_map' in message
    assert 'local' not in message.split('STORAGE_LOCATIONS')[0]
    with pytest.raises(CairnError, match=r'local \(to clod\)'):
        _relocate.resolve(['local'], ['cloud'], {'local': 'clod'})


def test_check_targets():
    _relocate.check_targets({'local': 'cloud', 'x': 'x'}, ['cloud'])
    with pytest.raises(CairnError, match=r'sends files to clod, which is not in .*STORAGE_LOCATIONS=cloud,local'):
        _relocate.check_targets({'local': 'clod'}, ['cloud', 'local'])


def test_collisions_only_between_different_sources_onto_one_target():
    rows = {'a': [{'filename_disk': 'x.png'}, {'filename_disk': 'y.png'}],
            'b': [{'filename_disk': 'x.png'}, {'filename_disk': 'z.png'}],
            'c': [{'filename_disk': 'x.png'}]}
    assert _relocate.collisions(rows, {'a': 't', 'b': 't', 'c': 'c'}) == {'t': ['x.png']}
    assert _relocate.collisions(rows, {'a': 'a', 'b': 'b', 'c': 'c'}) == {}
    # A swap sends a to b and b to a: the same names, but never into one location.
    assert _relocate.collisions(rows, {'a': 'b', 'b': 'a', 'c': 'c'}) == {}
    with pytest.raises(CairnError, match=r't: 1 file\(s\), e\.g\. x\.png\); nothing was changed'):
        _relocate.check_collisions(rows, {'a': 't', 'b': 't', 'c': 'c'})


def _files_db(storages):
    conn = sqlite3.connect(':memory:')
    conn.execute('CREATE TABLE directus_files (id INTEGER PRIMARY KEY, storage TEXT NOT NULL, filename_disk TEXT)')
    conn.executemany('INSERT INTO directus_files (storage, filename_disk) VALUES (?, ?)',
                     [(storage, '%d.png' % number) for number, storage in enumerate(storages)])
    return conn


def test_one_update_swaps_and_counts():
    conn = _files_db(['a', 'a', 'a', 'b', 'c', "o'brien"])
    pairs = _relocate.pairs({'a': 'b', 'b': 'a', "o'brien": 'c', 'unused': 'c'})
    counted = conn.execute(_relocate.count_sql(pairs)).fetchall()
    conn.execute(_relocate.update_sql(pairs))
    assert _relocate.relocations(pairs, counted) == [
        {'from': 'a', 'to': 'b', 'rows': 3}, {'from': 'b', 'to': 'a', 'rows': 1},
        {'from': "o'brien", 'to': 'c', 'rows': 1}, {'from': 'unused', 'to': 'c', 'rows': 0}]
    rows = dict(conn.execute('SELECT storage, COUNT(*) FROM directus_files GROUP BY storage').fetchall())
    assert rows == {'b': 3, 'a': 1, 'c': 2}
    assert _relocate.update_sql(pairs).count('UPDATE') == 1


def test_tagged_count_and_vendor_literals():
    pairs = [("it's", 'x')]
    assert _relocate.count_sql(pairs, tag='t').startswith("SELECT 't', storage, COUNT(*)")
    assert "'it''s'" in _relocate.update_sql(pairs)
    mysql = MysqlBackend.__new__(MysqlBackend)
    assert "'it\\'s'" in _relocate.update_sql(pairs, mysql.literal)
    assert "'a\\\\b'" in _relocate.update_sql([('a\\b', 'x')], mysql.literal)


def test_markers_include_the_map():
    pairs = [('local', 'cloud')]
    marker = restore_marker('p1', 42, pairs)
    assert marker == {'cairncms_ops_restore_point': 'p1', 'changes': 42, 'location_map': [['local', 'cloud']]}
    assert marker_matches(marker, 'p1', 42, pairs)
    assert not marker_matches(marker, 'p1', 42, [])
    assert not marker_matches(marker, 'p1', 42, [('local', 'other')])
    assert not marker_matches(marker, 'p1', 43, pairs)
    plain = restore_marker('p1', 42)
    assert 'location_map' not in plain and marker_matches(plain, 'p1', 42) and not marker_matches(plain, 'p1', 42, pairs)


def _config(tmp_path, text):
    env = tmp_path / '.env'
    env.write_text('DB_CLIENT=sqlite3\nDB_FILENAME=./data.db\n' + text)
    return InstanceConfig.load(str(env), {}, None, {})


def test_plan_restore_maps_locations_and_refuses_before_listing(tmp_path):
    (tmp_path / 'cloud').mkdir()
    (tmp_path / 'cloud' / 'x.png').write_bytes(b'old')
    (tmp_path / 'cloud' / 'stale.bin').write_bytes(b'stale')
    config = _config(tmp_path, 'STORAGE_LOCATIONS=cloud\nSTORAGE_CLOUD_DRIVER=local\nSTORAGE_CLOUD_ROOT=./cloud\n')
    inventory = [{'location': 'local', 'filename_disk': 'x.png', 'size': 3, 'sha256': 'f' * 64},
                 {'location': 'local', 'filename_disk': 'y.png', 'size': 5, 'sha256': 'e' * 64}]
    [plan] = plan_restore(config, inventory, replace=True, location_map={'local': 'cloud'})
    assert (plan['location'], plan['target']) == ('local', 'cloud')
    assert [row['filename_disk'] for row in plan['write']] == ['x.png', 'y.png']
    assert plan['differ'] == ['x.png'] and plan['extra'] == ['stale.bin']
    with pytest.raises(CairnError, match=r'local of the restore point have no location here .*STORAGE_LOCATIONS=cloud'):
        plan_restore(config, inventory, replace=True)
    two = inventory + [{'location': 'assets', 'filename_disk': 'x.png', 'size': 3, 'sha256': 'f' * 64}]
    with pytest.raises(CairnError, match='same name'):
        plan_restore(config, two, replace=True, location_map={'local': 'cloud', 'assets': 'cloud'})
    assert (tmp_path / 'cloud' / 'x.png').read_bytes() == b'old'
