# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The verification's file check after a restore (_verify.check_file_bytes) on a real local location: a file the
restore wrote and hashed is not read again while its fingerprint is the one it had when put in place; any file
changed since, and every file the restore did not write, is read back and hashed."""

from __future__ import annotations

import hashlib
import os

from ansible_collections.cairncms.ops.plugins.module_utils import _verify
from ansible_collections.cairncms.ops.plugins.module_utils._env import Location
from ansible_collections.cairncms.ops.plugins.module_utils._storage.local import LocalStorage


def _world(tmp_path, monkeypatch, names):
    """A location ``local`` whose files ``names`` were written by a restore (their witness), plus ``kept.bin``
    that was already there; the inventory lists them all. Returns (storage, witness, reads)."""
    storage = LocalStorage(Location('local', 'local', {'root': str(tmp_path)}))
    rows, witness = [], {}
    writes = []
    for name in names:
        data = name.encode() * 50
        write = storage.begin_write(name)
        write.write(data)
        write.close()
        writes.append(write)
        rows.append({'location': 'local', 'filename_disk': name, 'sha256': hashlib.sha256(data).hexdigest()})
    for write in writes:
        write.commit()
        witness[('local', write._staged.name)] = write.placed
    (tmp_path / 'kept.bin').write_bytes(b'kept')
    rows.append({'location': 'local', 'filename_disk': 'kept.bin', 'sha256': hashlib.sha256(b'kept').hexdigest()})
    reads = []
    real_sha256 = LocalStorage.sha256

    def sha256(self, name):
        reads.append(name)
        return real_sha256(self, name)
    monkeypatch.setattr(LocalStorage, 'sha256', sha256)
    monkeypatch.setattr(_verify, 'read_inventory', lambda *_args: rows)
    monkeypatch.setattr(_verify, '_storages', lambda _config: {'local': storage})
    return storage, witness, reads


def _check(witness):
    report = _verify.Report()
    _verify.check_file_bytes(report, None, None, 'blog', {'id': 'P1'}, witness=witness)
    check, = report.checks
    return check


def test_files_the_restore_wrote_are_not_read_again(tmp_path, monkeypatch):
    _storage, witness, reads = _world(tmp_path, monkeypatch, ['a.bin', 'b.bin'])
    check = _check(witness)
    assert check['ok'] and check['detail'] == '3 file(s) equal (2 hashed as this restore wrote them and unchanged ' \
        'since, 1 read back)', check
    assert reads == ['kept.bin']
    plain = _check(None)  # a verification on its own reads every file
    assert plain['ok'] and plain['detail'] == '3 file(s) equal' and sorted(reads[1:]) == ['a.bin', 'b.bin', 'kept.bin']


def test_a_file_changed_after_it_was_put_in_place_is_read_back_and_caught(tmp_path, monkeypatch):
    _storage, witness, reads = _world(tmp_path, monkeypatch, ['a.bin', 'b.bin'])
    path = str(tmp_path / 'a.bin')
    info = os.stat(path)
    with open(path, 'r+b') as handle:  # same size, and the modification time set back
        handle.write(b'Z')
    os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns))
    os.unlink(str(tmp_path / 'b.bin'))
    os.symlink(path, str(tmp_path / 'b.bin'))  # swapped for a symlink: never followed
    check = _check(witness)
    assert not check['ok'] and check['detail'].startswith('2 differ: '), check
    assert 'a.bin (sha256 differs)' in check['detail'] and 'b.bin (missing)' in check['detail']
    assert sorted(reads) == ['a.bin', 'b.bin', 'kept.bin']
