# -*- coding: utf-8 -*-
# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Child processes for the dump and restore tools (private).

Always argument lists, never a shell; secrets only in the child's environment
or in 0600 files, never in argv; every exit status checked, also when the
output is streamed; stderr kept (its tail) for the error message, with the
secrets it might echo masked.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import subprocess
import threading

try:
    import fcntl
    F_SETPIPE_SZ = getattr(fcntl, 'F_SETPIPE_SZ', 1031)
except ImportError:  # not Linux
    fcntl = None

from ansible_collections.cairncms.ops.plugins.module_utils._common import CHUNK, CairnError

STDERR_TAIL = 4000
PIPE_SIZE = 1024 * 1024  # a 64 KiB pipe makes the dump tool wait for every chunk we compress


def _widen(pipe):
    if fcntl is not None and pipe is not None:
        try:
            fcntl.fcntl(pipe.fileno(), F_SETPIPE_SZ, PIPE_SIZE)
        except OSError:
            pass  # above /proc/sys/fs/pipe-max-size for this user: keep the default


def find_tool(names, what, package_hint):
    """The first of ``names`` on PATH, or a clear error naming what to install."""
    for name in names:
        path = shutil.which(name)
        if path:
            return path
    raise CairnError('%s is needed on this host and none of %s is on PATH; install %s'
                     % (what, ', '.join(names), package_hint))


def mask(text, secrets):
    """``text`` with every one of ``secrets`` replaced by asterisks."""
    for secret in secrets or ():
        if secret:
            text = text.replace(secret, '********')
    return text


class _StderrCollector(threading.Thread):
    def __init__(self, stream):
        super().__init__(daemon=True)
        self._stream = stream
        self.data = b''

    def run(self):
        for chunk in iter(lambda: self._stream.read(CHUNK), b''):
            self.data = (self.data + chunk)[-STDERR_TAIL:]


def _env(extra):
    env = dict(os.environ)
    env.update(extra or {})
    env.setdefault('LC_ALL', 'C')
    return env


def run(args, env=None, secrets=(), stdin=None, what=None):
    """Run to completion; return stdout text. Raise with the stderr tail on failure."""
    try:
        proc = subprocess.run(args, env=_env(env), input=stdin, capture_output=True, check=False)
    except OSError as exc:
        raise CairnError('cannot run %s: %s' % (args[0], exc.strerror))
    if proc.returncode != 0:
        message = mask(proc.stderr.decode('utf-8', 'replace'), secrets).strip()
        raise CairnError('%s failed (exit %d): %s' % (what or os.path.basename(args[0]), proc.returncode, message))
    return proc.stdout.decode('utf-8', 'replace')


class Streaming:
    """A child whose stdout (``read``) or stdin (``write``) is streamed by the caller.

    ``finish()`` waits and raises when the child failed, so a dump tool that
    exits non-zero, or dies, fails the task even though its output was piped.
    """

    def __init__(self, args, env=None, secrets=(), mode='r', what=None):
        """``mode``: ``r`` to read its stdout, ``w`` to write its stdin, ``rw`` for both."""
        self.what = what or os.path.basename(args[0])
        self.secrets = secrets
        try:
            self.proc = subprocess.Popen(
                args, env=_env(env),
                stdout=subprocess.PIPE if 'r' in mode else subprocess.DEVNULL,
                stdin=subprocess.PIPE if 'w' in mode else subprocess.DEVNULL,
                stderr=subprocess.PIPE)
        except OSError as exc:
            raise CairnError('cannot run %s: %s' % (args[0], exc.strerror))
        _widen(self.proc.stdout)
        _widen(self.proc.stdin)
        self._stderr = _StderrCollector(self.proc.stderr)
        self._stderr.start()

    @property
    def pid(self):
        return self.proc.pid

    def read(self, size=CHUNK):
        return self.proc.stdout.read(size)

    def readline(self):
        return self.proc.stdout.readline()

    def flush(self):
        try:
            self.proc.stdin.flush()
        except BrokenPipeError:
            self._stopped_reading()

    def write(self, data):
        try:
            self.proc.stdin.write(data)
        except BrokenPipeError:
            self._stopped_reading()
        return len(data)

    def _stopped_reading(self):
        """The child closed its input (it ended, or failed: ``finish`` says how)."""
        self.finish()
        raise CairnError('%s stopped reading its input' % self.what)

    def pump_in(self, source):
        """Feed all of ``source`` to the child's stdin and wait for it; the child is killed on error."""
        try:
            for chunk in iter(lambda: source.read(CHUNK), b''):
                self.write(chunk)
        except BaseException:
            self.abort()
            raise
        self.finish()

    def pump_out(self, sink, watch=None):
        """Write all of the child's stdout to ``sink`` and wait for it; ``watch(chunk)`` sees each chunk first.
        The child is killed on error."""
        try:
            for chunk in iter(lambda: self.read(CHUNK), b''):
                if watch:
                    watch(chunk)
                sink.write(chunk)
        except BaseException:
            self.abort()
            raise
        self.finish()

    def stderr_tail(self):
        return mask(self._stderr.data.decode('utf-8', 'replace'), self.secrets).strip()

    def finish(self):
        if self.proc.stdin and not self.proc.stdin.closed:
            try:
                self.proc.stdin.close()
            except BrokenPipeError:
                pass
        if self.proc.stdout:
            self.proc.stdout.close()
        code = self.proc.wait()
        self._stderr.join()
        if code != 0:
            reason = 'was killed by signal %d' % -code if code < 0 else 'failed (exit %d)' % code
            raise CairnError('%s %s: %s' % (self.what, reason, self.stderr_tail() or 'no message'))

    def abort(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self._stderr.join()


class DeadlineExpired(CairnError):
    """A ``deadline`` ran out, or the work was stopped with ``stop`` (raised in the main thread)."""


EXPIRED = []  # the messages of the deadlines that ran out (and of the stops) in this process
_SCOPES = []  # the deadline blocks the main thread is in, outermost first


class _Scope:
    """One ``deadline`` block: its message, whether it was stopped, and the threads stopping it."""

    def __init__(self, message):
        self.message = message
        self.stopped = False
        self.done = threading.Event()
        self.lock = threading.Lock()
        self.threads = []

    def stop(self, message=None):
        """Stop the block from any thread (once): kill every process this one started and interrupt the main
        thread, again every second until the block has ended. False when it had ended already."""
        with self.lock:
            if self.done.is_set():
                return False
            if self.stopped:
                return True
            self.stopped = True
            self.message = message or self.message
            EXPIRED.append(self.message)
            stopper = threading.Thread(target=self._stopping, daemon=True)
            self.threads.append(stopper)
            stopper.start()
        return True

    def _stopping(self):
        main = threading.main_thread().ident
        while not self.done.is_set():
            for pid in reversed(descendants()):
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
            signal.pthread_kill(main, signal.SIGALRM)
            self.done.wait(1.0)

    def end(self):
        with self.lock:
            self.done.set()
            threads = list(self.threads)
        for thread in threads:  # before the SIGALRM handler goes: no signal of ours may reach the default one
            thread.join()


def _interrupt(_signum, _frame):
    for scope in _SCOPES:
        if scope.stopped:
            raise DeadlineExpired(scope.message)


def _stopped():
    return next((scope for scope in _SCOPES if scope.stopped), None)


def descendants(pid=None):
    """Pids of every process below ``pid`` (this process by default), parents before their children; read from
    /proc (none where there is no /proc)."""
    children = {}
    try:
        names = [name for name in os.listdir('/proc') if name.isdigit()]
    except OSError:
        return []
    for name in names:
        try:
            with open('/proc/%s/stat' % name, 'rb') as handle:
                parent = int(handle.read().rsplit(b')', 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue  # gone meanwhile
        children.setdefault(parent, []).append(int(name))
    found, queue = [], [pid or os.getpid()]
    while queue:
        for child in children.get(queue.pop(0), ()):
            found.append(child)
            queue.append(child)
    return found


@contextlib.contextmanager
def deadline(seconds, message):
    """Run the block with a time limit of ``seconds`` (none when 0 or None: then only ``stop`` ends it early).
    When it runs out, every process this one started (a dump tool, a client, their workers) is killed and
    ``DeadlineExpired(message)`` is raised in the main thread, again every second until the block ends (a wait for
    worker threads is cut short too); an error the block raises after that (the tool "was killed") becomes
    ``DeadlineExpired``, and so does a block that caught it and went on (a check that failed "because" of it).
    Blocks nest; stopping an outer one ends the inner ones too. Worker threads may still run afterwards: a process
    that saw one expire (``EXPIRED``) should end with ``os._exit`` once it has reported (``_common.run`` does).
    Main thread only (SIGALRM); elsewhere a block without a limit runs as it is."""
    if threading.current_thread() is not threading.main_thread():
        if seconds and seconds > 0:
            raise CairnError('internal error: a time limit needs the main thread')
        yield None
        return
    scope = _Scope(message)
    timer = None
    if seconds and seconds > 0:
        def watch():
            if not scope.done.wait(seconds):
                scope.stop()
        timer = threading.Thread(target=watch, daemon=True)
    previous = signal.signal(signal.SIGALRM, _interrupt)
    _SCOPES.append(scope)
    if timer is not None:
        timer.start()
    try:
        yield scope
        stopped = _stopped()
        if stopped is not None:
            raise DeadlineExpired(stopped.message)
    except DeadlineExpired:
        raise
    except Exception as exc:  # not SystemExit: a module that has reported has reported
        stopped = _stopped()
        if stopped is not None:
            raise DeadlineExpired(stopped.message, **getattr(exc, 'details', {})) from None
        raise
    finally:
        _SCOPES.remove(scope)  # first: from here on the handler raises nothing for this block
        scope.end()
        if timer is not None:
            timer.join()
        signal.signal(signal.SIGALRM, previous)


def stop(message):
    """Stop the work of this process from any thread, as if its outermost ``deadline`` block had run out, with
    ``message``: what a module does when it learns that it must not go on (its reader claim is gone). False when
    the main thread is in no such block."""
    scopes = list(_SCOPES)
    return bool(scopes) and scopes[0].stop(message)


class Prefixed:
    """A readable of ``prefix``, then ``source``, then ``suffix``."""

    def __init__(self, prefix, source, suffix=b''):
        self._parts = [prefix, source, suffix]

    def read(self, size=CHUNK):
        while self._parts:
            part = self._parts[0]
            if isinstance(part, bytes):
                self._parts.pop(0)
                if part:
                    return part
                continue
            data = part.read(size)
            if data:
                return data
            self._parts.pop(0)
        return b''


def die_with(parent):
    """Have Linux kill this forked process when its parent ``parent`` ends (a module killed while its children
    work leaves none of them working on); stop here when it has ended already. Linux watches the thread that forked,
    so fork from one that outlasts the children."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass  # not Linux: the child then works to its end and finds no one to report to
    if os.getppid() != parent:
        raise CairnError('the process that started this one has ended')


def error_text(exc):
    """What a forked process reports of the error that stops it: its message, else its text, else its type."""
    return getattr(exc, 'message', None) or str(exc) or type(exc).__name__


def how_it_ended(code):
    """How a forked process ended, from its exit code (minus a signal's number; None: not known)."""
    if code is not None and code < 0:
        return 'it was killed by signal %d' % -code
    return 'it ended with exit code %s' % code
