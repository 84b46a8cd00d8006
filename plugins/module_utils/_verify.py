# -*- coding: utf-8 -*-
# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Check a restore point, and an instance against a restore point (private).

Every check appends ``{name, ok, detail}``; the caller fails when any is not ok.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import json

from ansible_collections.cairncms.ops.plugins.module_utils import _http_checks, _parts
from ansible_collections.cairncms.ops.plugins.module_utils._common import CHUNK, CairnError, utc_now
from ansible_collections.cairncms.ops.plugins.module_utils._db import select_backend, verify_artifact
from ansible_collections.cairncms.ops.plugins.module_utils._fs import printable
from ansible_collections.cairncms.ops.plugins.module_utils._manifest import artifacts, part
from ansible_collections.cairncms.ops.plugins.module_utils._http import health as http_health, request as _http
from ansible_collections.cairncms.ops.plugins.module_utils._relocate import target_of
from ansible_collections.cairncms.ops.plugins.module_utils._storage import select_backend as select_storage
from ansible_collections.cairncms.ops.plugins.module_utils._storage._base import regenerable
from ansible_collections.cairncms.ops.plugins.module_utils._sync import blobs_encrypted, read_inventory

EXAMPLES = 5
# Files hashed at a time: hashlib and the reads release the GIL, so a few threads keep the disks and cores busy
# where one leaves them waiting on each small file's open and read.
HASHERS = 4


def _mapped(function, items):
    """``[function(item) for item in items]``, HASHERS at a time, in order."""
    items = list(items)
    if len(items) < 2:
        return [function(item) for item in items]
    with concurrent.futures.ThreadPoolExecutor(max_workers=HASHERS) as pool:
        return list(pool.map(function, items))


class Report:
    def __init__(self):
        self.checks = []
        self.unreferenced = None  # objects no directus_files row references: {count, bytes, examples, locations}

    def add(self, name, ok, detail=''):
        # file names come from the uploads and the repository: odd bytes are shown escaped, never passed on raw
        self.checks.append({'name': name, 'ok': bool(ok), 'detail': printable(detail)})

    def attempt(self, name, action):
        try:
            detail = action()
        except CairnError as exc:
            self.add(name, False, exc.message)
        else:
            self.add(name, True, detail or '')

    @property
    def failed(self):
        return [check for check in self.checks if not check['ok']]


def check_repository(report, repository, instance, manifest, blobs=True):
    """Every artifact and (with ``blobs``) every blob of the restore point is there with its checksum (encrypted
    ones need the identity; without it only their presence is checked)."""
    if manifest.get('encryption') and not repository.crypto.can_decrypt:
        return _check_presence(report, repository, instance, manifest)
    for artifact in artifacts(manifest):
        report.attempt('artifact %s sha256' % artifact['path'],
                       lambda a=artifact: verify_artifact(repository, instance, manifest, a['path']) and
                       '%d bytes' % a['size_bytes'])
    _parts.check_documents(report, repository, instance, manifest)
    if not blobs:
        return
    try:
        rows = read_inventory(repository, instance, manifest)
    except CairnError as exc:
        report.add('file inventory', False, exc.message)
        return
    unique = {}
    for row in rows:
        unique.setdefault(row['sha256'], row)
    encrypted = blobs_encrypted(manifest)

    def problem(row):
        digest = hashlib.sha256()
        try:
            with repository.open_blob(instance, row['sha256'], encrypted) as handle:
                for chunk in iter(lambda: handle.read(CHUNK), b''):
                    digest.update(chunk)
        except CairnError as exc:
            return '%s (%s)' % (row['filename_disk'], 'missing' if 'is missing from' in exc.message else exc.message)
        return None if digest.hexdigest() == row['sha256'] else '%s (corrupt)' % row['filename_disk']
    bad = [entry for entry in _mapped(problem, unique.values()) if entry]
    report.add('file blobs sha256', not bad,
               '%d blob(s) ok' % len(unique) if not bad else '%d bad: %s' % (len(bad), ', '.join(bad[:EXAMPLES])))


def _check_presence(report, repository, instance, manifest):
    names = set(repository.point_files(instance, manifest['id']))
    missing = [a['path'] for a in artifacts(manifest) if a['path'] not in names]
    report.add('artifacts present', not missing, 'encrypted, no identity given: presence only' if not missing
               else 'missing: %s' % ', '.join(missing))
    encrypted = blobs_encrypted(manifest)
    rows = read_inventory(repository, instance, manifest)
    gone = sorted({row['filename_disk'] for row in rows if not repository.has_blob(instance, row['sha256'], encrypted)})
    report.add('file blobs present', not gone, '%d blob(s) present (encrypted, no identity given)' % len(rows)
               if not gone else '%d missing: %s' % (len(gone), ', '.join(gone[:EXAMPLES])))


def check_database(report, config, manifest):
    expected = part(manifest, 'database')
    backend = select_backend(config.database())
    try:
        facts = backend.inspect()
    except CairnError as exc:
        report.add('database opens', False, exc.message)
        return None
    if 'integrity_check' in facts:
        report.add('database opens', facts['integrity_check'] == 'ok', 'integrity_check: %s' % facts['integrity_check'])
    else:
        report.add('database opens', True, 'connected to %s' % backend.probe().get('path'))
    report.add('migration level', facts['migration_level'] == expected['migration_level'],
               'found %s, restore point has %s' % (facts['migration_level'], expected['migration_level']))
    differ = ['%s: %s != %s' % (table, facts['row_counts'].get(table), count)
              for table, count in sorted(expected['row_counts'].items())
              if facts['row_counts'].get(table) != count]
    report.add('row counts', not differ,
               '%d table(s) equal' % len(expected['row_counts']) if not differ
               else '%d table(s) differ: %s' % (len(differ), '; '.join(differ[:EXAMPLES])))
    return backend


def _listing(storage):
    """``{address: (filename_disk, size)}`` of a location (see ``StorageBackend.address``), or the CairnError
    message when it cannot be listed."""
    try:
        return {storage.address(entry.name): (entry.name, entry.size) for entry in storage.list()}, None
    except CairnError as exc:
        return None, exc.message


def _examples(kind, items):
    return '%d %s: %s' % (len(items), kind, ', '.join(items[:EXAMPLES]))


def check_cross_store(report, storages, records, inventory_sizes):
    """Every ``directus_files`` row has an object of its recorded size in its location; objects that no row
    references (regenerable ones aside) are reported, never deleted. Lists every location once."""
    listings, unlisted = {}, {}
    for name, storage in storages.items():
        listings[name], error = _listing(storage)
        if error:
            unlisted[name] = error
    missing, mismatched, unconfigured, unreadable = [], [], {}, []
    referenced = {}
    for record in records:
        location, filename = record['storage'], record['filename_disk']
        if location not in storages:
            unconfigured.setdefault(location, []).append(filename or record['id'])
            continue
        if location in unlisted:
            unreadable.append(filename or record['id'])
            continue
        address = storages[location].address(filename) if filename else None
        referenced.setdefault(location, set()).add(address)
        size = listings[location].get(address, (None, None))[1] if filename else None
        expected = record['filesize'] if record['filesize'] is not None else inventory_sizes.get((location, filename))
        if size is None:
            missing.append('%s:%s' % (location, filename) if filename else 'row %s has no filename_disk' % record['id'])
        elif expected is not None and size != expected:
            mismatched.append('%s:%s (%d bytes, expected %d)' % (location, filename, size, expected))
    problems = []
    if unconfigured:
        problems.append('%d row(s) in location(s) %s, which %s not in STORAGE_LOCATIONS (%s): restore with a location '
                        'map (cairn_restore_location_map) or configure the location' % (
                            sum(len(names) for names in unconfigured.values()), ', '.join(sorted(unconfigured)),
                            'is' if len(unconfigured) == 1 else 'are', ','.join(storages) or 'none'))
    for name, error in sorted(unlisted.items()):
        problems.append('location %s cannot be listed: %s' % (name, error))
    if missing:
        problems.append(_examples('missing', missing))
    if mismatched:
        problems.append(_examples('of another size', mismatched))
    report.add('directus_files have their bytes', not problems,
               '%d referenced file(s) present' % len(records) if not problems else '; '.join(problems))
    unreferenced = {'count': 0, 'bytes': 0, 'examples': [], 'locations': {}}
    for name in storages:
        if name in unlisted:
            continue
        listing = listings[name]
        skip = regenerable([filename for filename, _size in listing.values()])
        seen = referenced.get(name, set())
        extra = {filename: size for address, (filename, size) in listing.items()
                 if address not in seen and filename not in skip}
        if extra:
            unreferenced['locations'][name] = len(extra)
            unreferenced['count'] += len(extra)
            unreferenced['bytes'] += sum(extra.values())
            extra = sorted(extra)
            room = EXAMPLES - len(unreferenced['examples'])
            unreferenced['examples'] += [printable('%s:%s' % (name, filename)) for filename in extra[:max(room, 0)]]
    report.unreferenced = unreferenced


def _storages(config):
    return {location.name: select_storage(location) for location in config.locations()}


def check_files(report, config, repository, instance, manifest, backend, location_map=None, witness=None):
    if backend is not None:
        check_file_rows(report, config, repository, instance, manifest, backend, location_map)
    check_file_bytes(report, config, repository, instance, manifest, location_map, witness)


def check_file_rows(report, config, repository, instance, manifest, backend, location_map=None):
    """Every ``directus_files`` row of the database has its bytes (see ``check_cross_store``)."""
    rows = read_inventory(repository, instance, manifest)
    sizes = {(target_of(location_map, row['location']), row['filename_disk']): row['size'] for row in rows}
    try:
        records = backend.files()
    except CairnError as exc:
        report.add('directus_files have their bytes', False, exc.message)
    else:
        check_cross_store(report, _storages(config), records, sizes)


def check_file_bytes(report, config, repository, instance, manifest, location_map=None, witness=None):
    """Every file of the inventory has its sha256 in the instance's storage. ``witness``: the fingerprints of the
    files a restore in this process just wrote (``_sync.restore``), whose bytes it hashed as it wrote them; such
    a file whose fingerprint is unchanged is the file that was hashed and is not read again."""
    rows = read_inventory(repository, instance, manifest)
    storages = _storages(config)
    witness = witness or {}
    # one listing per location the restore wrote to, not one look per file
    written_to = {location for location, _filename in witness}
    now = {name: storage.fingerprints() for name, storage in storages.items() if name in written_to}
    unchanged, unread = 0, []
    for row in rows:  # a file written and unchanged since is taken as it was hashed; the others are read back
        target = target_of(location_map, row['location'])
        written = witness.get((target, row['filename_disk']))
        if written is not None and target in storages and now[target].get(row['filename_disk']) == written:
            unchanged += 1
        else:
            unread.append((target, row))

    def problem(item):
        target, row = item
        storage = storages.get(target)
        if storage is None:
            return '%s (location %s not configured)' % (row['filename_disk'], target)
        try:
            if storage.sha256(row['filename_disk']) != row['sha256']:
                return '%s (sha256 differs)' % row['filename_disk']
        except (CairnError, OSError):
            return '%s (missing)' % row['filename_disk']
        return None
    bad = [entry for entry in _mapped(problem, unread) if entry]
    how = ' (%d hashed as this restore wrote them and unchanged since, %d read back)' % (
        unchanged, len(unread)) if unchanged else ''
    report.add('file bytes sha256', not bad, '%d file(s) equal%s' % (len(rows), how) if not bad else
               '%d differ: %s' % (len(bad), ', '.join(bad[:EXAMPLES])))


def check_http(report, manifest, http, repository, instance, location_map=None):
    """Health; with a login: item counts, asset bytes, and on request the admin app, the login's activity record
    and flows (``_http_checks``; the flow checks write into the instance, for a drill's sandbox)."""
    base = http['url'].rstrip('/')
    certs = http.get('validate_certs', True)
    timeout = http.get('timeout', 30)

    report.attempt('http health', lambda: 'status %s' % http_health(base, timeout=timeout, validate_certs=certs))
    if not http.get('email') or not http.get('password'):
        return
    token = []
    since = utc_now()

    def login():
        body = json.loads(_http('POST', base + '/auth/login', timeout=timeout, validate_certs=certs,
                                body={'email': http['email'], 'password': http['password']}))
        token.append(body['data']['access_token'])
        return 'logged in as %s' % http['email']
    report.attempt('http login', login)
    if not token:
        return
    client = _http_checks.Client(base, token[0], timeout=timeout, validate_certs=certs)
    if http.get('activity'):
        report.attempt('http activity login',
                       _http_checks.guarded(lambda: _http_checks.check_activity(client, http['email'], since)))
    counts = part(manifest, 'database')['row_counts']
    for collection in http.get('collections') or []:
        def items(name=collection):
            body = json.loads(_http('GET', '%s/items/%s?limit=0&meta=total_count' % (base, name), token[0],
                                    timeout=timeout, validate_certs=certs))
            total = body['meta']['total_count']
            if name not in counts:
                raise CairnError('the restore point has no table %s' % name)
            if total != counts[name]:
                raise CairnError('%d item(s) over HTTP, restore point has %d' % (total, counts[name]))
            return '%d item(s)' % total
        report.attempt('http items %s' % collection, items)
    limit = http.get('assets', 10)
    if limit:
        report.attempt('http assets sha256', _http_checks.guarded(
            lambda: _check_assets(client, limit, repository, instance, manifest, location_map)))
    if http.get('app'):
        report.attempt('http admin app', lambda: _http_checks.check_app(client))
    if http.get('flow'):
        report.attempt('http flow', _http_checks.guarded(lambda: _http_checks.check_flow(client)))
    named = http.get('named_flow')
    if named:
        report.attempt('http named flow %s' % named.get('id'),
                       _http_checks.guarded(lambda: _http_checks.check_named_flow(client, named)))


def _check_assets(client, limit, repository, instance, manifest, location_map):
    by_key = {(target_of(location_map, row['location']), row['filename_disk']): row
              for row in read_inventory(repository, instance, manifest)}
    files = client.call('GET', '/files', query={'fields': 'id,storage,filename_disk', 'limit': limit})['data']
    bad = []
    for record in files:
        row = by_key.get((record['storage'], record['filename_disk']))
        if row is None:
            continue
        data = client.fetch('GET', '/assets/%s' % record['id'], accept='*/*')[1]
        if hashlib.sha256(data).hexdigest() != row['sha256']:
            bad.append(record['id'])
    if bad:
        raise CairnError('differ: %s' % ', '.join(bad[:EXAMPLES]))
    return '%d asset(s) equal' % len(files)


def verify(config, repository, instance, manifest, checks, http=None, location_map=None, witness=None,
           database=None):
    """``location_map``: the map the instance was restored with (restore point location to its location);
    ``witness``: see ``check_file_bytes``; ``database``: the ``(report, backend)`` of ``check_database`` run
    already (by a restore, once its database was in), taken instead of running it here."""
    report = Report()
    backend = None
    if 'repository' in checks:
        check_repository(report, repository, instance, manifest)
    if 'database' in checks and 'files' in checks:
        # side by side: the database's counts and the files' bytes are read at the same time
        files_report = Report()
        with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
            hashed = pool.submit(check_file_bytes, files_report, config, repository, instance, manifest, location_map,
                                 witness)
            if database is None:
                backend = check_database(report, config, manifest)
            else:
                report.checks.extend(database[0].checks)
                backend = database[1]
            if backend is not None:
                check_file_rows(report, config, repository, instance, manifest, backend, location_map)
            hashed.result()
        report.checks.extend(files_report.checks)
    elif 'database' in checks:
        backend = check_database(report, config, manifest)
    elif 'files' in checks:
        backend = select_backend(config.database())
        check_files(report, config, repository, instance, manifest, backend, location_map, witness)
    if 'key' in checks:
        expected = (manifest.get('cms') or {}).get('key')
        report.add('CMS key', config.key == expected,
                   'KEY equals the restore point\'s' if config.key == expected else 'KEY differs from the restore point\'s')
    if http and http.get('url'):
        check_http(report, manifest, http, repository, instance, location_map)
    return report
