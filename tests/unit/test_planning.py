# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure logic: regenerable files, names, the manifest."""

from __future__ import annotations

import types

import pytest

from ansible_collections.cairncms.ops.plugins.module_utils import _manifest
from ansible_collections.cairncms.ops.plugins.module_utils._common import CairnError, check_name
from ansible_collections.cairncms.ops.plugins.module_utils._repository import select_repository
from ansible_collections.cairncms.ops.plugins.module_utils._storage._base import regenerable

ID = '8b3c2f6e-4a1d-4c8e-9f2a-1d2e3f4a5b6c'


def test_regenerable_derivatives_need_their_original():
    names = [ID + '.jpg', ID + '__a1b2c3d4e5f60718a1b2c3d4e5f60718a1b2c3d4.jpg', ID + '__a1b2c3d4e5f60718a1b2c3d4e5f60718a1b2c3d4.webp',
             'f0f0f0f0-0000-4000-8000-000000000000__a1b2c3d4e5f60718a1b2c3d4e5f60718a1b2c3d4.png',  # orphan: original gone, keep it
             'health-MShfe', 'sub/' + ID + '.png', 'sub/' + ID + '__0123456789abcdef0123456789abcdef01234567.png', 'plain__x.txt']
    assert regenerable(names) == {ID + '__a1b2c3d4e5f60718a1b2c3d4e5f60718a1b2c3d4.jpg', ID + '__a1b2c3d4e5f60718a1b2c3d4e5f60718a1b2c3d4.webp',
                                  'health-MShfe', 'sub/' + ID + '__0123456789abcdef0123456789abcdef01234567.png'}


@pytest.mark.parametrize('name', ['../etc', 'a/b', '', '.hidden', 'x' * 200, 'a..b'])
def test_names_that_could_escape_are_refused(name):
    with pytest.raises(CairnError):
        check_name('instance', name)


def test_repository_spec_errors():
    with pytest.raises(CairnError, match='must be a dict with a type'):
        select_repository({'path': '/x'})
    with pytest.raises(CairnError, match="repository type 'ftp' is not supported"):
        select_repository({'type': 'ftp', 'bucket': 'b'})
    with pytest.raises(CairnError, match='needs its container'):
        select_repository({'type': 'azure', 'account_name': 'a'})
    with pytest.raises(CairnError, match='unknown: path'):
        select_repository({'type': 'gcs', 'bucket': 'b', 'path': '/x'})
    with pytest.raises(CairnError, match='take account_key; unknown: key'):
        select_repository({'type': 'azure', 'container': 'c', 'account_name': 'a'}, credentials={'key': 'k'})
    with pytest.raises(CairnError, match='absolute directory path'):
        select_repository({'type': 'local', 'path': 'relative'})
    with pytest.raises(CairnError, match='unknown: bucket'):
        select_repository({'type': 'local', 'path': '/x', 'bucket': 'b'})


def _parts():
    return {
        'database': {'vendor': 'sqlite', 'client': 'sqlite3', 'server_version': '3.40.1', 'format': 'sqlite3',
                     'compression': 'zstd', 'artifact': 'database.sqlite3.zst', 'size_bytes': 10, 'sha256': 'a' * 64,
                     'raw_size_bytes': 20, 'raw_sha256': 'b' * 64, 'row_counts': {'t': 1},
                     'migration_level': '20230222A', 'duration_s': 0.1},
        'storage': {'inventory': 'files.jsonl', 'inventory_size_bytes': 5, 'inventory_sha256': 'c' * 64,
                    'locations': [], 'files': 0, 'bytes': 0, 'include_regenerable': False, 'duration_s': 0.1},
    }


def _stat(sizes):
    return lambda name: types.SimpleNamespace(st_size=sizes[name]) if name in sizes else None


RUN = {'id': 'p1', 'instance': 'blog', 'started_at': '2026-01-01T00:00:00.000000Z'}


def test_manifest_lists_every_artifact_and_checks_them():
    manifest = _manifest.build(RUN, _parts(), {'key': 'k', 'public_url': None},
                               _stat({'database.sqlite3.zst': 10, 'files.jsonl': 5}))
    assert _manifest.check(manifest) is manifest
    assert manifest['format_version'] == 2
    assert [(a['path'], a['size_bytes'], a['sha256'], a['kind']) for a in _manifest.artifacts(manifest)] == [
        ('database.sqlite3.zst', 10, 'a' * 64, 'database'), ('files.jsonl', 5, 'c' * 64, 'files')]
    assert [entry['kind'] for entry in manifest['parts']] == ['database', 'files', 'secrets']
    assert manifest['cms'] == {'key': 'k', 'public_url': None, 'instance_dir': None, 'migration_level': '20230222A'}
    assert _manifest.part(manifest, 'secrets')['captured'] is False
    assert _manifest.part(manifest, 'database')['artifact'] == 'database.sqlite3.zst'
    assert _manifest.part(manifest, 'schema') is None
    assert _manifest.summary(manifest)['size_bytes'] == 15
    assert _manifest.validate(manifest, 'here', 'p1') is manifest


def test_manifest_refuses_incomplete_runs():
    parts = _parts()
    with pytest.raises(CairnError, match='wrong size'):
        _manifest.build(RUN, parts, {}, _stat({'database.sqlite3.zst': 9, 'files.jsonl': 5}))
    with pytest.raises(CairnError, match='no files part'):
        _manifest.build(RUN, {'database': parts['database']}, {}, _stat({}))
    with pytest.raises(CairnError, match='no database part'):
        _manifest.build(RUN, {'storage': parts['storage']}, {}, _stat({}))


def test_manifest_version_check():
    with pytest.raises(CairnError, match='format version 3; .* reads versions 1, 2 .*made by a newer release'):
        _manifest.check({'format': _manifest.FORMAT, 'format_version': 3, 'id': 'x'})
    with pytest.raises(CairnError, match='format version True'):
        _manifest.check({'format': _manifest.FORMAT, 'format_version': True, 'id': 'x'})
    with pytest.raises(CairnError, match='not a cairncms.ops restore point'):
        _manifest.check({'format': 'other'})
