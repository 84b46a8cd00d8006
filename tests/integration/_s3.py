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
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

ACCESS_KEY = 'AKIACAIRNTESTKEY0001'
SECRET_KEY = 'cairn-s3-secret-Zq8wX3vN5pL1rT7y'  # dummy; the tests check that it never leaks
REGION = 'us-east-1'


class S3Unavailable(Exception):
    pass


def _free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def _command():
    here = os.path.join(os.path.dirname(sys.executable), 'moto_server')
    found = here if os.path.exists(here) else shutil.which('moto_server')
    if not found:
        raise S3Unavailable('moto_server not found: pip install "moto[server]>=5.0.0"')
    return [found]


class MotoServer:
    def __init__(self):
        self.port = None
        self.process = None

    @property
    def endpoint(self):
        return 'http://127.0.0.1:%d' % self.port

    def start(self, timeout=30):
        for _attempt in range(3):
            self.port = _free_port()
            self.process = subprocess.Popen(_command() + ['-H', '127.0.0.1', '-p', str(self.port)],
                                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                            env=dict(os.environ, MOTO_ALLOW_NONEXISTENT_REGION='true'))
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and self.process.poll() is None:
                try:
                    urllib.request.urlopen(self.endpoint + '/moto-api/', timeout=1).read()
                    return self
                except (urllib.error.URLError, ConnectionError, OSError):
                    time.sleep(0.1)
            self.stop()
        raise S3Unavailable('moto_server did not answer on %s' % self.endpoint)

    def stop(self):
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

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
