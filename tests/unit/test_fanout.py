# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""``_fanout.Fanout``: pieces worked on in forked processes (real ones), the results in the pieces' order, each
process's report, and every failure (a process's error, its death, the pieces' reading) failing the whole with no
process left behind."""

from __future__ import annotations

import os
import signal
import time

import pytest

from conftest import descendants

from ansible_collections.cairncms.ops.plugins.module_utils import _fanout
from ansible_collections.cairncms.ops.plugins.module_utils._common import CairnError


class _Upper:
    """Upper-cases each piece, with the pid that did it; reports the pieces it did."""

    def __init__(self):
        self.done = []

    def work(self, piece):
        self.done.append(piece.decode())
        return b'%s@%d' % (piece.upper(), os.getpid())

    def report(self):
        return {'pid': os.getpid(), 'done': self.done}


def _children():
    """The pids below this process that are still there (zombies included)."""
    return set(descendants(os.getpid()))


def test_the_results_come_in_the_pieces_order_from_every_process():
    before = _children()
    fanout = _fanout.Fanout(_Upper, 3)
    pieces = [b'piece %d' % number + b'x' * (number * 9000) for number in range(40)]  # some beyond a pipe's buffer
    results = list(fanout.results(iter(pieces)))
    assert [result.rsplit(b'@', 1)[0] for result in results] == [piece.upper() for piece in pieces]
    pids = {int(result.rsplit(b'@', 1)[1]) for result in results}
    assert len(pids) == 3 and os.getpid() not in pids
    # each process did every third piece, and reported them
    assert [report['done'] for report in fanout.reports] == [
        [piece.decode() for piece in pieces[start::3]] for start in range(3)]
    assert {report['pid'] for report in fanout.reports} == pids
    assert _children() == before


def test_no_piece_gives_each_process_s_empty_report():
    fanout = _fanout.Fanout(_Upper, 2)
    assert list(fanout.results(iter([]))) == []
    assert [report['done'] for report in fanout.reports] == [[], []]


class _FailsOn:
    def __init__(self, bad):
        self.bad = bad

    def work(self, piece):
        if piece == self.bad:
            raise CairnError('table t, column c, row 7: too long')
        return piece

    def report(self):
        return {}


def test_a_process_s_error_fails_the_whole_with_its_message_and_no_process_is_left():
    before = _children()
    fanout = _fanout.Fanout(lambda: _FailsOn(b'13'), 2)
    got = []
    with pytest.raises(CairnError, match='^table t, column c, row 7: too long$'):
        for result in fanout.results(b'%d' % number for number in range(10000)):
            got.append(result)
    assert got == [b'%d' % number for number in range(13)]  # what came before it, in order
    assert _children() == before


class _Dies:
    def work(self, piece):
        if piece == b'5':
            os.kill(os.getpid(), signal.SIGKILL)
        return piece

    def report(self):
        return {}


def test_a_process_killed_fails_the_whole_naming_the_signal():
    before = _children()
    with pytest.raises(CairnError, match='loading rows of t, in a process of its own, failed: it was killed by '
                                         'signal 9'):
        list(_fanout.Fanout(_Dies, 2, what='loading rows of t').results(b'%d' % number for number in range(100)))
    assert _children() == before


def test_an_error_reading_the_pieces_is_the_error_raised():
    def pieces():
        yield b'a'
        yield b'b'
        raise CairnError('the stream ends inside table t: the rows stream was cut short')
    before = _children()
    with pytest.raises(CairnError, match='cut short'):
        list(_fanout.Fanout(_Upper, 2).results(pieces()))
    assert _children() == before


def test_a_reader_that_stops_early_leaves_no_process():
    before = _children()
    results = _fanout.Fanout(_Upper, 2).results(b'%d' % number for number in range(100000))
    assert next(results).startswith(b'0@')
    results.close()
    assert _children() == before


class _Slow:
    def work(self, piece):
        with open(piece.decode(), 'a') as pids:
            pids.write('%d\n' % os.getpid())
        time.sleep(60)
        return piece

    def report(self):
        return {}


def _gone(pid):
    try:
        with open('/proc/%d/stat' % pid) as stat:
            return stat.read().rsplit(')', 1)[1].split()[0] == 'Z'  # a zombie waiting for init
    except OSError:
        return True


def test_the_processes_end_with_a_parent_killed_midway(tmp_path):
    """A module killed while its processes work (its task timed out, its AWX job cancelled) leaves none working."""
    pids = tmp_path / 'pids'
    parent = os.fork()
    if parent == 0:
        try:
            list(_fanout.Fanout(_Slow, 2).results(iter([str(pids).encode()] * 2)))
        finally:
            os._exit(1)
    deadline = time.monotonic() + 30
    while not (pids.exists() and len(pids.read_text().split()) == 2):
        assert time.monotonic() < deadline, 'the processes did not start'
        time.sleep(0.05)
    workers = [int(pid) for pid in pids.read_text().split()]
    os.kill(parent, signal.SIGKILL)
    os.waitpid(parent, 0)
    deadline = time.monotonic() + 10
    while not all(_gone(pid) for pid in workers):
        assert time.monotonic() < deadline, 'a process of the killed parent works on'
        time.sleep(0.05)


def test_a_process_that_cannot_start_fails_the_whole_with_no_process_left(monkeypatch):
    before = _children()
    forks = []
    fork = os.fork

    def second_fails():
        forks.append(1)
        if len(forks) == 2:
            raise OSError(11, 'Resource temporarily unavailable')
        return fork()
    monkeypatch.setattr(_fanout.os, 'fork', second_fails)
    with pytest.raises(CairnError, match='starting a process of its own for loading t failed: .*unavailable'):
        list(_fanout.Fanout(_Upper, 2, what='loading t').results(iter([b'a'])))
    monkeypatch.undo()
    assert _children() == before
