# -*- coding: utf-8 -*-
# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Storage backends for CairnCMS file locations (private): one file per driver."""

from __future__ import annotations

from ansible_collections.cairncms.ops.plugins.module_utils._common import CairnError
from ansible_collections.cairncms.ops.plugins.module_utils._storage import azure, gcs, local, s3

BACKENDS = {
    'local': local.LocalStorage,
    's3': s3.S3Storage,
    'gcs': gcs.GcsStorage,
    'azure': azure.AzureStorage,
}


def select_backend(location):
    try:
        return BACKENDS[location.driver](location)
    except KeyError:
        raise CairnError('storage driver %r (location %s) is not supported by this version of cairncms.ops'
                         % (location.driver, location.name))
