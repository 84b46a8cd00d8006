# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a directory holds, for tests that assert that nothing changed (or what did)."""

from __future__ import annotations

import hashlib
import os
import stat


def entries(directory):
    """Everything below ``directory``, no link followed: relative name -> ``('file', sha256, mode)``,
    ``('dir',)``, ``('link', target)`` or ``('other', file type)``."""
    found = {}
    for parent, dirs, files in os.walk(str(directory)):
        for name in dirs + files:
            path = os.path.join(parent, name)
            info = os.lstat(path)
            key = os.path.relpath(path, str(directory))
            if stat.S_ISLNK(info.st_mode):
                found[key] = ('link', os.readlink(path))
            elif stat.S_ISDIR(info.st_mode):
                found[key] = ('dir',)
            elif stat.S_ISREG(info.st_mode):
                with open(path, 'rb') as handle:
                    found[key] = ('file', hashlib.sha256(handle.read()).hexdigest(), stat.S_IMODE(info.st_mode))
            else:
                found[key] = ('other', stat.S_IFMT(info.st_mode))
    return found
