# -*- coding: utf-8 -*-
# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Local disk storage (STORAGE_<LOC>_DRIVER=local) (private)."""

from __future__ import annotations

import os
import tempfile

from ansible_collections.cairncms.ops.plugins.module_utils._common import fsync_dir, safe_join
from ansible_collections.cairncms.ops.plugins.module_utils._storage._base import (
    Entry, StagedWrite, StorageBackend)

# Our own temporaries, never content.
_TEMP_PREFIX = '.cairn-'


class LocalStorage(StorageBackend):
    driver = 'local'

    @property
    def root(self):
        return self.location.options['root']

    def describe(self):
        return 'local:%s' % self.root

    def exists(self):
        return os.path.isdir(self.root)

    def list(self, under=''):
        """Regular files below the root (symbolic links and our temporary files aside), by name."""
        if os.path.isdir(self.root):
            for entry in self._walk('', self.root):
                if entry.name.startswith(under):
                    yield entry

    def _walk(self, prefix, directory):
        try:
            found = sorted(os.scandir(directory), key=lambda item: item.name)
        except FileNotFoundError:  # removed while listed
            return
        for item in found:
            if item.is_dir(follow_symlinks=False):
                yield from self._walk(prefix + item.name + '/', item.path)
            elif item.is_file(follow_symlinks=False) and not item.name.startswith(_TEMP_PREFIX):
                try:
                    info = item.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue
                yield Entry(prefix + item.name, info.st_size, info.st_mtime_ns)

    def _path(self, name):
        return safe_join(self.root, *name.split('/'))

    def stat(self, name):
        try:
            info = os.stat(self._path(name))
        except FileNotFoundError:
            return None
        return Entry(name, info.st_size, info.st_mtime_ns)

    def open_read(self, name):
        try:
            return open(self._path(name), 'rb')
        except FileNotFoundError:
            raise self.missing(name)

    def begin_write(self, name, mtime_ns=None):
        os.makedirs(self.root, mode=0o755, exist_ok=True)
        return _LocalStagedWrite(self._path(name), mtime_ns, owner=os.stat(self.root))

    def delete(self, name):
        path = self._path(name)
        os.unlink(path)
        directory = os.path.dirname(path)
        while directory != self.root and not os.listdir(directory):
            os.rmdir(directory)
            directory = os.path.dirname(directory)


class _LocalStagedWrite(StagedWrite):
    """A temp file beside the final path, renamed over it on commit."""

    def __init__(self, path, mtime_ns, owner):
        self.path = path
        self.mtime_ns = mtime_ns
        directory = os.path.dirname(path)
        os.makedirs(directory, mode=0o755, exist_ok=True)
        fd, self.tmp = tempfile.mkstemp(prefix=_TEMP_PREFIX, suffix='.part', dir=directory)
        os.fchmod(fd, 0o644)
        if os.geteuid() == 0:
            # Files belong to whoever owns the location (the CMS's user), not to root.
            os.fchown(fd, owner.st_uid, owner.st_gid)
        self._handle = os.fdopen(fd, 'wb')

    def write(self, data):
        return self._handle.write(data)

    def close(self):
        if not self._handle.closed:
            self._handle.flush()
            os.fsync(self._handle.fileno())
            self._handle.close()

    def commit(self):
        self.close()
        if self.mtime_ns is not None:
            os.utime(self.tmp, ns=(self.mtime_ns, self.mtime_ns))
        os.replace(self.tmp, self.path)
        fsync_dir(os.path.dirname(self.path))

    def discard(self):
        if not self._handle.closed:
            self._handle.close()
        if os.path.exists(self.tmp):
            os.unlink(self.tmp)
