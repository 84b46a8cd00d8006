# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""filename_disk <-> Cloudinary asset, and the signatures, as CairnCMS's Cloudinary driver (10.0.0) does them."""

from __future__ import annotations

import base64
import hashlib

import pytest

from ansible_collections.cairncms.ops.plugins.module_utils._env import Location
from ansible_collections.cairncms.ops.plugins.module_utils._storage.cloudinary import (
    CloudinaryStorage, api_signature, url_signature)


def _storage(root=''):
    return CloudinaryStorage(Location('pics', 'cloudinary', {
        'cloud_name': 'demo', 'api_key': '1', 'api_secret': 's', 'access_mode': None, 'root': root,
        'api_url': 'https://api.cloudinary.com', 'delivery_url': 'https://res.cloudinary.com'}))


@pytest.mark.parametrize('root, name, address', [
    ('', 'abc.png', ('image', 'abc')),
    ('', 'abc.jpeg', ('image', 'abc')),
    ('', 'abc.mp4', ('video', 'abc')),
    ('', 'abc.pdf', ('image', 'abc')),          # pdf is an image to the driver
    ('', 'abc.JPG', ('raw', 'abc.JPG')),        # the driver's extension lists are case-sensitive
    ('', 'abc.txt', ('raw', 'abc.txt')),
    ('', 'health-AbC12', ('raw', 'health-AbC12')),
    ('', 'docs/report.txt', ('raw', 'docs/report.txt')),
    ('', 'docs/pic.png', ('image', 'pic')),     # parse(path).name: the folder is dropped
    ('cms', 'abc.png', ('image', 'abc')),       # ... and so is the root
    ('cms', 'abc.txt', ('raw', 'cms/abc.txt')),
    ('cms/up', 'd/abc.bin', ('raw', 'cms/up/d/abc.bin')),
])
def test_address_is_the_drivers(root, name, address):
    assert _storage(root).address(name) == address


@pytest.mark.parametrize('root, kind, resource, name', [
    ('', 'image', {'public_id': 'abc', 'format': 'png'}, 'abc.png'),
    ('', 'image', {'public_id': 'abc', 'format': 'jpg'}, 'abc.jpg'),
    ('', 'video', {'public_id': 'abc', 'format': 'mp4'}, 'abc.mp4'),
    ('', 'raw', {'public_id': 'abc.txt'}, 'abc.txt'),
    ('', 'raw', {'public_id': 'docs/r.txt'}, 'docs/r.txt'),
    ('cms', 'raw', {'public_id': 'cms/abc.txt'}, 'abc.txt'),
    ('cms', 'image', {'public_id': 'abc', 'format': 'png'}, 'abc.png'),
    # Assets CairnCMS cannot address are not part of the location:
    ('cms', 'raw', {'public_id': 'elsewhere/abc.txt'}, None),              # outside the root
    ('', 'image', {'public_id': 'samples/cat', 'format': 'jpg'}, None),    # a nested image
    ('', 'image', {'public_id': 'abc', 'format': 'jxl'}, None),            # a format outside the lists
    ('', 'image', {'public_id': 'abc'}, None),                             # no format
    ('', 'raw', {'public_id': 'abc.png'}, None),                           # CairnCMS would look for an image
    ('', 'video', {'public_id': 'abc', 'format': 'png'}, None),            # ... and here for an image too
])
def test_listed_assets_map_back_to_filename_disk(root, kind, resource, name):
    storage = _storage(root)
    assert storage.name_of(kind, resource) == name
    if name is not None:
        assert storage.address(name) == (kind, resource['public_id'])


def test_upload_signature_is_over_sorted_raw_parameters():
    # Cloudinary's documented example parameters; the payload is not URL-encoded.
    params = {'timestamp': '1315060510', 'public_id': 'sample', 'eager': 'w_400,h_300,c_pad|w_260,h_200,c_crop'}
    payload = b'eager=w_400,h_300,c_pad|w_260,h_200,c_crop&public_id=sample&timestamp=1315060510abcd'
    assert api_signature(params, 'abcd') == hashlib.sha256(payload).hexdigest()
    assert api_signature(dict(params, public_id='cms/a b.txt'), 'abcd') == hashlib.sha256(
        payload.replace(b'public_id=sample', b'public_id=cms/a b.txt')).hexdigest()


def test_url_signature_is_eight_url_safe_characters():
    signature = url_signature('cms/abc.txt', 'abcd')
    digest = base64.urlsafe_b64encode(hashlib.sha256(b'cms/abc.txtabcd').digest()).decode()
    assert signature == 's--%s--' % digest[:8] and len(signature) == 13
    assert url_signature('cms/abc.txt', 'other') != signature
