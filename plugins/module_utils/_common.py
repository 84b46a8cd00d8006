# -*- coding: utf-8 -*-
# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Shared plumbing for the cairncms.ops modules (private).

One error type, one place where errors become ``fail_json``, atomic file
writes, hashing streams and time stamps. Nothing here knows about a vendor
or a backend.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import re
import sys
import tempfile
import time
import traceback

CHUNK = 1024 * 1024
SAFE_NAME = re.compile(r'^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$')


class CairnError(Exception):
    """An error the operator can act on: what failed, and what to do about it."""

    def __init__(self, message, **details):
        super().__init__(message)
        self.message = message
        self.details = details


def check_name(kind, value):
    """Refuse names that could escape a repository directory."""
    if not isinstance(value, str) or not SAFE_NAME.match(value) or '..' in value:
        raise CairnError(
            '%s %r is not a valid name: use 1-128 letters, digits, ".", "_" or "-", '
            'starting with a letter or digit' % (kind, value))
    return value


def utc_now():
    return datetime.datetime.now(datetime.timezone.utc)


def iso(ts):
    return ts.strftime('%Y-%m-%dT%H:%M:%S.%fZ')


def parse_time(text):
    """The UTC time of an ``iso`` text."""
    return datetime.datetime.strptime(text, '%Y-%m-%dT%H:%M:%S.%fZ').replace(tzinfo=datetime.timezone.utc)


def sha256_file(path):
    digest = hashlib.sha256()
    size = 0
    with open(path, 'rb') as handle:
        while True:
            chunk = handle.read(CHUNK)
            if not chunk:
                break
            size += len(chunk)
            digest.update(chunk)
    return digest.hexdigest(), size


class HashingWriter:
    """A write-only stream that counts and hashes what passes to ``target`` (or only counts, without
    ``digest``: ``sha256`` is then None)."""

    def __init__(self, target, digest=True):
        self._target = target
        self._digest = hashlib.sha256() if digest else None
        self.size = 0

    def write(self, data):
        if self._digest is not None:
            self._digest.update(data)
        self.size += len(data)
        return self._target.write(data)

    def flush(self):
        flush = getattr(self._target, 'flush', None)
        if flush:
            flush()

    @property
    def sha256(self):
        return None if self._digest is None else self._digest.hexdigest()


class HashingReader:
    """A read-only stream that counts and hashes what is read from ``source``."""

    def __init__(self, source):
        self._source = source
        self._digest = hashlib.sha256()
        self.size = 0

    def read(self, size=-1):
        data = self._source.read(size)
        self._digest.update(data)
        self.size += len(data)
        return data

    def readinto(self, buffer):
        data = self.read(len(buffer))
        buffer[:len(data)] = data
        return len(data)

    @property
    def sha256(self):
        return self._digest.hexdigest()


def copy_stream(source, target):
    while True:
        chunk = source.read(CHUNK)
        if not chunk:
            return
        target.write(chunk)


def fsync_dir(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def makedirs(path, mode=0o700):
    os.makedirs(path, mode=mode, exist_ok=True)


def owner_of(path):
    """(uid, gid) of ``path``, or of its nearest existing directory when it does not exist yet."""
    while True:
        try:
            info = os.stat(path)
            return info.st_uid, info.st_gid
        except FileNotFoundError:
            parent = os.path.dirname(path)
            if parent == path:
                raise
            path = parent


class AtomicFile:
    """Write ``path`` through a 0600 temp file in the same directory; on success
    it is fsynced and renamed into place, on error removed. Nothing half-written
    ever stands at ``path``. With ``keep_owner`` (as root), the file gets the owner
    and group of the file it replaces, or of its directory when it is new."""

    def __init__(self, path, mode=0o600, mtime_ns=None, keep_owner=False):
        self.path = path
        self.mode = mode
        self.mtime_ns = mtime_ns
        self.keep_owner = keep_owner
        self._tmp = None
        self.handle = None

    def __enter__(self):
        directory = os.path.dirname(self.path) or '.'
        makedirs(directory)
        owner = owner_of(self.path) if self.keep_owner and os.geteuid() == 0 else None
        fd, self._tmp = tempfile.mkstemp(prefix='.cairn-', suffix='.part', dir=directory)
        if owner is not None:
            os.fchown(fd, *owner)
        os.fchmod(fd, self.mode)
        self.handle = os.fdopen(fd, 'wb')
        return self.handle

    def __exit__(self, exc_type, exc, tb):
        try:
            if exc_type is None:
                self.handle.flush()
                os.fsync(self.handle.fileno())
            self.handle.close()
            if exc_type is None:
                if self.mtime_ns is not None:
                    os.utime(self._tmp, ns=(self.mtime_ns, self.mtime_ns))
                os.replace(self._tmp, self.path)
                fsync_dir(os.path.dirname(self.path) or '.')
                self._tmp = None
        finally:
            if self._tmp and os.path.exists(self._tmp):
                os.unlink(self._tmp)
        return False


def write_json(path, data):
    with AtomicFile(path) as handle:
        handle.write(json.dumps(data, indent=2, sort_keys=True).encode('utf-8') + b'\n')


def read_file(path, what, fix):
    """The bytes of a small file the operator named (a key, say); one line naming it, the reason and ``fix``
    when it cannot be read."""
    try:
        with open(path, 'rb') as handle:
            return handle.read()
    except OSError as exc:
        raise CairnError('cannot read the %s %s (%s); %s' % (what, path, exc.strerror or exc, fix))


def read_json(path, what):
    try:
        with open(path, 'rb') as handle:
            return json.loads(handle.read().decode('utf-8'))
    except FileNotFoundError:
        raise CairnError('%s not found at %s' % (what, path))
    except ValueError as exc:
        raise CairnError('%s at %s is not valid JSON (%s)' % (what, path, exc))


def process_start_time(pid):
    """The kernel start time of ``pid`` (clock ticks since boot), or None when there is no such process (or
    only its zombie): with the pid, it names one process, never another that reused the pid."""
    try:
        with open('/proc/%d/stat' % pid, 'rb') as handle:
            fields = handle.read().rsplit(b')', 1)[1].split()
    except (OSError, IndexError):
        return None
    if fields[0] == b'Z':
        return None
    return int(fields[19])


class Timer:
    def __init__(self):
        self.start = time.monotonic()

    @property
    def seconds(self):
        return round(time.monotonic() - self.start, 3)


# Result keys Ansible reads itself: a module result must never use them for data (``failed: [...]`` fails
# the task, ``skipped: true`` skips it, ``rc`` other than 0 fails it, ``results`` is read as loop items,
# ``ansible_facts`` become facts). ``changed`` and ``msg`` are ours only in their Ansible meaning.
RESERVED_KEYS = frozenset(('failed', 'skipped', 'rc', 'results', 'invocation', 'exception', 'warnings',
                           'deprecations', 'stdout', 'stderr', 'stdout_lines', 'stderr_lines'))


def reserved(key):
    """Whether ``key`` may not carry a module's data (see ``RESERVED_KEYS``)."""
    return key in RESERVED_KEYS or key.startswith(('ansible_', '_ansible'))


def run(module, action):
    """The one place where errors become ``fail_json``.

    ``action`` gets the module and returns the result dict (with ``changed``). A result key Ansible reserves
    is a defect of the module, reported as one; so is any error that is not a ``CairnError`` or ``OSError``:
    it fails the task with its type and text (and the traceback at -vvv), never as "Unknown error".

    The action runs inside a ``_process.deadline`` block: of the module's ``time_limit`` option where it has one
    (seconds; 0 for none), and stopped early from any thread by ``_process.stop`` (a reader claim found gone). The
    module's own processes are then killed, its clean-ups run, and it fails saying why. Its worker threads may
    still be blocked (a read from a store that does not answer), so it then ends without waiting for them.
    """
    from ansible_collections.cairncms.ops.plugins.module_utils import _process  # it imports this module

    limit = module.params.get('time_limit') or 0
    message = ('%s ran longer than its time limit of %s s and was stopped: the processes it started were killed and '
               'what it had staged was removed. Raise the limit if the step needs longer'
               % (module._name, limit))
    try:
        try:
            with _process.deadline(limit, message):
                result = action(module)
            for warning in result.pop('warnings', None) or ():
                module.warn(warning)
            misused = sorted(key for key in result if reserved(key))
            if misused:
                raise CairnError('internal error: %s returned the key(s) %s, which Ansible reserves; please '
                                 'report this' % (module._name, ', '.join(misused)))
        except CairnError as exc:
            details = {key: value for key, value in exc.details.items() if key == 'exception' or not reserved(key)}
            module.fail_json(msg=exc.message, **details)
        except OSError as exc:
            module.fail_json(msg='%s: %s' % (exc.strerror or exc.__class__.__name__,
                                             exc.filename or exc))
        except Exception as exc:  # a defect: say what it was, in one line
            module.fail_json(msg='internal error in %s: %s: %s' % (module._name, exc.__class__.__name__, exc),
                             exception=traceback.format_exc())
        module.exit_json(**result)
    except SystemExit as done:
        if _process.EXPIRED:  # cut short: worker threads may still run; do not wait for them
            sys.stdout.flush()
            os._exit(done.code or 0)
        raise


def safe_join(root, *parts):
    path = os.path.normpath(os.path.join(root, *parts))
    if path != root and not path.startswith(root.rstrip(os.sep) + os.sep):
        raise CairnError('path %r escapes %s' % (os.path.join(*parts), root))
    return path
