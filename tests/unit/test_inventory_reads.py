# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The file inventory of a restore point is read and checked once per repository and inventory checksum in a
module run (_sync.read_inventory): the plan, the restore and the verification share it; a damaged copy is never
kept, and another repository or another checksum reads again."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json

import pytest

from ansible_collections.cairncms.ops.plugins.module_utils import _sync
from ansible_collections.cairncms.ops.plugins.module_utils._common import CairnError

ROWS = [{'location': 'local', 'filename_disk': 'a.bin', 'size': 3, 'sha256': 'a' * 64},
        {'location': 'local', 'filename_disk': 'b.bin', 'size': 4, 'sha256': 'b' * 64}]
DATA = ''.join(json.dumps(row) + '\n' for row in ROWS).encode()


class Repository:
    """Serves one inventory artifact, counting the reads."""

    def __init__(self, data=DATA):
        self.data = data
        self.reads = 0

    @contextlib.contextmanager
    def open_artifact(self, _instance, _point, _name):
        self.reads += 1
        yield io.BytesIO(self.data)


def _manifest(point='P1', sha256=None):
    return {'id': point, 'format_version': 2, 'parts': [{'kind': 'files', 'inventory': 'files.jsonl', 'artifacts': [
        {'path': 'files.jsonl', 'size_bytes': len(DATA), 'sha256': sha256 or hashlib.sha256(DATA).hexdigest(),
         'encrypted': False}]}]}


@pytest.fixture(autouse=True)
def _plain_views(monkeypatch):
    monkeypatch.setattr(_sync, 'part', lambda manifest, _kind: manifest['parts'][0])
    monkeypatch.setattr(_sync, 'artifacts', lambda manifest: manifest['parts'][0]['artifacts'])


def test_one_read_per_repository_and_checksum():
    repository, manifest = Repository(), _manifest()
    first = _sync.read_inventory(repository, 'blog', manifest)
    first.append({'not': 'kept'})  # a caller's list is its own
    second = _sync.read_inventory(repository, 'blog', manifest)
    assert second == ROWS and repository.reads == 1
    other = Repository()
    assert _sync.read_inventory(other, 'blog', manifest) == ROWS and other.reads == 1
    assert _sync.read_inventory(repository, 'blog', _manifest('P2')) == ROWS and repository.reads == 2


def test_a_damaged_copy_fails_every_time_and_is_never_kept():
    repository, manifest = Repository(DATA.replace(b'a.bin', b'c.bin')), _manifest()
    for _attempt in range(2):
        with pytest.raises(CairnError, match='fails its checksum'):
            _sync.read_inventory(repository, 'blog', manifest)
    assert repository.reads == 2
    repository.data = DATA  # mended: read and checked again
    assert _sync.read_inventory(repository, 'blog', manifest) == ROWS
