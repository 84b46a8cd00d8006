# -*- coding: utf-8 -*-
# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private scratch space for temporary files (private).

Temporary files that may hold plaintext (a copy of a SQLite database, a pg_dump directory, an artifact
before it is uploaded) or a password (a MySQL option file) are written under one directory per user,
``<TMPDIR>/cairncms-ops-<uid>``, mode 0700, never inside a repository. It is checked before use: a path
another user created first (or a symlink there) is refused, never used. Each module process works in a
directory of its own below it (``<pid>-<start time>-<random>``), removed when the process ends; the
next process removes those whose process is gone (killed), so nothing is left for long.
"""

from __future__ import annotations

import atexit
import os
import shutil
import stat
import tempfile

from ansible_collections.cairncms.ops.plugins.module_utils._common import CairnError, process_start_time

_OWN = {}  # pid -> this process's scratch directory


def base():
    """``<TMPDIR>/cairncms-ops-<uid>``, made 0700 if missing, and checked to be a private directory of this
    user (not a symlink, not group- or world-accessible)."""
    uid = os.geteuid()
    path = os.path.join(tempfile.gettempdir(), 'cairncms-ops-%d' % uid)
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    info = os.lstat(path)
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != uid or info.st_mode & 0o077:
        kind = 'a symlink' if stat.S_ISLNK(info.st_mode) else (
            'a directory' if stat.S_ISDIR(info.st_mode) else 'not a directory')
        raise CairnError('the scratch directory %s is %s owned by uid %d with mode %04o, not a private (0700) '
                         'directory of uid %d; another user may have created it to read our temporary files. '
                         'Remove it, or point TMPDIR (ansible_env / environment) at a directory only this user '
                         'can write' % (path, kind, info.st_uid, stat.S_IMODE(info.st_mode), uid))
    return path


def _alive(name):
    """Whether the process that named a scratch directory ``<pid>-<start time>-...`` still runs."""
    parts = name.split('-')
    if len(parts) < 3 or not parts[0].isdigit() or not parts[1].isdigit():
        return True  # not ours: leave it
    return process_start_time(int(parts[0])) == int(parts[1])


def sweep(path):
    """Remove the scratch directories of processes that are gone; the names of those removed."""
    removed = []
    for name in sorted(os.listdir(path)):
        if not _alive(name):
            shutil.rmtree(os.path.join(path, name), ignore_errors=True)
            removed.append(name)
    return removed


def directory():
    """This process's private scratch directory, made on first use and removed when the process exits."""
    pid = os.getpid()
    if pid not in _OWN:
        root = base()
        sweep(root)
        _OWN[pid] = tempfile.mkdtemp(prefix='%d-%d-' % (pid, process_start_time(pid) or 0), dir=root)
        atexit.register(shutil.rmtree, _OWN[pid], True)
    return _OWN[pid]
