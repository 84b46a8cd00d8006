#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: cairn_storage_posture
short_description: Report how well the buckets of a CairnCMS instance and its repository protect their objects
version_added: 0.2.0
description:
  - For every object-store storage location of the instance (S3, GCS, Azure Blob) and for an object-store
    repository, reports versioning, the expiry of noncurrent versions, lifecycle rules, replication, object
    lock (immutability), MFA delete, soft delete and default encryption, with findings that say what is
    weak and how to fix it. See the collection's C(docs/posture.md).
  - A setting the credentials may not read, that the service does not implement, or that only the cloud
    account's management plane shows (Azure versioning and lifecycle) is reported as unknown, with a finding;
    it is never an error.
  - With O(enforce), makes the B(repository) bucket versioned and its noncurrent versions expire after
    O(noncurrent_days); the other lifecycle rules of the bucket are kept. Source buckets are never changed.
author:
  - cairncms.ops maintainers (!UNKNOWN)
extends_documentation_fragment:
  - cairncms.ops.instance
options:
  repository:
    description:
      - "The repository of restore points whose bucket is reported, for example
        C({type: s3, bucket: backups, prefix: cairn, region: eu-west-1})."
      - "A repository of C(type: local) is reported as not applicable."
      - Without it only the instance's storage locations are reported.
    type: dict
  repository_credentials:
    description:
      - Credentials of the repository's object store (C(key) and C(secret) for S3, C(account_key) for Azure);
        without them the SDK's own environment (C(AWS_*), C(GOOGLE_APPLICATION_CREDENTIALS), C(AZURE_*)) is used.
    type: dict
  enforce:
    description:
      - Settings to put in place on the repository bucket; never on a storage location's bucket.
      - V(versioning) enables versioning.
      - V(lifecycle) adds (or updates) a lifecycle rule that deletes noncurrent versions under the repository's
        prefix O(noncurrent_days) days after they became noncurrent, beside the bucket's other rules.
      - Not possible for Azure, where both are storage account settings of Azure Resource Manager; the module
        fails and names the C(az) commands.
    type: list
    elements: str
    choices: [versioning, lifecycle]
    default: []
  noncurrent_days:
    description:
      - Days after which noncurrent versions are deleted, for O(enforce=[lifecycle]).
    type: int
    default: 30
notes:
  - The storage locations are read from the instance's configuration (O(env_file), O(env_overrides)); with
    none of them, only the repository is reported.
  - Findings on object lock and replication are made for the repository only; a source bucket is judged on
    versioning, expiry and encryption.
attributes:
  check_mode:
    support: full
    description: Reports, and returns in RV(changes) what O(enforce) would change, changing nothing.
  diff_mode:
    support: none
    description: The changes are listed in RV(changes).
'''

EXAMPLES = r'''
- name: Report the posture of the uploads buckets and of the repository bucket
  cairncms.ops.cairn_storage_posture:
    env_file: /srv/cairn/.env
    repository: {type: s3, bucket: cairn-backups, prefix: blog, region: eu-west-1}
  register: posture

- name: Fail when a bucket has a finding
  ansible.builtin.assert:
    that: posture.findings | length == 0
    fail_msg: "{{ posture.findings }}"

- name: Make the repository bucket versioned, noncurrent versions expiring after 60 days
  cairncms.ops.cairn_storage_posture:
    repository: {type: s3, bucket: cairn-backups, prefix: blog, region: eu-west-1}
    repository_credentials:
      key: "{{ vault_backup_key }}"
      secret: "{{ vault_backup_secret }}"
    enforce: [versioning, lifecycle]
    noncurrent_days: 60
'''

RETURN = r'''
locations:
  description:
    - One entry per storage location of the instance, in C(STORAGE_LOCATIONS) order.
    - "A local location has C(posture) C({driver: local, applicable: false})."
  returned: success
  type: list
  elements: dict
  contains:
    name:
      description: The location's name.
      type: str
      sample: s3
    driver:
      description: Its driver (C(local), C(s3), C(gcs), C(azure)).
      type: str
      sample: s3
    posture:
      description: The posture of its bucket, shaped as RV(repository).
      type: dict
repository:
  description:
    - "The posture of the repository bucket (after O(enforce), unless in check mode); C(null) without
      O(repository); C({driver: local, applicable: false}) for a local repository."
  returned: success
  type: dict
  contains:
    url:
      description: Bucket (container) and prefix.
      type: str
      sample: s3://cairn-backups/blog/
    driver:
      description: C(s3), C(gcs) or C(azure) (or C(local)).
      type: str
    bucket:
      description: The bucket or container.
      type: str
    prefix:
      description: The key prefix the location or repository uses, empty or ending in C(/).
      type: str
    applicable:
      description: False for local storage, which has none of these settings (and then the only other key is C(driver)).
      type: bool
    versioning:
      description: V(enabled), V(suspended), V(disabled) or V(unknown).
      type: str
      sample: enabled
    mfa_delete:
      description: S3 MFA delete, V(enabled), V(disabled) or V(unknown); V(not_applicable) for GCS and Azure.
      type: str
    lifecycle_rules:
      description: Number of lifecycle rules of the bucket (all prefixes); null when unknown.
      type: int
    noncurrent_version_expiration_days:
      description:
        - Days after which noncurrent versions under the prefix are deleted (the shortest enabled rule that covers
          all of them); null when no rule does, or when unknown.
      type: int
      sample: 30
    current_version_expiration_days:
      description: Days after which an enabled lifecycle rule deletes current objects under the prefix; null if none.
      type: int
    soft_delete_days:
      description: GCS soft delete or Azure blob soft delete retention in days; null when off, unknown or for S3.
      type: int
    replication:
      description: Whether a copy is kept in another region (S3 replication rule, GCS dual- or multi-region
        bucket, Azure geo-redundant account); null when unknown.
      type: bool
    object_lock:
      description:
        - Object lock or immutability. C(enabled) (bool, null when unknown); C(mode) (S3 V(GOVERNANCE) or
          V(COMPLIANCE), GCS retention policy V(locked) or V(unlocked) or V(object_retention), Azure
          V(version_level), V(container_policy) or V(legal_hold)); C(days) and C(years) of the default retention;
          C(legal_hold) (Azure legal hold, GCS default event-based hold).
      type: dict
      sample: {enabled: true, mode: GOVERNANCE, days: 30, years: null, legal_hold: null}
    default_encryption:
      description:
        - C(enabled) (bool, null when unknown), C(algorithm) (C(AES256), C(aws:kms), C(google-managed),
          C(cloud-kms)), C(kms_key), C(encryption_scope) (Azure).
      type: dict
    unknown:
      description: The facts that could not be read (each explained in C(findings)).
      type: list
      elements: str
      sample: [replication]
    findings:
      description: What is weak or could not be checked, and how to fix it, as sentences.
      type: list
      elements: str
findings:
  description: All findings of the locations and of the repository, each prefixed with where it was made.
  returned: success
  type: list
  elements: str
  sample: ["location s3: Versioning is disabled on s3://uploads/: ..."]
changes:
  description: What O(enforce) changed on the repository bucket (in check mode, would change).
  returned: success
  type: list
  elements: str
  sample: ["enable versioning on s3://cairn-backups/blog/ (was disabled)"]
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.cairncms.ops.plugins.module_utils import _posture
from ansible_collections.cairncms.ops.plugins.module_utils._args import instance_spec, load_config
from ansible_collections.cairncms.ops.plugins.module_utils._common import CairnError, run
from ansible_collections.cairncms.ops.plugins.module_utils._repository import select_repository
from ansible_collections.cairncms.ops.plugins.module_utils._storage import select_backend
from ansible_collections.cairncms.ops.plugins.module_utils._storage._base import ObjectStore


def _locations(params):
    if not (params['env_file'] or params['env_overrides'] or params['env_secret_overrides']):
        return []
    result = []
    for location in load_config(params).locations():
        store = select_backend(location)
        posture = _posture.report(store, 'source') if isinstance(store, ObjectStore) \
            else _posture.not_applicable(location.driver)
        result.append({'name': location.name, 'driver': location.driver, 'posture': posture})
    return result


def _repository_store(params):
    if params['repository'] is None:
        if params['enforce']:
            raise CairnError('enforce applies to the repository bucket only, and no repository is given; source '
                             'buckets are never changed')
        return None, None
    if params['repository_credentials']:
        repository = select_repository(params['repository'], credentials=params['repository_credentials'])
    else:
        repository = select_repository(params['repository'])
    store = getattr(repository, 'store', None)
    if store is None and params['enforce']:
        raise CairnError('enforce needs a repository in an object store (s3, gcs, azure); a %s repository has no '
                         'bucket settings' % params['repository'].get('type'))
    return repository, store


def action(module):
    params = module.params
    _repository, store = _repository_store(params)
    changes = []
    if store is not None and params['enforce']:
        changes = _posture.enforce(store, versioning='versioning' in params['enforce'],
                                   noncurrent_days=params['noncurrent_days'] if 'lifecycle' in params['enforce']
                                   else None, check_mode=module.check_mode)
    result = {'changed': bool(changes), 'changes': changes, 'locations': _locations(params), 'repository': None}
    if store is not None:
        result['repository'] = _posture.report(store, 'repository')
    elif params['repository'] is not None:
        result['repository'] = _posture.not_applicable(params['repository'].get('type'))
    findings = []
    for location in result['locations']:
        findings += ['location %s: %s' % (location['name'], text) for text in location['posture'].get('findings', ())]
    if result['repository']:
        findings += ['repository: %s' % text for text in result['repository'].get('findings', ())]
    result['findings'] = findings
    return result


def main():
    spec = instance_spec()
    spec.update({
        'repository': {'type': 'dict'},
        'repository_credentials': {'type': 'dict', 'no_log': True},
        'enforce': {'type': 'list', 'elements': 'str', 'choices': ['versioning', 'lifecycle'], 'default': []},
        'noncurrent_days': {'type': 'int', 'default': 30},
    })
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True)
    run(module, action)


if __name__ == '__main__':
    main()
