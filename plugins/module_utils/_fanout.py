# -*- coding: utf-8 -*-
# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Work on the pieces of a stream in forked processes side by side, the results coming back in order (private).

What a loader does to every row (parse it, convert its values, checksum them, write them as the target's text) is
CPU-bound Python; the reading of the stream and the writing into one database session are not. ``Fanout`` hands the
pieces round-robin to its processes through pipes and gives their results in the pieces' order, so that the one
session, and its one transaction, sees exactly what one process would have written. Memory stays flat: a process
holds one piece, a pipe holds what the kernel buffers, and a piece waits to be sent while its process is behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import struct
import threading

from ansible_collections.cairncms.ops.plugins.module_utils._common import CairnError
from ansible_collections.cairncms.ops.plugins.module_utils._process import die_with, error_text, how_it_ended

# a frame on a pipe: its kind (one byte) and the length of what follows
_FRAME = struct.Struct('>cI')
_PIECE, _RESULT, _REPORT, _ERROR, _END = b'P', b'T', b'R', b'E', b'.'


def _write_frame(handle, kind, data=b''):
    handle.write(_FRAME.pack(kind, len(data)))
    handle.write(data)
    handle.flush()


def _read_frame(handle):
    """``(kind, data)`` of the next frame; ``(None, b'')`` when the pipe ends before a whole frame."""
    head = handle.read(_FRAME.size)
    if len(head) < _FRAME.size:
        return None, b''
    kind, length = _FRAME.unpack(head)
    data = handle.read(length) if length else b''
    return (kind, data) if len(data) == length else (None, b'')


class Fanout:
    """``worker()`` is called in each of ``processes`` forked processes and gives an object with ``work(piece)``
    (bytes in, bytes out) and ``report()`` (a JSON value, once its pieces are done). ``results(pieces)`` yields
    the work of every piece in the order of ``pieces``; then ``reports`` holds each process's report. An error in a
    process (its message) or in reading ``pieces`` fails the whole with that message; no process is left behind."""

    def __init__(self, worker, processes, what='a piece of work'):
        self.worker = worker
        self.processes = max(1, int(processes))
        self.what = what
        self.reports = []
        self._children = []   # (pid, inbox to write, outbox to read)
        self._feeder = None
        self._feed_error = None
        self._ended = {}      # pid -> exit code

    def results(self, pieces):
        try:
            self._start()
            self._feeder = threading.Thread(target=self._feed, args=(pieces,), daemon=True)
            self._feeder.start()
            turn = 0
            while True:
                pid, _inbox, outbox = self._children[turn % len(self._children)]
                kind, data = _read_frame(outbox)
                if kind == _RESULT:
                    yield data
                    turn += 1
                    continue
                if kind == _REPORT:
                    break
                self._fail(pid, kind, data)
            # the process whose turn it was reported first; the others' next frames are their reports
            count = len(self._children)
            self.reports = [None] * count
            for index in range(count):
                slot = (turn + index) % count
                pid, _inbox, outbox = self._children[slot]
                if index:
                    kind, data = _read_frame(outbox)
                    if kind != _REPORT:
                        self._fail(pid, kind, data)
                self.reports[slot] = json.loads(data.decode('utf-8'))
            self._feeder.join()
            if self._feed_error is not None:
                raise self._feed_error
            self._reap()
        finally:
            self._stop()

    def _start(self):
        parent = os.getpid()
        opened = []
        for _index in range(self.processes):
            inbox_read, inbox_write = os.pipe()
            outbox_read, outbox_write = os.pipe()
            opened.extend((inbox_write, outbox_read))
            try:
                pid = os.fork()
            except OSError as exc:
                for descriptor in (inbox_read, inbox_write, outbox_read, outbox_write):
                    os.close(descriptor)
                raise CairnError('starting a process of its own for %s failed: %s' % (self.what, exc)) from None
            if pid == 0:  # the child
                for descriptor in opened:
                    with contextlib.suppress(OSError):
                        os.close(descriptor)
                self._child(parent, inbox_read, outbox_write)
            os.close(inbox_read)
            os.close(outbox_write)
            self._children.append((pid, open(inbox_write, 'wb'), open(outbox_read, 'rb')))

    def _child(self, parent, inbox, outbox):
        code = 1
        try:
            with open(inbox, 'rb') as pieces, open(outbox, 'wb') as results:
                try:
                    die_with(parent)
                    worker = self.worker()
                    while True:
                        kind, data = _read_frame(pieces)
                        if kind == _END:
                            break
                        if kind != _PIECE:
                            raise CairnError('its input ended before the last piece')
                        _write_frame(results, _RESULT, worker.work(data))
                    _write_frame(results, _REPORT, json.dumps(worker.report()).encode('utf-8'))
                    code = 0
                except BaseException as exc:  # pylint: disable=broad-except
                    _write_frame(results, _ERROR, json.dumps({'error': error_text(exc)}).encode('utf-8'))
        except BaseException:  # pylint: disable=broad-except
            pass  # the parent is gone or stopped reading: it reports the error
        finally:
            os._exit(code)

    def _feed(self, pieces):
        """Send every piece to the processes in turn, then the end to each (a thread of the parent). An error in
        reading the pieces is kept for the parent to raise; a process gone (its pipe closed) stops the sending, and
        the parent finds out why from that process."""
        pieces, turn = iter(pieces), 0
        try:
            while True:
                try:
                    piece = next(pieces)
                except StopIteration:
                    break
                except Exception as exc:  # pylint: disable=broad-except
                    self._feed_error = exc
                    return
                _write_frame(self._children[turn % len(self._children)][1], _PIECE, piece)
                turn += 1
            for _pid, inbox, _outbox in self._children:
                _write_frame(inbox, _END)
        except (OSError, ValueError):
            pass
        finally:
            for _pid, inbox, _outbox in self._children:
                with contextlib.suppress(OSError, ValueError):
                    inbox.close()

    def _fail(self, pid, kind, data):
        """Raise what went wrong: the reading of the pieces, else the process's own error or its end."""
        if kind is None:
            self._wait(pid)  # the pipe ended with it: why
        if self._feeder is not None:
            self._stop_children()
            self._feeder.join()
            if self._feed_error is not None:
                raise self._feed_error
        if kind == _ERROR:
            try:
                message = json.loads(data.decode('utf-8'))['error']
            except (ValueError, KeyError, TypeError):
                message = 'it gave no message'
            raise CairnError(message)
        raise CairnError('%s, in a process of its own, failed: %s' % (self.what, how_it_ended(self._wait(pid))))

    def _wait(self, pid):
        """The exit code of process ``pid`` (minus a signal's number), once it has ended."""
        if pid not in self._ended:
            try:
                _pid, status = os.waitpid(pid, 0)
                self._ended[pid] = os.waitstatus_to_exitcode(status)
            except OSError:
                self._ended[pid] = None
        return self._ended[pid]

    def _reap(self):
        for pid, _inbox, _outbox in self._children:
            status = self._wait(pid)
            if status != 0:
                raise CairnError('%s, in a process of its own, failed: %s' % (self.what, how_it_ended(status)))

    def _stop_children(self):
        for pid, _inbox, _outbox in self._children:
            if pid not in self._ended:  # a pid once waited for may be another process's now
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
                self._wait(pid)

    def _stop(self):
        """No process, pipe or thread left, whatever happened."""
        self._stop_children()
        if self._feeder is not None:
            self._feeder.join()
        for _pid, inbox, outbox in self._children:
            for handle in (inbox, outbox):
                with contextlib.suppress(OSError, ValueError):
                    handle.close()
        self._children = []
