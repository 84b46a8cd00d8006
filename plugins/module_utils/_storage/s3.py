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
import time
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

RETRY_ATTEMPTS = 5  # requests in all, the first included; standard mode backs off 50 ms x 2^n (1 s x 2^n if throttled)
MULTIPART_THRESHOLD = 64 * 1024 * 1024
MULTIPART_CHUNK = 16 * 1024 * 1024
_NOT_FOUND = ('404', 'NoSuchKey', 'NotFound')
_BROKEN_OFF = ()
if HAS_BOTO3:
    _BROKEN_OFF = (botocore.exceptions.ResponseStreamingError, botocore.exceptions.IncompleteReadError,
                   botocore.exceptions.ReadTimeoutError, botocore.exceptions.ConnectionClosedError)
_EXISTS = ('412', 'PreconditionFailed', '409', 'ConditionalRequestConflict')


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
                retries={'mode': 'standard', 'total_max_attempts': RETRY_ATTEMPTS},
                s3={'addressing_style': 'path' if options.get('force_path_style') else 'auto'})
            with self._errors('connect to'):
                session = boto3.session.Session(aws_access_key_id=options.get('key'),
                                                aws_secret_access_key=options.get('secret'),
                                                region_name=options.get('region'),
                                                profile_name=options.get('profile'))
                self._client = session.client('s3', endpoint_url=options.get('endpoint'), config=config)
        return self._client

    # -- the interface ----------------------------------------------------------------------------

    def list(self, under=''):
        paginator = self.client.get_paginator('list_objects_v2')
        with self._errors('list', under):
            for page in paginator.paginate(Bucket=self.place, Prefix=self.prefix + under):
                for item in page.get('Contents') or ():
                    name = item['Key'][len(self.prefix):]
                    if not name or name.endswith('/'):
                        continue  # folder markers made by consoles
                    yield Entry(name, item['Size'], _mtime_ns(item['LastModified']), _etag_md5(item.get('ETag')))

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
                    raise self.missing(name)
                raise
        reader = _ResumingBody(self, name, response)
        return SdkReader(self, name, reader.read, reader.close)

    def begin_write(self, name, mtime_ns=None):
        return UploadOnCommit(self, name)

    def delete(self, name):
        with self._errors('delete', name):
            self.client.delete_object(Bucket=self.place, Key=self._key(name))

    def _extra(self, name):
        options = self.location.options
        extra = {}
        content_type = mimetypes.guess_type(name)[0]
        if content_type:
            extra['ContentType'] = content_type
        if options.get('server_side_encryption'):
            extra['ServerSideEncryption'] = options['server_side_encryption']
        if options.get('acl'):
            extra['ACL'] = options['acl']
        return extra

    def put_bytes(self, name, data, if_absent=False):
        extra = self._extra(name)
        if if_absent:
            extra['IfNoneMatch'] = '*'
        with self._errors('write', name):
            try:
                self.client.put_object(Bucket=self.place, Key=self._key(name), Body=data, **extra)
            except botocore.exceptions.ClientError as exc:
                if if_absent and str(exc.response.get('Error', {}).get('Code')) in _EXISTS:
                    return False
                raise
        return True

    def upload_fileobj(self, name, handle, size):
        transfer = boto3.s3.transfer.TransferConfig(multipart_threshold=MULTIPART_THRESHOLD,
                                                    multipart_chunksize=MULTIPART_CHUNK, use_threads=False)
        with self._errors('upload', name):
            self.client.upload_fileobj(handle, self.place, self._key(name), ExtraArgs=self._extra(name),
                                       Config=transfer)


class _ResumingBody:
    """An object's body that, when the connection breaks off mid-body (botocore retries requests, not
    reads under way), asks for the rest with a ranged GET of the same version (``If-Match`` its ETag),
    up to ``RETRY_ATTEMPTS`` times in all."""

    def __init__(self, storage, name, response):
        self._storage = storage
        self._name = name
        self._body = response['Body']
        self._etag = response.get('ETag')
        self._offset = 0
        self._resumed = 0

    def read(self, size):
        while True:
            try:
                data = self._body.read(None if size < 0 else size)
            except _BROKEN_OFF:
                if self._resumed >= RETRY_ATTEMPTS - 1:
                    raise
                self._resumed += 1
                self._resume()
                continue
            self._offset += len(data)
            return data

    def _resume(self):
        self._body.close()
        time.sleep(0.05 * 2 ** self._resumed)
        storage = self._storage
        extra = {'IfMatch': self._etag} if self._etag else {}
        response = storage.client.get_object(Bucket=storage.place, Key=storage._key(self._name),
                                             Range='bytes=%d-' % self._offset, **extra)
        self._body = response['Body']

    def close(self):
        self._body.close()


def _etag_md5(etag):
    """The MD5 an ETag is, for single-part uploads ("<32 hex>"); multipart ETags ("<hex>-<parts>") are not.
    (SSE-KMS ETags look like one and are not: a mismatch only means the bytes are compared instead.)"""
    etag = (etag or '').strip('"').lower()
    return etag if len(etag) == 32 and all(c in '0123456789abcdef' for c in etag) else None


def _mtime_ns(value):
    """LastModified as nanoseconds, to the second (listings carry milliseconds, HEAD only seconds)."""
    return calendar.timegm(value.utctimetuple()) * 1000000000
