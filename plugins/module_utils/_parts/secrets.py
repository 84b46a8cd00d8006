# -*- coding: utf-8 -*-
# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Part kind ``secrets``: the instance's ``.env`` and secret files, age-encrypted (private).

Its artifact is the encrypted bundle (``secrets.tar``, encryption.md); made by ``_secrets.capture``, restored by
``_secrets.restore``. Never stored in plaintext: without an encryption recipient the part says it was not captured.
"""

from __future__ import annotations

from ansible_collections.cairncms.ops.plugins.module_utils._parts import document_entry, document_problem, document_view

KIND = 'secrets'
STAGED = 'secrets'
REQUIRED = False
DETAILS = ('captured', 'reason', 'variables', 'files', 'fingerprint_key', 'encryption')


def describe(staged):
    if staged and staged.get('captured'):
        staged = dict(staged, encrypted=True)  # a bundle is always age-encrypted (never stored otherwise)
    return document_entry(KIND, staged, DETAILS, {'name': 'age', 'version': None},
                          missing='the secrets were not captured in this run')


def legacy(manifest):
    section = manifest.get('secrets') or {'captured': False, 'reason': 'the secrets were not captured'}
    if not section.get('captured'):
        return {'kind': KIND, 'captured': False, 'reason': section.get('reason'), 'artifacts': []}
    entry = next((dict(a) for a in manifest.get('artifacts') or () if a.get('path') == section.get('artifact')), None)
    details = {key: section[key] for key in DETAILS if key in section}
    return dict(details, kind=KIND, producer={'name': 'age', 'version': None}, artifacts=[entry] if entry else [])


def problem(part):
    if part.get('captured') and part['artifacts'] and not part['artifacts'][0]['encrypted']:
        return 'its secrets bundle is not marked encrypted; secrets are never stored in plaintext'
    if part.get('variables') is not None and not isinstance(part['variables'], dict):
        return 'its secrets variables are not an object'
    return document_problem(part)


def view(part):
    return document_view(part)


def summary(part):
    return {'secrets_captured': bool(part.get('captured'))}


def produce(run):
    return run.secrets()


def restore(repository, instance, manifest, env_file, overrides, **options):
    """Write the captured ``.env`` (with ``overrides``) and secret files (``_secrets.restore``)."""
    from ansible_collections.cairncms.ops.plugins.module_utils import _secrets
    return _secrets.restore(repository, instance, manifest, env_file, overrides, **options)


def check(report, repository, instance, manifest, part):
    return None
