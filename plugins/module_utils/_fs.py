# -*- coding: utf-8 -*-
# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Files below a root directory, reached without following any symlink (private, stdlib only).

The root is opened the ordinary way (an operator's setting may well be a symlink). Everything below it is
reached one component at a time, relative to the descriptor of its parent, with ``O_NOFOLLOW``: a symlink
anywhere below the root, as a directory or as the file itself, is refused and never followed, and since the
descriptor that was checked is the one used there is no window between a check and its use. A file is read
only once its descriptor is known to be a regular file, so a FIFO or a device is refused without blocking.

Names are ``/``-separated and relative to the root; ``''``, ``.`` and ``..`` components are refused.
"""

from __future__ import annotations

import ctypes
import errno
import os
import re
import secrets
import stat

TEMP_PREFIX = '.cairn-'
TEMP_SUFFIX = '.part'
# Our temporary files: ``.cairn-<random>.part`` (12 hex digits; 8 lowercase letters, digits or ``_`` from
# tempfile's ``mkstemp`` in earlier versions). A file of that name in a storage location is a leftover.
TEMP_NAME = re.compile(r'^\.cairn-[a-z0-9_]{8,32}\.part$')
MAX_DEPTH = 64  # directory levels ``walk`` descends; deeper directories are reported, not entered

_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_READ = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_NEW = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_KINDS = ((stat.S_ISLNK, 'symlink'), (stat.S_ISDIR, 'directory'), (stat.S_ISREG, 'file'),
          (stat.S_ISFIFO, 'fifo'), (stat.S_ISSOCK, 'socket'), (stat.S_ISCHR, 'character device'),
          (stat.S_ISBLK, 'block device'))


class BadName(ValueError):
    """A name that is not a plain relative path (empty, absolute, with ``.``, ``..`` or empty components)."""


class Missing(FileNotFoundError):
    """The name, or one of its directories, does not exist below the root."""


class NotRegular(OSError):
    """The name is not a regular file, or reaching it crosses something that is not a real directory.

    ``part`` is the offending component (relative to the root), ``kind`` what stands there (``symlink``,
    ``fifo``, ``directory``, ``file`` where a directory was needed...)."""

    def __init__(self, root, name, part, kind):
        super().__init__(errno.ELOOP if kind == 'symlink' else errno.EINVAL,
                         '%s is a %s' % (printable(part), kind), os.path.join(root, name))
        self.root = root
        self.name = name
        self.part = part
        self.kind = kind

    def __str__(self):
        where = '' if self.part == self.name else ' (on the way to %s)' % printable(self.name)
        return '%s is a %s%s; below %s nothing is followed or read but regular files in real directories' % (
            printable(os.path.join(self.root, self.part)), self.kind, where, self.root)


def kind_of(mode):
    """What an ``st_mode`` is: ``file``, ``directory``, ``symlink``, ``fifo``, ``socket``, ``character
    device``, ``block device`` or ``unknown``."""
    return next((kind for test, kind in _KINDS if test(mode)), 'unknown')


def printable(name):
    """``name`` as it may be shown in a message: control characters and undecodable bytes escaped."""
    return name if name.isprintable() else ascii(name)[1:-1]


def split(name):
    """The components of a relative name; ``BadName`` for anything else."""
    parts = name.split('/') if isinstance(name, str) else ['']
    if any(part in ('', '.', '..') or '\0' in part for part in parts):
        raise BadName('%r is not a relative name below a root directory (no leading "/", no empty, "." or ".." '
                      'components)' % (name,))
    return parts


def is_temp(name):
    """Whether the last component of ``name`` is one of our temporary files."""
    leaf = name.rsplit('/', 1)[-1]
    return leaf.startswith(TEMP_PREFIX) and bool(TEMP_NAME.match(leaf))  # the prefix test first: it runs per file


def _kind_at(dir_fd, leaf):
    try:
        return kind_of(os.stat(leaf, dir_fd=dir_fd, follow_symlinks=False).st_mode)
    except OSError:
        return 'unknown'


def _open_root(root):
    try:
        return os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise Missing(errno.ENOENT, 'the root directory does not exist', root)


def _child_dir(root, name, fd, parts, index, create, mode, owner):
    """Open the directory ``parts[index]`` below ``fd`` (making it with ``create``), never through a symlink."""
    part, relative = parts[index], '/'.join(parts[:index + 1])
    made = False
    for _attempt in range(3):
        try:
            child = os.open(part, _DIR, dir_fd=fd)
        except FileNotFoundError:
            if not create:
                raise Missing(errno.ENOENT, 'no such directory', os.path.join(root, relative))
            try:
                os.mkdir(part, 0o700, dir_fd=fd)
                made = True
            except FileExistsError:
                pass  # made meanwhile: open what is there, with the same checks
            continue
        except OSError as exc:
            if exc.errno not in (errno.ELOOP, errno.ENOTDIR):
                raise
            raise NotRegular(root, name, relative, _kind_at(fd, part))
        if made:
            try:
                if owner is not None:
                    os.fchown(child, owner[0], owner[1])
                os.fchmod(child, mode)
                os.fsync(fd)
            except BaseException:
                os.close(child)
                raise
        return child
    raise Missing(errno.ENOENT, 'removed as soon as it was made', os.path.join(root, relative))


def _open_dirs(root, name, parts, create=False, mode=0o755, owner=None):
    """Descriptors of the root and of each directory ``parts`` of ``name``, in order (the caller closes them)."""
    fds = [_open_root(root)]
    try:
        for index in range(len(parts)):
            fds.append(_child_dir(root, name, fds[-1], parts, index, create, mode, owner))
    except BaseException:
        _close(fds)
        raise
    return fds


def _close(fds):
    for fd in fds:
        os.close(fd)


def sync_parents(root, names):
    """Sync the directory of each of ``names`` once (opened as ``_parent`` opens it: never through a symlink), so
    that files put in place there survive a crash. A directory gone meanwhile is passed over."""
    for parts in sorted({tuple(split(name)[:-1]) for name in names}):
        try:
            fd = _parent(root, list(parts) + ['.'])
        except (Missing, NotRegular):
            continue
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _parent(root, parts, create=False, mode=0o755, owner=None):
    """A descriptor of the directory that holds the last of ``parts``."""
    fds = _open_dirs(root, '/'.join(parts), parts[:-1], create, mode, owner)
    _close(fds[:-1])
    return fds[-1]


def _open_regular(root, name, dir_fd, leaf):
    """A read-only descriptor of the regular file ``leaf`` in ``dir_fd`` and its ``os.stat_result``."""
    try:
        before = os.stat(leaf, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        raise Missing(errno.ENOENT, 'no such file', os.path.join(root, name))
    if not stat.S_ISREG(before.st_mode):  # a device is never opened: opening some has effects
        raise NotRegular(root, name, name, kind_of(before.st_mode))
    try:
        fd = os.open(leaf, _READ, dir_fd=dir_fd)
    except FileNotFoundError:
        raise Missing(errno.ENOENT, 'no such file', os.path.join(root, name))
    except OSError as exc:
        if exc.errno not in (errno.ELOOP, errno.ENXIO, errno.EISDIR):
            raise
        raise NotRegular(root, name, name, _kind_at(dir_fd, leaf))
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):  # swapped since the check: a FIFO opens at once with O_NONBLOCK
        os.close(fd)
        raise NotRegular(root, name, name, kind_of(info.st_mode))
    os.set_blocking(fd, True)
    return fd, info


def lstat(root, name):
    """The ``os.stat_result`` of the regular file ``name`` below ``root``; ``Missing`` or ``NotRegular``."""
    parts = split(name)
    dir_fd = _parent(root, parts)
    try:
        info = os.stat(parts[-1], dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        raise Missing(errno.ENOENT, 'no such file', os.path.join(root, name))
    finally:
        os.close(dir_fd)
    if not stat.S_ISREG(info.st_mode):
        raise NotRegular(root, name, name, kind_of(info.st_mode))
    return info


def fingerprint(info):
    """What tells one state of a file from any later one: any write, truncation, rename over it or change of its
    links or mode sets the change time, which no caller can set back."""
    return info.st_dev, info.st_ino, info.st_size, info.st_ctime_ns


_RENAME_NOREPLACE = 1
_NO_RENAMEAT2 = (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOTSUP)
_LIBC = {}


def _libc(name):
    """The C library's function ``name`` (setting errno), looked up once; None where this system has none."""
    if name not in _LIBC:
        try:
            _LIBC[name] = getattr(ctypes.CDLL(None, use_errno=True), name)
        except (OSError, AttributeError):
            _LIBC[name] = None
    return _LIBC[name]


def _rename_noreplace(dir_fd, source, target, shown):
    """Rename ``source`` to ``target`` in ``dir_fd`` unless ``target`` exists (``FileExistsError``); False when
    this system or file system cannot (then the caller links and unlinks)."""
    rename = _libc('renameat2')
    if rename is None:
        return False
    if rename(dir_fd, os.fsencode(source), dir_fd, os.fsencode(target), _RENAME_NOREPLACE) == 0:
        return True
    code = ctypes.get_errno()
    if code == errno.EEXIST:
        raise FileExistsError(errno.EEXIST, 'appeared after the write began; not replaced', shown)
    if code in _NO_RENAMEAT2:
        return False
    raise OSError(code, os.strerror(code), shown)


def open_read(root, name):
    """A binary reader of the regular file ``name`` below ``root``; ``Missing`` or ``NotRegular``."""
    parts = split(name)
    dir_fd = _parent(root, parts)
    try:
        fd, _info = _open_regular(root, name, dir_fd, parts[-1])
    finally:
        os.close(dir_fd)
    return os.fdopen(fd, 'rb')


def read_bytes(root, name, limit=None):
    """The content of the regular file ``name`` below ``root``; ``ValueError`` when it is larger than ``limit``."""
    with open_read(root, name) as handle:
        data = handle.read() if limit is None else handle.read(limit + 1)
    if limit is not None and len(data) > limit:
        raise ValueError('%s is larger than %d bytes' % (os.path.join(root, name), limit))
    return data


class StagedFile:
    """A new file ``name`` below ``root``, written through a temporary file beside it.

    The temporary file (``.cairn-<random>.part``, created with ``O_EXCL``, mode 0600) is made in the directory
    that will hold ``name``; missing directories are made on the way (``dir_mode``, and ``owner`` when given).
    ``close()`` gives it ``mode``, ``owner`` and ``mtime_ns`` and syncs it; ``commit()`` renames it over
    ``name`` and syncs the directory, ``discard()`` removes it. What ``name`` was when the write began is
    ``replaces`` (None when absent, else its kind): absent then, a commit never replaces what appeared since
    (``FileExistsError``); a directory, or anything at all when ``replace`` is false, is refused at once.
    Only the temporary file's name is kept between ``close()`` and ``commit()``, no descriptor.
    """

    def __init__(self, root, name, mode=0o644, owner=None, mtime_ns=None, dir_mode=0o755, replace=True):
        self.root = root
        self.name = name
        self.mode = mode
        self.owner = owner
        self.mtime_ns = mtime_ns
        self._parts = split(name)
        self._handle = None
        self.tmp = None
        self.placed = None  # once committed: the ``fingerprint`` of the file at its name
        dir_fd = _parent(root, self._parts, create=True, mode=dir_mode, owner=owner)
        try:
            self.replaces = self._kind(dir_fd)
            if self.replaces == 'directory':
                raise NotRegular(root, name, name, 'directory')
            if self.replaces is not None and not replace:
                raise FileExistsError(errno.EEXIST, 'already exists', os.path.join(root, name))
            fd = self._create(dir_fd)
        finally:
            os.close(dir_fd)
        info = os.fstat(fd)
        self._identity = info.st_ino, info.st_dev
        self._handle = os.fdopen(fd, 'wb')

    def _kind(self, dir_fd):
        """What stands at the final name now (None: nothing)."""
        try:
            return kind_of(os.stat(self._parts[-1], dir_fd=dir_fd, follow_symlinks=False).st_mode)
        except FileNotFoundError:
            return None

    def _create(self, dir_fd):
        for _attempt in range(100):
            tmp = '%s%s%s' % (TEMP_PREFIX, secrets.token_hex(6), TEMP_SUFFIX)
            try:
                fd = os.open(tmp, _NEW, 0o600, dir_fd=dir_fd)
            except FileExistsError:
                continue
            self.tmp = tmp
            try:
                if self.owner is not None:
                    os.fchown(fd, self.owner[0], self.owner[1])
            except BaseException:
                os.close(fd)
                self._unlink_tmp(dir_fd)
                raise
            return fd
        raise FileExistsError(errno.EEXIST, 'no free temporary name', os.path.join(self.root, self.name))

    def write(self, data):
        return self._handle.write(data)

    def close(self, sync=True):
        """Give the file its mode and time, sync it (unless ``sync`` is false) and close it."""
        if self._handle is not None and not self._handle.closed:
            self._handle.flush()
            fd = self._handle.fileno()
            os.fchmod(fd, self.mode)
            if self.mtime_ns is not None:
                os.utime(fd, ns=(self.mtime_ns, self.mtime_ns))
            if sync:
                os.fsync(fd)
            self._handle.close()

    def commit(self, sync_dir=True):
        """Put the file in place; without ``sync_dir`` the directory is not synced here (``sync_parents`` syncs
        the directories of many files once each, after they are all in place)."""
        self.close()
        dir_fd = _parent(self.root, self._parts)
        try:
            info = os.stat(self.tmp, dir_fd=dir_fd, follow_symlinks=False)
            if (info.st_ino, info.st_dev) != self._identity:
                raise OSError(errno.ESTALE, 'the temporary file was replaced before it was put in place',
                              os.path.join(self.root, self._dirname() + self.tmp))
            leaf = self._parts[-1]
            if self.replaces is None:
                self._link(dir_fd, leaf)
            else:
                os.rename(self.tmp, leaf, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
            self.tmp = None
            placed = os.stat(leaf, dir_fd=dir_fd, follow_symlinks=False)
            if (placed.st_ino, placed.st_dev) == self._identity:
                self.placed = fingerprint(placed)
            if sync_dir:
                os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    def _link(self, dir_fd, leaf):
        """Put the file at ``leaf`` only if nothing is there: one rename that refuses to replace (renameat2 with
        RENAME_NOREPLACE), or where there is none a hard link, then the temporary name goes."""
        if _rename_noreplace(dir_fd, self.tmp, leaf, os.path.join(self.root, self.name)):
            return
        try:
            os.link(self.tmp, leaf, src_dir_fd=dir_fd, dst_dir_fd=dir_fd, follow_symlinks=False)
        except FileExistsError:
            raise FileExistsError(errno.EEXIST, 'appeared after the write began; not replaced',
                                  os.path.join(self.root, self.name))
        except OSError as exc:
            if exc.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EMLINK):
                raise
            # A file system without hard links: check, then rename (the check and the rename are two steps).
            if self._kind(dir_fd) is not None:
                raise FileExistsError(errno.EEXIST, 'appeared after the write began; not replaced',
                                      os.path.join(self.root, self.name))
            os.rename(self.tmp, leaf, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
            return
        os.unlink(self.tmp, dir_fd=dir_fd)

    def _dirname(self):
        return '/'.join(self._parts[:-1]) + '/' if len(self._parts) > 1 else ''

    def _unlink_tmp(self, dir_fd):
        try:
            os.unlink(self.tmp, dir_fd=dir_fd)
        except FileNotFoundError:
            pass
        self.tmp = None

    def discard(self):
        if self._handle is not None and not self._handle.closed:
            self._handle.close()
        if self.tmp is None:
            return
        try:
            dir_fd = _parent(self.root, self._parts)
        except OSError:
            return  # its directory is gone or was replaced: nothing of ours to remove there
        try:
            self._unlink_tmp(dir_fd)
        finally:
            os.close(dir_fd)


def write_bytes(root, name, data, mode=0o600, owner=None, dir_mode=0o700, replace=True, mtime_ns=None):
    """Write ``data`` to ``name`` below ``root`` atomically (see ``StagedFile``): with ``mode`` and, when given,
    ``owner`` (uid, gid) for the file and any directory made; ``replace=False`` refuses an existing name."""
    staged = StagedFile(root, name, mode=mode, owner=owner, mtime_ns=mtime_ns, dir_mode=dir_mode, replace=replace)
    try:
        staged.write(data)
        staged.commit()
    except BaseException:
        staged.discard()
        raise


def unlink(root, name, prune=False):
    """Remove the entry ``name`` below ``root``: a file, a FIFO or a symlink itself (never what a symlink points
    at); a directory is refused. With ``prune``, then remove its directories left empty, up to the root."""
    parts = split(name)
    fds = _open_dirs(root, name, parts[:-1])
    try:
        try:
            os.unlink(parts[-1], dir_fd=fds[-1])
        except FileNotFoundError:
            raise Missing(errno.ENOENT, 'no such file', os.path.join(root, name))
        except IsADirectoryError:
            raise NotRegular(root, name, name, 'directory')
        except PermissionError:
            if _kind_at(fds[-1], parts[-1]) != 'directory':  # EPERM is what some systems say for a directory
                raise
            raise NotRegular(root, name, name, 'directory')
        os.fsync(fds[-1])
        if prune:
            for index in range(len(parts) - 1, 0, -1):
                try:
                    os.rmdir(parts[index - 1], dir_fd=fds[index - 1])
                except OSError as exc:
                    if exc.errno in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOTDIR, errno.ENOENT, errno.EBUSY):
                        break
                    raise
                os.fsync(fds[index - 1])
    finally:
        _close(fds)


def walk(root, max_depth=MAX_DEPTH):
    """Everything below ``root``, without following a symlink: ``(files, irregular)``, both sorted by name.

    ``files`` are ``(name, os.stat_result)`` of the regular files; ``irregular`` are ``(name, kind)`` of the
    entries that were not followed or read: symlinks (to files or directories), FIFOs, sockets, devices, and
    directories more than ``max_depth`` levels down (kind ``directory``). An entry removed while the walk runs is
    left out."""
    files, irregular = [], []
    stack = [_scan(_open_root(root), '', files, irregular)]
    try:
        while stack:
            fd, prefix, pending = stack[-1]
            leaf = next(pending, None)
            if leaf is None:
                os.close(fd)
                stack.pop()
                continue
            if len(stack) > max_depth:
                irregular.append((prefix + leaf, 'directory'))
                continue
            try:
                child = os.open(leaf, _DIR, dir_fd=fd)
            except FileNotFoundError:
                continue
            except OSError as exc:
                if exc.errno not in (errno.ELOOP, errno.ENOTDIR):
                    raise
                irregular.append((prefix + leaf, _kind_at(fd, leaf)))  # swapped since it was listed
                continue
            stack.append(_scan(child, prefix + leaf + '/', files, irregular))
    finally:
        _close(frame[0] for frame in stack)
    files.sort(key=lambda item: item[0])
    irregular.sort()
    return files, irregular


def _scan(fd, prefix, files, irregular):
    """List the directory ``fd``: its files and irregular entries are recorded, its subdirectories returned."""
    directories = []
    try:
        with os.scandir(fd) as entries:
            found = list(entries)
        for entry in found:
            try:
                info = entry.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue
            if stat.S_ISDIR(info.st_mode):
                directories.append(entry.name)
            elif stat.S_ISREG(info.st_mode):
                files.append((prefix + entry.name, info))
            else:
                irregular.append((prefix + entry.name, kind_of(info.st_mode)))
    except BaseException:
        os.close(fd)
        raise
    return fd, prefix, iter(sorted(directories))
