# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Stopping a module's work on the host: a deadline that runs out and a stop from another thread (a reader claim
found gone) both kill the processes the module started and end its block with DeadlineExpired, whatever the block
did with the interruption; a module that has reported is left alone. Real child processes, a real local
repository."""

from __future__ import annotations

import os
import subprocess
import threading
import time

import pytest

from ansible_collections.cairncms.ops.plugins.module_utils import _process
from ansible_collections.cairncms.ops.plugins.module_utils._repository import select_repository


def gone(proc, within=5.0):
    """Whether ``proc`` ended (was killed) within ``within`` seconds."""
    try:
        proc.wait(timeout=within)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        return False
    return True


def test_a_deadline_kills_the_tool_and_raises_in_the_main_thread():
    started = time.monotonic()
    with pytest.raises(_process.DeadlineExpired, match='dump ran out'):
        with _process.deadline(0.5, 'dump ran out'):
            proc = subprocess.Popen(['sleep', '30'])
            proc.wait()  # interrupted: the tool is killed, the wait ends
    assert gone(proc)  # killed: a 30 s sleep ended within seconds (its status may have been reaped by the wait)
    assert time.monotonic() - started < 5


def test_a_stop_from_another_thread_ends_the_outer_block_and_the_inner_ones():
    with pytest.raises(_process.DeadlineExpired, match='the claim is gone'):
        with _process.deadline(0, 'no limit'):
            with _process.deadline(600, 'the inner step ran out'):
                proc = subprocess.Popen(['sleep', '30'])
                threading.Timer(0.3, _process.stop, args=('the claim is gone',)).start()
                proc.wait()
    assert gone(proc)


def test_a_block_that_swallows_the_interruption_still_ends_stopped():
    with pytest.raises(_process.DeadlineExpired, match='verify ran out') as raised:
        with _process.deadline(0.3, 'verify ran out'):
            checks = {'http': 'ok'}
            try:
                time.sleep(10)
            except _process.DeadlineExpired as exc:
                checks = {'http': 'failed: %s' % exc.message}  # a check that "failed" because of it
            raise _process.CairnError('1 check failed', checks=checks)
    assert raised.value.details == {'checks': {'http': 'failed: verify ran out'}}
    swallowed = False
    with pytest.raises(_process.DeadlineExpired, match='verify ran out'):
        with _process.deadline(0.3, 'verify ran out'):
            try:
                time.sleep(10)
            except _process.DeadlineExpired:
                swallowed = True  # and the block goes on as if nothing happened
    assert swallowed


def test_system_exit_passes_through_a_stopped_block():
    with pytest.raises(SystemExit) as exited:
        with _process.deadline(0.2, 'ran out'):
            try:
                time.sleep(5)
            except _process.DeadlineExpired:
                raise SystemExit(1)  # fail_json after the module reported the interruption itself
    assert exited.value.code == 1
    time.sleep(1.5)  # no SIGALRM of that block reaches the default handler (which would end this process)
    assert _process.stop('nothing runs') is False


def test_no_stop_without_a_block_and_none_after_one():
    assert _process.stop('nothing runs') is False
    with _process.deadline(0, 'no limit'):
        pass
    time.sleep(0.1)
    assert _process.stop('nothing runs') is False


def test_a_reader_whose_claim_is_removed_is_stopped(tmp_path):
    repository = select_repository({'type': 'local', 'path': str(tmp_path / 'repository')})
    os.makedirs(str(tmp_path / 'repository'))
    claim = repository.claim('blog', [], 'restore into copy')
    started = time.monotonic()
    with pytest.raises(_process.DeadlineExpired, match='the claim %s on restore points of blog is gone' % claim):
        with _process.deadline(0, 'no limit'):
            repository.keep_claim('blog', claim, every=0.2)
            proc = subprocess.Popen(['sleep', '30'])  # a pg_restore reading what a prune may now remove
            repository.release_claim('blog', claim)   # what a prune does to a claim it judged stale
            proc.wait()
    assert time.monotonic() - started < 5 and gone(proc)


def test_a_claim_kept_fresh_is_not_stopped(tmp_path):
    repository = select_repository({'type': 'local', 'path': str(tmp_path / 'repository')})
    os.makedirs(str(tmp_path / 'repository'))
    claim = repository.claim('blog', [], 'restore into copy')
    with _process.deadline(0, 'no limit'):
        repository.keep_claim('blog', claim, every=0.1)
        time.sleep(0.6)
        beat = repository.touch_claim('blog', claim)['beat']
    assert time.time() - beat < 1
    with pytest.raises(_process.DeadlineExpired, match='is gone'):  # and its heartbeat ends here, not in a later test
        with _process.deadline(0, 'no limit'):
            repository.release_claim('blog', claim)
            time.sleep(3)


def test_a_claim_whose_heartbeat_is_stopped_can_be_released_without_stopping_the_work(tmp_path):
    """The restore module releases the claim it took at its end: the heartbeat stops first, so that the release
    is not taken for a prune's (which stops the module)."""
    repository = select_repository({'type': 'local', 'path': str(tmp_path / 'repository')})
    os.makedirs(str(tmp_path / 'repository'))
    claim = repository.claim('blog', [], 'restore into copy')
    with _process.deadline(0, 'no limit'):
        stop = repository.keep_claim('blog', claim, every=0.1)
        time.sleep(0.3)
        stop()
        repository.release_claim('blog', claim)
        time.sleep(0.5)  # beats that would have found it gone
    assert repository.claims('blog') == []


def test_a_record_half_written_by_a_killed_reader_goes_with_the_stale_claims(tmp_path):
    repository = select_repository({'type': 'local', 'path': str(tmp_path / 'repository')})
    os.makedirs(str(tmp_path / 'repository'))
    claim = repository.claim('blog', [], 'restore into copy')
    readers = tmp_path / 'repository' / 'blog' / 'readers'
    left = readers / '.cairn-x1y2z3.part'  # the temporary file of a refresh, the writer killed
    left.write_text('{"be')
    assert [record['claim'] for record in repository.claims('blog', stale_after=60)] == [claim]
    assert left.exists()  # fresh: perhaps being written right now
    old = time.time() - 120
    os.utime(str(left), (old, old))
    assert [record['claim'] for record in repository.claims('blog', stale_after=60)] == [claim]  # still live
    assert not left.exists() and sorted(os.listdir(str(readers))) == ['%s.json' % claim]
