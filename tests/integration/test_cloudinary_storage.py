# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A Cloudinary storage location, backed up and restored by the real modules.

There is no Cloudinary emulator: the endpoint is ``_cloudinary.FakeCloudinary``, a local server written from
Cloudinary's documented Admin, Upload and delivery APIs (it checks Basic auth, upload and URL signatures,
pages listings two assets at a time and takes chunked uploads). Behaviour against the real service is not
tested here.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid

import pytest

import demo_instance
from _cloudinary import FakeCloudinary
from conftest import part_of, run_module
from test_modules import backup, restore

from ansible_collections.cairncms.ops.plugins.module_utils._common import CairnError
from ansible_collections.cairncms.ops.plugins.module_utils._env import Location
from ansible_collections.cairncms.ops.plugins.module_utils._storage import cloudinary as backend_module

KEYS = {'cairn-source': ('614829301122334', 'cld-source-Secret-Qw3rT9zX1vB7nM5k'),
        'cairn-target': ('614829301122335', 'cld-target-Secret-Lp0oK9iJ8uH7yG6t'),
        'cairn-foreign': ('614829301122336', 'cld-foreign-Secret-Zx1cV2bN3mA4sD5f'),
        'cairn-errors': ('614829301122337', 'cld-errors-Secret-Rt5yU6iO7pA8sD9f'),
        'cairn-signed': ('614829301122338', 'cld-signed-Secret-Gh1jK2lZ3xC4vB5n')}


def _disk(number, extension):
    return str(uuid.UUID(int=number)) + extension


PNG = _disk(7, '.png')
DERIVATIVE = PNG[:-4] + '__' + hashlib.sha1(b'width=8').hexdigest() + '.png'
VIDEO = _disk(8, '.mp4')
JPEG = _disk(9, '.jpeg')        # Cloudinary keeps its format as jpg
TEXT = _disk(10, '.txt')
UPPER = _disk(11, '.JPG')       # not an image to the driver: raw
BIG = _disk(12, '.bin')
DATA = {PNG: demo_instance.png(20, 14, 5), DERIVATIVE: demo_instance.png(8, 6, 6), VIDEO: os.urandom(3000),
        JPEG: b'\xff\xd8\xff\xe0' + os.urandom(2000), TEXT: b'quarterly report\n' * 500, UPPER: os.urandom(700),
        BIG: os.urandom(17 * 1024 * 1024 + 5),  # three chunks of an upload
        'health-AbC12': b'ok'}
# filename_disk -> (resource_type, public_id under the root 'cms', format) as CairnCMS writes them.
SOURCE = {PNG: ('image', PNG[:-4], 'png'), DERIVATIVE: ('image', DERIVATIVE[:-4], 'png'),
          VIDEO: ('video', VIDEO[:-4], 'mp4'), JPEG: ('image', JPEG[:-5], 'jpg'), TEXT: ('raw', 'cms/' + TEXT, None),
          UPPER: ('raw', 'cms/' + UPPER, None), BIG: ('raw', 'cms/' + BIG, None),
          'health-AbC12': ('raw', 'cms/health-AbC12', None)}
KEPT = [PNG, VIDEO, JPEG, TEXT, UPPER, BIG]                      # backed up (not regenerable)
LISTED = {name: name for name in KEPT}
LISTED[JPEG] = JPEG[:-5] + '.jpg'                                # the name a listing can give it
# directus_files rows; the .jpeg row finds the asset a listing names .jpg (verify matches by address)
REGISTERED = [PNG, VIDEO, JPEG, TEXT, UPPER, BIG]


@pytest.fixture(scope='module')
def cloud():
    with FakeCloudinary(page_size=2) as server:
        for name, (key, secret) in KEYS.items():
            server.add_cloud(name, key, secret)
        yield server


def env_lines(server, cloud_name, root, access_mode='authenticated', secret=None):
    key, real_secret = KEYS[cloud_name]
    return ''.join('STORAGE_CLOUDINARY_%s=%s\n' % pair for pair in (
        ('DRIVER', 'cloudinary'), ('CLOUD_NAME', cloud_name), ('API_KEY', key),
        ('API_SECRET', secret or real_secret), ('ACCESS_MODE', access_mode), ('ROOT', root),
        ('API_URL', server.api_url), ('DELIVERY_URL', server.delivery_url)))


def add_location(directory, server, cloud_name, root, **kwargs):
    env = directory / '.env'
    text = env.read_text().replace('STORAGE_LOCATIONS=local\n', 'STORAGE_LOCATIONS=local,cloudinary\n')
    env.write_text(text + env_lines(server, cloud_name, root, **kwargs))
    return env


def seed_source(server):
    for name, (kind, public_id, fmt) in SOURCE.items():
        server.put('cairn-source', kind, public_id, DATA[name], fmt,
                   access_mode='authenticated' if name in (PNG, TEXT) else 'public')
    # Not addressable by CairnCMS here: outside the root, a nested image.
    server.put('cairn-source', 'raw', 'elsewhere/not-ours.txt', b'outside the root')
    server.put('cairn-source', 'image', 'samples/cat', demo_instance.png(4, 4, 9), 'jpg')


def contents(server, cloud_name):
    return {key: (asset.data, asset.format, asset.access_mode) for key, asset in server.assets(cloud_name).items()}


def expected_target(root):
    found = {}
    for name in KEPT:
        kind, public_id, fmt = SOURCE[name]
        if kind == 'raw':
            public_id = root + '/' + name
        found[(kind, public_id)] = (DATA[name], fmt, 'authenticated')
    return found


def inventory(repo, manifest):
    path = os.path.join(repo['path'], 'blog', 'points', manifest['id'],
                        part_of(manifest, 'files')['artifacts'][0]['path'])
    with open(path, 'rb') as handle:
        return [json.loads(line) for line in handle.read().decode().splitlines()]


def test_cloudinary_location_backup_restore_verify(tmp_path, cloud, repo):
    results = []
    seed_source(cloud)
    source = tmp_path / 'source'
    demo_instance.populated(str(source))
    source_env = add_location(source, cloud, 'cairn-source', '/cms/')
    demo_instance.register(source, 'cloudinary', {name: DATA[name] for name in REGISTERED})

    info = run_module('cairn_instance_info', env_file=str(source_env))
    results.append(info)
    described = info['instance']['locations'][1]
    assert described == {'name': 'cloudinary', 'driver': 'cloudinary', 'root': 'cms', 'cloud_name': 'cairn-source',
                         'access_mode': 'authenticated', 'api_url': cloud.api_url,
                         'delivery_url': cloud.delivery_url, 'credentials': 'configured'}, info

    lists = cloud.count('list')
    manifest, dump, files = backup(source_env, repo)
    results += [manifest, dump, files]
    # Two assets a page: images 4 (2 pages), videos 1, raw under cms/ 4 (2 pages).
    assert cloud.count('list') - lists == 5, 'the listing did not follow next_cursor'
    [summary] = [loc for loc in files['locations'] if loc['name'] == 'cloudinary']
    assert (summary['files'], summary['skipped_regenerable'], summary['transferred_files']) == (6, 2, 6), files
    rows = {row['filename_disk']: row for row in inventory(repo, manifest) if row['location'] == 'cloudinary'}
    assert sorted(rows) == sorted(LISTED.values())
    for name in KEPT:
        row = rows[LISTED[name]]
        assert (row['size'], row['sha256']) == (len(DATA[name]), hashlib.sha256(DATA[name]).hexdigest()), row

    # Nothing changed: nothing is read again (6 local files, 6 on Cloudinary).
    deliveries = cloud.count('deliver')
    second, _dump, files = backup(source_env, repo)
    results += [second, files]
    assert (files['transferred'], files['reused']) == (0, 12), files
    assert cloud.count('deliver') == deliveries

    # Restore into a second instance whose location is an empty cloud under another root.
    target = tmp_path / 'target'
    demo_instance.empty(str(target))
    target_env = add_location(target, cloud, 'cairn-target', 'restored')
    db, files = restore(target_env, repo, check_mode=True)
    results += [db, files]
    assert files['changed'] and files['transferred'] == 12 and contents(cloud, 'cairn-target') == {}, files
    chunks = cloud.count('chunk')
    db, files = restore(target_env, repo)
    results += [db, files]
    assert not db.failed and files['changed'] and files['transferred'] == 12, (db, files)
    # Every asset where CairnCMS looks for it: public_id and resource type from filename_disk, bytes equal.
    assert contents(cloud, 'cairn-target') == expected_target('restored')
    assert cloud.count('chunk') - chunks == 3

    db, files = restore(target_env, repo)
    results += [db, files]
    assert (db['changed'], files['changed'], files['unchanged'], files['transferred']) == (False, False, 12, 0), files

    verify = run_module('cairn_restore_verify', env_file=str(target_env), repository=repo, instance='blog',
                        checks=['repository', 'database', 'files'])
    results.append(verify)
    assert not verify.failed and all(check['ok'] for check in verify['checks']), [
        check for check in verify['checks'] if not check['ok']]
    checks = {check['name']: check for check in verify['checks']}
    assert checks['file bytes sha256']['detail'] == '12 file(s) equal', checks
    assert checks['directus_files have their bytes']['ok'], checks

    # A changed asset is caught by verify.
    cloud.put('cairn-target', 'raw', 'restored/' + TEXT, b'tampered', access_mode='authenticated')
    verify = run_module('cairn_restore_verify', env_file=str(target_env), repository=repo, instance='blog',
                        checks=['files'])
    results.append(verify)
    assert verify.failed and 'file bytes sha256' in verify['failed_checks'], verify

    # A cloud holding something else is refused without replace, and nothing changes.
    cloud.put('cairn-foreign', 'raw', 'restored/foreign.bin', b'not from the restore point')
    other = tmp_path / 'other'
    demo_instance.empty(str(other))
    other_env = add_location(other, cloud, 'cairn-foreign', 'restored')
    for check_mode in (True, False):
        files = run_module('cairn_storage_sync', env_file=str(other_env), repository=repo, instance='blog',
                           direction='restore', check_mode=check_mode)
        results.append(files)
        assert files.failed and 'nothing was changed' in files['msg'], files
    assert contents(cloud, 'cairn-foreign') == {('raw', 'restored/foreign.bin'): (b'not from the restore point',
                                                                                  None, 'public')}
    assert os.listdir(other / 'uploads') == []
    files = run_module('cairn_storage_sync', env_file=str(other_env), repository=repo, instance='blog',
                       direction='restore', replace=True)
    results.append(files)
    assert files['changed'] and files['removed'] == 1, files
    assert contents(cloud, 'cairn-foreign') == expected_target('restored')

    text = json.dumps(results)
    for key, secret in KEYS.values():
        assert secret not in text and key not in text


def _sync(repo, env, point):
    return run_module('cairn_storage_sync', env_file=str(env), repository=repo, instance='blog',
                      restore_point=point, direction='backup')


def test_cloudinary_errors_and_retries(tmp_path, cloud, repo):
    cloud.put('cairn-errors', 'raw', 'errs/a.txt', b'retried')
    source = tmp_path / 'source'
    demo_instance.populated(str(source), files=1)
    env = add_location(source, cloud, 'cairn-errors', 'errs')
    point = run_module('cairn_restore_point', repository=repo, instance='blog')['restore_point']

    # 429 (with Retry-After) and 5xx answers are retried: the backup goes through.
    cloud.fail_next(1, 429)
    cloud.fail_next(2, 503)
    files = _sync(repo, env, point)
    assert not files.failed, files
    [summary] = [loc for loc in files['locations'] if loc['name'] == 'cloudinary']
    assert (summary['files'], summary['bytes']) == (1, 7), files

    # A fault that persists: one clean error after the attempts.
    cloud.fail_next(backend_module.RETRY_ATTEMPTS, 502)
    files = _sync(repo, env, point)
    assert files.failed and files['msg'].startswith('Failed to list cloudinary://cairn-errors/errs/: '), files
    assert 'HTTP 502, after %d attempts' % backend_module.RETRY_ATTEMPTS in files['msg'], files

    # A wrong secret: 401, named, and the secret is not in the message.
    env.write_text(env.read_text().replace(KEYS['cairn-errors'][1], 'wrong-Secret-Tq8wE4rY6uI2oP0a'))
    files = _sync(repo, env, point)
    assert files.failed and files['msg'] == ('Failed to list cloudinary://cairn-errors/errs/: Invalid credentials '
                                             '(HTTP 401)'), files
    assert 'wrong-Secret' not in json.dumps(files)

    # Nothing listening: connection errors are retried, then one message.
    text = env.read_text().replace('wrong-Secret-Tq8wE4rY6uI2oP0a', KEYS['cairn-errors'][1])
    env.write_text(text.replace(cloud.api_url, 'http://127.0.0.1:9/api'))
    files = _sync(repo, env, point)
    assert files.failed and files['msg'].startswith('Failed to list cloudinary://cairn-errors/errs/: '), files
    assert 'after %d attempts' % backend_module.RETRY_ATTEMPTS in files['msg'], files


def _backend(server, cloud_name, root='sig', secret=None):
    key, real_secret = KEYS[cloud_name]
    return backend_module.CloudinaryStorage(Location('cloudinary', 'cloudinary', {
        'cloud_name': cloud_name, 'api_key': key, 'api_secret': secret or real_secret, 'access_mode': 'authenticated',
        'root': root, 'api_url': server.api_url, 'delivery_url': server.delivery_url}))


def test_signatures_are_checked(tmp_path, cloud):
    """The stand-in refuses what Cloudinary would refuse: a wrong upload signature, a wrong URL signature."""
    path = tmp_path / 'a.txt'
    path.write_bytes(b'signed')
    good = _backend(cloud, 'cairn-signed')
    good.upload('a.txt', str(path))
    assert cloud.assets('cairn-signed')[('raw', 'sig/a.txt')].data == b'signed'
    with good.open_read('a.txt') as handle:
        assert handle.read() == b'signed'
    assert good.stat('a.txt').size == 6 and good.stat('b.txt') is None

    bad = _backend(cloud, 'cairn-signed', secret='not-the-Secret-Mn3bV5cX7zL9')
    with pytest.raises(CairnError) as caught:
        bad.upload('b.txt', str(path))
    assert caught.value.message.startswith('Failed to upload cloudinary://cairn-signed/sig/b.txt: Invalid Signature')
    assert 'not-the-Secret' not in caught.value.message
    with pytest.raises(CairnError, match=r'Failed to read cloudinary://cairn-signed/sig/a.txt: .*\(HTTP 401\)'):
        bad.open_read('a.txt')
    with pytest.raises(CairnError, match='vanished'):
        good.open_read('gone.txt')

    good.delete('a.txt')
    good.delete('a.txt')  # "not found" is fine
    assert ('raw', 'sig/a.txt') not in cloud.assets('cairn-signed')


def test_extension_spellings_resolve_to_the_asset(cloud):
    """CairnCMS names an image by its upload's extension (.jpeg), Cloudinary keeps the format (jpg): the listing
    says x.jpg, and stat and reads of x.jpeg still find the image x, as CairnCMS's own reads do."""
    data = b'\xff\xd8\xff\xe0' + os.urandom(500)
    cloud.put('cairn-signed', 'image', 'photo', data, 'jpg', access_mode='authenticated')
    storage = _backend(cloud, 'cairn-signed')
    assert {entry.name for entry in storage.list()} >= {'photo.jpg'}
    assert 'photo.jpeg' not in {entry.name for entry in storage.list()}
    assert storage.stat('photo.jpeg').size == len(data) and storage.stat('photo.jpeg').name == 'photo.jpeg'
    with storage.open_read('photo.jpeg') as handle:
        assert handle.read() == data
    assert storage.stat('photo.png') is not None   # same public_id: CairnCMS would overwrite one with the other
    with pytest.raises(CairnError, match=r'Failed to read cloudinary://cairn-signed/sig/photo.png: .*HTTP 400'):
        storage.open_read('photo.png')              # the stand-in does not convert formats
