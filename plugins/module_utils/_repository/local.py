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
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile

from ansible_collections.cairncms.ops.plugins.module_utils._common import (
    AtomicFile, CairnError, check_name, fsync_dir, iso, makedirs, read_json, utc_now, write_json)
from ansible_collections.cairncms.ops.plugins.module_utils._repository._base import (
    Repository, check_sha256, new_point_id, safe_join)

MANIFEST = 'manifest.json'
PARTS = '.parts'


class BlobWriter:
    def __init__(self, handle):
        self._handle = handle
        self._digest = hashlib.sha256()
        self.size = 0
        self.sha256 = None
        self.existed = False

    def write(self, data):
        self._digest.update(data)
        self.size += len(data)
        return self._handle.write(data)


class LocalRepository(Repository):
    kind = 'local'

    def __init__(self, path):
        if not path or not os.path.isabs(path):
            raise CairnError('cairn_repository.path must be an absolute directory path, got %r' % (path,))
        self.path = os.path.normpath(path)

    @classmethod
    def from_spec(cls, spec):
        unknown = set(spec) - {'type', 'path'}
        if unknown:
            raise CairnError('cairn_repository of type local takes only path; unknown: %s'
                             % ', '.join(sorted(unknown)))
        return cls(spec.get('path'))

    def describe(self):
        return 'local:%s' % self.path

    def _instance(self, instance, *parts):
        check_name('instance', instance)
        return safe_join(self.path, instance, *parts)

    def _staging(self, instance, point_id):
        return self._instance(instance, 'staging', check_name('restore point id', point_id))

    def _point(self, instance, point_id):
        return self._instance(instance, 'points', check_name('restore point id', point_id))

    # runs ---------------------------------------------------------------
    def begin(self, instance, started, point_id=None):
        point_id = point_id or new_point_id(started)
        staging = self._staging(instance, point_id)
        if os.path.exists(staging) or os.path.exists(self._point(instance, point_id)):
            raise CairnError('restore point %s of %s already exists in %s' % (point_id, instance, self.describe()))
        for sub in ('points', 'staging', 'blobs', 'failed'):
            makedirs(self._instance(instance, sub))
        os.mkdir(staging, 0o700)
        makedirs(os.path.join(staging, PARTS))
        write_json(os.path.join(staging, PARTS, 'run.json'),
                   {'id': point_id, 'instance': instance, 'started_at': iso(started)})
        return point_id

    def _require_staging(self, instance, point_id):
        staging = self._staging(instance, point_id)
        if not os.path.isdir(staging):
            raise CairnError('restore point %s of %s is not being staged in %s (was it finalized, failed, '
                             'or never begun?)' % (point_id, instance, self.describe()))
        return staging

    def artifact_writer(self, instance, point_id, name):
        staging = self._require_staging(instance, point_id)
        return AtomicFile(safe_join(staging, name))

    def scratch_dir(self, instance, point_id):
        return self._require_staging(instance, point_id)

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

    def finalize(self, instance, point_id, manifest):
        staging = self._require_staging(instance, point_id)
        write_json(os.path.join(staging, MANIFEST), manifest)
        shutil.rmtree(os.path.join(staging, PARTS))
        fsync_dir(staging)
        os.rename(staging, self._point(instance, point_id))
        fsync_dir(self._instance(instance, 'points'))
        fsync_dir(self._instance(instance, 'staging'))
        return self._point(instance, point_id)

    def fail(self, instance, point_id, error):
        staging = self._staging(instance, point_id)
        failed = self._instance(instance, 'failed', check_name('restore point id', point_id))
        makedirs(failed)
        record = {'id': point_id, 'instance': instance, 'failed_at': iso(utc_now()), 'error': error}
        if os.path.isdir(os.path.join(staging, PARTS)):
            record['parts'] = self.read_parts(instance, point_id)
        write_json(os.path.join(failed, 'error.json'), record)
        if os.path.isdir(staging):
            shutil.rmtree(staging)
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

    def load_manifest(self, instance, point_id):
        return read_json(os.path.join(self._point(instance, point_id), MANIFEST),
                         'manifest of restore point %s of %s' % (point_id, instance))

    def open_artifact(self, instance, point_id, name):
        path = safe_join(self._point(instance, point_id), name)
        try:
            return open(path, 'rb')
        except FileNotFoundError:
            raise CairnError('artifact %s of restore point %s of %s is missing from %s'
                             % (name, point_id, instance, self.describe()))

    # blobs --------------------------------------------------------------
    def _blob(self, instance, sha256):
        check_sha256(sha256)
        return self._instance(instance, 'blobs', sha256[:2], sha256)

    def has_blob(self, instance, sha256):
        return os.path.isfile(self._blob(instance, sha256))

    @contextlib.contextmanager
    def blob_writer(self, instance):
        blobs = self._instance(instance, 'blobs')
        makedirs(blobs)
        fd, tmp = tempfile.mkstemp(prefix='.incoming-', dir=blobs)
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, 'wb') as handle:
                writer = BlobWriter(handle)
                yield writer
                handle.flush()
                os.fsync(handle.fileno())
            writer.sha256 = writer._digest.hexdigest()
            final = self._blob(instance, writer.sha256)
            writer.existed = os.path.exists(final)
            if writer.existed:
                os.unlink(tmp)
            else:
                makedirs(os.path.dirname(final))
                os.replace(tmp, final)
                fsync_dir(os.path.dirname(final))
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)

    def open_blob(self, instance, sha256):
        try:
            return open(self._blob(instance, sha256), 'rb')
        except FileNotFoundError:
            raise CairnError('blob %s of instance %s is missing from %s; the repository is damaged'
                             % (sha256, instance, self.describe()))
