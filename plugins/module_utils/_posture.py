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
"""

from __future__ import annotations

import datetime
import hashlib

from ansible_collections.cairncms.ops.plugins.module_utils._common import CairnError

DAY = 86400
RULE_ID = 'cairncms-noncurrent-versions'
VERSIONING = {'Enabled': 'enabled', 'Suspended': 'suspended'}

# S3 error codes: "nothing configured", "not allowed to look", "the service cannot say"
_S3_DENIED = ('AccessDenied', 'AllAccessDisabled', 'Forbidden', 'UnauthorizedAccess')
_S3_UNSUPPORTED = ('NotImplemented', 'XNotImplemented', 'MethodNotAllowed', 'UnsupportedOperation')
# fact -> (boto3 call, the code that means "none configured", IAM action, what it is)
_S3_READS = {
    'versioning': ('get_bucket_versioning', None, 's3:GetBucketVersioning', 'versioning'),
    'lifecycle': ('get_bucket_lifecycle_configuration', 'NoSuchLifecycleConfiguration',
                  's3:GetLifecycleConfiguration', 'lifecycle configuration'),
    'replication': ('get_bucket_replication', 'ReplicationConfigurationNotFoundError',
                    's3:GetReplicationConfiguration', 'replication configuration'),
    'object_lock': ('get_object_lock_configuration', 'ObjectLockConfigurationNotFoundError',
                    's3:GetBucketObjectLockConfiguration', 'Object Lock configuration'),
    'default_encryption': ('get_bucket_encryption', 'ServerSideEncryptionConfigurationNotFoundError',
                           's3:GetEncryptionConfiguration', 'default encryption'),
}
_FACTS_OF = {'versioning': ('versioning', 'mfa_delete'),
             'lifecycle': ('lifecycle_rules', 'noncurrent_version_expiration_days', 'current_version_expiration_days')}


def blank(store):
    """The posture of ``store`` before anything is read: every fact unknown."""
    return {
        'url': store.describe(),
        'driver': store.driver,
        'bucket': store.place,
        'prefix': store.prefix,
        'applicable': True,
        'versioning': 'unknown',
        'mfa_delete': 'unknown' if store.driver == 's3' else 'not_applicable',
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
    reader = _READERS.get(store.driver)
    if reader is None:
        return not_applicable(store.driver)
    posture = blank(store)
    reader(store, posture)
    posture['findings'].extend(_judge(posture, role))
    return posture


def enforce(store, versioning=True, noncurrent_days=None, check_mode=False):
    """Make the bucket of ``store`` versioned and expire its noncurrent versions under the store's
    prefix after ``noncurrent_days`` (None: leave lifecycle alone). Returns the changes, as
    sentences, made or (``check_mode``) to be made; none when the bucket already complies."""
    enforcer = _ENFORCERS.get(store.driver)
    if enforcer is None:
        raise CairnError('Failed to enforce a posture on %s: driver %s has no bucket settings'
                         % (store.describe(), store.driver))
    if noncurrent_days is not None and noncurrent_days < 1:
        raise CairnError('noncurrent_days must be 1 or more, not %d' % noncurrent_days)
    return enforcer(store, versioning, noncurrent_days, check_mode)


# -- judgement: the same for every driver --------------------------------------------------------

_FIX = {
    'versioning': {
        's3': 'aws s3api put-bucket-versioning --bucket {bucket} --versioning-configuration Status=Enabled',
        'gcs': 'gcloud storage buckets update gs://{bucket} --versioning',
    },
    'lifecycle': {
        's3': 'a lifecycle rule with NoncurrentVersionExpiration (aws s3api put-bucket-lifecycle-configuration '
              '--bucket {bucket}, keeping the rules already there)',
        'gcs': 'a lifecycle rule with a Delete action on daysSinceNoncurrentTime (gcloud storage buckets update '
               'gs://{bucket} --lifecycle-file=rules.json)',
    },
    'object_lock': {
        's3': 'aws s3api put-object-lock-configuration --bucket {bucket} --object-lock-configuration '
              '\'{{"ObjectLockEnabled": "Enabled", "Rule": {{"DefaultRetention": {{"Mode": "GOVERNANCE", "Days": 30}}}}}}\' '
              '(it needs versioning; COMPLIANCE mode cannot be shortened or removed by anyone)',
        'gcs': 'versioning with soft delete, and an offsite copy (cairn_repository_copy) to a bucket in another '
               'project whose credentials the backup host does not hold; a bucket retention policy (gcloud storage '
               'buckets update gs://{bucket} --retention-period=30d) protects too, but forbids replacing or deleting '
               'any object younger than the period, which the repository\'s lock file and prune need',
        'azure': 'version-level immutability with a default time-based policy (az storage container-rm create '
                 '--storage-account ACCOUNT --name {bucket} --enable-vlw true, then az storage blob immutability-policy '
                 'or a container default policy); try a backup and a prune on it first, since an immutable current '
                 'version cannot be deleted',
    },
    'replication': {
        's3': 'S3 Replication to a bucket in another region or account',
        'gcs': 'a dual-region or multi-region bucket',
        'azure': 'a geo-redundant account (GRS, RA-GRS, GZRS)',
    },
    'soft_delete': {
        'gcs': 'gcloud storage buckets update gs://{bucket} --soft-delete-duration=7d',
        'azure': 'az storage account blob-service-properties update --account-name ACCOUNT '
                 '--enable-delete-retention true --delete-retention-days 14',
    },
}


def _fix(what, posture):
    return _FIX[what][posture['driver']].format(bucket=posture['bucket'])


def _judge(posture, role):
    findings = []
    driver = posture['driver']
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
    elif role == 'repository' and lock['enabled'] and driver == 's3' and not (lock['days'] or lock['years']):
        findings.append('Object Lock is enabled on %s but has no default retention: only objects written with '
                        'their own retention are protected. Set a default retention: %s.'
                        % (url, _fix('object_lock', posture)))
    if posture['default_encryption']['enabled'] is False:
        findings.append('%s has no default encryption: objects are stored unencrypted unless the writer asks. '
                        'Set it: aws s3api put-bucket-encryption --bucket %s --server-side-encryption-configuration '
                        '\'{"Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms"}}]}\'%s.'
                        % (url, posture['bucket'], ' (restore points can also be encrypted by cairncms.ops itself, '
                           'with encryption_recipients)' if role == 'repository' else ''))
    if role == 'repository' and posture['replication'] is False:
        findings.append('%s is not replicated: an outage of its region, or the loss of the account, takes the '
                        'backups with it. Use %s, or keep an offsite copy with cairn_repository_copy.'
                        % (url, _fix('replication', posture)))
    if driver in ('gcs', 'azure') and posture['soft_delete_days'] is None and 'soft_delete_days' not in \
            posture['unknown'] and posture['versioning'] != 'enabled':
        findings.append('Soft delete is off on %s: a deleted object cannot be brought back. Turn it on: %s.'
                        % (url, _fix('soft_delete', posture)))
    return findings


def _unknown(posture, facts, sentence):
    for fact in facts:
        if fact not in posture['unknown']:
            posture['unknown'].append(fact)
    posture['findings'].append(sentence)


def _masked(store, text):
    secret = store.location.options.get(store.secret_option) if store.secret_option else None
    return text.replace(secret, '********') if secret else text


def _overlaps(rule_prefix, prefix):
    """Whether objects under ``rule_prefix`` and under ``prefix`` can be the same objects."""
    return rule_prefix.startswith(prefix) or prefix.startswith(rule_prefix)


# -- S3 -------------------------------------------------------------------------------------------

def _s3_code(exc):
    response = getattr(exc, 'response', None)
    if not isinstance(response, dict) or 'Error' not in response:
        return None, None
    return str(response['Error'].get('Code') or ''), response.get('ResponseMetadata', {}).get('HTTPStatusCode')


def _s3_read(store, what):
    """``('ok', response)``, ``('none', None)`` or ``('unknown', cause)`` for one of ``_S3_READS``;
    any other error becomes a CairnError."""
    call, none_code, _action, label = _S3_READS[what]
    client = store.client
    with store._errors('read the %s of' % label):
        try:
            return 'ok', getattr(client, call)(Bucket=store.place)
        except Exception as exc:  # only S3 answers are judged here; the rest goes to _errors
            code, status = _s3_code(exc)
            if code is None:
                raise
            if none_code and code == none_code:
                return 'none', None
            if code in _S3_DENIED or status == 403:
                return 'unknown', 'denied: %s' % _masked(store, store.cause(exc))
            if code in _S3_UNSUPPORTED or status in (405, 501):
                return 'unknown', 'not implemented: %s' % _masked(store, store.cause(exc))
            raise


def _s3_unknown(store, posture, what, cause):
    _call, _none, action, label = _S3_READS[what]
    hint = ('grant %s to these credentials to have it checked' % action if cause.startswith('denied')
            else 'the service does not offer it (an S3-compatible store or an emulator); check it in its console')
    _unknown(posture, _FACTS_OF.get(what, (what,)),
             'Could not read the %s of %s (%s): %s.' % (label, posture['url'], cause, hint))


def _s3_filter_prefix(rule):
    """The key prefix a lifecycle or replication rule applies to, and whether it applies to every object
    under that prefix (no tag or size condition)."""
    rule_filter = rule.get('Filter')
    if rule_filter is None:
        return rule.get('Prefix') or '', True
    if set(rule_filter) <= {'Prefix'}:
        return rule_filter.get('Prefix') or '', True
    conditions = rule_filter.get('And') or {}
    return conditions.get('Prefix') or rule_filter.get('Prefix') or '', False


def s3_lifecycle_facts(rules, prefix, today=None):
    """(noncurrent expiration days, current expiration days) that apply to the keys under ``prefix``:
    the shortest noncurrent expiration of an enabled rule covering all of them, the shortest expiration
    of current objects of an enabled rule touching any of them (a date counts as the days left)."""
    today = today or datetime.datetime.now(datetime.timezone.utc)
    noncurrent, current = [], []
    for rule in rules:
        if rule.get('Status') != 'Enabled':
            continue
        rule_prefix, whole = _s3_filter_prefix(rule)
        days = (rule.get('NoncurrentVersionExpiration') or {}).get('NoncurrentDays')
        if days and whole and prefix.startswith(rule_prefix):
            noncurrent.append(int(days))
        expiration = rule.get('Expiration') or {}
        if _overlaps(rule_prefix, prefix):
            if expiration.get('Days'):
                current.append(int(expiration['Days']))
            elif isinstance(expiration.get('Date'), datetime.datetime):
                current.append(max(0, (expiration['Date'] - today).days))
    return (min(noncurrent) if noncurrent else None), (min(current) if current else None)


def _s3_report(store, posture):
    state, answer = _s3_read(store, 'versioning')
    if state == 'ok':
        posture['versioning'] = VERSIONING.get(answer.get('Status'), 'disabled')
        posture['mfa_delete'] = 'enabled' if answer.get('MFADelete') == 'Enabled' else 'disabled'
    else:
        _s3_unknown(store, posture, 'versioning', answer)

    state, answer = _s3_read(store, 'lifecycle')
    if state == 'unknown':
        _s3_unknown(store, posture, 'lifecycle', answer)
    else:
        rules = (answer or {}).get('Rules') or []
        posture['lifecycle_rules'] = len(rules)
        noncurrent, current = s3_lifecycle_facts(rules, store.prefix)
        posture['noncurrent_version_expiration_days'] = noncurrent
        posture['current_version_expiration_days'] = current

    state, answer = _s3_read(store, 'replication')
    if state == 'unknown':
        _s3_unknown(store, posture, 'replication', answer)
    else:
        rules = ((answer or {}).get('ReplicationConfiguration') or {}).get('Rules') or []
        posture['replication'] = any(rule.get('Status') == 'Enabled'
                                     and _overlaps(_s3_filter_prefix(rule)[0], store.prefix) for rule in rules)

    state, answer = _s3_read(store, 'object_lock')
    if state == 'unknown':
        _s3_unknown(store, posture, 'object_lock', answer)
    else:
        config = (answer or {}).get('ObjectLockConfiguration') or {}
        retention = (config.get('Rule') or {}).get('DefaultRetention') or {}
        posture['object_lock'].update({'enabled': config.get('ObjectLockEnabled') == 'Enabled',
                                       'mode': retention.get('Mode'), 'days': retention.get('Days') or None,
                                       'years': retention.get('Years') or None})

    state, answer = _s3_read(store, 'default_encryption')
    if state == 'unknown':
        _s3_unknown(store, posture, 'default_encryption', answer)
    else:
        rules = ((answer or {}).get('ServerSideEncryptionConfiguration') or {}).get('Rules') or []
        default = (rules[0].get('ApplyServerSideEncryptionByDefault') or {}) if rules else {}
        posture['default_encryption'].update({'enabled': bool(default.get('SSEAlgorithm')),
                                              'algorithm': default.get('SSEAlgorithm'),
                                              'kms_key': default.get('KMSMasterKeyID')})


def _rule_id(prefix):
    """The ID of the rule cairncms.ops manages for the repository under ``prefix``."""
    if not prefix:
        return RULE_ID
    return '%s-%s' % (RULE_ID, hashlib.sha256(prefix.encode('utf-8')).hexdigest()[:12])


def _s3_has_rule(rules, prefix, days):
    """Whether an enabled rule expires every noncurrent version under ``prefix`` after ``days``."""
    for rule in rules:
        rule_prefix, whole = _s3_filter_prefix(rule)
        if rule.get('Status') == 'Enabled' and whole and prefix.startswith(rule_prefix) \
                and (rule.get('NoncurrentVersionExpiration') or {}).get('NoncurrentDays') == days:
            return True
    return False


def _s3_must(store, what):
    state, answer = _s3_read(store, what)
    if state == 'unknown':
        raise CairnError('Failed to read the %s of %s: %s' % (_S3_READS[what][3], store.describe(), answer))
    return answer


def _s3_enforce(store, versioning, noncurrent_days, check_mode):
    changes = []
    client = store.client
    if versioning:
        status = (_s3_must(store, 'versioning') or {}).get('Status')
        if status != 'Enabled':
            changes.append('enable versioning on %s (was %s)' % (store.describe(), VERSIONING.get(status, 'disabled')))
            if not check_mode:
                with store._errors('enable versioning on'):
                    client.put_bucket_versioning(Bucket=store.place, VersioningConfiguration={'Status': 'Enabled'})
    if noncurrent_days is not None:
        answer = _s3_must(store, 'lifecycle') or {}
        rules = answer.get('Rules') or []
        if not _s3_has_rule(rules, store.prefix, noncurrent_days):
            rule_id = _rule_id(store.prefix)
            ours = {'ID': rule_id, 'Status': 'Enabled', 'Filter': {'Prefix': store.prefix},
                    'NoncurrentVersionExpiration': {'NoncurrentDays': noncurrent_days}}
            merged = [ours if rule.get('ID') == rule_id else rule for rule in rules]
            if ours not in merged:
                merged.append(ours)
            changes.append('%s lifecycle rule %s on %s: noncurrent versions expire after %d day(s) (%d other rule(s) '
                           'kept)' % ('update' if len(merged) == len(rules) else 'add', rule_id, store.describe(),
                                      noncurrent_days, len(merged) - 1))
            if not check_mode:
                extra = {}
                if answer.get('TransitionDefaultMinimumObjectSize'):
                    extra['TransitionDefaultMinimumObjectSize'] = answer['TransitionDefaultMinimumObjectSize']
                with store._errors('write the lifecycle configuration of'):
                    client.put_bucket_lifecycle_configuration(Bucket=store.place,
                                                              LifecycleConfiguration={'Rules': merged}, **extra)
    if changes and not check_mode:
        _s3_confirm(store, versioning, noncurrent_days)
    return changes


def _s3_confirm(store, versioning, noncurrent_days):
    """Read back what was set: a service that answers yes and keeps nothing is an error, not a success."""
    kept = True
    if versioning:
        kept = (_s3_must(store, 'versioning') or {}).get('Status') == 'Enabled'
    if kept and noncurrent_days is not None:
        rules = (_s3_must(store, 'lifecycle') or {}).get('Rules') or []
        kept = _s3_has_rule(rules, store.prefix, noncurrent_days)
    if not kept:
        raise CairnError('Failed to enforce the posture of %s: the service accepted the settings but does not keep '
                         'them (an emulator or an S3-compatible store without them?)' % store.describe())


# -- GCS ------------------------------------------------------------------------------------------

def _days(seconds):
    if not seconds:
        return None
    days = int(seconds) / DAY
    return int(days) if days == int(days) else round(days, 2)


def _gcs_prefixes(condition):
    return condition.get('matchesPrefix') or ['']


def gcs_noncurrent_days(rule, prefix):
    """The days after which ``rule`` deletes every noncurrent version under ``prefix``, or None."""
    condition = rule.get('condition') or {}
    if (rule.get('action') or {}).get('type') != 'Delete' or not condition.get('daysSinceNoncurrentTime'):
        return None
    if set(condition) - {'daysSinceNoncurrentTime', 'isLive', 'matchesPrefix'} or condition.get('isLive') is True:
        return None  # only some objects (by age, class, suffix...), or live ones: not the noncurrent versions
    if not any(prefix.startswith(rule_prefix) for rule_prefix in _gcs_prefixes(condition)):
        return None
    return int(condition['daysSinceNoncurrentTime'])


def gcs_lifecycle_facts(rules, prefix):
    """(noncurrent expiration days, current expiration days) under ``prefix`` for GCS lifecycle rules."""
    noncurrent, current = [], []
    for rule in rules:
        days = gcs_noncurrent_days(rule, prefix)
        if days is not None:
            noncurrent.append(days)
        condition = rule.get('condition') or {}
        if (rule.get('action') or {}).get('type') == 'Delete' and condition.get('age') is not None \
                and condition.get('isLive') is not False and not condition.get('numNewerVersions') \
                and not condition.get('daysSinceNoncurrentTime') \
                and any(_overlaps(rule_prefix, prefix) for rule_prefix in _gcs_prefixes(condition)):
            current.append(int(condition['age']))
    return (min(noncurrent) if noncurrent else None), (min(current) if current else None)


def gcs_posture(posture, resource, prefix):
    """Fill ``posture`` from a GCS bucket resource (the JSON of buckets.get)."""
    posture['versioning'] = 'enabled' if (resource.get('versioning') or {}).get('enabled') else 'disabled'
    rules = (resource.get('lifecycle') or {}).get('rule') or []
    posture['lifecycle_rules'] = len(rules)
    noncurrent, current = gcs_lifecycle_facts(rules, prefix)
    posture['noncurrent_version_expiration_days'] = noncurrent
    posture['current_version_expiration_days'] = current
    posture['soft_delete_days'] = _days((resource.get('softDeletePolicy') or {}).get('retentionDurationSeconds'))
    location_type = resource.get('locationType')
    if location_type:
        posture['replication'] = location_type.lower() in ('dual-region', 'multi-region')
    else:
        _unknown(posture, ('replication',), 'The location type of %s is not reported, so whether it is '
                 'replicated is unknown: check it with gcloud storage buckets describe gs://%s.'
                 % (posture['url'], posture['bucket']))
    retention = resource.get('retentionPolicy') or {}
    object_retention = (resource.get('objectRetention') or {}).get('mode') == 'Enabled'
    if retention.get('retentionPeriod'):
        mode = 'locked' if retention.get('isLocked') else 'unlocked'
    else:
        mode = 'object_retention' if object_retention else None
    posture['object_lock'].update({'enabled': bool(retention.get('retentionPeriod')) or object_retention,
                                   'mode': mode, 'days': _days(retention.get('retentionPeriod')),
                                   'legal_hold': bool(resource.get('defaultEventBasedHold'))})
    key = (resource.get('encryption') or {}).get('defaultKmsKeyName')
    posture['default_encryption'].update({'enabled': True, 'algorithm': 'cloud-kms' if key else 'google-managed',
                                          'kms_key': key})
    return posture


def _gcs_status(exc):
    return getattr(exc, 'code', None)


def _gcs_reload(store):
    """The bucket, reloaded; or None with the reason when the service does not let us (403, 501)."""
    bucket = store.bucket
    with store._errors('read the settings of'):
        try:
            bucket.reload()
        except Exception as exc:  # only answers of the service are judged; the rest goes to _errors
            if not store.is_sdk_error(exc) or _gcs_status(exc) not in (403, 405, 501):
                raise
            return None, _masked(store, store.cause(exc))
    return bucket, None


def _gcs_report(store, posture):
    bucket, cause = _gcs_reload(store)
    if bucket is None:
        _unknown(posture, ('versioning', 'lifecycle_rules', 'noncurrent_version_expiration_days',
                           'current_version_expiration_days', 'soft_delete_days', 'replication', 'object_lock',
                           'default_encryption'),
                 'Could not read the settings of %s (%s): grant storage.buckets.get to these credentials to have '
                 'them checked.' % (posture['url'], cause))
        return
    gcs_posture(posture, bucket._properties, store.prefix)


def _gcs_same_rule(rule, ours):
    """Whether ``rule`` is ``ours`` but for its days (to be replaced, not kept beside)."""
    def without_days(condition):
        return {key: value for key, value in (condition or {}).items() if key != 'daysSinceNoncurrentTime'}
    return rule.get('action') == ours['action'] and without_days(rule.get('condition')) == without_days(
        ours['condition'])


def _gcs_enforce(store, versioning, noncurrent_days, check_mode):
    bucket, cause = _gcs_reload(store)
    if bucket is None:
        raise CairnError('Failed to read the settings of %s: %s' % (store.describe(), cause))
    changes = []
    if versioning and not bucket.versioning_enabled:
        changes.append('enable versioning on %s (was disabled)' % store.describe())
        bucket.versioning_enabled = True
    if noncurrent_days is not None:
        rules = [dict(rule) for rule in (bucket._properties.get('lifecycle') or {}).get('rule') or []]
        if not any(gcs_noncurrent_days(rule, store.prefix) == noncurrent_days for rule in rules):
            condition = {'daysSinceNoncurrentTime': noncurrent_days}
            if store.prefix:
                condition['matchesPrefix'] = [store.prefix]
            ours = {'action': {'type': 'Delete'}, 'condition': condition}

            merged = [rule for rule in rules if not _gcs_same_rule(rule, ours)] + [ours]
            changes.append('%s lifecycle rule on %s: noncurrent versions are deleted %d day(s) after they became '
                           'noncurrent (%d other rule(s) kept)' % ('update a' if len(merged) == len(rules) else 'add a',
                                                                   store.describe(), noncurrent_days, len(merged) - 1))
            bucket.lifecycle_rules = merged
    if changes and not check_mode:
        with store._errors('update the settings of'):
            bucket.patch()
        bucket, cause = _gcs_reload(store)
        kept = bucket is not None and (not versioning or bucket.versioning_enabled) and (
            noncurrent_days is None or gcs_lifecycle_facts((bucket._properties.get('lifecycle') or {}).get('rule') or [],
                                                           store.prefix)[0] == noncurrent_days)
        if not kept:
            raise CairnError('Failed to enforce the posture of %s: the service accepted the settings but does not keep '
                             'them (fake-gcs-server, for one, drops lifecycle rules)' % store.describe())
    return changes


# -- Azure ----------------------------------------------------------------------------------------

_AZURE_MANAGEMENT = ('az storage account blob-service-properties show --account-name {account} '
                     '--query "{{versioning: isVersioningEnabled, changeFeed: changeFeed.enabled}}"')
_AZURE_POLICY = 'az storage account management-policy show --account-name {account} --resource-group GROUP'


def _azure_status(exc):
    status = getattr(exc, 'status_code', None)
    code = getattr(exc, 'error_code', None)
    return status, str(getattr(code, 'value', code) or '')


def _azure_read(store, label, call):
    """``('ok', answer)`` or ``('unknown', cause)`` (403, 405, 501); other errors become a CairnError."""
    with store._errors('read the %s of' % label):
        try:
            return 'ok', call()
        except Exception as exc:  # only answers of the service are judged; the rest goes to _errors
            if not store.is_sdk_error(exc):
                raise
            status, code = _azure_status(exc)
            if status == 403 or code in ('AuthorizationPermissionMismatch', 'AuthorizationFailure'):
                return 'unknown', 'denied: %s' % _masked(store, store.cause(exc))
            if status in (405, 501) or code in ('NotImplemented', 'FeatureNotSupported'):
                return 'unknown', 'not implemented: %s' % _masked(store, store.cause(exc))
            raise


def azure_replication(sku_name):
    """Whether an account SKU (Standard_LRS, Standard_RAGRS...) keeps a copy in a second region."""
    if not sku_name:
        return None
    redundancy = str(sku_name).rsplit('_', maxsplit=1)[-1].upper()
    return redundancy in ('GRS', 'RAGRS', 'GZRS', 'RAGZRS')


def _azure_report(store, posture):
    container = store.container
    account = store.location.options.get('account_name') or 'ACCOUNT'
    state, props = _azure_read(store, 'properties', container.get_container_properties)
    if state == 'ok':
        version_level = bool(props.get('immutable_storage_with_versioning_enabled'))
        policy, hold = bool(props.get('has_immutability_policy')), bool(props.get('has_legal_hold'))
        mode = 'version_level' if version_level else 'container_policy' if policy else 'legal_hold' if hold else None
        posture['object_lock'].update({'enabled': version_level or policy or hold, 'mode': mode, 'legal_hold': hold})
        scope = props.get('encryption_scope')
        posture['default_encryption'].update({
            'enabled': True, 'algorithm': 'AES256',
            'encryption_scope': getattr(scope, 'default_encryption_scope', None) if scope else None})
        if version_level:
            posture['versioning'] = 'enabled'  # version-level immutability needs versioning
    else:
        _unknown(posture, ('object_lock', 'default_encryption'),
                 'Could not read the properties of %s (%s): give these credentials read access to the container '
                 'to have them checked.' % (posture['url'], props))
    if posture['versioning'] == 'unknown':
        _unknown(posture, ('versioning',),
                 'Blob versioning of %s is a storage account setting that the Blob service does not show: check it '
                 'with %s, and turn it on with az storage account blob-service-properties update --account-name %s '
                 '--enable-versioning true.' % (posture['url'], _AZURE_MANAGEMENT.format(account=account), account))
    _unknown(posture, ('lifecycle_rules', 'noncurrent_version_expiration_days', 'current_version_expiration_days'),
             'Lifecycle management of %s is a storage account setting that the Blob service does not show: check '
             'that a rule deletes previous versions (actions.version.delete) with %s.'
             % (posture['url'], _AZURE_POLICY.format(account=account)))

    state, info = _azure_read(store, 'account information', container.get_account_information)
    if state == 'ok':
        posture['replication'] = azure_replication(info.get('sku_name'))
        info = 'no SKU in the answer'
    if posture['replication'] is None:
        _unknown(posture, ('replication',), 'Could not read the redundancy (SKU) of the account of %s (%s): check '
                 'it with az storage account show --name %s --query sku.name.' % (posture['url'], info, account))

    service = _azure_service(store, container)
    state, properties = _azure_read(store, 'service properties', service.get_service_properties)
    if state == 'ok':
        retention = properties.get('delete_retention_policy')
        posture['soft_delete_days'] = retention.days if retention is not None and retention.enabled else None
    else:
        _unknown(posture, ('soft_delete_days',), 'Could not read the blob soft delete setting of the account of %s '
                 '(%s): it needs the account key or an account-level role; check it with %s.'
                 % (posture['url'], properties, _AZURE_MANAGEMENT.format(account=account)))


def _azure_service(store, container):
    import azure.storage.blob  # present: store.container needed it
    return azure.storage.blob.BlobServiceClient(account_url=store.location.options['endpoint'],
                                                credential=container.credential)


def _azure_enforce(store, versioning, noncurrent_days, check_mode):
    account = store.location.options.get('account_name') or 'ACCOUNT'
    wanted = []
    if versioning:
        wanted.append('az storage account blob-service-properties update --account-name %s --resource-group GROUP '
                      '--enable-versioning true' % account)
    if noncurrent_days is not None:
        wanted.append('az storage account management-policy create --account-name %s --resource-group GROUP '
                      '--policy @policy.json with a rule whose actions.version.delete.daysAfterCreationGreaterThan '
                      'is %d' % (account, noncurrent_days))
    if not wanted:
        return []
    raise CairnError('Failed to enforce the posture of %s: versioning and lifecycle management are settings of the '
                     'storage account in Azure Resource Manager, which the Blob service these backups use cannot '
                     'change; set them with: %s' % (store.describe(), '; '.join(wanted)))


_READERS = {'s3': _s3_report, 'gcs': _gcs_report, 'azure': _azure_report}
_ENFORCERS = {'s3': _s3_enforce, 'gcs': _gcs_enforce, 'azure': _azure_enforce}
