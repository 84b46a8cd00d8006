# -*- coding: utf-8 -*-
# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One restore of an instance (private): plan, checksums, database and files side by side, verification.

The order keeps the promise of the separate steps it replaces: everything that can refuse (the database plan, the
file plan, every checksum of the restore point) runs before anything is written. Then the database is loaded in a
thread while the files are staged beside their places; the staged files are put in place only once the database
is in, and removed if it fails; a file restore that fails stops the database load (its loader then rolls back or
puts back its safety copy). Then the instance is verified against the restore point.
"""

from __future__ import annotations

import contextlib
import threading
import time

from ansible_collections.cairncms.ops.plugins.module_utils import _db, _parts, _process, _sync
from ansible_collections.cairncms.ops.plugins.module_utils._common import CairnError
from ansible_collections.cairncms.ops.plugins.module_utils._verify import (
    Report, check_database, check_repository, verify)

PHASES = ('all', 'check', 'apply')
NICENESS = 10  # the file staging's nice level while the database loads beside it (the longer step goes first)
# What each step is called in an error and in the role's failed_step.
STEPS = {'plan': 'planning the restore', 'repository': 'checking the restore point\'s checksums',
         'database': 'restoring the database', 'files': 'restoring the file bytes',
         'verify': 'verifying the restored instance against the restore point'}


LIMIT = ('cairn_restore stopped %s: it ran longer than its time limit of %d s (%s); the processes it started were '
         'killed and what it had staged was removed. Raise the limit if the step needs longer')


class StepFailed(CairnError):
    """An error of one step, with what the run did so far."""


class _Threaded(threading.Thread):
    """A call in a thread (the database restore, its checks); ``result()`` joins and returns or raises."""

    def __init__(self, call):
        super().__init__(daemon=True)
        self._call = call
        self.value = self.error = None
        self.ended = None
        self.done = threading.Event()
        self.start()

    def run(self):
        try:
            self.value = self._call()
        except BaseException as exc:  # pylint: disable=broad-except
            # handed to the main thread by result(), which raises it there
            self.error = exc
        self.ended = time.monotonic()
        self.done.set()

    def result(self):
        self.join()
        if self.error is not None:
            raise self.error
        return self.value


class Run:
    """One run: ``options`` are the module's (replace, location_map, ...); ``result`` grows as the steps pass."""

    def __init__(self, config, repository, instance, manifest, options, limits=None):
        self.config = config
        self.limits = limits or {}  # seconds per step (repository, database, files, verify); 0 or none for no limit
        self.repository = repository
        self.instance = instance
        self.manifest = manifest
        self.options = options
        self.started = time.monotonic()
        self.steps = {}
        self.result = {'changed': False, 'restore_point': manifest['id'], 'steps': self.steps}
        self._file_plans = None
        self.witness = {}  # (location, filename_disk): fingerprint of each file this run wrote (see _sync.restore)
        self._database_checks = None  # apply(verify_after=True): the database's checks, run once it is in

    def _db(self, check_mode, abort=None, gate=None):
        opts = self.options
        return _parts.kind('database').restore(
            self.config, self.repository, self.instance, self.manifest, replace=opts['replace'],
            keep_safety_copy=opts['keep_safety_copy'], check_mode=check_mode, options={'jobs': opts['jobs']},
            scratch_dir=opts['work_dir'], on_version_mismatch=opts['on_version_mismatch'],
            on_migration_mismatch=opts['on_migration_mismatch'], location_map=opts['location_map'],
            quiesce=opts['quiesce'], abort=abort, gate=gate)

    def _files(self, check_mode, before_commit=None):
        """The file restore, on the plan made once per run (listing the target and hashing what may be equal)."""
        opts = self.options
        if self._file_plans is None:
            inventory = _sync.read_inventory(self.repository, self.instance, self.manifest)
            self._file_plans = _sync.plan_restore(self.config, inventory, opts['replace'],
                                                  location_map=opts['location_map'], parallel=opts['parallel'])
        return _parts.kind('files').restore(
            self.config, self.repository, self.instance, self.manifest, replace=opts['replace'], check_mode=check_mode,
            location_map=opts['location_map'], parallel=opts['parallel'], before_commit=before_commit,
            plans=self._file_plans, witness=self.witness, niceness=NICENESS if before_commit else 0)

    def _fail(self, step, exc, note=''):
        """The error of ``step``: what failed, then (first, since a tool's error may run over several lines) what
        state the instance is in, then the error itself."""
        details = dict(getattr(exc, 'details', None) or {})
        details.update(self.result, step=step)
        message = getattr(exc, 'message', None) or str(exc)
        if isinstance(exc, _process.DeadlineExpired):  # it names the step already
            return StepFailed(message, **details)
        put_back = 'put back from its safety copy'
        if put_back in message and put_back not in message.splitlines()[0]:
            note = 'the database was put back from its safety copy' + ('; ' + note if note else '')
        return StepFailed('%s failed%s: %s' % (STEPS[step], ' (%s)' % note if note else '', message), **details)

    def _limit_message(self, step):
        return LIMIT % (STEPS[step], self.limits.get(step) or 0, 'cairn_restore_timeouts.%s' % step)

    @contextlib.contextmanager
    def _step(self, step):
        """Run a step of the main thread under its time limit; its errors name it."""
        started = time.monotonic()
        try:
            with _process.deadline(self.limits.get(step) or 0, self._limit_message(step)):
                yield
        except StepFailed:
            raise
        except CairnError as exc:
            raise self._fail(step, exc) from None
        self.steps['%s_s' % step] = round(time.monotonic() - started, 3)

    def plan(self):
        """The database and file plans: refuse, changing nothing, what a restore would refuse."""
        with self._step('plan'):
            self.result['database'] = self._db(check_mode=True)
            self.result['files'] = self._files(check_mode=True)
        self.result['changed'] = bool(self.result['database']['changed'] or self.result['files']['changed'])

    def check_checksums(self, blobs=True):
        """Every artifact and (with ``blobs``) every file blob of the restore point against its sha256, before
        anything is written. Without ``blobs``, each blob is checked as its file is staged, before any file is put
        in place and before the database counts (``apply``)."""
        report = Report()
        with self._step('repository'):
            check_repository(report, self.repository, self.instance, self.manifest, blobs=blobs)
        self.result['repository_checks'] = report.checks
        failed = [entry['name'] for entry in report.failed]
        if failed:
            raise StepFailed('%s failed: %d of %d check(s) failed (%s); the restore point is damaged or incomplete, '
                             'nothing was changed' % (STEPS['repository'], len(failed), len(report.checks),
                                                      ', '.join(failed)), step='repository', **self.result)

    def apply(self, verify_after=False):
        """The database in a thread, the files staged beside it and put in place once the database is in. The
        plans move to ``plan``; ``database`` and ``files`` then hold what was done, and only that. With
        ``verify_after`` (``verify()`` follows), the database's own checks start once it is in, beside the files
        being put in place (it does not change after that)."""
        self.result['plan'] = {'database': self.result.pop('database'), 'files': self.result.pop('files')}
        if not self.result['changed']:
            return
        started = time.monotonic()
        stop = threading.Event()  # the file restore failed: the database load stops, or does not count
        staged = threading.Event()  # the files are staged (or failed): the loaded database may count

        def gate():
            staged.wait()
            if stop.is_set():
                raise CairnError(_db.ABORTED)

        def before_commit():
            staged.set()
            loaded = database.result()
            if verify_after:
                checks = Report()
                self._database_checks = _Threaded(lambda: (checks, check_database(checks, self.config,
                                                                                  self.manifest)))
            return loaded
        with _process.deadline(0, '') as scope:
            database = _Threaded(lambda: self._db(check_mode=False, abort=stop, gate=gate))
            expired = []
            for step, done in (('database', database.done), ('files', staged)):
                if self.limits.get(step):
                    threading.Thread(target=self._watch, args=(scope, step, done, expired), daemon=True).start()
            try:
                self.result['files'] = self._files(check_mode=False, before_commit=before_commit)
            except BaseException as exc:  # pylint: disable=broad-except
                stop.set()
                staged.set()
                database.join()
                self._apply_failed(exc, database, expired, started)
            finally:
                staged.set()
        self.result['database'] = database.result()
        self.steps['database_s'] = round(database.ended - started, 3)
        self.steps['files_s'] = self.result['files'].get('duration_s')

    def _watch(self, scope, step, done, expired):
        if not done.wait(self.limits[step]):
            expired.append(step)
            scope.stop(self._limit_message(step))

    def _apply_failed(self, exc, database, expired, started):
        """Raise what the side-by-side restore of the database and the files ran into, saying what state each is
        in: a database that failed leaves no file changed; files that failed stop the database load, or put the
        loaded database back."""
        failed = database.error
        if isinstance(exc, _process.DeadlineExpired):
            raise self._fail(expired[0] if expired else 'database', exc) from None
        if failed is not None and exc is failed:  # before_commit raised the database's error: no staged file stays
            self.steps['database_s'] = round(database.ended - started, 3)
            raise self._fail('database', failed, 'no file was changed') from None
        if not isinstance(exc, CairnError):
            raise exc
        if failed is None:  # nothing to load, or loaded before the files failed while being put in place
            loaded = database.value or {}
            if loaded.get('changed'):
                self.result['database'] = loaded
            raise self._fail('files', exc, 'the database was restored from %s' % self.manifest['id']
                             if loaded.get('changed') else '') from None
        message = getattr(failed, 'message', str(failed))
        if _db.ABORTED not in message:
            raise self._fail('files', exc, 'the database restore failed too: %s' % message) from None
        plan = self.result['plan']['database']
        if 'safety copy' in message:
            state = 'the database was put back from its safety copy'
        elif plan['vendor'] == 'sqlite':
            state = 'the database file was not touched'
        else:
            state = ('the database, which held no tables before, may hold part of restore point %s now; the next '
                     'restore needs cairn_restore_replace' % self.manifest['id'])
        raise self._fail('files', exc, 'the database restore was stopped: %s' % state) from None

    def verify(self, http=None):
        with self._step('verify'):
            early = self._database_checks.result() if self._database_checks is not None else None
            report = verify(self.config, self.repository, self.instance, self.manifest, ['database', 'files'],
                            http, location_map=self.options['location_map'], witness=self.witness, database=early)
        self.result['checks'] = report.checks
        if report.unreferenced is not None:
            self.result['unreferenced'] = report.unreferenced
        failed = [entry['name'] for entry in report.failed]
        if failed:
            raise StepFailed('%s failed: %d of %d check(s) failed: %s' % (
                STEPS['verify'], len(failed), len(report.checks), ', '.join(failed)), step='verify', **self.result)

    def finish(self):
        """The result, with the warnings of the database and file restores (and of their plans, which say the
        same things first) lifted to the top, once each, for Ansible to show."""
        warnings = []
        parts = [self.result.get('database'), self.result.get('files')]
        parts += list((self.result.get('plan') or {}).values())
        for part in parts:
            for warning in (part or {}).pop('warnings', None) or ():
                if warning not in warnings:
                    warnings.append(warning)
        if warnings:
            self.result['warnings'] = warnings
        self.result['duration_s'] = round(time.monotonic() - self.started, 3)
        return self.result
