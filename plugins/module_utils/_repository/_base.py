# -*- coding: utf-8 -*-
# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The repository interface (private).

A repository holds, per instance, restore points (a manifest plus artifacts),
a content-addressed blob store for file bytes (so unchanged bytes are stored
once, yet every restore point restores alone), staging areas for runs in
progress and error logs of failed runs. A restore point becomes visible only
through ``finalize``; what ``list_points`` returns is complete by construction.
"""

from __future__ import annotations

import os
import secrets

from ansible_collections.cairncms.ops.plugins.module_utils._common import CairnError, check_name


def new_point_id(started):
    """UTC start time to the millisecond, then a random tag: ids sort by start time."""
    return '%s.%03dZ-%s' % (started.strftime('%Y%m%dT%H%M%S'), started.microsecond // 1000, secrets.token_hex(3))


def check_sha256(value):
    if not isinstance(value, str) or len(value) != 64 or any(c not in '0123456789abcdef' for c in value):
        raise CairnError('%r is not a sha256 hex digest' % (value,))
    return value


class Repository:
    """Interface; see ``local.LocalRepository`` for the reference implementation."""

    kind = None

    def describe(self):
        raise NotImplementedError

    # the instance lock: one run (backup, prune, copy, delete) at a time
    def read_lock(self, instance):
        raise NotImplementedError

    def acquire_lock(self, instance, run, stale_after=3600, wait=0):
        raise NotImplementedError

    def touch_lock(self, instance, run):
        raise NotImplementedError

    def release_lock(self, instance, run):
        raise NotImplementedError

    def heartbeat(self, instance, run, every=30):
        """Context manager keeping ``run``'s lock fresh while a long step works."""
        raise NotImplementedError

    # runs
    def begin(self, instance, started, point_id=None, stale_after=3600, wait=0):
        """Take the lock, clean staging areas of dead runs, stage a new point: (id, cleaned ids)."""
        raise NotImplementedError

    def artifact_writer(self, instance, point_id, name, encrypted=False):
        """Context manager giving a binary writable for a new artifact of a staged point (encrypting to the
        repository's recipients when ``encrypted``)."""
        raise NotImplementedError

    def scratch_dir(self, instance, point_id):
        """A local directory for temporary files of a run."""
        raise NotImplementedError

    def write_part(self, instance, point_id, part, data):
        raise NotImplementedError

    def read_parts(self, instance, point_id):
        raise NotImplementedError

    def staged_artifact_stat(self, instance, point_id, name):
        raise NotImplementedError

    def finalize(self, instance, point_id, manifest):
        raise NotImplementedError

    def fail(self, instance, point_id, error):
        raise NotImplementedError

    # restore points
    def list_points(self, instance):
        raise NotImplementedError

    def list_failed(self, instance):
        raise NotImplementedError

    def delete_point(self, instance, point_id):
        raise NotImplementedError

    def passphrase_identity(self, instance, create=False):
        raise NotImplementedError

    def key_files(self, instance):
        raise NotImplementedError

    def put_key_file(self, instance, name, data):
        raise NotImplementedError

    def point_files(self, instance, point_id):
        raise NotImplementedError

    def record_check(self, instance, point_id, record):
        raise NotImplementedError

    def last_check(self, instance, point_id):
        raise NotImplementedError

    def load_manifest(self, instance, point_id):
        raise NotImplementedError

    def open_artifact(self, instance, point_id, name, encrypted=False, raw=False):
        raise NotImplementedError

    # blobs
    def has_blob(self, instance, sha256, encrypted=False):
        raise NotImplementedError

    def list_blobs(self, instance, encrypted=False):
        raise NotImplementedError

    def delete_blob(self, instance, sha256, encrypted=False):
        raise NotImplementedError

    def blob_writer(self, instance, encrypted=False, sha256=None):
        """Context manager giving a ``BlobWriter``: write bytes, read ``sha256`` after close."""
        raise NotImplementedError

    def open_blob(self, instance, sha256, encrypted=False, raw=False):
        raise NotImplementedError

    def resolve(self, instance, wanted):
        """Resolve ``latest`` or a point id to a loaded manifest."""
        check_name('instance', instance)
        points = self.list_points(instance)
        if not points:
            raise CairnError('the repository %s holds no restore point of instance %r; run the backup '
                             'first or set cairn_restore_from to the instance that has them'
                             % (self.describe(), instance))
        if wanted in (None, '', 'latest'):
            point_id = points[-1]
        elif wanted in points:
            point_id = wanted
        else:
            raise CairnError('restore point %r of instance %r is not in %s; the newest are: %s'
                             % (wanted, instance, self.describe(), ', '.join(points[-5:])))
        return self.load_manifest(instance, point_id)


def safe_join(root, *parts):
    path = os.path.normpath(os.path.join(root, *parts))
    if path != root and not path.startswith(root.rstrip(os.sep) + os.sep):
        raise CairnError('path %r escapes %s' % (os.path.join(*parts), root))
    return path
