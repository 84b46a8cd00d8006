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

import contextlib
import hashlib
import os
import re
import secrets
import socket
import threading
import time

from ansible_collections.cairncms.ops.plugins.module_utils._common import CairnError, check_name, iso, utc_now


def new_point_id(started):
    """UTC start time to the millisecond, then a random tag: ids sort by start time."""
    return '%s.%03dZ-%s' % (started.strftime('%Y%m%dT%H%M%S'), started.microsecond // 1000, secrets.token_hex(3))


SHA256 = re.compile(r'^[0-9a-f]{64}$')


def check_sha256(value):
    if not isinstance(value, str) or not SHA256.match(value):
        raise CairnError('%r is not a sha256 hex digest' % (value,))
    return value


class BlobWriter:
    """What ``blob_writer`` gives: write the bytes; after the block, ``sha256`` names the blob and
    ``existed`` says whether the repository had it already."""

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


class Repository:
    """Interface; see ``local.LocalRepository`` for the reference implementation."""

    kind = None

    def describe(self):
        raise NotImplementedError

    # the instance lock: one run (backup, prune, copy, delete) at a time
    def read_lock(self, instance):
        """The holder of the lock (a dict with ``idle_s``, the seconds since it was last fresh), or None."""
        raise NotImplementedError

    def _create_lock(self, instance, owner):
        """Create the lock for ``owner`` if there is none (atomically); whether it was created."""
        raise NotImplementedError

    def _break_lock(self, instance, holder):
        """Remove the stale lock of ``holder``, unless another run replaced it meanwhile; whether it did."""
        raise NotImplementedError

    def acquire_lock(self, instance, run, stale_after=3600, wait=0):
        """Take the instance for ``run``; wait up to ``wait`` s for another run; take over a lock
        left by a run silent for ``stale_after`` s. Returns the holders taken over."""
        owner = {'run': run, 'host': socket.gethostname(), 'pid': os.getpid(), 'since': iso(utc_now()),
                 'token': secrets.token_hex(8), 'beat': time.time()}
        deadline = time.monotonic() + max(0, wait)
        taken_over = []
        while True:
            if self._create_lock(instance, owner):
                return taken_over
            holder = self.read_lock(instance)
            if holder is None:
                continue
            if holder.get('run') == run:
                return taken_over
            if holder['idle_s'] > stale_after:
                if self._break_lock(instance, holder):
                    taken_over.append(holder)
                continue
            if time.monotonic() >= deadline:
                raise CairnError(
                    'instance %s is locked in %s by run %s on %s (pid %s) since %s, last active %ss ago; '
                    'wait for it (cairn_lock_wait), or, if that run is dead, its lock is taken over after '
                    '%ss of silence (cairn_lock_stale_after)' % (
                        instance, self.describe(), holder.get('run'), holder.get('host'), holder.get('pid'),
                        holder.get('since'), int(holder['idle_s']), stale_after),
                    lock=holder)
            time.sleep(min(1.0, max(0.05, deadline - time.monotonic())))

    def touch_lock(self, instance, run):
        raise NotImplementedError

    def release_lock(self, instance, run):
        raise NotImplementedError

    @contextlib.contextmanager
    def heartbeat(self, instance, run, every=30):
        """Keep ``run``'s lock fresh while a long step works. When the step fails, its error is the one
        raised, not a failure to refresh the lock afterwards (the repository may be what failed)."""
        stop = threading.Event()

        def beat():
            while not stop.wait(every):
                try:
                    self.touch_lock(instance, run)
                except (CairnError, OSError):
                    return
        thread = threading.Thread(target=beat, daemon=True)
        self.touch_lock(instance, run)
        thread.start()
        failed = True
        try:
            yield
            failed = False
        finally:
            stop.set()
            thread.join()
            try:
                self.touch_lock(instance, run)
            except (CairnError, OSError):
                if not failed:
                    raise

    # runs
    def begin(self, instance, started, point_id=None, stale_after=3600, wait=0):
        """Take the lock, clean staging areas of dead runs, stage a new point: (id, cleaned ids)."""
        point_id = check_name('restore point id', point_id or new_point_id(started))
        self.acquire_lock(instance, point_id, stale_after=stale_after, wait=wait)
        try:
            if self._run_exists(instance, point_id):
                raise CairnError('restore point %s of %s already exists in %s' % (point_id, instance, self.describe()))
            cleaned = []
            for name in self._staged_runs(instance):
                if name != point_id:  # only the lock holder runs: any other staged run is dead
                    self.fail(instance, name, {'msg': 'interrupted: the run never finished; its staged data was '
                                                      'removed by run %s' % point_id})
                    cleaned.append(name)
            self._stage_run(instance, point_id, {'id': point_id, 'instance': instance, 'started_at': iso(started)})
        except BaseException:
            self.release_lock(instance, point_id)
            raise
        return point_id, cleaned

    def _run_exists(self, instance, point_id):
        """Whether ``point_id`` is staged, complete or has data already."""
        raise NotImplementedError

    def _staged_runs(self, instance):
        """Ids of the runs being staged."""
        raise NotImplementedError

    def _stage_run(self, instance, point_id, run):
        """Make the staging area of a new run, recording ``run`` (its part ``run``)."""
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

    def record_drill(self, instance, drill):
        """Keep the record of a restore drill (``drills/<id>.json``); retention never removes it."""
        raise NotImplementedError

    def last_drill(self, instance):
        """The newest drill record of the instance, or None."""
        raise NotImplementedError

    def load_manifest(self, instance, point_id):
        raise NotImplementedError

    def _read(self, instance, kind, where):
        """A binary reader of an artifact (``kind`` 'artifact', ``where`` (point id, name)) or a blob
        (``kind`` 'blob', ``where`` (sha256, encrypted)), or None when there is none."""
        raise NotImplementedError

    def open_artifact(self, instance, point_id, name, encrypted=False, raw=False):
        """The artifact's content (decrypted when ``encrypted``, unless ``raw``)."""
        handle = self._read(instance, 'artifact', (point_id, name))
        if handle is None:
            raise CairnError('artifact %s of restore point %s of %s is missing from %s'
                             % (name, point_id, instance, self.describe()))
        if encrypted and not raw:
            return self.crypto.reader(handle, 'artifact %s of restore point %s' % (name, point_id))
        return handle

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
        """The blob's content (decrypted when ``encrypted``, unless ``raw``)."""
        handle = self._read(instance, 'blob', (check_sha256(sha256), encrypted))
        if handle is None:
            raise CairnError('blob %s of instance %s is missing from %s; the repository is damaged'
                             % (sha256, instance, self.describe()))
        if encrypted and not raw:
            return self.crypto.reader(handle, 'blob %s' % sha256)
        return handle

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
