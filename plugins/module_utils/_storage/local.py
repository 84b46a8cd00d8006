# -*- coding: utf-8 -*-
# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Local disk storage (STORAGE_<LOC>_DRIVER=local) (private).

The root (``STORAGE_<LOC>_ROOT``) is resolved the ordinary way; below it nothing is followed (see ``_fs``): a
listing reports only regular files and keeps the symlinks and special files it passed over (``irregular``),
reads and writes refuse to cross a symlink, and a write replaces a symlink itself, never what it points at.
"""

from __future__ import annotations

import contextlib
import os

from ansible_collections.cairncms.ops.plugins.module_utils import _fs
from ansible_collections.cairncms.ops.plugins.module_utils._common import CairnError
from ansible_collections.cairncms.ops.plugins.module_utils._storage._base import (
    Entry, ObjectNotRegular, StagedWrite, StorageBackend)


class LocalStorage(StorageBackend):
    driver = 'local'
    has_directories = True
    parallel_commits = False

    @classmethod
    def options_from_env(cls, config, prefix):
        return {'root': config.path(prefix + 'ROOT')}

    def __init__(self, location):
        super().__init__(location)
        self._irregular = []
        self._leftovers = []
        self._committed = None  # inside batch(): the names put in place, whose directories are synced at its end
        self._owner = None  # who owns new files and directories (the root's owner, when run as root)
        self._ready = False  # the root made and its owner known (the first write of a run)

    @contextlib.contextmanager
    def batch(self):
        self._committed = []
        try:
            yield
        finally:
            names, self._committed = self._committed, None
            _fs.sync_parents(self.root, names)

    def fingerprints(self):
        files, _irregular = _fs.walk(self.root) if os.path.isdir(self.root) else ([], [])
        return {name: _fs.fingerprint(info) for name, info in files}

    @property
    def root(self):
        return self.location.options['root']

    def describe(self):
        return 'local:%s' % self.root

    def exists(self):
        return os.path.isdir(self.root)

    def list(self, under=''):
        """Regular files below the root, by name; symlinks and special files are kept for ``irregular()``, our
        temporary files for ``leftovers()``."""
        files, irregular = _fs.walk(self.root) if os.path.isdir(self.root) else ([], [])
        self._irregular = [item for item in irregular if item[0].startswith(under)]
        entries, self._leftovers = [], []
        for name, info in files:
            if not name.startswith(under):
                continue
            if _fs.is_temp(name):
                self._leftovers.append(name)
            else:
                entries.append(Entry(name, info.st_size, info.st_mtime_ns))
        return iter(entries)

    def irregular(self):
        return list(self._irregular)

    def leftovers(self):
        return list(self._leftovers)

    def _errors(self, name, error):
        """The ``CairnError`` of an ``_fs`` error about ``name``."""
        if isinstance(error, _fs.NotRegular) and error.kind == 'directory' and error.part == name:
            return ObjectNotRegular('file %s of storage location %s: %s is a directory, which a file can neither '
                                    'replace nor be removed as; move it away, then run the restore again' % (
                                        _fs.printable(name), self.location.name,
                                        _fs.printable(os.path.join(self.root, name))), kind=error.kind)
        if isinstance(error, _fs.NotRegular):
            return ObjectNotRegular('file %s of storage location %s cannot be used: %s'
                                    % (_fs.printable(name), self.location.name, error), kind=error.kind)
        if isinstance(error, _fs.Missing):
            return self.missing(name)
        return CairnError('file name %s in storage location %s: %s' % (_fs.printable(name), self.location.name,
                                                                       error))

    def stat(self, name):
        """The ``Entry`` of the regular file ``name``, None when there is none; ``ObjectNotRegular`` when a
        symlink or a special file stands there or on the way."""
        try:
            info = _fs.lstat(self.root, name)
        except _fs.Missing:
            return None
        except (_fs.NotRegular, _fs.BadName) as exc:
            raise self._errors(name, exc)
        return Entry(name, info.st_size, info.st_mtime_ns)

    def open_read(self, name):
        try:
            return _fs.open_read(self.root, name)
        except (_fs.Missing, _fs.NotRegular, _fs.BadName) as exc:
            raise self._errors(name, exc)

    def begin_write(self, name, mtime_ns=None):
        if not self._ready:  # the first write of a run: the root and its owner
            os.makedirs(self.root, mode=0o755, exist_ok=True)
            # Files and directories belong to whoever owns the location (the CMS's user), not to root.
            if os.geteuid() == 0:
                info = os.stat(self.root)
                self._owner = (info.st_uid, info.st_gid)
            self._ready = True
        try:
            return _LocalStagedWrite(self, _fs.StagedFile(self.root, name, mode=0o644, owner=self._owner,
                                                          mtime_ns=mtime_ns, dir_mode=0o755))
        except (_fs.Missing, _fs.NotRegular, _fs.BadName) as exc:
            raise self._errors(name, exc)

    def delete(self, name):
        """Remove ``name`` (a symlink itself, never what it points at), then its directories left empty."""
        try:
            _fs.unlink(self.root, name, prune=True)
        except _fs.Missing:
            raise self.missing(name)
        except (_fs.NotRegular, _fs.BadName) as exc:
            raise self._errors(name, exc)


class _LocalStagedWrite(StagedWrite):
    """A temp file beside the final name, renamed over it on commit (``_fs.StagedFile``). Each file is synced as
    it is closed, so that the writes to disk are spread over the staging: a sync of them all at once (of the file
    system, or of each file) before they are put in place held up a database loading beside them by seconds."""

    def __init__(self, storage, staged):
        self._storage = storage
        self._staged = staged

    def write(self, data):
        return self._staged.write(data)

    def close(self):
        self._staged.close()

    def commit(self):
        name = self._staged.name
        batched = self._storage._committed
        try:
            self._staged.commit(sync_dir=batched is None)
            self.placed = self._staged.placed
            if batched is not None:
                batched.append(name)
        except FileExistsError:
            self._staged.discard()
            raise CairnError('file %s appeared in storage location %s after the restore began writing it, and was '
                             'not replaced; run the restore again' % (_fs.printable(name), self._storage.location.name))
        except (_fs.Missing, _fs.NotRegular) as exc:
            self._staged.discard()
            raise self._storage._errors(name, exc)

    def discard(self):
        self._staged.discard()


BACKEND = LocalStorage
