# -*- coding: utf-8 -*-
# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Argument specs shared by the modules (private); mirrored by plugins/doc_fragments."""

from __future__ import annotations

from ansible_collections.cairncms.ops.plugins.module_utils._common import check_name
from ansible_collections.cairncms.ops.plugins.module_utils._crypto import Crypto
from ansible_collections.cairncms.ops.plugins.module_utils._env import InstanceConfig
from ansible_collections.cairncms.ops.plugins.module_utils._repository import select_repository
from ansible_collections.cairncms.ops.plugins.module_utils._signing import Trust


def instance_spec():
    """cairncms.ops.instance: how to find the instance's configuration."""
    return {
        'env_file': {'type': 'path'},
        'env_overrides': {'type': 'dict', 'default': {}},
        'env_secret_overrides': {'type': 'dict', 'default': {}, 'no_log': True},
        'instance_dir': {'type': 'path'},
    }


def repository_spec(point=True):
    """cairncms.ops.repository: where restore points live, and the keys to their encrypted parts."""
    spec = {
        'repository': {'type': 'dict', 'required': True},
        'repository_credentials': {'type': 'dict', 'default': {}, 'no_log': True},
        'instance': {'type': 'str', 'required': True},
        'encryption_recipients': {'type': 'list', 'elements': 'str', 'default': []},
        'encryption_identity_file': {'type': 'path'},
        'encryption_identity': {'type': 'str', 'no_log': True},
        'encryption_passphrase': {'type': 'str', 'no_log': True},
        'encryption_required': {'type': 'bool', 'default': False},
        'trusted_signers': {'type': 'list', 'elements': 'str', 'default': []},
    }
    if point:
        spec['restore_point'] = {'type': 'str', 'default': 'latest'}
        spec['claim'] = {'type': 'str'}
        spec['time_limit'] = {'type': 'int', 'default': 0}
    return spec


def load_config(params):
    return InstanceConfig.load(params.get('env_file'), params.get('env_overrides'), params.get('instance_dir'),
                               params.get('env_secret_overrides'))


def load_crypto(params):
    identity = params.get('encryption_identity_file')
    text = params.get('encryption_identity')
    return Crypto(params.get('encryption_recipients') or (), [identity] if identity else (),
                  required=bool(params.get('encryption_required')), passphrase=params.get('encryption_passphrase'),
                  identity_texts=[text] if text else ())


def load_repository(params, writes=False, keys=True):
    """The repository of ``params``; with a passphrase, its wrapped key is unwrapped (and made, by a run
    that ``writes`` restore points, when the instance has none yet) - unless ``keys`` is false, for a module that
    never reads or writes encrypted data (unwrapping costs a second of scrypt). With ``trusted_signers``, every
    manifest read must be signed by one of them; with ``claim``, the reader claim is checked and kept fresh while
    the module works."""
    check_name('instance', params['instance'])
    repository = select_repository(params['repository'], load_crypto(params), params.get('repository_credentials'))
    if params.get('trusted_signers'):
        repository.trust = Trust(params['trusted_signers'])
    if keys and repository.crypto.passphrase:
        repository.crypto.add_identity(repository.passphrase_identity(params['instance'], create=writes))
    if params.get('claim'):
        repository.keep_claim(params['instance'], params['claim'])
    return repository
