# -*- coding: utf-8 -*-
# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A repository in an object store: an S3 bucket, a GCS bucket or an Azure Blob container (private).

The keys under ``<prefix>/<instance>/`` mirror the local layout (docs/restore-point-format.md)::

    points/<id>/<artifacts>      uploaded while the run works
    points/<id>/manifest.json    uploaded LAST: a restore point exists once its manifest does
    staging/<id>/<part>.json     the run's parts until finalize (their presence marks a run in progress)
    failed/<id>/error.json       error log of a failed run (its artifacts deleted)
    blobs/<aa>/<sha256>          file bytes, content-addressed, shared by the points
    blobs-age/<aa>/<sha256>      the same, age-encrypted
    checks/<id>.json  drills/<id>.json  keys/<name>  readers/<claim>.json  pruning.json  lock.json

Object stores have no rename, so a restore point becomes visible by its manifest, written in one
request after every artifact it lists; a point without a manifest is never listed, and the next run
removes what a dead run left. The lock is created with a conditional write (S3 ``If-None-Match``,
GCS ``ifGenerationMatch=0``, Azure ``If-None-Match: *``), so two runs cannot both take it.

The object store itself is one of the storage backends (``_storage``), built from the repository's
spec: the same SDK code, error messages and credential chains serve storage locations and
repositories.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import threading
import time

from ansible_collections.cairncms.ops.plugins.module_utils import _scratch
from ansible_collections.cairncms.ops.plugins.module_utils._common import CairnError, check_name, iso, utc_now
from ansible_collections.cairncms.ops.plugins.module_utils._crypto import Crypto, unwrap_identity, wrap_identity
from ansible_collections.cairncms.ops.plugins.module_utils._env import Location
from ansible_collections.cairncms.ops.plugins.module_utils._repository._base import (
    MANIFEST, BlobWriter, Repository, _json, check_sha256, lock_holder)
from ansible_collections.cairncms.ops.plugins.module_utils._signing import SIGNATURE
from ansible_collections.cairncms.ops.plugins.module_utils._storage import backend_class, drivers, select_backend
from ansible_collections.cairncms.ops.plugins.module_utils._storage._base import ObjectMissing

BLOBS = {False: 'blobs', True: 'blobs-age'}
SPOOL = 8 * 1024 * 1024   # a blob up to this size is hashed in memory before it is uploaded


def location_of(spec, credentials=None):
    """The storage ``Location`` that serves a repository spec: the driver named by its type says which keys
    it takes (``repository_spec``) and checks them (``repository_options``)."""
    kind = spec['type']
    backend = backend_class(kind)
    known = backend.repository_spec
    credentials = dict(credentials or {})
    allowed = {'type', 'prefix', known['place']} | set(known['options'])
    unknown = set(spec) - allowed
    if unknown:
        raise CairnError('cairn_repository of type %s takes %s; unknown: %s (credentials go in '
                         'cairn_repository_credentials, or come from the SDK\'s environment)'
                         % (kind, ', '.join(sorted(allowed - {'type'})), ', '.join(sorted(unknown))))
    unknown = set(credentials) - set(known['credentials'])
    if unknown:
        raise CairnError('cairn_repository_credentials for type %s take %s; unknown: %s'
                         % (kind, ', '.join(sorted(known['credentials'])) or 'nothing (use the SDK\'s '
                            'environment)', ', '.join(sorted(unknown))))
    if not spec.get(known['place']):
        raise CairnError('cairn_repository of type %s needs its %s, e.g. {type: %s, %s: cairn-backups, '
                         'prefix: prod}' % (kind, known['place'], kind, known['place']))
    options = {backend.place_option: str(spec[known['place']]), 'root': str(spec.get('prefix') or '').strip('/')}
    for key, option in known['options'].items():
        value = spec.get(key)
        options[option] = None if value in (None, '') else value
    for key, option in known['credentials'].items():
        value = credentials.get(key)
        options[option] = None if value in (None, '', {}) else value if isinstance(value, dict) else str(value)
    return Location('repository', kind, backend.repository_options(options))


def repository_types():
    """The storage drivers that can hold a repository (their ``repository_spec`` says how)."""
    return tuple(driver for driver in drivers() if backend_class(driver).repository_spec is not None)


class _Stat:
    def __init__(self, size):
        self.st_size = size


class ObjectRepository(Repository):
    """Restore points in a bucket or container (see the module docstring)."""

    def __init__(self, location, crypto=None):
        self.kind = location.driver
        self.store = select_backend(location)
        self.crypto = crypto or Crypto()
        self._blobs = {}          # (instance, encrypted) -> set of sha256 known to be stored
        self._blobs_lock = threading.Lock()
        self._listing_lock = threading.Lock()

    @classmethod
    def from_spec(cls, spec, crypto=None, credentials=None):
        return cls(location_of(spec, credentials), crypto)

    def describe(self):
        return self.store.describe().rstrip('/')

    # keys ---------------------------------------------------------------------------------------
    @staticmethod
    def _key(instance, *parts):
        check_name('instance', instance)
        return '/'.join((instance,) + parts)

    def _point(self, instance, point_id, name=''):
        return self._key(instance, 'points', check_name('restore point id', point_id), name)

    def _staging(self, instance, point_id, name=''):
        return self._key(instance, 'staging', check_name('restore point id', point_id), name)

    def _names(self, under):
        """Names (relative to ``under``) of the objects whose keys start with ``under``."""
        return [entry.name[len(under):] for entry in self.store.list(under)]

    def _children(self, under):
        """The distinct first path segments below ``under`` (``points/`` -> point ids)."""
        return sorted({name.split('/', 1)[0] for name in self._names(under) if name})

    def _read_key(self, key):
        try:
            with self.store.open_read(key) as handle:
                return handle.read()
        except ObjectMissing:
            return None

    def _get_json(self, key, what):
        data = self._read_key(key)
        if data is None:
            return None
        parsed = _json(data)
        if parsed is None:
            raise CairnError('%s (%s) is damaged: it is not UTF-8 JSON' % (what, self.store._url(key)))
        return parsed

    # primitives -----------------------------------------------------------------------------------
    def where(self, instance, path=''):
        return self.store._url(self._key(instance, *path.split('/')) if path else self._key(instance) + '/')

    def _get(self, instance, path):
        return self._read_key(self._key(instance, *path.split('/')))

    def _put(self, instance, path, data):
        self.store.put_bytes(self._key(instance, *path.split('/')), data)

    def _drop(self, instance, path):
        key = self._key(instance, *path.split('/'))
        if self.store.stat(key) is not None:
            self.store.delete(key)

    def _files(self, instance, directory):
        return sorted(name for name in self._names(self._key(instance, *directory.split('/')) + '/')
                      if name and '/' not in name)

    def _age(self, instance, path):
        entry = self.store.stat(self._key(instance, *path.split('/')))
        return None if entry is None else max(0.0, time.time() - entry.mtime_ns / 1e9)

    def _put_json(self, key, data, if_absent=False):
        return self.store.put_bytes(key, json.dumps(data, indent=1, sort_keys=True).encode('utf-8'), if_absent)

    def _delete_under(self, under):
        for name in self._names(under):
            self.store.delete(under + name)

    # the instance lock --------------------------------------------------------------------------
    def read_lock(self, instance):
        key = self._key(instance, 'lock.json')
        data = self._read_key(key)
        if data is None:
            return None
        holder = lock_holder(data)
        if isinstance(holder.get('beat'), (int, float)):
            # the holder's last heartbeat by its own clock (hosts sharing a repository keep NTP time)
            holder['idle_s'] = round(max(0.0, time.time() - holder['beat']), 1)
        else:  # torn or foreign: its age is the object's, and it is taken over like any other stale lock
            holder.setdefault('damaged', 'no heartbeat')
            holder['idle_s'] = round(self._age(instance, 'lock.json') or 0.0, 1)
        return holder

    def _create_lock(self, instance, owner):
        return self._put_json(self._key(instance, 'lock.json'), owner, if_absent=True)

    def _break_lock(self, instance, holder):
        again = self.read_lock(instance)  # break it only if it is still the same stale holder
        if not again or again.get('token') != holder.get('token'):
            return False
        self.store.delete(self._key(instance, 'lock.json'))
        return True

    def touch_lock(self, instance, run):
        holder = self.read_lock(instance)
        if holder and holder.get('run') == run:
            holder.pop('idle_s', None)
            holder['beat'] = time.time()
            self._put_json(self._key(instance, 'lock.json'), holder)

    def release_lock(self, instance, run):
        holder = self.read_lock(instance)
        if holder and holder.get('run') == run:
            self.store.delete(self._key(instance, 'lock.json'))

    # runs ---------------------------------------------------------------------------------------
    def _run_exists(self, instance, point_id):
        return bool(self._names(self._staging(instance, point_id)) or self._names(self._point(instance, point_id)))

    def _staged_runs(self, instance):
        return self._children(self._key(instance, 'staging') + '/')

    def _stage_run(self, instance, point_id, run):
        self._put_json(self._staging(instance, point_id, 'run.json'), run)

    def _require_staging(self, instance, point_id):
        if self.store.stat(self._staging(instance, point_id, 'run.json')) is None:
            raise CairnError('restore point %s of %s is not being staged in %s (was it finalized, failed, '
                             'or never begun?)' % (point_id, instance, self.describe()))

    @contextlib.contextmanager
    def artifact_writer(self, instance, point_id, name, encrypted=False):
        """The artifact is written to a file in the private scratch directory, then uploaded (multipart when
        large)."""
        self._require_staging(instance, point_id)
        key = self._point(instance, point_id, _artifact_name(name))
        fd, tmp = tempfile.mkstemp(prefix='.artifact-', dir=_scratch.directory())
        try:
            with os.fdopen(fd, 'wb') as handle:
                with self.crypto.sink(handle, encrypted) as sink:
                    yield sink
            self.store.upload(key, tmp)
        finally:
            os.unlink(tmp)

    def write_part(self, instance, point_id, part, data):
        self._require_staging(instance, point_id)
        self._put_json(self._staging(instance, point_id, check_name('part', part) + '.json'), data)

    def read_parts(self, instance, point_id):
        self._require_staging(instance, point_id)
        return self._parts(instance, point_id)

    def _parts(self, instance, point_id):
        staging = self._staging(instance, point_id)
        parts = {}
        for name in sorted(self._names(staging)):
            if name.endswith('.json') and '/' not in name:
                parts[name[:-5]] = self._get_json(staging + name, 'part %s' % name)
        return parts

    def staged_artifact_stat(self, instance, point_id, name):
        self._require_staging(instance, point_id)
        entry = self.store.stat(self._point(instance, point_id, _artifact_name(name)))
        return _Stat(entry.size) if entry is not None else None

    def finalize(self, instance, point_id, manifest, signature=None):
        self._require_staging(instance, point_id)
        if signature is not None:
            self.store.put_bytes(self._point(instance, point_id, SIGNATURE), signature)
        self._put_json(self._point(instance, point_id, MANIFEST), manifest)  # now it exists
        self._delete_under(self._staging(instance, point_id))
        self.release_lock(instance, point_id)
        return self.store._url(self._point(instance, point_id))

    def fail(self, instance, point_id, error):
        record = {'id': point_id, 'instance': instance, 'failed_at': iso(utc_now()), 'error': error}
        try:
            parts = self._parts(instance, point_id)
        except CairnError as exc:  # a run killed mid-write: keep the log anyway
            parts = {'unreadable': exc.message}
        if parts:
            record['parts'] = parts
        key = self._key(instance, 'failed', check_name('restore point id', point_id), 'error.json')
        self._put_json(key, record)
        if self.store.stat(self._point(instance, point_id, MANIFEST)) is None:
            self._delete_under(self._point(instance, point_id))
        self._delete_under(self._staging(instance, point_id))
        self.release_lock(instance, point_id)
        return self.store._url(key)

    # restore points -----------------------------------------------------------------------------
    def list_points(self, instance):
        under = self._key(instance, 'points') + '/'
        return sorted(name[:-len(MANIFEST) - 1] for name in self._names(under)
                      if name.endswith('/' + MANIFEST) and name.count('/') == 1)

    def list_failed(self, instance):
        return self._children(self._key(instance, 'failed') + '/')

    def _read(self, instance, kind, where):
        if kind == 'artifact':
            key = self._point(instance, where[0], _artifact_name(where[1]))
        else:
            key = self._blob(instance, *where)
        try:
            return self.store.open_read(key)
        except ObjectMissing:
            return None

    def passphrase_identity(self, instance, create=False):
        key = self._key(instance, 'keys', 'passphrase.age')
        where = self.store._url(key)
        for _attempt in range(2):
            try:
                with self.store.open_read(key) as handle:
                    return unwrap_identity(handle.read(), self.crypto.passphrase, where)
            except ObjectMissing:
                pass
            if not create:
                raise CairnError('no passphrase key for %s in %s (keys/passphrase.age); restore points of it were '
                                 'not encrypted with a passphrase' % (instance, self.describe()))
            identity, wrapped = wrap_identity(self.crypto.passphrase)
            if self.store.put_bytes(key, wrapped, if_absent=True):
                return identity
            # another run made one first: use that one
        raise CairnError('could not read or create the passphrase key %s' % where)

    def key_files(self, instance):
        under = self._key(instance, 'keys') + '/'
        found = {}
        for name in sorted(self._names(under)):
            with self.store.open_read(under + name) as handle:
                found[name] = handle.read()
        return found

    def put_key_file(self, instance, name, data):
        self.store.put_bytes(self._key(instance, 'keys', check_name('key file', name)), data, if_absent=True)

    def delete_point(self, instance, point_id):
        """The manifest goes first (the point disappears at once), then its artifacts and check record."""
        manifest = self._point(instance, point_id, MANIFEST)
        if self.store.stat(manifest) is None:
            raise CairnError('restore point %s of %s is not in %s' % (point_id, instance, self.describe()))
        self.store.delete(manifest)
        self._delete_under(self._point(instance, point_id))
        self.store.delete(self._key(instance, 'checks', point_id + '.json'))

    def point_files(self, instance, point_id):
        return sorted(self._names(self._point(instance, point_id)))

    # blobs --------------------------------------------------------------------------------------
    def _blob(self, instance, sha256, encrypted=False):
        check_sha256(sha256)
        return self._key(instance, BLOBS[encrypted], sha256[:2], sha256)

    def list_blobs(self, instance, encrypted=False):
        under = self._key(instance, BLOBS[encrypted]) + '/'
        found = {}
        for entry in self.store.list(under):
            prefix, _sep, name = entry.name[len(under):].partition('/')
            if len(prefix) == 2 and len(name) == 64 and name.startswith(prefix):
                found[name] = entry.size
        with self._blobs_lock:
            self._blobs[(instance, encrypted)] = set(found)
        return found

    def _known(self, instance, encrypted):
        with self._listing_lock:  # one listing serves the whole run, whichever transfer asks first
            with self._blobs_lock:
                known = self._blobs.get((instance, encrypted))
            if known is None:
                self.list_blobs(instance, encrypted)
                with self._blobs_lock:
                    known = self._blobs[(instance, encrypted)]
        return known

    def has_blob(self, instance, sha256, encrypted=False):
        check_sha256(sha256)
        return sha256 in self._known(instance, encrypted)

    def delete_blob(self, instance, sha256, encrypted=False):
        self.store.delete(self._blob(instance, sha256, encrypted))
        with self._blobs_lock:
            self._blobs.get((instance, encrypted), set()).discard(sha256)

    @contextlib.contextmanager
    def blob_writer(self, instance, encrypted=False, sha256=None):
        """Bytes are spooled (in memory up to ``SPOOL``, then a local temporary file) while they are
        hashed; the blob is uploaded under its sha256 unless the repository has it already."""
        known = self._known(instance, encrypted)
        with tempfile.SpooledTemporaryFile(max_size=SPOOL, prefix='.cairn-blob-', dir=_scratch.directory()) as spool:
            sink = self.crypto.writer(spool) if encrypted and sha256 is None else spool
            writer = BlobWriter(sink)
            yield writer
            if sink is not spool:
                sink.close()
            writer.sha256 = sha256 or writer._digest.hexdigest()
            with self._blobs_lock:
                writer.existed = writer.sha256 in known
            if not writer.existed:
                size = spool.tell()
                spool.seek(0)
                self.store.upload_fileobj(self._blob(instance, writer.sha256, encrypted), spool, size)
                with self._blobs_lock:
                    known.add(writer.sha256)


def _artifact_name(name):
    parts = name.split('/')
    if not name or any(part in ('', '.', '..') for part in parts):
        raise CairnError('artifact name %r is not a relative path' % (name,))
    return name
