# -*- coding: utf-8 -*-
# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""S3 storage (STORAGE_<LOC>_DRIVER=s3) through boto3 (private).

Object names are keys relative to the location's root prefix
(``STORAGE_<LOC>_ROOT``), as CairnCMS stores them. A staged write keeps its
bytes in a local temporary file and uploads the object only on
``commit()`` (multipart when large), so nothing is visible
in the bucket before that. Every SDK error becomes one ``CairnError``
("Failed to <verb> s3://bucket/key: <cause>") in ``_errors``.
"""

from __future__ import annotations

import calendar
import mimetypes
import traceback

from ansible_collections.cairncms.ops.plugins.module_utils._common import CairnError
from ansible_collections.cairncms.ops.plugins.module_utils._storage._base import (
    Entry, ObjectStore, SdkReader, UploadOnCommit)

try:
    import boto3
    import boto3.exceptions
    import boto3.s3.transfer
    import botocore.config
    import botocore.exceptions
    HAS_BOTO3 = True
    BOTO3_IMPORT_ERROR = None
except ImportError:
    HAS_BOTO3 = False
    BOTO3_IMPORT_ERROR = traceback.format_exc()

RETRY_ATTEMPTS = 5
MULTIPART_THRESHOLD = 64 * 1024 * 1024
MULTIPART_CHUNK = 16 * 1024 * 1024
_NOT_FOUND = ('404', 'NoSuchKey', 'NotFound')


def _cause(exc):
    response = getattr(exc, 'response', None)
    if isinstance(response, dict) and response.get('Error'):
        error = response['Error']
        code, message = error.get('Code'), error.get('Message')
        return ('%s (%s)' % (message, code) if message and code else message or code) or str(exc)
    return str(exc) or exc.__class__.__name__


class S3Storage(ObjectStore):
    driver = 's3'
    scheme = 's3'
    place_option = 'bucket'
    secret_option = 'secret'

    def __init__(self, location):
        super().__init__(location)
        self._client = None

    # -- plumbing ---------------------------------------------------------------------------------

    def is_sdk_error(self, exc):
        return HAS_BOTO3 and isinstance(exc, (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError,
                                              boto3.exceptions.Boto3Error))

    def cause(self, exc):
        return _cause(exc)

    @property
    def client(self):
        if self._client is None:
            if not HAS_BOTO3:
                raise CairnError('the Python library boto3 is needed for the S3 storage location %s on this host: '
                                 'pip install "boto3>=1.26.0" for the Python Ansible uses here'
                                 % self.location.name, exception=BOTO3_IMPORT_ERROR)
            options = self.location.options
            config = botocore.config.Config(
                retries={'mode': 'standard', 'max_attempts': RETRY_ATTEMPTS},
                s3={'addressing_style': 'path' if options.get('force_path_style') else 'auto'})
            with self._errors('connect to'):
                session = boto3.session.Session(aws_access_key_id=options.get('key'),
                                                aws_secret_access_key=options.get('secret'),
                                                region_name=options.get('region'))
                self._client = session.client('s3', endpoint_url=options.get('endpoint'), config=config)
        return self._client

    # -- the interface ----------------------------------------------------------------------------

    def list(self):
        paginator = self.client.get_paginator('list_objects_v2')
        with self._errors('list'):
            for page in paginator.paginate(Bucket=self.place, Prefix=self.prefix):
                for item in page.get('Contents') or ():
                    name = item['Key'][len(self.prefix):]
                    if not name or name.endswith('/'):
                        continue  # folder markers made by consoles
                    yield Entry(name, item['Size'], _mtime_ns(item['LastModified']))

    def stat(self, name):
        with self._errors('stat', name):
            try:
                head = self.client.head_object(Bucket=self.place, Key=self._key(name))
            except botocore.exceptions.ClientError as exc:
                if str(exc.response.get('Error', {}).get('Code')) in _NOT_FOUND:
                    return None
                raise
        return Entry(name, head['ContentLength'], _mtime_ns(head['LastModified']))

    def open_read(self, name):
        with self._errors('read', name):
            try:
                response = self.client.get_object(Bucket=self.place, Key=self._key(name))
            except botocore.exceptions.ClientError as exc:
                if str(exc.response.get('Error', {}).get('Code')) in _NOT_FOUND:
                    raise CairnError('file %s vanished from storage location %s while it was read'
                                     % (name, self.location.name))
                raise
        body = response['Body']
        return SdkReader(self, name, lambda size: body.read(None if size < 0 else size), body.close)

    def begin_write(self, name, mtime_ns=None):
        return UploadOnCommit(self, name)

    def delete(self, name):
        with self._errors('delete', name):
            self.client.delete_object(Bucket=self.place, Key=self._key(name))

    def upload(self, name, path):
        options = self.location.options
        extra = {}
        content_type = mimetypes.guess_type(name)[0]
        if content_type:
            extra['ContentType'] = content_type
        if options.get('server_side_encryption'):
            extra['ServerSideEncryption'] = options['server_side_encryption']
        if options.get('acl'):
            extra['ACL'] = options['acl']
        with self._errors('upload', name):
            transfer = boto3.s3.transfer.TransferConfig(multipart_threshold=MULTIPART_THRESHOLD,
                                                        multipart_chunksize=MULTIPART_CHUNK, use_threads=False)
            with open(path, 'rb') as handle:
                self.client.upload_fileobj(handle, self.place, self._key(name), ExtraArgs=extra, Config=transfer)


def _mtime_ns(value):
    """LastModified as nanoseconds, to the second (listings carry milliseconds, HEAD only seconds)."""
    return calendar.timegm(value.utctimetuple()) * 1000000000
