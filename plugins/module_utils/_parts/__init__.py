# -*- coding: utf-8 -*-
# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The kinds of part a restore point is made of (private): one file per kind, named on the registry's import line.

A restore point (manifest format 2, docs/restore-point-format.md) is a list of typed parts. A part kind's file
holds everything about that kind of part:

``KIND``, ``STAGED``, ``REQUIRED``
    its name in the manifest, the name a run stages its record under (``repository.write_part``), and whether
    every restore point has one;
``describe(staged)``
    the manifest's entry for it from what the run staged: ``kind``, ``producer`` (name and version), ``vendor``
    where it has one, ``artifacts`` (path, size, sha256, encrypted) and the kind's own details;
``legacy(manifest)``
    the same entry read from a format-1 manifest, or None when format 1 had no such part;
``problem(part)``
    what is wrong with an entry's shape (beyond the artifact list, which is checked here for every kind), or None;
``view(part)``
    the entry as readers use it (names its main artifact, as format 1 did);
``summary(part)``
    what a listing shows of it;
``produce(run)``
    the backup step that makes it (``run`` is the backup's ``_backup.Capture``);
``restore(...)``
    how it goes back into an instance (``_restore.Run`` restores the database and files parts through it), or None
    for a kind that a whole restore brings back with another (schema and config are rows of the database);
``check(report, repository, instance, manifest, part)``
    checks of the part's content beyond the artifact checksums (a document that must parse, say).

A new kind is its file and its name on the import line below; readers of this version refuse a manifest with a
kind they do not know (it was made by a newer release), naming the kind.
"""

from __future__ import annotations

import hashlib

from ansible_collections.cairncms.ops.plugins.module_utils._common import CairnError

_REGISTRY = {}


def registry():
    """The module of every part kind, by kind, in the order a backup makes them and a manifest lists them."""
    if not _REGISTRY:
        # The registry: one name per part kind (its file here), in the order of the manifest.
        # pylint: disable-next=import-outside-toplevel,unused-import
        from ansible_collections.cairncms.ops.plugins.module_utils._parts import (
            database, files, secrets, schema, config, rows)
        found = dict(locals())
        for name, module in found.items():
            if module.KIND != name:
                raise CairnError('part kind file %s.py serves kind %r' % (name, module.KIND))
        _REGISTRY.update(found)
    return _REGISTRY


def kinds():
    return tuple(registry())


def kind(name):
    """The module of part kind ``name``; a CairnError naming the kinds this version knows otherwise."""
    module = registry().get(name) if isinstance(name, str) else None
    if module is None:
        raise CairnError('part kind %r is not known to this version of cairncms.ops (it knows %s); the restore '
                         'point was made by a newer release: upgrade the collection to read it'
                         % (name, ', '.join(kinds())))
    return module


def artifact(name, size_bytes, sha256, encrypted):
    """An artifact entry of a part."""
    return {'path': name, 'size_bytes': size_bytes, 'sha256': sha256, 'encrypted': bool(encrypted)}


def not_captured(kind_name, reason):
    """The entry of a part a run could not make (or was not asked to): the point says so, and why."""
    return {'kind': kind_name, 'captured': False, 'reason': reason, 'artifacts': []}


# Parts of one document (secrets, schema, config): captured with their one artifact, or not, with the reason.

def document_entry(kind_name, staged, details, producer, missing='not made in this run'):
    """The manifest entry of a one-document part from what its step staged (``details``: the keys it keeps)."""
    if not staged or not staged.get('captured'):
        return not_captured(kind_name, (staged or {}).get('reason') or missing)
    kept = {key: staged[key] for key in details if key in staged}
    entry = artifact(staged['artifact'], staged['size_bytes'], staged['sha256'], staged.get('encrypted'))
    return dict(kept, kind=kind_name, producer=producer, artifacts=[entry])


def document_problem(part):
    """What is wrong with a one-document part's artifact list, or None."""
    if part.get('captured') and len(part['artifacts']) != 1:
        return 'its %s part does not have exactly one artifact' % part['kind']
    if not part.get('captured') and part['artifacts']:
        return 'its %s part lists artifacts but says it was not captured' % part['kind']
    return None


def document_view(part):
    """A one-document part as readers use it: its artifact named (``artifact``) when captured."""
    return dict(part, artifact=part['artifacts'][0]['path']) if part.get('captured') and part.get('artifacts') \
        else dict(part)


MAX_DOCUMENT_BYTES = 64 * 1024 * 1024


def read_document(repository, instance, manifest, kind_name):
    """The document a ``schema`` or ``config`` part of a restore point holds (the CMS's schema snapshot, the config
    document), decrypted when it is encrypted and checked against the manifest's size and sha256 before it is
    parsed; a CairnError saying why when the point has none."""
    # (imported here: _manifest reads the registry above when it is imported)
    from ansible_collections.cairncms.ops.plugins.module_utils._manifest import part
    module = kind(kind_name)
    entry = part(manifest, kind_name)
    if entry is None:
        raise CairnError('restore point %s has no %s part (made by a release before manifest format 2, or by a '
                         'backup that skipped it)' % (manifest.get('id'), kind_name))
    if not entry.get('captured', True) or not entry['artifacts']:
        raise CairnError('restore point %s holds no %s: %s' % (manifest.get('id'), kind_name,
                                                               entry.get('reason') or 'not captured'))
    expected = entry['artifacts'][0]
    if expected['size_bytes'] > MAX_DOCUMENT_BYTES:
        raise CairnError('the %s of restore point %s is %d bytes, more than this version reads (%d)'
                         % (kind_name, manifest.get('id'), expected['size_bytes'], MAX_DOCUMENT_BYTES))
    with repository.open_artifact(instance, manifest['id'], expected['path'],
                                  encrypted=expected['encrypted']) as handle:
        data = handle.read(MAX_DOCUMENT_BYTES + 1)
    if len(data) != expected['size_bytes'] or hashlib.sha256(data).hexdigest() != expected['sha256']:
        raise CairnError('the %s artifact %s of restore point %s does not match its manifest (size or sha256); the '
                         'repository copy is damaged' % (kind_name, expected['path'], manifest['id']))
    return module.load(data, 'the %s artifact %s of restore point %s' % (kind_name, expected['path'], manifest['id']))


def check_documents(report, repository, instance, manifest):
    """Each part's own checks of its content (beyond the artifact checksums)."""
    from ansible_collections.cairncms.ops.plugins.module_utils._manifest import parts
    for entry in parts(manifest):
        kind(entry['kind']).check(report, repository, instance, manifest, entry)
