# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Debian's pg_wrapper is passed over (_db.postgres.unwrapped): with PGHOST set, which these tools always have, it
runs the newest installed version's program, so that program is run directly; anything else on PATH is kept."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from ansible_collections.cairncms.ops.plugins.module_utils._db import postgres
from ansible_collections.cairncms.ops.plugins.module_utils._db.postgres import unwrapped


def _program(path):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'w', encoding='utf-8') as handle:
        handle.write('#!/bin/sh\n')
    os.chmod(path, 0o755)
    return path


@pytest.fixture
def debian(tmp_path):
    """/usr/bin/<tool> links to pg_wrapper; versions 9.6, 15 and 16 installed, 16 without pg_restore."""
    wrapper = _program(str(tmp_path / 'share' / 'postgresql-common' / 'pg_wrapper'))
    binroot = str(tmp_path / 'lib' / 'postgresql')
    for version, programs in (('9.6', ('psql', 'pg_restore')), ('15', ('psql', 'pg_restore')), ('16', ('psql',))):
        for program in programs:
            _program(os.path.join(binroot, version, 'bin', program))
    os.makedirs(os.path.join(binroot, 'not-a-version', 'bin'))
    _program(os.path.join(binroot, 'not-a-version', 'bin', 'pg_restore'))
    os.makedirs(str(tmp_path / 'bin'))
    for program in ('psql', 'pg_restore', 'pg_dump'):
        os.symlink(wrapper, str(tmp_path / 'bin' / program))
    return tmp_path, binroot


def test_the_newest_version_with_the_program_is_run_directly(debian):
    root, binroot = debian
    assert unwrapped(str(root / 'bin' / 'psql'), 'psql', binroot) == os.path.join(binroot, '16', 'bin', 'psql')
    assert unwrapped(str(root / 'bin' / 'pg_restore'), 'pg_restore', binroot) == \
        os.path.join(binroot, '15', 'bin', 'pg_restore')  # 15, not 9.6: by number, not by text


def test_the_wrapper_stays_when_no_version_has_the_program_and_other_paths_are_kept(debian, tmp_path):
    root, binroot = debian
    assert unwrapped(str(root / 'bin' / 'pg_dump'), 'pg_dump', binroot) == str(root / 'bin' / 'pg_dump')
    assert unwrapped(str(root / 'bin' / 'psql'), 'psql', str(tmp_path / 'nowhere')) == str(root / 'bin' / 'psql')
    own = _program(str(tmp_path / 'opt' / 'psql'))  # a client of its own on PATH
    assert unwrapped(own, 'psql', binroot) == own


@pytest.mark.skipif(not os.path.realpath(shutil.which('psql') or '').endswith('/pg_wrapper'),
                    reason="this host's psql is not Debian's pg_wrapper")
def test_on_this_host_the_program_is_the_one_the_wrapper_runs():
    direct = unwrapped(shutil.which('psql'), 'psql')
    assert direct.startswith(postgres.BINROOT + '/') and direct.endswith('/bin/psql')
    through = subprocess.run(['psql', '--version'], env=dict(os.environ, PGHOST='/nonexistent'), capture_output=True,
                             text=True, check=True).stdout
    assert subprocess.run([direct, '--version'], capture_output=True, text=True, check=True).stdout == through
