# -*- coding: utf-8 -*-
# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Storage backends for CairnCMS file locations (private): one file per driver.

A driver is one file here, ``<driver>.py``, whose ``BACKEND`` (a ``_base.StorageBackend``) holds all that is
the driver's: how its ``STORAGE_<LOC>_*`` variables read (``options_from_env``), what a description of a
location shows (``describe_options``), the objects themselves (``list``, ``stat``, ``open_read``...), the
bucket posture (``read_posture``, ``enforce_posture``, ``posture_fixes``) and, for an object store that can
hold a repository, the repository spec (``repository_spec``, ``repository_options``). ``_env``, ``_posture``
and ``_repository.objects`` ask the registry below for the driver; adding a driver is its file and its name
on the registry's import line (see ``_base.StorageBackend`` for the interface).
"""

from __future__ import annotations

from ansible_collections.cairncms.ops.plugins.module_utils._common import CairnError

_REGISTRY = {}


def _registry():
    """The backend class of every driver, by driver name, in the order messages list them. The import is one
    plain statement so that Ansible packs every driver with the module; the driver files import no SDK at
    import time, only when a backend is made (``load_sdk``): a run loads only the SDKs of the drivers it uses
    (boto3, google-cloud-storage and azure-storage-blob take ~0.4 s and ~40 MiB together)."""
    if not _REGISTRY:
        # The registry: one name per driver (its file here), in the order messages list them.
        # pylint: disable-next=import-outside-toplevel,unused-import
        from ansible_collections.cairncms.ops.plugins.module_utils._storage import local, s3, gcs, azure, cloudinary
        found = {name: module.BACKEND for name, module in dict(locals()).items()}  # in the order of the import
        for name, backend in found.items():
            if backend.driver != name:
                raise CairnError('storage driver file %s.py serves driver %r' % (name, backend.driver))
        _REGISTRY.update(found)
    return _REGISTRY


def drivers():
    """The names of the drivers this version supports."""
    return tuple(_registry())


def backend_class(driver):
    """The backend class of ``driver``, or None when no driver of that name is known."""
    return _registry().get(driver) if isinstance(driver, str) else None


def select_backend(location):
    backend = backend_class(location.driver)
    if backend is None:
        raise CairnError('storage driver %r (location %s) is not supported by this version of cairncms.ops; '
                         'use one of: %s' % (location.driver, location.name, ', '.join(drivers())))
    return backend(location)
