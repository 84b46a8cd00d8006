#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: cairn_storage_sync
short_description: Copy CairnCMS file bytes into a restore point and back
version_added: 0.1.0
description:
  - O(direction=backup) stores every file of the instance's storage locations in the repository's
    content-addressed blob store and writes the restore point's file inventory. It is incremental; a
    file whose size and modification time equal the previous restore point's record is not read again,
    and bytes already in the repository are not stored again; yet every restore point restores alone.
  - Files CairnCMS can regenerate (resized images written as C(<id>__<hash>.<ext>) beside their original,
    C(health-*) probe objects) are skipped unless O(include_regenerable=true).
  - O(direction=restore) writes the files of a restore point into the instance's locations, each checked
    against its sha256 in a temporary file before any file is put in place. Without O(replace) it only
    adds files and refuses, changing nothing, when a file would be overwritten or is not part of the
    restore point; with O(replace) the locations are made to match the restore point exactly.
  - On restore, O(location_map) sends the files of a restore point location into another location of the
    instance, of any driver (local disk to S3, S3 to GCS...). The bytes go there verbatim under the same
    C(filename_disk), since CairnCMS names a file C(<id>.<ext>) whatever the driver and the driver applies the
    location's C(ROOT). Give M(cairncms.ops.cairn_db_restore) the same map so that C(directus_files.storage)
    names the new location.
  - Storage directories are untrusted input. Below a local location's C(ROOT) (which is resolved as configured)
    no symlink is followed, as a directory or as the file itself, and only regular files are read or written
    (each path is walked from the root with C(O_NOFOLLOW), so a swap cannot slip in between a check and a use).
  - On backup, symlinks and special files (FIFOs, sockets, devices) are not captured and are reported in
    RV(irregular_files) with a warning; a file that is no longer a regular file when it is opened (swapped for a
    symlink after the listing) is left out and reported in RV(swapped_files); the C(directus_files) rows of the
    locations backed up whose bytes are missing or not a regular file are reported in RV(missing_files). None of
    these fails the backup; all three are recorded in the manifest's C(storage) section.
  - On restore, a symlink or special file in the target counts as a file that differs (where the restore point
    has a file of that name) or as one that is not in the restore point (elsewhere), so it is refused without
    O(replace); with O(replace) the entry itself is replaced or removed, never what it points at. A directory
    where the restore point has a file is refused, changing nothing.
  - A restore first removes the temporary files (C(.cairn-<random>.part), regular files only) that an
    interrupted restore left in a local location, and reports them in RV(leftovers_removed); not in check mode.
author:
  - cairncms.ops maintainers (!UNKNOWN)
extends_documentation_fragment:
  - cairncms.ops.instance
  - cairncms.ops.instance.REPOSITORY
  - cairncms.ops.instance.CLAIM
options:
  direction:
    description:
      - V(backup) copies from the instance into the staged restore point, V(restore) the other way.
    type: str
    choices: [backup, restore]
    required: true
  restore_point:
    description:
      - For V(backup), the id of the staged restore point; for V(restore), an id or V(latest).
    type: str
    default: latest
  locations:
    description:
      - Only these storage locations (names from C(STORAGE_LOCATIONS)); all by default.
    type: list
    elements: str
    default: []
  include_regenerable:
    description:
      - Also back up (or, on restore, count as content) files CairnCMS can regenerate.
    type: bool
    default: false
  checksum:
    description:
      - On backup, read and hash every file even when its size and time are unchanged.
    type: bool
    default: false
  replace:
    description:
      - On restore, overwrite differing files and remove files that are not in the restore point.
    type: bool
    default: false
  location_map:
    description:
      - On restore, storage location names of the restore point mapped to storage location names of this
        instance, for example V(local) to V(cloud); names not in the map stay as they are.
      - Refused, changing nothing, when a location of the restore point ends up with no location of that name
        here, or when two restore point locations that go into one location hold a file of the same name.
      - With O(locations), those are restore point location names.
    type: dict
    default: {}
  parallel:
    description:
      - Files transferred at a time (each between one storage location and the repository). Unchanged files
        are never transferred, so this matters for first runs and large changes.
      - The first failed transfer stops the run; files not yet started are skipped.
    type: int
    default: 8
notes:
  - On restore, O(instance) names the instance whose restore points are used (the source).
attributes:
  check_mode:
    support: full
    description: Returns what would be copied, kept and removed; refuses as a real run would.
  diff_mode:
    support: none
    description: Nothing to diff.
'''

EXAMPLES = r'''
- name: Back up the uploads into the staged restore point
  cairncms.ops.cairn_storage_sync:
    env_file: /srv/cairn/.env
    repository: {type: local, path: /var/backups/cairn}
    instance: blog
    restore_point: "{{ point.restore_point }}"
    direction: backup

- name: Restore the uploads of the newest restore point, removing stale files
  cairncms.ops.cairn_storage_sync:
    env_file: /srv/cairn/.env
    repository: {type: local, path: /var/backups/cairn}
    instance: blog
    direction: restore
    replace: true

- name: Restore the uploads of a local-disk instance into this instance's S3 location "cloud"
  cairncms.ops.cairn_storage_sync:
    env_file: /srv/cairn/.env
    repository: {type: local, path: /var/backups/cairn}
    instance: blog
    direction: restore
    location_map: {local: cloud}
'''

RETURN = r'''
files:
  description: Files in the restore point's inventory (backup).
  returned: O(direction=backup)
  type: int
transferred:
  description: Files read and copied (backup) or written (restore).
  returned: success
  type: int
transferred_bytes:
  description: Bytes read and copied, or written.
  returned: success
  type: int
reused:
  description: Files taken from the previous restore point without reading them (backup).
  returned: O(direction=backup)
  type: int
skipped_regenerable:
  description: Regenerable files skipped (backup).
  returned: O(direction=backup)
  type: int
unchanged:
  description: Files already equal in the target (restore).
  returned: O(direction=restore)
  type: int
removed:
  description: Files removed from the target because they are not in the restore point (restore).
  returned: O(direction=restore)
  type: int
irregular_files:
  description:
    - Symlinks and special files (FIFOs, sockets, devices) found below the storage roots, never followed or read.
      On backup they are not in the restore point; on restore they count as files that differ or are not in the
      restore point, and with O(replace) are replaced or removed themselves. A warning names them.
    - C(count), and up to five C(examples) as C(<location>:<name> (<kind>)).
  returned: success
  type: dict
  sample: {count: 2, examples: ['local:evil.png (symlink)', 'local:pipe (fifo)']}
swapped_files:
  description:
    - Files that were regular files when the location was listed but a symlink or special file when opened for
      reading; they are not in the restore point. A warning names them. C(count) and C(examples) (backup).
  returned: O(direction=backup)
  type: dict
  sample: {count: 1, examples: ['local:8b3c2f6e-4a1d-4c8e-9f2a-1d2e3f4a5b6c.png (symlink)']}
missing_files:
  description:
    - The C(directus_files) rows of the locations backed up whose bytes are not a regular file in their location
      (missing, a symlink, replaced during the backup, or in a location not in C(STORAGE_LOCATIONS)), so that the
      restore point cannot hold them. A warning names them; the backup does not fail. C(count) and C(examples).
    - Not returned when the database cannot be read; a warning then says why.
  returned: O(direction=backup)
  type: dict
  sample: {count: 1, examples: ['local:8b3c2f6e-4a1d-4c8e-9f2a-1d2e3f4a5b6c.png (missing)']}
leftovers_removed:
  description:
    - Temporary files of an interrupted restore removed from local locations before staging (in check mode, those
      that would be removed) (restore).
  returned: O(direction=restore)
  type: int
locations:
  description:
    - Per-location figures. On restore, one entry per target location, with C(location) (the restore point
      location, or several joined with commas) and C(target) (the location of this instance written), and
      C(read_to_compare), the objects of the target read to compare them (those of the same size whose listing
      gives no MD5 that matches the restore point's).
    - On backup also C(irregular_files) and C(swapped_files) per location; on restore C(irregular_files) and
      C(leftovers).
  returned: success
  type: list
  elements: dict
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.cairncms.ops.plugins.module_utils import _sync
from ansible_collections.cairncms.ops.plugins.module_utils._args import (
    instance_spec, load_config, load_repository, repository_spec)
from ansible_collections.cairncms.ops.plugins.module_utils._common import CairnError, check_name, run
from ansible_collections.cairncms.ops.plugins.module_utils._manifest import check


def action(module):
    params = module.params
    if not 1 <= params['parallel'] <= 64:
        raise CairnError('parallel must be between 1 and 64 (files transferred at a time), got %d'
                         % params['parallel'])
    repository = load_repository(params, writes=params['direction'] == 'backup')
    if params['direction'] == 'backup':
        return _sync.backup(load_config(params), repository, params['instance'],
                            check_name('restore point id', params['restore_point']),
                            locations=params['locations'], include_regenerable=params['include_regenerable'],
                            checksum=params['checksum'], check_mode=module.check_mode, parallel=params['parallel'])
    manifest = check(repository.resolve(params['instance'], params['restore_point']))
    return _sync.restore(load_config(params, repository, manifest), repository, params['instance'], manifest, replace=params['replace'],
                         locations=params['locations'], include_regenerable=params['include_regenerable'],
                         check_mode=module.check_mode, location_map=params['location_map'],
                         parallel=params['parallel'])


def main():
    spec = dict(instance_spec(), **repository_spec())
    spec.update({
        'direction': {'type': 'str', 'choices': ['backup', 'restore'], 'required': True},
        'locations': {'type': 'list', 'elements': 'str', 'default': []},
        'include_regenerable': {'type': 'bool', 'default': False},
        'checksum': {'type': 'bool', 'default': False},
        'replace': {'type': 'bool', 'default': False},
        'location_map': {'type': 'dict', 'default': {}},
        'parallel': {'type': 'int', 'default': 8},
    })
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True)
    run(module, action)


if __name__ == '__main__':
    main()
