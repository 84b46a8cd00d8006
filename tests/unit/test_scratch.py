# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The private scratch directory: made 0700 for this user, refused when someone else could have made it, and
cleaned of the directories of processes that are gone."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import tempfile

import pytest

from ansible_collections.cairncms.ops.plugins.module_utils import _scratch
from ansible_collections.cairncms.ops.plugins.module_utils._common import CairnError, process_start_time


@pytest.fixture
def tmpdir_(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, 'tempdir', str(tmp_path))
    monkeypatch.setattr(_scratch, '_OWN', {})
    return tmp_path


def _base(tmp_path):
    return tmp_path / ('cairncms-ops-%d' % os.geteuid())


def test_made_private_for_this_user(tmpdir_):
    path = _scratch.directory()
    base = _base(tmpdir_)
    info = os.lstat(base)
    assert stat.S_IMODE(info.st_mode) == 0o700 and info.st_uid == os.geteuid()
    assert os.path.dirname(path) == str(base) and stat.S_IMODE(os.stat(path).st_mode) == 0o700
    assert os.path.basename(path).startswith('%d-%d-' % (os.getpid(), process_start_time(os.getpid())))
    assert _scratch.directory() == path  # one per process


@pytest.mark.parametrize('hostile', ['symlink', 'open-mode', 'other-owner', 'a-file'])
def test_a_path_someone_else_could_have_made_is_refused(tmpdir_, hostile):
    base = _base(tmpdir_)
    elsewhere = tmpdir_ / 'elsewhere'
    elsewhere.mkdir(mode=0o700)
    if hostile == 'symlink':
        base.symlink_to(elsewhere)
    elif hostile == 'a-file':
        base.write_text('')
    else:
        base.mkdir()
        os.chmod(base, 0o777 if hostile == 'open-mode' else 0o700)
        if hostile == 'other-owner':
            if os.geteuid() != 0:
                pytest.skip('needs root to give the directory to another user')
            os.chown(base, 4242, 4242)
    with pytest.raises(CairnError) as refused:
        _scratch.directory()
    assert str(base) in refused.value.message and 'not a private (0700) directory' in refused.value.message
    assert os.listdir(elsewhere) == []  # nothing was written through it


def test_the_directories_of_dead_processes_are_swept(tmpdir_):
    base = _base(tmpdir_)
    base.mkdir(mode=0o700)
    dead = subprocess.run([sys.executable, '-c', 'import os; print(os.getpid())'], capture_output=True, text=True,
                          check=True)
    dead_pid = int(dead.stdout)
    gone = base / ('%d-12345-abc' % dead_pid)
    gone.mkdir()
    (gone / 'copy.sqlite3').write_bytes(b'plaintext')
    recycled = base / ('%d-1-abc' % os.getppid())  # a live pid, but another start time: the pid was reused
    recycled.mkdir()
    alive = base / ('%d-%d-abc' % (os.getppid(), process_start_time(os.getppid())))
    alive.mkdir()
    foreign = base / 'not-ours'
    foreign.mkdir()
    _scratch.directory()
    assert not gone.exists() and not recycled.exists()
    assert alive.exists() and foreign.exists()
