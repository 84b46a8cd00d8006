# -*- coding: utf-8 -*-
# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The storage backend interface (private).

A backend serves one CairnCMS storage location: object names are the
``filename_disk`` values of ``directus_files`` (``/``-separated, relative).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import tempfile

from ansible_collections.cairncms.ops.plugins.module_utils import _scratch
from ansible_collections.cairncms.ops.plugins.module_utils._common import CairnError

# CairnCMS writes a transformed image as <original name without extension>__<sha1 of the
# transformation, 40 hex><original or new extension> beside the original, and probes every
# location with a health-<nanoid(5)> object that it may leave behind; both are regenerable.
DERIVATIVE = re.compile(r'^(?P<base>[^/]+)__[0-9a-f]{40}(?P<ext>\.[^./]+)?$')
HEALTH = re.compile(r'^health-[0-9A-Za-z_-]{5}$')


class ObjectMissing(CairnError):
    """An object that is not there (raised by ``open_read``)."""


class ObjectNotRegular(CairnError):
    """A name of a local location where a symlink, a special file or a directory stands, or whose way there
    crosses one (raised by ``open_read``, ``stat``, ``begin_write``, ``delete``): ``kind`` says what it is.
    Nothing below a location's root is followed."""

    def __init__(self, message, kind):
        super().__init__(message)
        self.kind = kind


class Entry:
    """An object as a listing shows it; ``md5`` (hex) when the store vouches for the content's MD5 (an S3
    single-part ETag, GCS md5Hash, Azure Content-MD5), else None."""
    __slots__ = ('name', 'size', 'mtime_ns', 'md5')

    def __init__(self, name, size, mtime_ns, md5=None):
        self.name = name
        self.size = size
        self.mtime_ns = mtime_ns
        self.md5 = md5


class StagedWrite:
    """Interface of a staged object write: ``write``, ``close``, then ``commit`` or ``discard``. Once committed,
    ``placed`` is the fingerprint of the object written, as ``fingerprints()`` gives it (None where the store has
    none)."""

    placed = None

    def write(self, data):
        raise NotImplementedError

    def close(self):
        raise NotImplementedError

    def commit(self):
        raise NotImplementedError

    def discard(self):
        raise NotImplementedError


class UploadOnCommit(StagedWrite):
    """For object stores: bytes go to a 0600 temporary file in the private scratch directory, closed once
    written (a restore stages every file before committing any, so neither memory nor open descriptors grow
    with the file count); ``commit()`` hands it to ``storage.upload(name, path)`` and removes it."""

    def __init__(self, storage, name):
        self._storage = storage
        self._name = name
        fd, self._path = tempfile.mkstemp(prefix='.cairn-%s-' % storage.driver, suffix='.part',
                                          dir=_scratch.directory())
        self._handle = os.fdopen(fd, 'wb')

    def write(self, data):
        return self._handle.write(data)

    def close(self):
        if not self._handle.closed:
            self._handle.close()

    def commit(self):
        self.close()
        try:
            self._storage.upload(self._name, self._path)
        finally:
            self.discard()

    def discard(self):
        self.close()
        if os.path.exists(self._path):
            os.unlink(self._path)


class StorageBackend:
    """One driver (``STORAGE_<LOC>_DRIVER``): its configuration (class methods, no backend needed), the
    objects of one location (a backend serves one ``_env.Location``), and, for object stores, the bucket
    posture and the repository spec. A driver's file sets ``BACKEND`` to its subclass."""

    driver = None
    # Whether the directories of ``a/b`` names are real (a local disk: a file ``a`` and a file ``a/b`` cannot
    # both exist); in object stores they are only a part of the name.
    has_directories = False
    # Whether staged writes are put in place several at a time (a network round trip each); a local disk renames
    # them one after the other, which is faster than threads taking turns at one directory.
    parallel_commits = True

    # -- the driver's configuration ---------------------------------------------------------------

    @classmethod
    def options_from_env(cls, config, prefix):
        """The options of the location whose variables start with ``prefix`` (``STORAGE_<LOC>_``) in ``config``
        (an ``_env.InstanceConfig``: ``values``, ``path()``, ``texts()``, ``missing()``, ``where``), read as
        CairnCMS's driver reads them; a ``CairnError`` names a variable that is missing or wrong."""
        raise NotImplementedError

    @classmethod
    def describe_options(cls, options):
        """What a location's description shows beyond its name, driver and root; never a secret."""
        return {}

    # The options that say which objects a location is (two locations alike in them share their objects), for
    # ``_guard``; None: none do (a local location is its resolved root).
    identity_options = None

    # -- bucket posture (``_posture``) --------------------------------------------------------------
    # A store with bucket settings defines ``read_posture(self, posture)``, which fills a ``_posture.blank``
    # posture, and ``enforce_posture(self, versioning, noncurrent_days, check_mode)``, which returns the
    # changes (see ``_posture.enforce``); None: no bucket settings (the posture is not applicable).
    read_posture = None
    enforce_posture = None
    # How to fix what ``_posture`` finds weak, by finding (versioning, lifecycle, object_lock, replication,
    # soft_delete, default_encryption): a text, ``{bucket}`` standing for the bucket. Soft delete is judged
    # only where the driver names its fix.
    posture_fixes = {}
    mfa_delete = False          # whether the store has MFA delete (else the posture says not_applicable)
    lock_retention = False      # whether object lock has a default retention (object_lock days/years)

    # -- a repository in the store (``_repository.objects``) -----------------------------------------
    # None, or {'place': spec key naming the bucket/container, 'options': {spec key: option},
    # 'credentials': {credential key: option}}; the place becomes the option ``place_option``.
    repository_spec = None

    @classmethod
    def repository_options(cls, options):
        """Check and complete the options a repository spec gives (a ``CairnError`` says what is wrong)."""
        return options

    # -- the objects ------------------------------------------------------------------------------

    def __init__(self, location):
        self.location = location

    @contextlib.contextmanager
    def batch(self):
        """Commits of many staged writes inside this block may leave what makes them durable to its end (a
        local disk syncs each directory once, not once per file). Object stores: nothing to do."""
        yield

    def fingerprints(self):
        """``{name: fingerprint}`` of every regular file of the location, in one listing: what tells the state of
        each from any later one without reading it (see ``StagedWrite.placed``). Empty where the store has
        nothing a caller could trust for that."""
        return {}

    def describe(self):
        raise NotImplementedError

    def list(self, under=''):
        """Yield an ``Entry`` for every object (whose name starts with ``under``)."""
        raise NotImplementedError

    def irregular(self):
        """``(name, kind)`` of what the last ``list()`` passed over because it is no object to copy: symlinks
        (``kind`` ``symlink``), FIFOs, sockets, devices in a local location. Object stores have none."""
        return []

    def leftovers(self):
        """Names of our own temporary files that the last ``list()`` found in the location (left by an
        interrupted restore; never content). Object stores keep none there."""
        return []

    def stat(self, name):
        """The ``Entry`` for ``name``, or None."""
        raise NotImplementedError

    def open_read(self, name):
        """A binary reader of the object; ``ObjectMissing`` when there is none."""
        raise NotImplementedError

    def begin_write(self, name, mtime_ns=None):
        """A ``StagedWrite`` for ``name``: bytes go to a temporary place and
        become the object only on ``commit()``."""
        raise NotImplementedError

    def missing(self, name):
        """The error of a read of ``name`` that finds no object."""
        return ObjectMissing('file %s vanished from storage location %s while it was read'
                             % (name, self.location.name))

    def address(self, name):
        """What identifies the object ``name`` in the store: two names with one address are one object (the
        name itself, except where the service normalizes names, as Cloudinary does with extensions)."""
        return name

    def sha256(self, name):
        digest = hashlib.sha256()
        with self.open_read(name) as handle:
            for chunk in iter(lambda: handle.read(1024 * 1024), b''):
                digest.update(chunk)
        return digest.hexdigest()

    def delete(self, name):
        raise NotImplementedError


def regenerable(names):
    """The subset of ``names`` CairnCMS can regenerate: derivatives whose original
    is present, and storage health probes."""
    present = set(names)
    bases = {name.rsplit('.', 1)[0] if '.' in name.rsplit('/', 1)[-1] else name for name in present}
    found = set()
    for name in present:
        directory, leaf = name.rpartition('/')[::2]
        if HEALTH.match(name):
            found.add(name)
            continue
        match = DERIVATIVE.match(leaf)
        if match:
            base = (directory + '/' if directory else '') + match.group('base')
            if base in bases and base + (match.group('ext') or '') != name:
                found.add(name)
    return found


class ObjectStore(StorageBackend):
    """What the object-store backends share: a bucket (or container) and a key prefix
    (``STORAGE_<LOC>_ROOT``), URLs for messages, and the one place where SDK errors become
    ``CairnError('Failed to <verb> <url>: <cause>')`` with the location's secret masked."""

    scheme = None          # URL scheme in messages: s3, gs, azure
    place_option = None    # the location option that names the bucket or container
    secret_option = None   # a location option whose value never appears in a message

    def __init__(self, location):
        super().__init__(location)
        self.place = location.options[self.place_option]
        root = (location.options.get('root') or '').strip('/')
        self.prefix = root + '/' if root else ''

    def describe(self):
        return self._url()

    def _url(self, name=''):
        return '%s://%s/%s%s' % (self.scheme, self.place, self.prefix, name)

    def _key(self, name):
        return self.prefix + name

    def is_sdk_error(self, exc):
        """Whether ``exc`` comes from the SDK (anything else passes through unchanged)."""
        raise NotImplementedError

    def put_bytes(self, name, data, if_absent=False):
        """Write a small object in one request; with ``if_absent``, only when there is none yet (a
        conditional write the service decides). Returns whether it was written."""
        raise NotImplementedError

    def upload_fileobj(self, name, handle, size):
        """Write an object from a binary reader of ``size`` bytes (multipart or resumable when large)."""
        raise NotImplementedError

    def upload(self, name, path):
        with open(path, 'rb') as handle:
            self.upload_fileobj(name, handle, os.path.getsize(path))

    def cause(self, exc):
        return str(exc) or exc.__class__.__name__

    @contextlib.contextmanager
    def _errors(self, verb, name=''):
        try:
            yield
        except CairnError:
            raise
        except Exception as exc:  # only SDK errors are caught; the rest passes
            if not self.is_sdk_error(exc):
                raise
            cause = self.cause(exc)
            secret = self.location.options.get(self.secret_option) if self.secret_option else None
            if secret:
                cause = cause.replace(secret, '********')
            raise CairnError('Failed to %s %s: %s' % (verb, self._url(name), cause))


class SdkReader:
    """A streaming reader of one object whose read errors become ``CairnError`` too; ``read(size)``
    is called with a size, -1 for all."""

    def __init__(self, storage, name, read, close=None):
        self._storage = storage
        self._name = name
        self._read = read
        self._close = close

    def read(self, size=-1):
        with self._storage._errors('read', self._name):
            return self._read(-1 if size is None or size < 0 else size)

    def close(self):
        if self._close is not None:
            self._close()

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        self.close()
        return False
