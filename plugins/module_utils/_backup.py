# -*- coding: utf-8 -*-
# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A whole backup in one module run (private).

The steps the single modules take one task each, in order, with the same functions: discover (the
configuration, and whether the newest restore point is still fresh), begin (the instance lock and a staged
restore point), dump, files, secrets, finalize (manifest and signature), verify (every checksum of the new
point), prune (retention) and posture (of the buckets, when there are any). Each step runs under its own
deadline (``timeouts``). A step that fails marks the staged point failed with the step's name and message,
which releases the lock, and the run fails with one line naming the step; after finalize the point stays.

Dump slots: at most ``dump_slots`` dumps at once against one database server (vendor, host and port),
counted by locks in the repository beside the instances (``dump-slot-<server hash>-<n>``, kept fresh while
held and taken over once stale, like the instance lock), so runs on other hosts and in other jobs that back
up into the same repository count too; instances in different repositories are not counted together.
"""

from __future__ import annotations

import contextlib
import hashlib
import secrets
import time
import traceback

from ansible_collections.cairncms.ops.plugins.module_utils import _db, _lifecycle, _parts, _posture, _process, _secrets
from ansible_collections.cairncms.ops.plugins.module_utils import _signing, _sync
from ansible_collections.cairncms.ops.plugins.module_utils._args import load_config, load_repository
from ansible_collections.cairncms.ops.plugins.module_utils._cms import install as _cms_install
from ansible_collections.cairncms.ops.plugins.module_utils._common import (
    CairnError, iso, parse_time, utc_now)
from ansible_collections.cairncms.ops.plugins.module_utils._manifest import build, check
from ansible_collections.cairncms.ops.plugins.module_utils._repository._base import holder_text, new_point_id
from ansible_collections.cairncms.ops.plugins.module_utils._storage import backend_class, select_backend

# step -> what it does (the name its error log and its failure carry: the backup role's task names of old)
STEPS = {
    'discover': 'Discover the instance from its configuration',
    'begin': 'Begin a restore point',
    'dump': 'Dump the database',
    'files': 'Copy the file bytes',
    'secrets': 'Capture the configuration and secrets',
    'schema': 'Take the CMS\'s schema snapshot',
    'config': 'Capture the roles and permissions',
    'rows': 'Stage the typed rows read inside the dump\'s snapshot',
    'finalize': 'Finalize the restore point',
    'verify': 'Check every checksum of the new restore point',
    'prune': 'Apply the retention policy',
    'posture': 'Report the posture of the buckets',
}
TIMEOUTS = 'cairn_backup_timeouts'
DEFAULT_PORTS = {'postgres': 5432, 'mysql': 3306}
SLOT_POLL = {'local': 0.5}  # seconds between looks for a free dump slot; 2 s in a bucket (requests cost)


class StepFailed(CairnError):
    """A step of the run failed: ``step``, and the ``cause`` in one line."""

    def __init__(self, step, cause, timed_out=False):
        super().__init__(cause)
        self.step, self.cause, self.timed_out = step, cause, timed_out


def _cause(exc):
    if isinstance(exc, CairnError):
        return exc.message
    if isinstance(exc, OSError):
        return '%s: %s' % (exc.strerror or exc.__class__.__name__, exc.filename or exc)
    return 'internal error: %s: %s' % (exc.__class__.__name__, exc)


class _Steps:
    """Runs the steps: times each (``durations``, in order), gives each its deadline, gathers warnings and turns
    any error into ``StepFailed``."""

    def __init__(self, timeouts):
        self.timeouts = {step: seconds for step, seconds in (timeouts or {}).items() if seconds}
        for step, seconds in self.timeouts.items():
            if step not in STEPS or seconds < 0:
                raise CairnError('%s: %r: %r is not a step and a number of seconds >= 0; the steps are %s'
                                 % (TIMEOUTS, step, seconds, ', '.join(STEPS)))
        self.durations = {}
        self.windows = {}
        self.warnings = []
        self.trace = None

    @contextlib.contextmanager
    def __call__(self, step):
        limit = self.timeouts.get(step)
        message = ('%s took longer than its limit of %ss (%s.%s); what it ran was stopped. Raise the limit if the '
                   'step needs longer' % (STEPS[step], limit, TIMEOUTS, step))
        started, wall = time.monotonic(), utc_now()
        try:
            with _process.deadline(limit, message):
                yield
        except _process.DeadlineExpired as exc:
            raise StepFailed(step, exc.message, timed_out=True) from None
        except Exception as exc:  # any error of a step fails the run, named by the step
            if not isinstance(exc, (CairnError, OSError)):
                self.trace = traceback.format_exc()
            raise StepFailed(step, _cause(exc)) from None
        finally:
            self.durations[step] = round(time.monotonic() - started, 3)
            self.windows[step] = (iso(wall), iso(utc_now()))

    def keep(self, result):
        """``result`` of a step without what the run reports itself (``changed``, warnings: gathered)."""
        self.warnings.extend(result.pop('warnings', None) or ())
        result.pop('changed', None)
        return result


def server_of(database):
    """``vendor://host:port`` of a server database; None for SQLite (no server)."""
    if database.vendor not in DEFAULT_PORTS:
        return None
    options = database.options
    return '%s://%s:%s' % (database.vendor, str(options.get('host') or '').lower(),
                           options.get('port') or DEFAULT_PORTS[database.vendor])


class DumpSlots:
    """At most ``slots`` dumps at once against the server ``server``: slot ``n`` is the lock of the name
    ``dump-slot-<sha256(server)[:16]>-<n>`` in the repository, taken with the instance lock's mechanics (atomic
    create, heartbeat, take-over once silent for ``stale_after`` s)."""

    def __init__(self, repository, server, slots, wait, stale_after):
        self.repository, self.server, self.slots = repository, server, slots
        self.wait, self.stale_after = wait, stale_after
        digest = hashlib.sha256(server.encode('utf-8')).hexdigest()[:16]
        self.names = ['dump-slot-%s-%d' % (digest, number) for number in range(1, slots + 1)]
        self.run = 'dump-%s' % secrets.token_hex(6)
        self.held = None
        self._beat = contextlib.ExitStack()

    def acquire(self):
        """Take a free slot, waiting up to ``wait`` s; what was taken: ``{server, slot, slots, waited_s,
        taken_over}``."""
        started = time.monotonic()
        poll = SLOT_POLL.get(self.repository.kind, 2.0)
        taken_over = []
        while True:
            busy = []
            for number, name in enumerate(self.names, 1):
                holder, broken = self.repository.try_lock(name, self.run, self.stale_after)
                taken_over += broken
                if holder is None:
                    self.held = name
                    self._beat.enter_context(self.repository.heartbeat(name, self.run))
                    return {'server': self.server, 'slot': number, 'slots': self.slots,
                            'waited_s': round(time.monotonic() - started, 3),
                            'taken_over': [holder_text(item) for item in taken_over]}
                busy.append(holder)
            left = self.wait - (time.monotonic() - started)
            if left <= 0:
                raise CairnError(
                    'all %d dump slot(s) for the database server %s in %s are busy after %ss: %s. Wait longer '
                    '(cairn_backup_dump_slot_wait), allow more dumps at once (cairn_backup_dump_slots), or, if a run '
                    'holding one is dead, its slot is taken over after %ss of silence (cairn_lock_stale_after)'
                    % (self.slots, self.server, self.repository.describe(), self.wait,
                       '; '.join(holder_text(holder) for holder in busy), self.stale_after))
            time.sleep(min(poll, left))

    def release(self):
        if self.held is not None:
            name, self.held = self.held, None
            try:
                self._beat.close()
            finally:
                self.repository.release_lock(name, self.run)


def fresh_point(repository, instance, min_interval):
    """The newest usable restore point when it started less than ``min_interval`` s ago:
    ``{restore_point, started_at, age_s, min_interval}``; else None."""
    if min_interval <= 0 or not repository.list_points(instance):
        return None
    try:
        manifest = repository.resolve(instance, 'latest')
    except CairnError:
        return None  # none usable: a new one is due
    age = (utc_now() - parse_time(manifest['started_at'])).total_seconds()
    if age >= min_interval:
        return None
    return {'restore_point': manifest['id'], 'started_at': manifest['started_at'], 'age_s': round(age, 1),
            'min_interval': min_interval}


def newest_point(repository, instance):
    """``{id, started_at}`` of the newest usable restore point, or None (none, or the repository cannot say)."""
    try:
        manifest = repository.resolve(instance, 'latest')
    except (CairnError, OSError):
        return None
    return {'id': manifest['id'], 'started_at': manifest['started_at']}


def finalize_point(repository, instance, point, config, key=None, cms=None):
    """Make the staged ``point`` a restore point: its manifest from the parts the steps wrote (and ``cms``, what
    ``cms_facts`` found), signed with ``key`` (a loaded ed25519 key) when given. Returns (manifest, signed_by)."""
    parts = repository.read_parts(instance, point)
    manifest = build(parts['run'], parts, {'key': config.key, 'public_url': config.public_url,
                                           'instance_dir': config.base_dir},
                     lambda name: repository.staged_artifact_stat(instance, point, name), cms=cms)
    signature = signed_by = None
    if key is not None:
        record = _signing.sign(manifest, key)
        signature, signed_by = _signing.encode(record), record['public_key']
    repository.finalize(instance, point, manifest, signature)
    return manifest, signed_by


CMS_WINDOWS = ('running', 'stopped')


def cms_facts(spec):
    """What a restore point records of the CMS for the ``cms`` option: ``window`` (whether the CMS ran during the
    capture) and, when the spec says where the CMS is (``install_dir``, ``command``, ``url`` with ``token``), its
    ``name``, ``version`` and ``source``. Returns ``(facts, warning)``: a CMS that cannot be described is a warning,
    never a failed backup. The token stays here."""
    window = spec.get('window') or 'running'
    if window not in CMS_WINDOWS:
        raise CairnError('cms.window must be one of %s, got %r' % (', '.join(CMS_WINDOWS), window))
    facts = {'window': window}
    if not any(spec.get(key) for key in ('install_dir', 'command', 'url')):
        return facts, None
    try:
        described = _cms_install.describe(spec.get('install_dir'), spec.get('command'), spec.get('url'),
                                          spec.get('token'), spec.get('validate_certs', True))
    except (CairnError, OSError) as exc:
        return facts, 'the CMS\'s name and version are not recorded in the restore point: %s' % _cause(exc)
    facts.update((key, described[key]) for key in ('name', 'version', 'source'))
    return facts, None


def verify_point(repository, instance, point):
    """Re-read restore point ``point`` and check every checksum (``repository`` checks); the checks, or an error
    naming those that failed."""
    # imported here: it brings ansible.module_utils.urls (and cryptography), which only the verify step needs
    from ansible_collections.cairncms.ops.plugins.module_utils._verify import verify
    report = verify(None, repository, instance, check(repository.load_manifest(instance, point)), ['repository'])
    failed = [entry['name'] for entry in report.failed]
    if failed:
        raise CairnError('%d of %d check(s) of restore point %s failed: %s' % (
            len(failed), len(report.checks), point, '; '.join('%s: %s' % (entry['name'], entry['detail'])
                                                              for entry in report.failed)))
    return report.checks


def buckets(config, repository):
    """(the object stores of the instance's storage locations, by name; the repository's bucket or None)."""
    stores = {}
    for location in config.locations():
        backend = backend_class(location.driver)
        if backend is not None and backend.read_posture is not None:  # a store with bucket settings
            stores[location.name] = select_backend(location)
    return stores, getattr(repository, 'store', None)


def posture(config, repository, enforce=(), noncurrent_days=30, check_mode=False):
    """The posture of the buckets (``_posture``) of the instance and its repository, with ``findings`` in
    sentences; with ``enforce``, versioning and/or a lifecycle rule on the repository bucket. None when there is
    no bucket at all (and nothing to enforce)."""
    stores, repository_store = buckets(config, repository)
    if enforce and repository_store is None:
        raise CairnError('enforce (cairn_posture_enforce) needs a repository in an object store (s3, gcs, azure); '
                         'a %s repository has no bucket settings' % repository.kind)
    if not stores and repository_store is None:
        return None
    changes = []
    if enforce:
        changes = _posture.enforce(repository_store, versioning='versioning' in enforce,
                                   noncurrent_days=noncurrent_days if 'lifecycle' in enforce else None,
                                   check_mode=check_mode)
    report = {'changes': changes, 'locations': [], 'repository': None, 'findings': []}
    for location in config.locations():
        store = stores.get(location.name)
        entry = {'name': location.name, 'driver': location.driver,
                 'posture': _posture.report(store, 'source') if store else _posture.not_applicable(location.driver)}
        report['locations'].append(entry)
        report['findings'] += ['location %s: %s' % (location.name, text) for text in entry['posture'].get('findings', ())]
    report['repository'] = (_posture.report(repository_store, 'repository') if repository_store is not None
                            else _posture.not_applicable(repository.kind))
    report['findings'] += ['repository: %s' % text for text in report['repository'].get('findings', ())]
    return report


def _repository(params, check_mode):
    """The repository; a check run makes no passphrase key (it says one would be made)."""
    if not check_mode or not params.get('encryption_passphrase'):
        return load_repository(params, writes=not check_mode), None
    repository = load_repository(params, keys=False)
    try:
        repository.crypto.add_identity(repository.passphrase_identity(params['instance'], create=False))
    except CairnError:
        return repository, 'a passphrase key (keys/passphrase.age) would be made for %s' % params['instance']
    return repository, None


def _sentence(result, check_mode):
    """What the run did (in check mode: would do), in one line."""
    database, files, secrets_ = result['database'] or {}, result['files'] or {}, result['secrets'] or {}
    verb = 'Would write' if check_mode else 'Wrote'
    text = '%s restore point %s of %s: %s database' % (
        verb, result['restore_point'], result['instance'], database.get('vendor'))
    if database.get('tables') is not None:
        text += ' (%s tables, migration %s, %s bytes)' % (
            database['tables'], database.get('migration_level'), database.get('size_bytes'))
    text += '; %s files (%s %s, %s unchanged, %s regenerable skipped)' % (
        files.get('files'), files.get('transferred'), 'to copy' if check_mode else 'copied', files.get('reused'),
        files.get('skipped_regenerable'))
    text += '; encrypted: %s; secrets captured: %s' % (result['encrypted'], bool(secrets_.get('captured')))
    text += '; schema captured: %s; config captured: %s' % tuple(
        bool((result[kind] or {}).get('captured')) for kind in ('schema', 'config'))
    if not check_mode:
        text += '; verified: %s' % result['verified']
    pruned = result['pruned']
    if pruned is not None:
        text += '; retention %s %d restore point(s)' % ('would remove' if check_mode else 'removed',
                                                        len(pruned['removed']))
    return text


PART_STEPS = {'database': 'dump', 'files': 'files', 'secrets': 'secrets', 'schema': 'schema', 'config': 'config',
              'rows': 'rows'}
PARTS = tuple(PART_STEPS)
OPTIONAL_PARTS = ('secrets', 'schema', 'config', 'rows')
# What a backup makes unless told otherwise: the rows part (a second read of every table) only on request.
DEFAULT_PARTS = tuple(kind_name for kind_name in PARTS if kind_name != 'rows')


class Capture:
    """One backup's making of the parts of its restore point, as the part kinds' ``produce`` see it (``_parts``): the
    instance's configuration, the run's options, the staged point, and the rows the dump read inside its snapshot
    for the parts made of rows."""

    def __init__(self, params, config, repository, instance, point, steps, check_mode):
        self.params, self.config, self.repository = params, config, repository
        self.instance, self.point, self.steps, self.check_mode = instance, point, steps, check_mode
        self.wanted = set(params.get('parts') or DEFAULT_PARTS)
        self.rows = self.vendor = self.snapshot_at = self.rows_part = None
        self.read = tuple(sorted({table for module in _parts.registry().values()
                                  for table in getattr(module, 'snapshot_tables', lambda run: ())(self)}))

    def wants(self, kind_name):
        return kind_name in self.wanted and (kind_name != 'secrets' or self.params.get('secrets', True))

    @staticmethod
    def cause(exc):
        return _cause(exc)

    def warn(self, text):
        self.steps.warnings.append(text)

    def dump(self):
        params = self.params
        result = self.steps.keep(_db.dump(
            self.config, self.repository, self.instance, self.point, compression=params['compression'],
            level=params['compression_level'], threads=params['compression_threads'], check_mode=self.check_mode,
            options={'format': params['format'], 'jobs': params['jobs'], 'tables': [], 'read': self.read},
            rows=self.wants('rows')))
        self.rows = result.pop('rows', None)
        self.rows_part = result.pop('rows_part', None)
        self.vendor, self.snapshot_at = result['vendor'], result.get('snapshot_at')
        return result

    def files(self):
        params = self.params
        result = self.steps.keep(_sync.backup(
            self.config, self.repository, self.instance, self.point, include_regenerable=params['include_regenerable'],
            checksum=params['checksum'], check_mode=self.check_mode, parallel=params['parallel']))
        result.pop('direction', None)
        return result

    def secrets(self):
        if not self.wants('secrets'):
            return {'captured': False, 'reason': 'not asked (cairn_backup_secrets: false)'}
        params = self.params
        captured = self.steps.keep(_secrets.capture(
            self.config, self.repository, self.instance, self.point, extra_files=params['secret_files'],
            secret_patterns=params['secret_variables'], check_mode=self.check_mode))
        # names of variables and paths of files stay out of the result: counts only
        captured['variables'] = len(captured.get('variables') or ())
        captured['files'] = len(captured.get('files') or ())
        if not captured['captured']:
            captured['reason'] = ('no encryption recipient is configured (cairn_encryption_recipients): '
                                  'secrets are never stored in plaintext')
        return captured

    def live_rows(self, tables):
        """The rows of ``tables`` as they are now."""
        return _db.select_backend(self.config.database()).read_tables(tables)

    def stage_missing(self, kind_name, reason, warn=False):
        """Stage part ``kind_name`` as not captured, and why (a warning with ``warn``)."""
        if warn:
            self.warn('restore point %s has no %s part: %s' % (self.point, kind_name, reason))
        if not self.check_mode:
            self.repository.write_part(self.instance, self.point, _parts.kind(kind_name).STAGED,
                                       {'captured': False, 'reason': reason})
        return {'captured': False, 'reason': reason}

    def stage_document(self, kind_name, name, data, details):
        """Write ``data`` as artifact ``name`` (encrypted when the repository encrypts) and stage part ``kind_name``
        with ``details``; the step's result."""
        result = dict(details, artifact=name, size_bytes=len(data), sha256=hashlib.sha256(data).hexdigest(),
                      encrypted=self.repository.crypto.encrypts)
        if self.check_mode:
            return dict(result, captured=False, reason='check mode: would be captured')
        with self.repository.heartbeat(self.instance, self.point), \
                self.repository.artifact_writer(self.instance, self.point, name, encrypted=result['encrypted']) as out:
            out.write(data)
        self.repository.write_part(self.instance, self.point, _parts.kind(kind_name).STAGED, result)
        return result


def backup(params, check_mode=False):
    """The whole backup of ``params`` (the cairn_backup options); the module result."""
    steps = _Steps(params.get('timeouts'))
    instance = params['instance']
    missing = [kind_name for kind_name in PARTS if kind_name not in OPTIONAL_PARTS
               and kind_name not in (params.get('parts') or DEFAULT_PARTS)]
    if missing:
        raise CairnError('parts (cairn_backup_parts) must include %s: a restore point always holds its database and '
                         'its files; the optional parts are %s' % (' and '.join(missing), ', '.join(OPTIONAL_PARTS)))
    if not 1 <= params['parallel'] <= 64:
        raise CairnError('parallel (cairn_storage_parallel) must be between 1 and 64 (files transferred at a time), '
                         'got %d' % params['parallel'])
    result = {'changed': False, 'instance': instance, 'restore_point': None, 'made': False, 'fresh': None, 'cms': None,
              'check_mode': check_mode, 'database': None, 'files': None, 'secrets': None, 'schema': None,
              'config': None, 'rows': None, 'verified': False,
              'checks': [], 'pruned': None, 'posture': None, 'posture_error': None, 'dump_slot': None,
              'interrupted_runs': [], 'bytes': 0, 'steps': steps.durations, 'newest_point': None, 'rpo_s': None,
              'capture_skew_s': None}
    repository = point = slots = None
    finalized = False
    try:
        with steps('discover'):
            repository, note = _repository(params, check_mode)
            if note:
                steps.warnings.append(note)
            result['encrypted'] = repository.crypto.encrypts
            fresh = fresh_point(repository, instance, params['min_interval'])
            if fresh is None:
                config = load_config(params)
                result['discovered'] = config.describe()
                key = _signing.load_signing_key(params['signing_key']) if params.get('signing_key') else None
                server = server_of(config.database()) if params['dump_slots'] > 0 else None
                if params.get('cms'):
                    result['cms'], warning = cms_facts(params['cms'])
                    if warning:
                        steps.warnings.append(warning)
        if fresh is not None:
            result.update({'fresh': fresh, 'restore_point': fresh['restore_point'],
                           'newest_point': {'id': fresh['restore_point'], 'started_at': fresh['started_at']},
                           'msg': 'No new restore point of %s: %s is %ss old, younger than min_interval (%ss, '
                                  'cairn_backup_min_interval)' % (instance, fresh['restore_point'], fresh['age_s'],
                                                                  fresh['min_interval'])})
            return _end(result, steps)
        if server is not None and not check_mode:
            slots = DumpSlots(repository, server, params['dump_slots'], params['dump_slot_wait'],
                              params['lock_stale_after'])
            started = time.monotonic()
            try:
                result['dump_slot'] = slots.acquire()
            except (CairnError, OSError) as exc:
                raise StepFailed('dump', _cause(exc)) from None
            finally:
                steps.durations['dump_slot'] = round(time.monotonic() - started, 3)
        with steps('begin'):
            if check_mode:
                point = new_point_id(utc_now())
            else:
                point, result['interrupted_runs'] = repository.begin(
                    instance, utc_now(), stale_after=params['lock_stale_after'], wait=params['lock_wait'])
            result['restore_point'] = point
        capture = Capture(params, config, repository, instance, point, steps, check_mode)
        for kind_name, module in _parts.registry().items():
            with steps(PART_STEPS[kind_name]):
                result[kind_name] = module.produce(capture)
            if kind_name == 'database':
                result['database']['started_at'], result['database']['finished_at'] = steps.windows['dump']
                if slots is not None:
                    slots.release()
        if not check_mode:
            with steps('finalize'):
                manifest, signed_by = finalize_point(repository, instance, point, config, key, cms=result['cms'])
            finalized = True
            result.update({'changed': True, 'made': True, 'signed_by': signed_by,
                           'newest_point': {'id': point, 'started_at': manifest['started_at']},
                           'capture_skew_s': manifest.get('capture_skew_s')})
            if params['verify']:
                with steps('verify'):
                    result['checks'] = verify_point(repository, instance, point)
                result['verified'] = True
        else:
            result['changed'] = True
        if params['retention']:
            with steps('prune'):
                # (a check run plans the prune as after this backup, which would have succeeded: past failed runs
                # do not hold it back, as they do not after a real backup)
                pruned = steps.keep(_lifecycle.prune(
                    repository, instance, params['retention'], tz=params['timezone'], check_mode=check_mode,
                    force=check_mode, stale_after=params['lock_stale_after'], wait=params['lock_wait']))
                result['pruned'] = {key: pruned.get(key) for key in (
                    'removed', 'kept', 'held', 'unreadable', 'blobs_removed', 'bytes_freed', 'garbage_collection')}
        if params['posture']:
            _posture_step(steps, result, config, repository, params, check_mode)
    except StepFailed as exc:
        raise _failed(exc, steps, result, repository, point, finalized, check_mode) from None
    finally:
        if slots is not None:
            slots.release()
    result['bytes'] = ((result['database'] or {}).get('size_bytes') or 0) + \
        ((result['files'] or {}).get('transferred_bytes') or 0) + ((result['secrets'] or {}).get('size_bytes') or 0)
    result['msg'] = _sentence(result, check_mode)
    if check_mode and result['newest_point'] is None:
        result['newest_point'] = newest_point(repository, instance)
    return _end(result, steps)


def _posture_step(steps, result, config, repository, params, check_mode):
    """The posture report; a report that cannot be made is recorded (``posture_error``), and fails the run only
    when enforcement was asked for."""
    enforce = params['posture_enforce']
    try:
        with steps('posture'):
            result['posture'] = posture(config, repository, enforce, params['posture_noncurrent_days'], check_mode)
    except StepFailed as exc:
        if enforce or exc.timed_out:
            raise
        result['posture_error'] = exc.cause
    if result['posture'] and result['posture']['changes']:
        result['changed'] = True


def _end(result, steps):
    newest = result['newest_point']
    if newest:
        result['rpo_s'] = round((utc_now() - parse_time(newest['started_at'])).total_seconds(), 3)
    if steps.warnings:
        result['warnings'] = steps.warnings
    return result


def _failed(exc, steps, result, repository, point, finalized, check_mode):
    """The error of a failed run (after marking its staged point failed, which releases the lock): one line
    naming the step, with what the run did so far."""
    title = STEPS[exc.step]
    message = "Backup of %s failed in '%s' (step %s): %s" % (result['instance'], title, exc.step, exc.cause)
    marked = point is not None and not finalized and not check_mode
    if marked:
        try:
            repository.fail(result['instance'], point, {'task': title, 'step': exc.step, 'msg': exc.cause})
        except (CairnError, OSError) as error:
            marked = False
            message += ('; the staged restore point %s could not be marked failed (%s): the next backup removes it '
                        'once its lock is stale' % (point, _cause(error)))
    details = {key: value for key, value in result.items() if key in (
        'instance', 'restore_point', 'made', 'encrypted', 'database', 'files', 'secrets', 'schema', 'config', 'dump_slot',
        'interrupted_runs',
        'bytes', 'steps')}
    details.update({'failed_step': title, 'step': exc.step, 'cause': exc.cause, 'timed_out': exc.timed_out,
                    'point_failed': marked})
    if repository is not None:
        details['newest_point'] = newest_point(repository, result['instance'])
        _end(details, steps)
        details.pop('warnings', None)
    if steps.trace:
        details['exception'] = steps.trace
    return CairnError(message, **details)
