# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""_fs against real directories: nothing below a root is followed, written or read through a symlink, a FIFO
or a device; writes are atomic with their mode, owner and time; and the local storage backend built on it."""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import stat
import tempfile

import pytest

from ansible_collections.cairncms.ops.plugins.module_utils import _fs
from ansible_collections.cairncms.ops.plugins.module_utils._env import Location
from ansible_collections.cairncms.ops.plugins.module_utils._storage._base import ObjectNotRegular
from ansible_collections.cairncms.ops.plugins.module_utils._storage.local import LocalStorage
from trees import entries

SECRET = b'outside the root: never read, never written\n'


@pytest.fixture
def tree(tmp_path):
    """``root`` (with a file ``a.txt`` and ``dir/b.txt``) and, beside it, ``outside`` with ``secret``."""
    root, outside = tmp_path / 'root', tmp_path / 'outside'
    (root / 'dir').mkdir(parents=True)
    outside.mkdir()
    (root / 'a.txt').write_bytes(b'a')
    (root / 'dir' / 'b.txt').write_bytes(b'b')
    (outside / 'secret').write_bytes(SECRET)
    return root, outside


@contextlib.contextmanager
def deadline(seconds=5):
    """Fail instead of hanging (an open that blocks on a FIFO)."""
    def expired(_signum, _frame):
        raise AssertionError('blocked for %d s' % seconds)
    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def test_reads_regular_files_below_the_root(tree):
    root, _outside = tree
    assert _fs.read_bytes(str(root), 'dir/b.txt') == b'b'
    assert _fs.lstat(str(root), 'a.txt').st_size == 1
    with pytest.raises(ValueError, match='larger than 0 bytes'):
        _fs.read_bytes(str(root), 'a.txt', limit=0)
    # The root itself is resolved the ordinary way: an operator's symlinked STORAGE_<LOC>_ROOT works.
    os.symlink(str(root), str(root.parent / 'via-link'))
    assert _fs.read_bytes(str(root.parent / 'via-link'), 'dir/b.txt') == b'b'


def test_missing_and_not_regular_are_told_apart(tree):
    root, _outside = tree
    for name in ('nope', 'nodir/x', 'dir/nope'):
        with pytest.raises(_fs.Missing):
            _fs.open_read(str(root), name)
    assert issubclass(_fs.Missing, FileNotFoundError)
    with pytest.raises(_fs.NotRegular) as error:
        _fs.open_read(str(root), 'a.txt/x')  # a file where a directory should be
    assert (error.value.part, error.value.kind) == ('a.txt', 'file')
    with pytest.raises(_fs.NotRegular) as error:
        _fs.open_read(str(root), 'dir')
    assert error.value.kind == 'directory'


@pytest.mark.parametrize('name', ['', '/etc/passwd', '../x', 'a/../b', 'a//b', 'a/./b', 'a/', 'a\0b', None])
def test_names_must_be_plain_relative_paths(tree, name):
    with pytest.raises(_fs.BadName):
        _fs.open_read(str(tree[0]), name)


def test_a_symlinked_directory_is_never_crossed(tree):
    root, outside = tree
    os.symlink(str(outside), str(root / 'sub'))
    before = entries(outside)
    with pytest.raises(_fs.NotRegular) as error:
        _fs.open_read(str(root), 'sub/secret')
    assert (error.value.part, error.value.kind, error.value.name) == ('sub', 'symlink', 'sub/secret')
    assert 'sub is a symlink (on the way to sub/secret)' in str(error.value)
    with pytest.raises(_fs.NotRegular):
        _fs.lstat(str(root), 'sub/secret')
    for name in ('sub/secret', 'sub/new', 'sub/deeper/new'):
        with pytest.raises(_fs.NotRegular):
            _fs.write_bytes(str(root), name, b'written through the link')
    with pytest.raises(_fs.NotRegular):
        _fs.unlink(str(root), 'sub/secret')
    files, irregular = _fs.walk(str(root))
    assert [name for name, _info in files] == ['a.txt', 'dir/b.txt']
    assert irregular == [('sub', 'symlink')]
    assert entries(outside) == before


def test_a_symlink_as_the_file_is_refused_for_reading_and_replaced_itself_on_write(tree):
    root, outside = tree
    os.symlink(str(outside / 'secret'), str(root / 'link'))
    with pytest.raises(_fs.NotRegular) as error:
        _fs.read_bytes(str(root), 'link')
    assert error.value.kind == 'symlink'
    with pytest.raises(FileExistsError):
        _fs.write_bytes(str(root), 'link', b'new', replace=False)
    _fs.write_bytes(str(root), 'link', b'new', mode=0o640)
    assert (outside / 'secret').read_bytes() == SECRET
    info = os.lstat(str(root / 'link'))
    assert stat.S_ISREG(info.st_mode) and stat.S_IMODE(info.st_mode) == 0o640
    assert (root / 'link').read_bytes() == b'new'
    os.unlink(str(root / 'link'))
    os.symlink(str(outside / 'secret'), str(root / 'link'))
    _fs.unlink(str(root), 'link')  # the link goes, not what it points at
    assert not os.path.lexists(str(root / 'link')) and (outside / 'secret').read_bytes() == SECRET


def test_a_fifo_is_refused_without_blocking(tree):
    root, _outside = tree
    os.mkfifo(str(root / 'pipe'))
    with deadline():
        with pytest.raises(_fs.NotRegular) as error:
            _fs.open_read(str(root), 'pipe')
    assert error.value.kind == 'fifo'
    assert _fs.walk(str(root))[1] == [('pipe', 'fifo')]


def test_a_file_swapped_for_a_symlink_after_the_listing_is_not_read(tree):
    root, outside = tree
    files, _irregular = _fs.walk(str(root))
    assert 'a.txt' in dict(files)
    os.symlink(str(outside / 'secret'), str(root / 'a.new'))
    os.replace(str(root / 'a.new'), str(root / 'a.txt'))  # as an attacker would, between listing and reading
    with pytest.raises(_fs.NotRegular) as error:
        _fs.open_read(str(root), 'a.txt')
    assert error.value.kind == 'symlink'
    # The same with a directory on the way.
    os.rename(str(root / 'dir'), str(root / 'dir.old'))
    os.symlink(str(outside), str(root / 'dir'))
    with pytest.raises(_fs.NotRegular):
        _fs.open_read(str(root), 'dir/b.txt')


def test_a_swap_between_the_check_and_the_open_is_caught_on_the_descriptor(tree, monkeypatch):
    """The name is a regular file when checked and a FIFO when opened: the open does not block, and the
    descriptor's own type refuses it."""
    root, _outside = tree
    real_stat = os.stat

    def stat_then_swap(path, *args, **kwargs):
        result = real_stat(path, *args, **kwargs)
        if path == 'a.txt' and kwargs.get('dir_fd') is not None:
            os.unlink(str(root / 'a.txt'))
            os.mkfifo(str(root / 'a.txt'))
        return result
    monkeypatch.setattr(_fs.os, 'stat', stat_then_swap)
    with deadline():
        with pytest.raises(_fs.NotRegular) as error:
            _fs.open_read(str(root), 'a.txt')
    assert error.value.kind == 'fifo'


def test_staged_write_is_atomic_with_mode_owner_and_time(tree):
    root, _outside = tree
    staged = _fs.StagedFile(str(root), 'new/deep/file.bin', mode=0o640, owner=(4321, 4322), mtime_ns=10 ** 18,
                            dir_mode=0o750)
    staged.write(b'x' * 10)
    assert _fs.TEMP_NAME.match(staged.tmp) and staged.replaces is None
    assert not (root / 'new' / 'deep' / 'file.bin').exists()
    staged.commit()
    info = os.stat(str(root / 'new' / 'deep' / 'file.bin'))
    assert (info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode), info.st_mtime_ns) == (4321, 4322, 0o640, 10 ** 18)
    assert (root / 'new' / 'deep' / 'file.bin').read_bytes() == b'x' * 10
    for directory in (root / 'new', root / 'new' / 'deep'):
        info = os.stat(str(directory))
        assert (info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode)) == (4321, 4322, 0o750)
    assert os.listdir(str(root / 'new' / 'deep')) == ['file.bin']  # no temporary file left
    # Replacing an existing file; discarding leaves nothing.
    _fs.write_bytes(str(root), 'a.txt', b'replaced', mode=0o600)
    assert (root / 'a.txt').read_bytes() == b'replaced'
    staged = _fs.StagedFile(str(root), 'dir/b.txt')
    staged.write(b'never')
    staged.discard()
    assert sorted(os.listdir(str(root / 'dir'))) == ['b.txt'] and (root / 'dir' / 'b.txt').read_bytes() == b'b'


@pytest.mark.parametrize('renameat2', ['native', 'unsupported'])
def test_a_file_that_appears_after_the_write_began_is_not_replaced(tree, monkeypatch, renameat2):
    root, _outside = tree
    if renameat2 == 'unsupported':  # a file system without RENAME_NOREPLACE: a hard link, then an unlink
        def refused(*_args):
            return -1
        real_libc = _fs._libc
        monkeypatch.setattr(_fs, '_libc', lambda name: refused if name == 'renameat2' else real_libc(name))
        monkeypatch.setattr(_fs.ctypes, 'get_errno', lambda: errno.EINVAL)
    ok = _fs.StagedFile(str(root), 'fresh.txt')
    ok.write(b'fresh')
    ok.commit()
    assert (root / 'fresh.txt').read_bytes() == b'fresh' and ok.placed is not None
    staged = _fs.StagedFile(str(root), 'late.txt')
    staged.write(b'ours')
    (root / 'late.txt').write_bytes(b'theirs')
    with pytest.raises(FileExistsError):
        staged.commit()
    staged.discard()
    assert (root / 'late.txt').read_bytes() == b'theirs' and sorted(os.listdir(str(root))) == [
        'a.txt', 'dir', 'fresh.txt', 'late.txt']


def test_a_directory_is_never_replaced_by_a_file(tree):
    root, _outside = tree
    with pytest.raises(_fs.NotRegular) as error:
        _fs.StagedFile(str(root), 'dir')
    assert error.value.kind == 'directory'
    with pytest.raises(_fs.NotRegular):
        _fs.unlink(str(root), 'dir')
    assert (root / 'dir' / 'b.txt').read_bytes() == b'b'


def test_unlink_prunes_empty_directories_up_to_the_root(tree):
    root, _outside = tree
    _fs.write_bytes(str(root), 'x/y/z.txt', b'z')
    _fs.write_bytes(str(root), 'x/keep.txt', b'k')
    _fs.unlink(str(root), 'x/y/z.txt', prune=True)
    assert sorted(os.listdir(str(root / 'x'))) == ['keep.txt']
    _fs.unlink(str(root), 'x/keep.txt', prune=True)
    _fs.unlink(str(root), 'dir/b.txt', prune=True)
    _fs.unlink(str(root), 'a.txt', prune=True)
    assert root.is_dir() and os.listdir(str(root)) == []
    with pytest.raises(_fs.Missing):
        _fs.unlink(str(root), 'a.txt')


def test_walk_reports_special_files_and_stops_at_a_depth(tree):
    root, _outside = tree
    os.mkfifo(str(root / 'dir' / 'pipe'))
    os.symlink('a.txt', str(root / 'dir' / 'relative-link'))
    os.makedirs(str(root / 'd1' / 'd2' / 'd3'))
    (root / 'd1' / 'd2' / 'd3' / 'deep.txt').write_bytes(b'deep')
    (root / 'd1' / 'd2' / 'shallow.txt').write_bytes(b'shallow')
    files, irregular = _fs.walk(str(root), max_depth=2)
    assert [name for name, _info in files] == ['a.txt', 'd1/d2/shallow.txt', 'dir/b.txt']
    assert irregular == [('d1/d2/d3', 'directory'), ('dir/pipe', 'fifo'), ('dir/relative-link', 'symlink')]
    assert dict(files)['dir/b.txt'].st_size == 1
    assert [name for name, _info in _fs.walk(str(root))[0]] == [
        'a.txt', 'd1/d2/d3/deep.txt', 'd1/d2/shallow.txt', 'dir/b.txt']


def test_printable_escapes_what_a_terminal_would_obey():
    assert _fs.printable('plain-name.png') == 'plain-name.png'
    assert _fs.printable('évé.png') == 'évé.png'
    assert _fs.printable('bad\nname\x1b[31m') == 'bad\\nname\\x1b[31m'
    assert _fs.printable(os.fsdecode(b'\xff.png')) == '\\udcff.png'


def local(root):
    return LocalStorage(Location('local', 'local', {'root': str(root)}))


def test_local_storage_lists_regular_files_and_keeps_what_it_skipped(tree):
    root, outside = tree
    os.symlink(str(outside), str(root / 'sub'))
    os.mkfifo(str(root / 'pipe'))
    leftover = tempfile.mkstemp(prefix='.cairn-', suffix='.part', dir=str(root / 'dir'))  # an earlier version's
    os.close(leftover[0])
    (root / '.cairn-notes.txt').write_bytes(b'content, not ours')
    os.mkfifo(str(root / '.cairn-0123456789ab.part'))  # our name, but not a regular file: not a leftover
    storage = local(root)
    assert [entry.name for entry in storage.list()] == ['.cairn-notes.txt', 'a.txt', 'dir/b.txt']
    assert storage.irregular() == [('.cairn-0123456789ab.part', 'fifo'), ('pipe', 'fifo'), ('sub', 'symlink')]
    assert storage.leftovers() == ['dir/' + os.path.basename(leftover[1])]
    assert [entry.name for entry in storage.list(under='dir/')] == ['dir/b.txt'] and storage.irregular() == []


def test_local_storage_refuses_a_file_swapped_after_listing(tree):
    root, outside = tree
    storage = local(root)
    assert 'a.txt' in [entry.name for entry in storage.list()]
    os.unlink(str(root / 'a.txt'))
    os.symlink(str(outside / 'secret'), str(root / 'a.txt'))
    with pytest.raises(ObjectNotRegular) as error:
        storage.open_read('a.txt')
    assert error.value.kind == 'symlink' and 'storage location local' in error.value.message
    with pytest.raises(ObjectNotRegular):
        storage.sha256('a.txt')
    with pytest.raises(ObjectNotRegular):
        storage.stat('a.txt')


def test_local_storage_writes_replace_links_and_never_cross_them(tree):
    root, outside = tree
    os.symlink(str(outside), str(root / 'sub'))
    os.symlink(str(outside / 'secret'), str(root / 'link'))
    storage = local(root)
    before = entries(outside)
    with pytest.raises(ObjectNotRegular, match='sub is a symlink'):
        storage.begin_write('sub/secret')
    write = storage.begin_write('link', mtime_ns=5 * 10 ** 17)
    write.write(b'restored')
    write.close()
    write.commit()
    assert (root / 'link').read_bytes() == b'restored' and not os.path.islink(str(root / 'link'))
    storage.delete('sub')
    assert not os.path.lexists(str(root / 'sub'))
    assert entries(outside) == before
    with pytest.raises(ObjectNotRegular, match='is a directory, which a file can neither replace nor be removed'):
        storage.begin_write('dir')


def test_sync_parents_syncs_each_directory_once_and_never_through_a_symlink(tmp_path, monkeypatch):
    root = tmp_path / 'root'
    (root / 'real').mkdir(parents=True)
    (tmp_path / 'outside').mkdir()
    os.symlink(str(tmp_path / 'outside'), str(root / 'link'))
    synced = []
    real_fsync = os.fsync

    def fsync(fd):
        synced.append(os.readlink('/proc/self/fd/%d' % fd))
        real_fsync(fd)
    monkeypatch.setattr(_fs.os, 'fsync', fsync)
    _fs.sync_parents(str(root), ['real/a', 'real/b', 'top', 'link/c', 'gone/d'])
    assert sorted(synced) == sorted([str(root), str(root / 'real')])


class _Syncs:
    """Records each fsync (by path) of the staged writes below, as the kernel sees them."""

    def __init__(self, monkeypatch):
        self.fsynced = []
        real_fsync = os.fsync

        def fsync(fd):
            self.fsynced.append(os.readlink('/proc/self/fd/%d' % fd))
            real_fsync(fd)
        monkeypatch.setattr(_fs.os, 'fsync', fsync)

    def files(self):
        return [path for path in self.fsynced if not os.path.isdir(path)]


def _staged(storage, names):
    writes = []
    for name in names:
        write = storage.begin_write(name)
        write.write(name.encode() * 100)
        write.close()
        writes.append(write)
    return writes


def test_each_staged_file_is_synced_as_it_is_closed_and_each_directory_once_after_the_commits(tmp_path, monkeypatch):
    """The syncs of the files are spread over the staging (beside a database load, a sync of them all at once held
    the load up by seconds); the directories are synced once each, after the files are put in place."""
    syncs = _Syncs(monkeypatch)
    storage = local(tmp_path)
    writes = _staged(storage, ['a.bin', 'b.bin', 'sub/c.bin'])
    synced = syncs.files()
    assert len(synced) == 3 and all(os.path.basename(path).startswith(_fs.TEMP_PREFIX) for path in synced)
    with storage.batch():
        for write in writes:
            write.commit()
    assert syncs.files() == synced  # nothing more for the files
    assert {os.path.basename(path) for path in syncs.fsynced if os.path.isdir(path)} == {tmp_path.name, 'sub'}
    assert (tmp_path / 'sub' / 'c.bin').read_bytes() == b'sub/c.bin' * 100


def test_the_fingerprint_of_a_committed_file_changes_with_any_later_change(tmp_path):
    storage = local(tmp_path)
    write, = _staged(storage, ['a.bin'])
    write.commit()
    assert write.placed is not None and storage.fingerprints() == {'a.bin': write.placed}
    info = os.stat(str(tmp_path / 'a.bin'))
    with open(str(tmp_path / 'a.bin'), 'r+b') as handle:  # same size, the time set back: the change time moves
        handle.write(b'X')
    os.utime(str(tmp_path / 'a.bin'), ns=(info.st_atime_ns, info.st_mtime_ns))
    assert storage.fingerprints()['a.bin'] != write.placed
    os.symlink(str(tmp_path / 'a.bin'), str(tmp_path / 'link'))
    assert list(storage.fingerprints()) == ['a.bin']  # a symlink has none
