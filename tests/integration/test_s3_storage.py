# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""An S3 storage location (moto_server as the endpoint), backed up and restored by the real modules."""

from __future__ import annotations

import hashlib
import json
import os
import uuid

import demo_instance
from _s3 import ACCESS_KEY, SECRET_KEY, env_lines
from conftest import part_of, run_module
from test_modules import backup, restore

ORIGINAL = str(uuid.UUID(int=7)) + '.png'
DERIVATIVE = ORIGINAL[:-4] + '__' + hashlib.sha1(b'width=8').hexdigest() + '.png'
OBJECTS = {
    ORIGINAL: demo_instance.png(20, 14, 5),
    DERIVATIVE: demo_instance.png(8, 6, 6),
    'docs/report.txt': b'quarterly report\n' * 500,
    'big.bin': os.urandom(9 * 1024 * 1024 + 17),  # several multipart-sized reads
    'health-AbC12': b'',
}
KEPT = sorted(name for name in OBJECTS if name not in (DERIVATIVE, 'health-AbC12'))


def add_s3_location(directory, endpoint, bucket, root):
    """Turn a demo instance into one with STORAGE_LOCATIONS=local,s3 (and directus_files rows for s3)."""
    env = directory / '.env'
    text = env.read_text().replace('STORAGE_LOCATIONS=local\n', 'STORAGE_LOCATIONS=local,s3\n')
    env.write_text(text + env_lines('s3', endpoint, bucket, root))
    return env


def objects(client, bucket, prefix=''):
    listed = client.list_objects_v2(Bucket=bucket, Prefix=prefix).get('Contents', [])
    return {item['Key']: client.get_object(Bucket=bucket, Key=item['Key'])['Body'].read() for item in listed}


def inventory(repo, manifest):
    path = os.path.join(repo['path'], 'blog', 'points', manifest['id'],
                        part_of(manifest, 'files')['artifacts'][0]['path'])
    with open(path, 'rb') as handle:
        return [json.loads(line) for line in handle.read().decode().splitlines()]


def test_s3_location_backup_restore_verify(tmp_path, s3_server, repo):
    client = s3_server.client()
    results = []
    source_bucket = s3_server.create_bucket('cairn-source')
    for name, data in OBJECTS.items():
        client.put_object(Bucket=source_bucket, Key='cms/uploads/' + name, Body=data)
    client.put_object(Bucket=source_bucket, Key='elsewhere/not-ours.txt', Body=b'outside the root prefix')
    source = tmp_path / 'source'
    demo_instance.populated(str(source))
    source_env = add_s3_location(source, s3_server.endpoint, source_bucket, 'cms/uploads')
    demo_instance.register(source, 's3', {name: OBJECTS[name] for name in KEPT})

    info = run_module('cairn_instance_info', env_file=str(source_env))
    results.append(info)
    s3 = info['instance']['locations'][1]
    assert (s3['driver'], s3['bucket'], s3['root'], s3['credentials']) == ('s3', source_bucket, 'cms/uploads',
                                                                           'configured'), info

    manifest, dump, files = backup(source_env, repo)
    results += [manifest, dump, files]
    [summary] = [loc for loc in files['locations'] if loc['name'] == 's3']
    assert (summary['files'], summary['skipped_regenerable'], summary['transferred_files']) == (3, 2, 3), files
    rows = {row['filename_disk']: row for row in inventory(repo, manifest) if row['location'] == 's3'}
    assert sorted(rows) == KEPT
    for name in KEPT:
        assert rows[name]['size'] == len(OBJECTS[name])
        assert rows[name]['sha256'] == hashlib.sha256(OBJECTS[name]).hexdigest()

    # Nothing changed: nothing is read again.
    second, _dump, files = backup(source_env, repo)
    results += [second, files]
    assert (files['transferred'], files['reused']) == (0, 9), files

    # Restore into a second instance whose s3 location is another bucket under another prefix.
    target_bucket = s3_server.create_bucket('cairn-target')
    target = tmp_path / 'target'
    demo_instance.empty(str(target))
    target_env = add_s3_location(target, s3_server.endpoint, target_bucket, 'restored')
    db, files = restore(target_env, repo, check_mode=True)
    results += [db, files]
    assert files['changed'] and files['transferred'] == 9 and objects(client, target_bucket) == {}, files
    db, files = restore(target_env, repo)
    results += [db, files]
    assert not db.failed and files['changed'] and files['transferred'] == 9, (db, files)
    assert objects(client, target_bucket) == {'restored/' + name: OBJECTS[name] for name in KEPT}
    head = client.head_object(Bucket=target_bucket, Key='restored/' + ORIGINAL)
    assert head['ContentType'] == 'image/png'

    db, files = restore(target_env, repo)
    results += [db, files]
    assert (db['changed'], files['changed'], files['unchanged'], files['transferred']) == (False, False, 9, 0), files
    # the bucket's listing (ETag = MD5) proves the objects equal: none is downloaded to compare
    assert {loc['target']: loc['read_to_compare'] for loc in files['locations']} == {'local': 6, 's3': 0}, files

    verify = run_module('cairn_restore_verify', env_file=str(target_env), repository=repo, instance='blog',
                        checks=['repository', 'database', 'files'])
    results.append(verify)
    assert not verify.failed and all(check['ok'] for check in verify['checks']), verify
    checks = {check['name']: check for check in verify['checks']}
    assert checks['file bytes sha256']['detail'] == '9 file(s) equal', checks

    # A changed object on S3 is caught by verify.
    client.put_object(Bucket=target_bucket, Key='restored/docs/report.txt', Body=b'tampered')
    verify = run_module('cairn_restore_verify', env_file=str(target_env), repository=repo, instance='blog',
                        checks=['files'])
    results.append(verify)
    assert verify.failed and 'file bytes sha256' in verify['failed_checks'], verify

    # A bucket holding something else is refused without replace, and nothing changes.
    foreign_bucket = s3_server.create_bucket('cairn-foreign')
    client.put_object(Bucket=foreign_bucket, Key='restored/foreign.bin', Body=b'not from the restore point')
    other = tmp_path / 'other'
    demo_instance.empty(str(other))
    other_env = add_s3_location(other, s3_server.endpoint, foreign_bucket, 'restored')
    for check_mode in (True, False):
        files = run_module('cairn_storage_sync', env_file=str(other_env), repository=repo, instance='blog',
                           direction='restore', check_mode=check_mode)
        results.append(files)
        assert files.failed and 'nothing was changed' in files['msg'], files
    assert objects(client, foreign_bucket) == {'restored/foreign.bin': b'not from the restore point'}
    assert os.listdir(other / 'uploads') == []
    files = run_module('cairn_storage_sync', env_file=str(other_env), repository=repo, instance='blog',
                       direction='restore', replace=True)
    results.append(files)
    assert files['changed'] and files['removed'] == 1, files
    assert objects(client, foreign_bucket) == {'restored/' + name: OBJECTS[name] for name in KEPT}

    text = json.dumps(results)
    assert SECRET_KEY not in text and ACCESS_KEY not in text


def test_s3_errors_are_one_clear_message(tmp_path, s3_server, repo):
    source = tmp_path / 'source'
    demo_instance.populated(str(source))
    env = add_s3_location(source, s3_server.endpoint, 'no-such-bucket', 'cms')
    point = run_module('cairn_restore_point', repository=repo, instance='blog')
    files = run_module('cairn_storage_sync', env_file=str(env), repository=repo, instance='blog',
                       restore_point=point['restore_point'], direction='backup')
    assert files.failed and files['msg'].startswith('Failed to list s3://no-such-bucket/cms/: '), files
    assert 'NoSuchBucket' in files['msg'] and SECRET_KEY not in json.dumps(files), files
    # No credentials at all (no KEY/SECRET, an empty AWS chain): the same shape of message.
    env.write_text('\n'.join(line for line in env.read_text().splitlines()
                             if not line.startswith(('STORAGE_S3_KEY', 'STORAGE_S3_SECRET'))) + '\n')
    bare = {'AWS_SHARED_CREDENTIALS_FILE': str(tmp_path / 'none'), 'AWS_CONFIG_FILE': str(tmp_path / 'none'),
            'AWS_EC2_METADATA_DISABLED': 'true', 'AWS_ACCESS_KEY_ID': '', 'AWS_SECRET_ACCESS_KEY': ''}
    files = run_module('cairn_storage_sync', env_file=str(env), repository=repo, instance='blog',
                       restore_point=point['restore_point'], direction='backup', environ=bare)
    assert files.failed and files['msg'].startswith('Failed to list s3://no-such-bucket/cms/: '), files
    assert 'credentials' in files['msg'], files
