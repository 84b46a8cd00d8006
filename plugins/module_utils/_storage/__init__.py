# -*- coding: utf-8 -*-
# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Storage backends for CairnCMS file locations (private): one file per driver."""

from __future__ import annotations

from ansible_collections.cairncms.ops.plugins.module_utils._common import CairnError
DRIVERS = ('local', 's3', 'gcs', 'azure', 'cloudinary')


def _backend_class(driver):
    """The backend of ``driver``, its module imported on first use: a run loads only the SDKs of the
    drivers it meets (boto3, google-cloud-storage and azure-storage-blob take ~0.4 s and ~40 MiB together).
    The imports are plain statements so that Ansible packs every backend with the module."""
    # pylint: disable=import-outside-toplevel
    if driver == 'local':
        from ansible_collections.cairncms.ops.plugins.module_utils._storage import local
        return local.LocalStorage
    if driver == 's3':
        from ansible_collections.cairncms.ops.plugins.module_utils._storage import s3
        return s3.S3Storage
    if driver == 'gcs':
        from ansible_collections.cairncms.ops.plugins.module_utils._storage import gcs
        return gcs.GcsStorage
    if driver == 'azure':
        from ansible_collections.cairncms.ops.plugins.module_utils._storage import azure
        return azure.AzureStorage
    if driver == 'cloudinary':
        from ansible_collections.cairncms.ops.plugins.module_utils._storage import cloudinary
        return cloudinary.CloudinaryStorage
    return None


def select_backend(location):
    backend = _backend_class(location.driver)
    if backend is None:
        raise CairnError('storage driver %r (location %s) is not supported by this version of cairncms.ops; '
                         'use one of: %s' % (location.driver, location.name, ', '.join(DRIVERS)))
    return backend(location)
