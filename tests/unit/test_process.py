# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A streamed child that ends before reading its input (psql that cannot reach a killed server) fails with the
child's own exit and message, whether the write or the flush finds the pipe closed: never a bare broken pipe.
Real child processes."""

from __future__ import annotations

import pytest

from ansible_collections.cairncms.ops.plugins.module_utils import _process
from ansible_collections.cairncms.ops.plugins.module_utils._common import CairnError

GONE = ['sh', '-c', 'echo "connection to server failed" >&2; exit 2']


def _ended(what):
    child = _process.Streaming(GONE, mode='rw', what=what)
    child.proc.wait()
    return child


def test_a_flush_into_a_child_that_ended_names_its_failure():
    child = _ended('psql (snapshot session)')
    child.write(b'BEGIN;\n')  # buffered: the flush finds the pipe closed
    with pytest.raises(CairnError, match=r'psql \(snapshot session\) failed \(exit 2\): connection to server failed'):
        child.flush()


def test_a_write_into_a_child_that_ended_names_its_failure():
    child = _ended('psql (rows)')
    with pytest.raises(CairnError, match=r'psql \(rows\) failed \(exit 2\): connection to server failed'):
        child.write(b'x' * (4 * 1024 * 1024))


def test_a_child_that_ended_well_without_reading_is_named():
    child = _process.Streaming(['true'], mode='rw', what='psql')
    child.proc.wait()
    child.write(b'SELECT 1;\n')
    with pytest.raises(CairnError, match='psql stopped reading its input'):
        child.flush()
