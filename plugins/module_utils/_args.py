# -*- coding: utf-8 -*-
# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Argument specs shared by the modules (private); mirrored by plugins/doc_fragments."""

from __future__ import annotations

import os

from ansible_collections.cairncms.ops.plugins.module_utils._common import CairnError, check_name
from ansible_collections.cairncms.ops.plugins.module_utils._crypto import Crypto
from ansible_collections.cairncms.ops.plugins.module_utils._env import InstanceConfig, merge_overrides, parse_dotenv
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


def db_restore_spec():
    """The options of a database restore (cairn_db_restore, cairn_restore)."""
    return {
        'replace': {'type': 'bool', 'default': False},
        'keep_safety_copy': {'type': 'bool', 'default': False},
        'jobs': {'type': 'int', 'default': 1},
        'work_dir': {'type': 'path'},
        'on_version_mismatch': {'type': 'str', 'choices': ['warn', 'refuse'], 'default': 'warn'},
        'on_migration_mismatch': {'type': 'str', 'choices': ['warn', 'refuse'], 'default': 'warn'},
        'location_map': {'type': 'dict', 'default': {}},
        'quiesce': {'type': 'list', 'elements': 'str', 'choices': ['flows', 'webhooks'], 'default': []},
    }


def http_spec(flows=True):
    """The HTTP checks of a running instance (cairn_restore_verify; cairn_restore without the flow checks, which
    write into the instance)."""
    options = {
        'url': {'type': 'str'},
        'email': {'type': 'str'},
        'password': {'type': 'str', 'no_log': True},
        'collections': {'type': 'list', 'elements': 'str', 'default': []},
        'assets': {'type': 'int', 'default': 10},
        'app': {'type': 'bool', 'default': False},
        'activity': {'type': 'bool', 'default': False},
        'timeout': {'type': 'int', 'default': 30},
        'validate_certs': {'type': 'bool', 'default': True},
    }
    if flows:
        options['flow'] = {'type': 'bool', 'default': False}
        options['named_flow'] = {'type': 'dict', 'options': {
            'id': {'type': 'str', 'required': True},
            'payload': {'type': 'dict', 'default': {}},
            'expect': {'type': 'raw', 'required': True},
        }}
    return {'type': 'dict', 'default': {}, 'options': options}


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


def load_config(params, repository=None, manifest=None):
    """The instance's configuration: its .env with the overrides. For a restore (``repository`` and the
    ``manifest`` of the restore point given) into a new home, where ``env_file`` does not exist yet: the
    configuration captured in the restore point with the overrides applied, the very .env the restore will write
    there, so the operator gives only what differs in the new home (paths, PUBLIC_URL, the database host). When the
    point holds no configuration this host can read (none captured, no identity), the overrides alone must say
    where things go, as before; without DB_CLIENT among them that is an error naming both ways."""
    env_file = params.get('env_file')
    if repository is not None and manifest is not None and env_file and not os.path.exists(env_file):
        from ansible_collections.cairncms.ops.plugins.module_utils import _secrets  # it imports the config code
        overrides = merge_overrides(params.get('env_overrides'), params.get('env_secret_overrides'))
        try:
            text = _secrets.captured_env(repository, params['instance'], manifest)
        except CairnError as exc:
            if 'DB_CLIENT' not in overrides:
                raise CairnError('there is no .env at %s yet (a new home), and the configuration in restore point '
                                 '%s cannot be read here: %s. Give the key that decrypts it '
                                 '(cairn_encryption_identity or cairn_encryption_identity_file), or say in '
                                 'cairn_env_overrides where things go (DB_CLIENT, DB_FILENAME or DB_HOST, '
                                 'STORAGE_<LOC>_ROOT)' % (env_file, manifest['id'], exc.message)) from None
        else:
            base_dir = os.path.abspath(params.get('instance_dir') or os.path.dirname(os.path.abspath(env_file)))
            return InstanceConfig.from_dotenv(parse_dotenv(_secrets.render_env(text, overrides)), base_dir, env_file)
    return InstanceConfig.load(env_file, params.get('env_overrides'), params.get('instance_dir'),
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
