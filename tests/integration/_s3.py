# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A throwaway S3 endpoint for the tests: ``moto_server`` (moto[server]) on a free 127.0.0.1 port.

    with MotoServer() as server:
        server.endpoint             # http://127.0.0.1:PORT
        server.create_bucket('b')   # a fresh bucket
        server.client()             # a boto3 client for it (dummy credentials)
"""

from __future__ import annotations

import os
import shutil
import sys

from _emulator import Emulator

ACCESS_KEY = 'AKIACAIRNTESTKEY0001'
SECRET_KEY = 'cairn-s3-secret-Zq8wX3vN5pL1rT7y'  # dummy; the tests check that it never leaks
REGION = 'us-east-1'


class S3Unavailable(Exception):
    pass


def _command():
    here = os.path.join(os.path.dirname(sys.executable), 'moto_server')
    found = here if os.path.exists(here) else shutil.which('moto_server')
    if not found:
        raise S3Unavailable('moto_server not found: pip install "moto[server]>=5.0.0"')
    return [found]


class MotoServer(Emulator):
    name = 'moto_server'
    unavailable = S3Unavailable
    probe_path = '/moto-api/'

    @property
    def endpoint(self):
        return self.base_url

    def launch(self, port):
        return _command() + ['-H', '127.0.0.1', '-p', str(port)], {
            'env': dict(os.environ, MOTO_ALLOW_NONEXISTENT_REGION='true')}

    def client(self):
        import boto3
        import botocore.config
        return boto3.client('s3', endpoint_url=self.endpoint, region_name=REGION, aws_access_key_id=ACCESS_KEY,
                            aws_secret_access_key=SECRET_KEY,
                            config=botocore.config.Config(s3={'addressing_style': 'path'}))

    def create_bucket(self, name):
        self.client().create_bucket(Bucket=name)
        return name


def env_lines(location, endpoint, bucket, root='', key=ACCESS_KEY, secret=SECRET_KEY):
    """The .env lines of an s3 storage location pointing at ``endpoint``."""
    prefix = 'STORAGE_%s_' % location.upper()
    lines = ['%sDRIVER=s3' % prefix, '%sBUCKET=%s' % (prefix, bucket), '%sREGION=%s' % (prefix, REGION),
             '%sENDPOINT=%s' % (prefix, endpoint), '%sFORCE_PATH_STYLE=true' % prefix]
    if root:
        lines.append('%sROOT=%s' % (prefix, root))
    if key:
        lines += ['%sKEY=%s' % (prefix, key), '%sSECRET=%s' % (prefix, secret)]
    return '\n'.join(lines) + '\n'
