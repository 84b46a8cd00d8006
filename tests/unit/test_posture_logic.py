# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The pure parts of the bucket posture (_posture and the drivers' posture code): lifecycle arithmetic, GCS bucket
resources, Azure SKUs, findings."""

from __future__ import annotations

import datetime

from ansible_collections.cairncms.ops.plugins.module_utils import _posture
from ansible_collections.cairncms.ops.plugins.module_utils._env import Location
from ansible_collections.cairncms.ops.plugins.module_utils._storage import azure as azure_driver
from ansible_collections.cairncms.ops.plugins.module_utils._storage import gcs as gcs_driver
from ansible_collections.cairncms.ops.plugins.module_utils._storage import s3 as s3_driver
from ansible_collections.cairncms.ops.plugins.module_utils._storage.gcs import GcsStorage

NOW = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)


def rule(prefix=None, status='Enabled', **actions):
    found = {'ID': 'r', 'Status': status}
    if prefix is not None:
        found['Filter'] = {'Prefix': prefix}
    found.update(actions)
    return found


def test_s3_noncurrent_days_need_a_rule_covering_every_key_under_the_prefix():
    noncurrent = {'NoncurrentVersionExpiration': {'NoncurrentDays': 20}}
    assert s3_driver.s3_lifecycle_facts([rule('', **noncurrent)], 'cairn/') == (20, None)
    assert s3_driver.s3_lifecycle_facts([rule('cairn/', **noncurrent)], 'cairn/') == (20, None)
    assert s3_driver.s3_lifecycle_facts([rule('cairn/blog/', **noncurrent)], 'cairn/') == (None, None)
    assert s3_driver.s3_lifecycle_facts([rule('other/', **noncurrent)], 'cairn/') == (None, None)
    assert s3_driver.s3_lifecycle_facts([rule('', status='Disabled', **noncurrent)], '') == (None, None)
    tagged = dict(noncurrent, Filter={'And': {'Prefix': '', 'Tags': [{'Key': 'k', 'Value': 'v'}]}})
    assert s3_driver.s3_lifecycle_facts([dict(rule(), **tagged)], '') == (None, None)
    legacy = dict(noncurrent, ID='legacy', Status='Enabled', Prefix='')
    assert s3_driver.s3_lifecycle_facts([legacy, rule('', NoncurrentVersionExpiration={'NoncurrentDays': 9})], '') == (
        9, None)


def test_s3_current_expiration_counts_any_rule_touching_the_prefix():
    assert s3_driver.s3_lifecycle_facts([rule('cairn/blog/points/', Expiration={'Days': 3})], 'cairn/') == (None, 3)
    assert s3_driver.s3_lifecycle_facts([rule('', Expiration={'Days': 40})], 'cairn/') == (None, 40)
    assert s3_driver.s3_lifecycle_facts([rule('uploads/', Expiration={'Days': 3})], 'cairn/') == (None, None)
    dated = rule('', Expiration={'Date': NOW + datetime.timedelta(days=10)})
    assert s3_driver.s3_lifecycle_facts([dated], '', today=NOW) == (None, 10)
    assert s3_driver.s3_lifecycle_facts([rule('', Expiration={'ExpiredObjectDeleteMarker': True})], '') == (None, None)


def test_rule_id_depends_on_the_prefix():
    assert s3_driver._rule_id('') == 'cairncms-noncurrent-versions'
    assert s3_driver._rule_id('a/') != s3_driver._rule_id('b/')
    assert s3_driver._rule_id('a/').startswith('cairncms-noncurrent-versions-')


def gcs(prefix=''):
    return GcsStorage(Location('repo', 'gcs', {'bucket': 'bkt', 'api_endpoint': 'http://127.0.0.1:9', 'root': prefix}))


def test_gcs_resource_of_a_hardened_bucket():
    resource = {
        'versioning': {'enabled': True}, 'locationType': 'dual-region', 'defaultEventBasedHold': False,
        'retentionPolicy': {'retentionPeriod': '2592000', 'isLocked': True},
        'softDeletePolicy': {'retentionDurationSeconds': '604800'},
        'encryption': {'defaultKmsKeyName': 'projects/p/locations/eu/keyRings/r/cryptoKeys/k'},
        'lifecycle': {'rule': [
            {'action': {'type': 'Delete'}, 'condition': {'daysSinceNoncurrentTime': 30, 'matchesPrefix': ['cairn/']}},
            {'action': {'type': 'SetStorageClass', 'storageClass': 'COLDLINE'}, 'condition': {'age': 90}},
        ]},
    }
    store = gcs('cairn/blog')
    posture = gcs_driver.gcs_posture(_posture.blank(store), resource, store.prefix)
    assert posture['url'] == 'gs://bkt/cairn/blog/'
    assert (posture['versioning'], posture['replication'], posture['soft_delete_days']) == ('enabled', True, 7)
    assert (posture['lifecycle_rules'], posture['noncurrent_version_expiration_days'],
            posture['current_version_expiration_days']) == (2, 30, None)
    assert posture['object_lock'] == {'enabled': True, 'mode': 'locked', 'days': 30, 'years': None,
                                      'legal_hold': False}
    assert posture['default_encryption']['algorithm'] == 'cloud-kms'
    assert _posture._judge(posture, 'repository') == []


def test_gcs_rules_that_do_not_expire_noncurrent_versions_of_the_prefix():
    def days(condition, prefix='cairn/'):
        return gcs_driver.gcs_noncurrent_days({'action': {'type': 'Delete'}, 'condition': condition}, prefix)
    assert days({'daysSinceNoncurrentTime': 5}) == 5
    assert days({'daysSinceNoncurrentTime': 5, 'isLive': False}) == 5
    assert days({'daysSinceNoncurrentTime': 5, 'matchesPrefix': ['other/']}) is None
    assert days({'daysSinceNoncurrentTime': 5, 'matchesSuffix': ['.json']}) is None
    assert days({'numNewerVersions': 3}) is None
    assert gcs_driver.gcs_lifecycle_facts([{'action': {'type': 'Delete'}, 'condition': {'age': 4}}], 'cairn/') == (
        None, 4)
    assert gcs_driver.gcs_lifecycle_facts(
        [{'action': {'type': 'Delete'}, 'condition': {'age': 4, 'isLive': False}}], 'cairn/') == (None, None)


def test_gcs_single_region_unlocked_bucket_findings():
    store = gcs()
    posture = gcs_driver.gcs_posture(_posture.blank(store), {'versioning': {'enabled': False},
                                                             'locationType': 'region',
                                                             'retentionPolicy': {'retentionPeriod': '3600'}}, '')
    assert posture['object_lock']['mode'] == 'unlocked' and posture['object_lock']['days'] == 0.04
    findings = _posture._judge(posture, 'repository')
    assert [text.split(' ')[0] for text in findings] == ['Versioning', 'gs://bkt/', 'Soft']
    source = _posture._judge(posture, 'source')  # not judged on object lock and replication, no enforce hint
    assert source == [findings[0].replace(' or cairn_storage_posture with enforce: [versioning]', ''), findings[2]]


def test_azure_sku_redundancy():
    assert azure_driver.azure_replication('Standard_RAGRS') is True
    assert azure_driver.azure_replication('Standard_GZRS') is True
    assert azure_driver.azure_replication('Standard_LRS') is False
    assert azure_driver.azure_replication('Premium_ZRS') is False
    assert azure_driver.azure_replication(None) is None
