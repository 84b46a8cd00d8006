# -*- coding: utf-8 -*-
# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A repository in a local directory (private).

Layout under ``<path>/<instance>/`` (documented in docs/restore-point-format.md)::

    points/<id>/manifest.json   complete restore points (atomic rename from staging)
    points/<id>/<artifacts>
    staging/<id>/               runs in progress; never listed as restore points
    failed/<id>/error.json      error log of a failed run (artifacts removed)
    blobs/<aa>/<sha256>         file bytes, content-addressed, shared by the points
    blobs-age/<aa>/<sha256>     the same, age-encrypted (named by the sha256 of the plaintext)
    checks/<id>.json            result of the last integrity check of a restore point
    drills/<id>.json            records of restore drills
    readers/<claim>.json        claims of runs reading restore points (restores, drills, copies)
    pruning.json                the points a prune is removing
    lock.json                   the run that holds the instance (kept fresh while it works)
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import tempfile
import threading
import time

from ansible_collections.cairncms.ops.plugins.module_utils._common import (
    AtomicFile, CairnError, check_name, fsync_dir, iso, makedirs, read_json, safe_join, utc_now, write_json)
from ansible_collections.cairncms.ops.plugins.module_utils._crypto import Crypto, unwrap_identity, wrap_identity
from ansible_collections.cairncms.ops.plugins.module_utils._fs import TEMP_PREFIX, TEMP_SUFFIX
from ansible_collections.cairncms.ops.plugins.module_utils._repository._base import (
    MANIFEST, BlobWriter, Repository, check_sha256, lock_holder)
from ansible_collections.cairncms.ops.plugins.module_utils._signing import SIGNATURE

PARTS = '.parts'
BLOBS = {False: 'blobs', True: 'blobs-age'}


class LocalRepository(Repository):
    kind = 'local'

    def __init__(self, path, crypto=None):
        if not path or not os.path.isabs(path):
            raise CairnError('cairn_repository.path must be an absolute directory path, got %r' % (path,))
        self.path = os.path.normpath(path)
        self.crypto = crypto or Crypto()
        self._known_blobs = {}   # (instance, encrypted) -> sha256 of the blobs stored
        self._known_lock = threading.Lock()

    @classmethod
    def from_spec(cls, spec, crypto=None):
        unknown = set(spec) - {'type', 'path'}
        if unknown:
            raise CairnError('cairn_repository of type local takes only path; unknown: %s'
                             % ', '.join(sorted(unknown)))
        return cls(spec.get('path'), crypto)

    def describe(self):
        return 'local:%s' % self.path

    def _instance(self, instance, *parts):
        check_name('instance', instance)
        return safe_join(self.path, instance, *parts)

    def _staging(self, instance, point_id):
        return self._instance(instance, 'staging', check_name('restore point id', point_id))

    def _point(self, instance, point_id):
        return self._instance(instance, 'points', check_name('restore point id', point_id))

    # primitives ---------------------------------------------------------
    def _file(self, instance, path):
        return self._instance(instance, *path.split('/'))

    def where(self, instance, path=''):
        return self._file(instance, path) if path else self._instance(instance)

    def _get(self, instance, path):
        try:
            with open(self._file(instance, path), 'rb') as handle:
                return handle.read()
        except FileNotFoundError:
            return None
        except IsADirectoryError:
            raise CairnError('%s is a directory where the repository keeps a file; the repository is damaged'
                             % self._file(instance, path))

    def _put(self, instance, path, data):
        with AtomicFile(self._file(instance, path)) as handle:
            handle.write(data)

    def _drop(self, instance, path):
        try:
            os.unlink(self._file(instance, path))
        except FileNotFoundError:
            pass

    def _files(self, instance, directory):
        path = self._file(instance, directory)
        if not os.path.isdir(path):
            return []
        return sorted(name for name in os.listdir(path) if not name.startswith('.')
                      and os.path.isfile(os.path.join(path, name)))

    def _age(self, instance, path):
        try:
            return max(0.0, time.time() - os.lstat(self._file(instance, path)).st_mtime)
        except FileNotFoundError:
            return None

    def _sweep(self, instance, directory, stale_after):
        path = self._file(instance, directory)
        try:
            names = os.listdir(path)
        except OSError:
            return
        for name in names:
            if name.startswith(TEMP_PREFIX) and name.endswith(TEMP_SUFFIX):  # AtomicFile's temporary files
                try:
                    if time.time() - os.lstat(os.path.join(path, name)).st_mtime > stale_after:
                        os.unlink(os.path.join(path, name))
                except OSError:
                    pass

    # the instance lock --------------------------------------------------
    def _lock_path(self, instance):
        return self._instance(instance, 'lock.json')

    def read_lock(self, instance):
        """The holder of the lock, with ``idle_s`` by the file's age; a lock file that is not a JSON record (torn
        by a crash, NUL bytes) is a holder marked ``damaged``, taken over like any other once stale."""
        path = self._lock_path(instance)
        try:
            with open(path, 'rb') as handle:
                data = handle.read()
            age = time.time() - os.stat(path).st_mtime
        except FileNotFoundError:
            return None
        holder = lock_holder(data)
        holder['idle_s'] = round(max(0.0, age), 1)
        return holder

    def _create_lock(self, instance, owner):
        makedirs(self._instance(instance))
        try:
            fd = os.open(self._lock_path(instance), os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_NOFOLLOW, 0o600)
        except FileExistsError:
            return False
        with os.fdopen(fd, 'w') as handle:
            handle.write(json.dumps(owner))
        return True

    def _break_lock(self, instance, holder):
        """Move a stale lock aside, unless another run replaced it meanwhile."""
        path = self._lock_path(instance)
        aside = '%s.stale-%s' % (path, secrets.token_hex(4))
        try:
            os.rename(path, aside)
        except FileNotFoundError:
            return False
        try:
            with open(aside, 'rb') as handle:
                moved = lock_holder(handle.read())
            if moved.get('token') != holder.get('token'):
                os.rename(aside, path)  # not the stale one: a fresh lock, put it back
                return False
            return True
        finally:
            if os.path.exists(aside):
                os.unlink(aside)

    def touch_lock(self, instance, run):
        holder = self.read_lock(instance)
        if holder and holder.get('run') == run:
            os.utime(self._lock_path(instance))

    def release_lock(self, instance, run):
        holder = self.read_lock(instance)
        if holder and holder.get('run') == run:
            os.unlink(self._lock_path(instance))

    # runs ---------------------------------------------------------------
    def _run_exists(self, instance, point_id):
        return os.path.exists(self._staging(instance, point_id)) or os.path.exists(self._point(instance, point_id))

    def _staged_runs(self, instance):
        staging = self._instance(instance, 'staging')
        if not os.path.isdir(staging):
            return []
        return sorted(name for name in os.listdir(staging) if os.path.isdir(os.path.join(staging, name)))

    def _stage_run(self, instance, point_id, run):
        for sub in ('points', 'staging', 'blobs', 'failed'):
            makedirs(self._instance(instance, sub))
        staging = self._staging(instance, point_id)
        os.mkdir(staging, 0o700)
        makedirs(os.path.join(staging, PARTS))
        write_json(os.path.join(staging, PARTS, 'run.json'), run)

    def _require_staging(self, instance, point_id):
        staging = self._staging(instance, point_id)
        if not os.path.isdir(staging):
            raise CairnError('restore point %s of %s is not being staged in %s (was it finalized, failed, '
                             'or never begun?)' % (point_id, instance, self.describe()))
        return staging

    @contextlib.contextmanager
    def artifact_writer(self, instance, point_id, name, encrypted=False):
        staging = self._require_staging(instance, point_id)
        with AtomicFile(safe_join(staging, name)) as handle:
            with self.crypto.sink(handle, encrypted) as sink:
                yield sink

    def write_part(self, instance, point_id, part, data):
        staging = self._require_staging(instance, point_id)
        write_json(os.path.join(staging, PARTS, check_name('part', part) + '.json'), data)

    def read_parts(self, instance, point_id):
        parts_dir = os.path.join(self._require_staging(instance, point_id), PARTS)
        parts = {}
        for name in sorted(os.listdir(parts_dir)):
            if name.endswith('.json'):
                parts[name[:-5]] = read_json(os.path.join(parts_dir, name), 'part %s' % name)
        return parts

    def staged_artifact_stat(self, instance, point_id, name):
        path = safe_join(self._require_staging(instance, point_id), name)
        return os.stat(path) if os.path.isfile(path) else None

    def finalize(self, instance, point_id, manifest, signature=None):
        staging = self._require_staging(instance, point_id)
        if signature is not None:
            with AtomicFile(os.path.join(staging, SIGNATURE)) as handle:
                handle.write(signature)
        write_json(os.path.join(staging, MANIFEST), manifest)
        shutil.rmtree(os.path.join(staging, PARTS))
        fsync_dir(staging)
        os.rename(staging, self._point(instance, point_id))
        fsync_dir(self._instance(instance, 'points'))
        fsync_dir(self._instance(instance, 'staging'))
        self.release_lock(instance, point_id)
        return self._point(instance, point_id)

    def fail(self, instance, point_id, error):
        staging = self._staging(instance, point_id)
        failed = self._instance(instance, 'failed', check_name('restore point id', point_id))
        makedirs(failed)
        record = {'id': point_id, 'instance': instance, 'failed_at': iso(utc_now()), 'error': error}
        if os.path.isdir(os.path.join(staging, PARTS)):
            try:
                record['parts'] = self.read_parts(instance, point_id)
            except CairnError as exc:  # a run killed mid-write: keep the log anyway
                record['parts'] = {'unreadable': exc.message}
        write_json(os.path.join(failed, 'error.json'), record)
        if os.path.isdir(staging):
            shutil.rmtree(staging)
        self.release_lock(instance, point_id)
        return os.path.join(failed, 'error.json')

    # restore points -----------------------------------------------------
    def list_points(self, instance):
        points_dir = self._instance(instance, 'points')
        if not os.path.isdir(points_dir):
            return []
        return sorted(name for name in os.listdir(points_dir)
                      if os.path.isfile(os.path.join(points_dir, name, MANIFEST)))

    def list_failed(self, instance):
        failed_dir = self._instance(instance, 'failed')
        return sorted(os.listdir(failed_dir)) if os.path.isdir(failed_dir) else []

    def _read(self, instance, kind, where):
        if kind == 'artifact':
            path = safe_join(self._point(instance, where[0]), where[1])
        else:
            path = self._blob(instance, *where)
        try:
            return open(path, 'rb')
        except FileNotFoundError:
            return None

    def passphrase_identity(self, instance, create=False):
        """The instance's passphrase-wrapped age identity (``keys/passphrase.age``), unwrapped with the
        crypto's passphrase; made and stored when ``create`` and there is none yet."""
        path = self._instance(instance, 'keys', 'passphrase.age')
        if os.path.exists(path):
            with open(path, 'rb') as handle:
                return unwrap_identity(handle.read(), self.crypto.passphrase, path)
        if not create:
            raise CairnError('no passphrase key for %s in %s (keys/passphrase.age); restore points of it were not '
                             'encrypted with a passphrase' % (instance, self.describe()))
        identity, wrapped = wrap_identity(self.crypto.passphrase)
        with AtomicFile(path) as handle:
            handle.write(wrapped)
        return identity

    def key_files(self, instance):
        """name -> bytes of the instance's key files (copied along with restore points)."""
        directory = self._instance(instance, 'keys')
        if not os.path.isdir(directory):
            return {}
        found = {}
        for name in sorted(os.listdir(directory)):
            with open(os.path.join(directory, name), 'rb') as handle:
                found[name] = handle.read()
        return found

    def put_key_file(self, instance, name, data):
        path = self._instance(instance, 'keys', check_name('key file', name))
        if not os.path.exists(path):
            with AtomicFile(path) as handle:
                handle.write(data)

    def delete_point(self, instance, point_id):
        """Remove a restore point: it disappears at once (rename), then its files go."""
        point = self._point(instance, point_id)
        if not os.path.isdir(point):
            raise CairnError('restore point %s of %s is not in %s' % (point_id, instance, self.describe()))
        trash = self._instance(instance, 'trash')
        makedirs(trash)
        aside = os.path.join(trash, '%s-%s' % (point_id, secrets.token_hex(3)))
        os.rename(point, aside)
        fsync_dir(self._instance(instance, 'points'))
        shutil.rmtree(aside)
        check = self._instance(instance, 'checks', point_id + '.json')
        if os.path.exists(check):
            os.unlink(check)

    def point_files(self, instance, point_id):
        """Names of the files in a restore point (the manifest included)."""
        point = self._point(instance, point_id)
        return sorted(os.path.relpath(os.path.join(directory, name), point)
                      for directory, _dirs, names in os.walk(point) for name in names)

    # blobs --------------------------------------------------------------
    def list_blobs(self, instance, encrypted=False):
        """sha256 -> size of every blob stored for the instance (in the plain or the encrypted store)."""
        blobs = self._instance(instance, BLOBS[encrypted])
        found = {}
        if not os.path.isdir(blobs):
            return found
        for prefix in os.listdir(blobs):
            directory = os.path.join(blobs, prefix)
            if len(prefix) != 2 or not os.path.isdir(directory):
                continue
            for name in os.listdir(directory):
                if len(name) == 64 and name.startswith(prefix):
                    found[name] = os.path.getsize(os.path.join(directory, name))
        return found

    def delete_blob(self, instance, sha256, encrypted=False):
        os.unlink(self._blob(instance, sha256, encrypted))
        with self._known_lock:
            self._known_blobs.get((instance, encrypted), set()).discard(sha256)

    def _blob(self, instance, sha256, encrypted=False):
        check_sha256(sha256)
        return self._instance(instance, BLOBS[encrypted], sha256[:2], sha256)

    def has_blob(self, instance, sha256, encrypted=False):
        """From one listing of the blob store per run (the run holds the instance lock, so no other run
        removes blobs meanwhile), kept up to date by ``blob_writer``."""
        check_sha256(sha256)
        return sha256 in self._known(instance, encrypted)

    def _known(self, instance, encrypted):
        key = (instance, encrypted)
        with self._known_lock:
            if key not in self._known_blobs:
                self._known_blobs[key] = set(self._blob_names(instance, encrypted))
            return self._known_blobs[key]

    def _blob_names(self, instance, encrypted):
        blobs = self._instance(instance, BLOBS[encrypted])
        if not os.path.isdir(blobs):
            return
        for prefix in os.listdir(blobs):
            directory = os.path.join(blobs, prefix)
            if len(prefix) == 2 and os.path.isdir(directory):
                for name in os.listdir(directory):
                    if len(name) == 64 and name.startswith(prefix):
                        yield name

    @contextlib.contextmanager
    def blob_writer(self, instance, encrypted=False, sha256=None):
        """A ``BlobWriter``: the blob is named by the sha256 of what is written (plaintext), or, for raw
        ciphertext being copied, by the given ``sha256``."""
        blobs = self._instance(instance, BLOBS[encrypted])
        makedirs(blobs)
        fd, tmp = tempfile.mkstemp(prefix='.incoming-', dir=blobs)
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, 'wb') as handle:
                sink = self.crypto.writer(handle) if encrypted and sha256 is None else handle
                writer = BlobWriter(sink)
                yield writer
                if sink is not handle:
                    sink.close()
                handle.flush()
                os.fsync(handle.fileno())
            writer.sha256 = sha256 or writer._digest.hexdigest()
            final = self._blob(instance, writer.sha256, encrypted)
            writer.existed = os.path.exists(final)
            if writer.existed:
                os.unlink(tmp)
            else:
                makedirs(os.path.dirname(final))
                os.replace(tmp, final)
                fsync_dir(os.path.dirname(final))
            with self._known_lock:
                known = self._known_blobs.get((instance, encrypted))
                if known is not None:
                    known.add(writer.sha256)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
