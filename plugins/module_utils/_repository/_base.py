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
import json
import os
import re
import secrets
import socket
import threading
import time

from ansible_collections.cairncms.ops.plugins.module_utils import _process
from ansible_collections.cairncms.ops.plugins.module_utils._common import CairnError, check_name, iso, utc_now
from ansible_collections.cairncms.ops.plugins.module_utils._manifest import DamagedManifest, validate
from ansible_collections.cairncms.ops.plugins.module_utils._signing import SIGNATURE

MANIFEST = 'manifest.json'
CLAIMS = 'readers'         # <instance>/readers/<claim>.json: a restore, clone, drill or copy reading points
INTENT = 'pruning.json'    # <instance>/pruning.json: the points a prune is about to remove
BEAT = 30                  # seconds between heartbeats of a lock or claim


def new_point_id(started):
    """UTC start time to the millisecond, then a random tag: ids sort by start time."""
    return '%s.%03dZ-%s' % (started.strftime('%Y%m%dT%H%M%S'), started.microsecond // 1000, secrets.token_hex(3))


SHA256 = re.compile(r'^[0-9a-f]{64}$')


def check_sha256(value):
    if not isinstance(value, str) or not SHA256.match(value):
        raise CairnError('%r is not a sha256 hex digest' % (value,))
    return value


class ClaimGone(CairnError):
    """A reader claim is no longer in the repository."""


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


def _json(data):
    """Parsed JSON of ``data``, or None when it is not UTF-8 JSON (a torn write, NUL bytes)."""
    try:
        return json.loads(data.decode('utf-8'))
    except ValueError:  # UnicodeDecodeError is one
        return None


def lock_holder(data):
    """The holder a lock file's bytes name: its record, or, for bytes that are not one (a torn write, NUL bytes),
    a holder marked ``damaged`` whose token is their digest, so that a takeover can tell it is still the same."""
    holder = _json(data)
    if isinstance(holder, dict):
        return holder
    return {'damaged': 'not a JSON record', 'token': 'damaged-%s' % hashlib.sha256(data).hexdigest()[:16]}


def _lock_owner(run):
    """The record a lock holds for ``run``: who, since when, and a token that tells this holder from the next."""
    return {'run': run, 'host': socket.gethostname(), 'pid': os.getpid(), 'since': iso(utc_now()),
            'token': secrets.token_hex(8), 'beat': time.time()}


def holder_text(holder):
    """Who holds a lock or claim, in words."""
    if holder.get('damaged'):
        return 'an unreadable record (%s) last written %ss ago' % (holder['damaged'], int(holder['idle_s']))
    return 'run %s on %s (pid %s) since %s, last active %ss ago' % (
        holder.get('run'), holder.get('host'), holder.get('pid'), holder.get('since'), int(holder['idle_s']))


class Repository:
    """Interface; see ``local.LocalRepository`` for the reference implementation.

    An implementation provides a few primitives over small files named by a path relative to the instance
    (``_get``, ``_put``, ``_drop``, ``_files``, ``_age``, ``where``) and the bulk operations (points, blobs,
    staging); manifests, claims, check and drill records are built here on the primitives, once.
    """

    kind = None
    trust = None  # a ``_signing.Trust``: manifests must carry a signature by one of its keys

    def describe(self):
        raise NotImplementedError

    # primitives: small files below the instance ------------------------------------------------------
    def _get(self, instance, path):
        """The bytes of ``path`` (``/``-separated, relative to the instance), or None when there is none."""
        raise NotImplementedError

    def _put(self, instance, path, data):
        """Write ``path`` whole, atomically (readers see the old bytes or the new ones, never a part)."""
        raise NotImplementedError

    def _drop(self, instance, path):
        """Remove ``path``; no error when it is gone already."""
        raise NotImplementedError

    def _files(self, instance, directory):
        """Names of the files directly in ``directory``, sorted."""
        raise NotImplementedError

    def _age(self, instance, path):
        """Seconds since ``path`` was last written, or None when it is gone."""
        raise NotImplementedError

    def _sweep(self, instance, directory, stale_after):
        """Remove what a killed writer of records left half-written in ``directory`` (its temporary files) once
        nothing touched it for ``stale_after`` s. A store whose writes are whole (an object store) has none."""

    def where(self, instance, path=''):
        """Where ``path`` of ``instance`` is, for messages (a file path or a URL)."""
        raise NotImplementedError

    def _record(self, instance, path, what):
        """A JSON record, None when absent; a damaged one is an error naming it."""
        data = self._get(instance, path)
        if data is None:
            return None
        record = _json(data)
        if not isinstance(record, dict):
            raise CairnError('the %s %s is damaged (not a JSON object); remove it' % (what, self.where(instance, path)))
        return record

    def _write_record(self, instance, path, record):
        self._put(instance, path, json.dumps(record, indent=1, sort_keys=True).encode('utf-8') + b'\n')

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

    def try_lock(self, instance, run, stale_after=3600, owner=None):
        """One attempt to take the lock of ``instance`` for ``run``, taking over a lock left by a run silent for
        ``stale_after`` s: ``(None, holders taken over)`` when ``run`` holds it now, else ``(holder, taken over)``.
        (A dump slot is such a lock too, of a name of its own beside the instances: see ``_backup``.)"""
        owner = owner or _lock_owner(run)
        taken_over = []
        while True:
            if self._create_lock(instance, owner):
                return None, taken_over
            holder = self.read_lock(instance)
            if holder is None:
                continue
            if holder.get('run') == run:
                return None, taken_over
            if holder['idle_s'] > stale_after:
                if self._break_lock(instance, holder):
                    taken_over.append(holder)
                continue
            return holder, taken_over

    def acquire_lock(self, instance, run, stale_after=3600, wait=0):
        """Take the instance for ``run``; wait up to ``wait`` s for another run; take over a lock
        left by a run silent for ``stale_after`` s. Returns the holders taken over."""
        owner = _lock_owner(run)
        deadline = time.monotonic() + max(0, wait)
        taken_over = []
        while True:
            holder, broken = self.try_lock(instance, run, stale_after, owner)
            taken_over += broken
            if holder is None:
                return taken_over
            if time.monotonic() >= deadline:
                raise CairnError(
                    'instance %s is locked in %s by %s; wait for it (cairn_lock_wait), or, if that run is dead, its '
                    'lock is taken over after %ss of silence (cairn_lock_stale_after)' % (
                        instance, self.describe(), holder_text(holder), stale_after),
                    lock=holder)
            time.sleep(min(1.0, max(0.05, deadline - time.monotonic())))

    def touch_lock(self, instance, run):
        raise NotImplementedError

    def release_lock(self, instance, run):
        raise NotImplementedError

    def heartbeat(self, instance, run, every=BEAT):
        """Keep ``run``'s lock fresh while a long step works (see ``_beating``)."""
        return _beating(lambda: self.touch_lock(instance, run), every)

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

    def write_part(self, instance, point_id, part, data):
        raise NotImplementedError

    def read_parts(self, instance, point_id):
        raise NotImplementedError

    def staged_artifact_stat(self, instance, point_id, name):
        raise NotImplementedError

    def finalize(self, instance, point_id, manifest, signature=None):
        """Make the staged point a restore point with ``manifest`` (and ``signature``, the bytes of its
        ``manifest.sig``, written before the manifest), in one step that readers see whole or not at all."""
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

    # records kept beside the restore points ---------------------------------------------------------
    def record_check(self, instance, point_id, record):
        self._write_record(instance, 'checks/%s.json' % check_name('restore point id', point_id), record)

    def last_check(self, instance, point_id):
        return self._record(instance, 'checks/%s.json' % check_name('restore point id', point_id), 'check record')

    def record_drill(self, instance, drill):
        """Keep the record of a restore drill (``drills/<id>.json``); retention never removes it."""
        self._write_record(instance, 'drills/%s.json' % check_name('drill id', drill['id']), drill)

    def last_drill(self, instance):
        """The newest drill record of the instance, or None."""
        names = [name for name in self._files(instance, 'drills') if name.endswith('.json')]
        return self._record(instance, 'drills/' + names[-1], 'drill record') if names else None

    def drills(self, instance, newest, warnings):
        """The newest ``newest`` drill records of the instance, oldest first (drill ids begin with their start
        time, so their names sort in time); a damaged one is left out, with a warning in ``warnings``."""
        names = [name for name in self._files(instance, 'drills') if name.endswith('.json')]
        found = []
        for name in names[-newest:] if newest > 0 else ():
            try:
                record = self._record(instance, 'drills/' + name, 'drill record')
            except CairnError as exc:
                warnings.append('%s; it is left out of the drill history' % exc.message)
                continue
            if record is not None:
                found.append(record)
        return found

    def failed_run(self, instance, run_id):
        """The error log of a failed run: ``{id, failed_at, error: {task, msg}}`` (a damaged log says so)."""
        path = 'failed/%s/error.json' % check_name('run id', run_id)
        record = _json(self._get(instance, path) or b'')
        if not isinstance(record, dict):
            return {'id': run_id, 'failed_at': None,
                    'error': {'msg': 'the error log %s is missing or damaged' % self.where(instance, path)}}
        error = record.get('error') if isinstance(record.get('error'), dict) else {'msg': str(record.get('error'))}
        return {'id': run_id, 'failed_at': record.get('failed_at'),
                'error': {'task': str(error.get('task') or ''), 'msg': str(error.get('msg') or '')}}

    def failed_since(self, instance, point_id):
        """The error logs (``failed_run``) of the runs that failed after restore point ``point_id``, oldest first,
        and the warning a reader of that point shows (none when no later run failed)."""
        failed = [self.failed_run(instance, run_id) for run_id in self.list_failed(instance) if run_id > point_id]
        return failed, ['a later backup of %s than restore point %s failed (run %s%s): %s' % (
            instance, point_id, entry['id'], ", in '%s'" % entry['error']['task'] if entry['error'].get('task') else '',
            entry['error']['msg'] or 'no message') for entry in failed[-1:]]

    # manifests ---------------------------------------------------------------------------------------
    def load_manifest(self, instance, point_id):
        """The manifest of a restore point, checked: valid JSON of the right shape, stored under its own id,
        and (with ``trust``) signed by a trusted key. A damaged one raises ``DamagedManifest``."""
        path = 'points/%s/%s' % (check_name('restore point id', point_id), MANIFEST)
        where = self.where(instance, path)
        data = self._get(instance, path)
        if data is None:
            raise CairnError('restore point %s of %s is not in %s' % (point_id, instance, self.describe()))
        manifest = _json(data)
        if manifest is None:
            raise DamagedManifest('the manifest %s is damaged: it is not UTF-8 JSON (%d bytes)' % (where, len(data)))
        validate(manifest, where, point_id)
        if self.trust:
            try:
                self.trust.check(manifest, self._get(instance, 'points/%s/%s' % (point_id, SIGNATURE)), where)
            except CairnError as exc:
                raise DamagedManifest(exc.message)
        return manifest

    def signature(self, instance, point_id):
        """The bytes of a restore point's ``manifest.sig``, or None."""
        return self._get(instance, 'points/%s/%s' % (check_name('restore point id', point_id), SIGNATURE))

    def scan(self, instance):
        """Every restore point, oldest first: (manifests of the usable ones, ``[{id, problem}]`` of the others)."""
        manifests, damaged = [], []
        for point in self.list_points(instance):
            try:
                manifests.append(self.load_manifest(instance, point))
            except DamagedManifest as exc:
                damaged.append({'id': point, 'problem': exc.message})
        return manifests, damaged

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
            return self.crypto.reader(handle, 'artifact %s of restore point %s (%s)' % (
                name, point_id, self.where(instance, 'points/%s/%s' % (point_id, name))))
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
            return self.crypto.reader(handle, 'blob %s (%s)' % (sha256, self.where(
                instance, '%s/%s/%s' % ('blobs-age', sha256[:2], sha256))))
        return handle

    def resolve(self, instance, wanted, warnings=None):
        """Resolve ``latest`` or a point id to a loaded manifest. ``latest`` is the newest usable restore point:
        damaged newer ones are passed over, each with a line in ``warnings`` (a list) when given."""
        check_name('instance', instance)
        points = self.list_points(instance)
        if not points:
            raise CairnError('the repository %s holds no restore point of instance %r; run the backup '
                             'first or set cairn_restore_from to the instance that has them'
                             % (self.describe(), instance))
        if wanted not in (None, '', 'latest'):
            if wanted not in points:
                raise CairnError('restore point %r of instance %r is not in %s; the newest are: %s'
                                 % (wanted, instance, self.describe(), ', '.join(points[-5:])))
            return self.load_manifest(instance, wanted)
        passed = []
        for point in reversed(points):
            try:
                manifest = self.load_manifest(instance, point)
            except DamagedManifest as exc:
                passed.append(exc.message)
                continue
            if warnings is not None:
                warnings.extend('restore point %s was passed over for latest: %s' % (bad_id, problem)
                                for bad_id, problem in zip(reversed(points), passed))
            return manifest
        raise CairnError('no restore point of %s in %s can be used: %s' % (instance, self.describe(), '; '.join(passed[:3])))

    # reader claims -----------------------------------------------------------------------------------
    # A restore, clone, drill, check or copy claims the points it reads; a prune (which holds the instance
    # lock) first writes its intent (the points it will remove), then reads the claims and leaves every
    # claimed point in place. A reader writes its claim first, then reads the intent, and backs off while a
    # prune names one of its points. Each side writes before it reads what the other wrote, so at least one
    # of them sees the other: a point is never removed under a live reader. Claims and intents are kept
    # fresh by a heartbeat and count as dead after the stale limit, like the lock.

    def _holder(self, instance, path, stale_after):
        """A claim or intent record with ``idle_s``; None when absent or stale (a stale one is removed)."""
        data = self._get(instance, path)
        if data is None:
            return None
        record = _json(data)
        if isinstance(record, dict) and isinstance(record.get('beat'), (int, float)):
            record['idle_s'] = round(max(0.0, time.time() - record['beat']), 1)
        else:
            record = {'damaged': 'not a JSON record', 'idle_s': round(self._age(instance, path) or 0.0, 1)}
        if record['idle_s'] > stale_after:
            self._drop(instance, path)
            return None
        return record

    def claims(self, instance, stale_after=3600):
        """The live reader claims of the instance (stale ones are removed, with the half-written records a killed
        reader left)."""
        self._sweep(instance, CLAIMS, stale_after)
        found = []
        for name in self._files(instance, CLAIMS):
            if name.endswith('.json'):
                record = self._holder(instance, '%s/%s' % (CLAIMS, name), stale_after)
                if record is not None:
                    record['claim'] = name[:-5]
                    found.append(record)
        return found

    def _claim_record(self, claim, points, what):
        return {'claim': claim, 'run': what, 'points': sorted(points), 'host': socket.gethostname(),
                'pid': os.getpid(), 'since': iso(utc_now()), 'beat': time.time()}

    def claim(self, instance, points, what, wait=0, stale_after=3600):
        """Claim ``points`` for reading (see above); returns the claim id. Waits up to ``wait`` s while a prune
        is removing one of them; fails when one is gone."""
        check_name('instance', instance)
        claim = '%s-%s' % (utc_now().strftime('%Y%m%dT%H%M%S'), secrets.token_hex(4))
        path = '%s/%s.json' % (CLAIMS, claim)
        deadline = time.monotonic() + max(0, wait)
        while True:
            self._write_record(instance, path, self._claim_record(claim, points, what))
            intent = self._holder(instance, INTENT, stale_after)
            busy = intent is not None and (intent.get('damaged') or set(intent.get('points') or ()) & set(points))
            if not busy:
                break
            self._drop(instance, path)
            if time.monotonic() >= deadline:
                raise CairnError('restore point(s) %s of %s are being removed by a prune (%s); wait for it '
                                 '(cairn_lock_wait) or read another restore point'
                                 % (', '.join(sorted(set(intent.get('points') or points) & set(points))), instance,
                                    holder_text(intent)))
            time.sleep(min(1.0, max(0.05, deadline - time.monotonic())))
        gone = [point for point in points if self._get(instance, 'points/%s/%s' % (point, MANIFEST)) is None]
        if gone:
            self._drop(instance, path)
            raise CairnError('restore point(s) %s of %s are no longer in %s (removed by a prune?); choose another'
                             % (', '.join(gone), instance, self.describe()))
        return claim

    def touch_claim(self, instance, claim):
        """Refresh a claim; an error when it is gone (a prune judged it stale)."""
        path = '%s/%s.json' % (CLAIMS, check_name('claim', claim))
        record = self._record(instance, path, 'reader claim')
        if record is None:
            raise ClaimGone('the claim %s on restore points of %s is gone from %s: it went stale (no heartbeat for '
                            'longer than the prune\'s cairn_lock_stale_after) and a prune may have removed what it '
                            'held; start the restore again' % (claim, instance, self.describe()))
        record['beat'] = time.time()
        self._write_record(instance, path, record)
        return record

    def keep_claim(self, instance, claim, every=BEAT):
        """Check that ``claim`` is held and keep it fresh while this process works (a daemon thread). When it is
        found gone (a prune judged it stale and may remove what it held), the module's work is stopped
        (``_process.stop``: its processes killed, its clean-ups run, the task failed saying so) rather than left to
        read what may be removed under it. A failed refresh (the store did not answer) is tried again. Returns a
        function that stops the heartbeat (before a release of the claim, which the heartbeat would take for a
        prune's)."""
        self.touch_claim(instance, claim)
        stop = threading.Event()

        def beat():
            while not stop.wait(every):
                try:
                    self.touch_claim(instance, claim)
                except ClaimGone as exc:
                    _process.stop(exc.message)
                    return
                except (CairnError, OSError):
                    continue
        threading.Thread(target=beat, daemon=True).start()
        return stop.set

    def release_claim(self, instance, claim):
        self._drop(instance, '%s/%s.json' % (CLAIMS, check_name('claim', claim)))

    @contextlib.contextmanager
    def claiming(self, instance, points, what, wait=0, stale_after=3600):
        """Hold a claim on ``points`` for the block (kept fresh)."""
        claim = self.claim(instance, points, what, wait=wait, stale_after=stale_after)
        try:
            with _beating(lambda: self.touch_claim(instance, claim), BEAT):
                yield claim
        finally:
            self.release_claim(instance, claim)

    @contextlib.contextmanager
    def removal(self, instance, points, run, stale_after=3600, wait=0):
        """For a prune holding the lock as ``run``, around its removals: publish the intent to remove ``points``,
        then yield ``{point: [claims]}`` of those a live reader holds (after waiting up to ``wait`` s for them to
        go); the block removes only the others. The intent, kept fresh, goes when the block ends."""
        record = {'run': run, 'points': sorted(points), 'host': socket.gethostname(), 'pid': os.getpid(),
                  'since': iso(utc_now()), 'beat': time.time()}

        def publish():
            record['beat'] = time.time()
            self._write_record(instance, INTENT, record)
        publish()
        try:
            deadline = time.monotonic() + max(0, wait)
            while True:
                held = {}
                for claim in self.claims(instance, stale_after):
                    for point in (points if claim.get('damaged') else claim.get('points') or ()):
                        if point in points:
                            held.setdefault(point, []).append(claim)
                if not held or time.monotonic() >= deadline:
                    break
                time.sleep(min(1.0, max(0.05, deadline - time.monotonic())))
                publish()
            record['points'] = sorted(set(points) - set(held))
            with _beating(publish, BEAT):
                yield held
        finally:
            self._drop(instance, INTENT)


@contextlib.contextmanager
def _beating(touch, every):
    """Call ``touch`` now, every ``every`` s while the block runs, and at its end. When the block fails, its
    error is the one raised, not a failure to refresh afterwards (the repository may be what failed)."""
    stop = threading.Event()

    def beat():
        while not stop.wait(every):
            try:
                touch()
            except (CairnError, OSError):
                return
    thread = threading.Thread(target=beat, daemon=True)
    touch()
    thread.start()
    failed = True
    try:
        yield
        failed = False
    finally:
        stop.set()
        thread.join()
        try:
            touch()
        except (CairnError, OSError):
            if not failed:
                raise
