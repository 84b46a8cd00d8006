# -*- coding: utf-8 -*-
# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Bucket posture (private): how well a bucket or container protects what is in it.

``report(store, role)`` reads, for an object-store backend of ``_storage`` (S3, GCS, Azure), the
settings that decide whether a deleted or overwritten object can come back: versioning, expiry of
noncurrent versions, replication, object lock / immutability, MFA delete, soft delete, default
encryption. The answer has one shape for every driver (see ``blank``); a fact that cannot be read
(access denied, a call an emulator or an S3-compatible service does not implement, a setting only
the account's management plane shows) is ``'unknown'`` or None, named in ``unknown`` and explained
in ``findings``, never an error. ``findings`` are sentences: what is weak, and how to fix it.

``enforce(store, versioning, noncurrent_days, check_mode)`` makes a repository bucket versioned and
its noncurrent versions expire after ``noncurrent_days``, merging with the bucket's other lifecycle
rules; it returns what it changed (or, in check mode, would change): nothing on a second run.

What is the driver's lives in its file of ``_storage``: reading and changing the settings
(``read_posture``, ``enforce_posture``) and how to fix what is weak (``posture_fixes``); here are the
shape of a posture, the judgement, the same for every driver, and the helpers the drivers share.
"""

from __future__ import annotations

from ansible_collections.cairncms.ops.plugins.module_utils._common import CairnError
from ansible_collections.cairncms.ops.plugins.module_utils._storage import backend_class


def blank(store):
    """The posture of ``store`` before anything is read: every fact unknown."""
    return {
        'url': store.describe(),
        'driver': store.driver,
        'bucket': store.place,
        'prefix': store.prefix,
        'applicable': True,
        'versioning': 'unknown',
        'mfa_delete': 'unknown' if store.mfa_delete else 'not_applicable',
        'lifecycle_rules': None,
        'noncurrent_version_expiration_days': None,
        'current_version_expiration_days': None,
        'soft_delete_days': None,
        'replication': None,
        'object_lock': {'enabled': None, 'mode': None, 'days': None, 'years': None, 'legal_hold': None},
        'default_encryption': {'enabled': None, 'algorithm': None, 'kms_key': None, 'encryption_scope': None},
        'unknown': [],
        'findings': [],
    }


def not_applicable(driver):
    return {'driver': driver, 'applicable': False}


def report(store, role='repository'):
    """The posture of the bucket (container) of ``store``; ``role`` is ``repository`` or ``source``
    (a source bucket is not judged on what only a backup needs: object lock, replication)."""
    if getattr(store, 'read_posture', None) is None:
        return not_applicable(store.driver)
    posture = blank(store)
    store.read_posture(posture)
    posture['findings'].extend(_judge(posture, role))
    return posture


def enforce(store, versioning=True, noncurrent_days=None, check_mode=False):
    """Make the bucket of ``store`` versioned and expire its noncurrent versions under the store's
    prefix after ``noncurrent_days`` (None: leave lifecycle alone). Returns the changes, as
    sentences, made or (``check_mode``) to be made; none when the bucket already complies."""
    if getattr(store, 'enforce_posture', None) is None:
        raise CairnError('Failed to enforce a posture on %s: driver %s has no bucket settings'
                         % (store.describe(), store.driver))
    if noncurrent_days is not None and noncurrent_days < 1:
        raise CairnError('noncurrent_days must be 1 or more, not %d' % noncurrent_days)
    return store.enforce_posture(versioning, noncurrent_days, check_mode)


# -- judgement: the same for every driver --------------------------------------------------------

def _fix(what, posture):
    """How to fix ``what`` (the driver's ``posture_fixes``) for the bucket of ``posture``."""
    return backend_class(posture['driver']).posture_fixes[what].format(bucket=posture['bucket'])


def _judge(posture, role):
    findings = []
    backend = backend_class(posture['driver'])
    url = posture['url']
    enforce_hint = ' or cairn_storage_posture with enforce: [%s]'
    if posture['versioning'] in ('disabled', 'suspended'):
        findings.append('Versioning is %s on %s: an object deleted or overwritten by mistake, by a bug or by '
                        'someone holding the credentials is gone at once. Enable it: %s%s.'
                        % (posture['versioning'], url, _fix('versioning', posture),
                           enforce_hint % 'versioning' if role == 'repository' else ''))
    if posture['versioning'] == 'enabled' and posture['lifecycle_rules'] is not None \
            and posture['noncurrent_version_expiration_days'] is None:
        findings.append('Noncurrent versions under %s never expire: the bucket keeps every overwritten and deleted '
                        'object forever and its size only grows. Add %s%s.'
                        % (url, _fix('lifecycle', posture), enforce_hint % 'lifecycle' if role == 'repository' else ''))
    if posture['current_version_expiration_days'] is not None:
        findings.append('A lifecycle rule deletes current objects under %s after %d day(s): %s disappear whatever '
                        'the retention rules say. Limit that rule to other prefixes or remove it.'
                        % (url, posture['current_version_expiration_days'],
                           'restore points' if role == 'repository' else 'uploaded files'))
    lock = posture['object_lock']
    if role == 'repository' and lock['enabled'] is False:
        also = ' and MFA delete is off' if posture['mfa_delete'] == 'disabled' else ''
        findings.append('Object Lock (immutability) is off on %s%s: whoever holds credentials that may delete '
                        'object versions can destroy every restore point and every old version at once, the '
                        'ransomware case. Set it: %s.' % (url, also, _fix('object_lock', posture)))
    elif role == 'repository' and lock['enabled'] and backend.lock_retention and not (lock['days'] or lock['years']):
        findings.append('Object Lock is enabled on %s but has no default retention: only objects written with '
                        'their own retention are protected. Set a default retention: %s.'
                        % (url, _fix('object_lock', posture)))
    if posture['default_encryption']['enabled'] is False:
        findings.append('%s has no default encryption: objects are stored unencrypted unless the writer asks. '
                        'Set it: %s%s.' % (url, _fix('default_encryption', posture),
                                           ' (restore points can also be encrypted by cairncms.ops itself, with '
                                           'encryption_recipients)' if role == 'repository' else ''))
    if role == 'repository' and posture['replication'] is False:
        findings.append('%s is not replicated: an outage of its region, or the loss of the account, takes the '
                        'backups with it. Use %s, or keep an offsite copy with cairn_repository_copy.'
                        % (url, _fix('replication', posture)))
    if 'soft_delete' in backend.posture_fixes and posture['soft_delete_days'] is None and 'soft_delete_days' not in \
            posture['unknown'] and posture['versioning'] != 'enabled':
        findings.append('Soft delete is off on %s: a deleted object cannot be brought back. Turn it on: %s.'
                        % (url, _fix('soft_delete', posture)))
    return findings


def unknown(posture, facts, sentence):
    """Name ``facts`` unknown in ``posture`` and say why (``sentence``, a finding)."""
    for fact in facts:
        if fact not in posture['unknown']:
            posture['unknown'].append(fact)
    posture['findings'].append(sentence)


def masked(store, text):
    """``text`` without the store's secret."""
    secret = store.location.options.get(store.secret_option) if store.secret_option else None
    return text.replace(secret, '********') if secret else text


def overlaps(rule_prefix, prefix):
    """Whether objects under ``rule_prefix`` and under ``prefix`` can be the same objects."""
    return rule_prefix.startswith(prefix) or prefix.startswith(rule_prefix)
