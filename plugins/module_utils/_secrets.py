# -*- coding: utf-8 -*-
# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The secrets bundle (private): the instance's .env, the files its ``*_FILE`` variables name, and
listed extra files (TLS material, key files), as one age-encrypted tar in the restore point.

Never stored in plaintext: without a recipient nothing is captured and the manifest says so. The
manifest lists variable names with a keyed fingerprint of each value: HMAC-SHA256 under a key derived
from the instance's SECRET (or, without one, a random key kept inside the bundle), never the value
and never an unkeyed hash of it.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import os
import re
import secrets
import tarfile
import uuid

from ansible_collections.cairncms.ops.plugins.module_utils import _guard
from ansible_collections.cairncms.ops.plugins.module_utils._common import AtomicFile, CairnError, HashingWriter, utc_now
from ansible_collections.cairncms.ops.plugins.module_utils._env import InstanceConfig, looks_secret, parse_dotenv

BUNDLE = 'secrets.tar'
FINGERPRINT_CONTEXT = b'cairncms.ops/fingerprint/v1'
EXTRA_SECRET = re.compile(r'^(KEY|AUTH_.*_CLIENT_SECRET|EMAIL_SMTP_PASSWORD|.*_KEY_FILENAME)$')


def is_secret(name, extra=()):
    return looks_secret(name) or bool(EXTRA_SECRET.match(name)) or any(re.match('^%s$' % p, name) for p in extra)


def fingerprint_key(values):
    secret = values.get('SECRET')
    if secret:
        return hmac.new(str(secret).encode('utf-8'), FINGERPRINT_CONTEXT, hashlib.sha256).digest(), 'secret'
    return secrets.token_bytes(32), 'bundle'


def fingerprint(key, name, value):
    return hmac.new(key, b'%s=%s' % (name.encode('utf-8'), value.encode('utf-8')), hashlib.sha256).hexdigest()[:32]


def _resolve(path, base_dir):
    return path if os.path.isabs(path) else os.path.join(base_dir, path)


def build_bundle(config, extra_files=(), secret_patterns=()):
    """(tar bytes, manifest section) of an instance's configuration and secrets."""
    if not config.env_file:
        raise CairnError('capturing secrets needs the instance .env (cairn_env_file)')
    with open(config.env_file, 'rb') as handle:
        env_bytes = handle.read()
    raw = parse_dotenv(env_bytes.decode('utf-8'))
    key, key_source = fingerprint_key(config.values)
    files = []
    for name, value in sorted(raw.items()):
        if name.endswith('_FILE') and value:
            files.append(('variable', name, _resolve(value, config.base_dir)))
    files += [('extra', None, path) for path in extra_files]
    buffer = io.BytesIO()
    index = {'env_file': config.env_file, 'files': [], 'captured_at': utc_now().strftime('%Y-%m-%dT%H:%M:%SZ')}
    if key_source == 'bundle':
        index['fingerprint_key'] = key.hex()
    with tarfile.open(fileobj=buffer, mode='w', format=tarfile.PAX_FORMAT) as archive:
        _add(archive, 'env/.env', env_bytes, 0o600)
        for kind, variable, path in files:
            try:
                with open(path, 'rb') as handle:
                    data = handle.read()
                mode = os.stat(path).st_mode & 0o777
            except OSError as exc:
                raise CairnError('cannot read %s (%s) for the secrets bundle: %s' % (
                    path, variable or 'cairn_secret_files', exc.strerror))
            member = 'files/%d' % len(index['files'])
            _add(archive, member, data, mode)
            index['files'].append({'member': member, 'path': path, 'variable': variable, 'kind': kind,
                                   'mode': '%04o' % mode, 'size': len(data)})
        _add(archive, 'index.json', json.dumps(index, indent=2, sort_keys=True).encode('utf-8'), 0o600)
    variables = {name: {'secret': is_secret(name, secret_patterns), 'fingerprint': fingerprint(key, name, value)}
                 for name, value in sorted(raw.items())}
    for kind, variable, path in files:
        if variable:
            with open(path, 'rb') as handle:
                content = handle.read().decode('utf-8', 'replace')
            variables[variable[:-5]] = {'secret': is_secret(variable[:-5], secret_patterns), 'from_file': True,
                                        'fingerprint': fingerprint(key, variable[:-5], content)}
    section = {'captured': True, 'variables': variables, 'fingerprint_key': key_source,
               'files': [{'path': entry['path'], 'variable': entry['variable'], 'size': entry['size']}
                         for entry in index['files']]}
    return buffer.getvalue(), section


def _add(archive, name, data, mode):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = mode
    archive.addfile(info, io.BytesIO(data))


def capture(config, repository, instance, point_id, extra_files=(), secret_patterns=(), check_mode=False):
    crypto = repository.crypto
    if not crypto.encrypts:
        part = {'captured': False, 'reason': 'no encryption recipient is configured '
                                             '(cairn_encryption_recipients): secrets are never stored in plaintext'}
        if not check_mode:
            repository.write_part(instance, point_id, 'secrets', part)
        return {'changed': not check_mode, 'captured': False,
                'warnings': ['SECRETS NOT CAPTURED: no encryption recipient is configured, so the restore point '
                             'holds no .env, KEY or SECRET; set cairn_encryption_recipients']}
    data, section = build_bundle(config, extra_files, secret_patterns)
    result = {'changed': not check_mode, 'captured': True, 'variables': sorted(section['variables']),
              'files': [entry['path'] for entry in section['files']]}
    if check_mode:
        return result
    with repository.artifact_writer(instance, point_id, BUNDLE, encrypted=True) as handle:
        hashed = HashingWriter(handle)
        hashed.write(data)
    section.update({'artifact': BUNDLE, 'size_bytes': hashed.size, 'sha256': hashed.sha256,
                    'encryption': crypto.describe()})
    repository.write_part(instance, point_id, 'secrets', section)
    result['size_bytes'] = hashed.size
    return result


def open_bundle(repository, instance, manifest):
    """(index, {member: bytes}) of a restore point's bundle; decrypted and checked before anything is used."""
    section = manifest.get('secrets') or {}
    if not section.get('captured'):
        raise CairnError('restore point %s holds no secrets: %s' % (manifest['id'], section.get('reason', '')))
    with repository.open_artifact(instance, manifest['id'], section['artifact'], encrypted=True) as handle:
        data = handle.read()
    if hashlib.sha256(data).hexdigest() != section['sha256']:
        raise CairnError('the secrets bundle of restore point %s does not match its manifest' % manifest['id'])
    members = {}
    with tarfile.open(fileobj=io.BytesIO(data), mode='r') as archive:
        for member in archive.getmembers():
            members[member.name] = archive.extractfile(member).read()
    return json.loads(members['index.json'].decode('utf-8')), members


_BARE = re.compile(r'^[A-Za-z0-9_./:@,+%=-]*$')


def env_line(name, value):
    value = str(value)
    if _BARE.match(value):
        return '%s=%s' % (name, value)
    if "'" not in value and '\n' not in value:
        return "%s='%s'" % (name, value)
    if '"' not in value:
        return '%s="%s"' % (name, value.replace('\n', '\\n'))
    raise CairnError('the value for %s holds both quote characters and cannot be written to a .env' % name)


def render_env(text, overrides):
    """The .env ``text`` with ``overrides`` set: lines of those names (and their ``_FILE`` twins) replaced."""
    names = set(overrides)
    twins = {name + '_FILE' for name in names} | {name[:-5] for name in names if name.endswith('_FILE')}
    lines, done = [], set()
    for line in text.splitlines():
        match = re.match(r'^\s*(?:export\s+)?([\w.-]+)\s*[=:]', line)
        name = match.group(1) if match else None
        if name in names:
            if name not in done:
                lines.append(env_line(name, overrides[name]))
                done.add(name)
            continue
        if name in twins:
            continue
        lines.append(line)
    missing = [name for name in overrides if name not in done]
    if missing:
        lines.append('# set by cairncms.ops at restore')
        lines.extend(env_line(name, overrides[name]) for name in missing)
    return '\n'.join(lines) + '\n'


def restore(repository, instance, manifest, env_file, overrides, rotate=(), replace=False, restore_files=False,
            check_mode=False, rotate_once=False, refuse_shared=False):
    """Write ``env_file`` from the restore point's captured .env with ``overrides``. ``rotate``: new KEY and/or
    SECRET (with ``rotate_once``, only where ``env_file`` has none yet: a copy keeps its own). ``refuse_shared``:
    refuse, writing nothing, a configuration that shares the database or storage of the source as captured."""
    index, members = open_bundle(repository, instance, manifest)
    current = None
    if os.path.exists(env_file):
        with open(env_file, 'r', encoding='utf-8') as handle:
            current = handle.read()
    own = parse_dotenv(current) if current is not None and rotate_once else {}
    values = dict(overrides)
    fresh = []
    for name in rotate:
        if name not in ('KEY', 'SECRET'):
            raise CairnError('only KEY and SECRET can be rotated, not %s' % name)
        if own.get(name):
            values[name] = own[name]
            continue
        values[name] = secrets.token_urlsafe(32) if name == 'SECRET' else str(uuid.uuid4())
        fresh.append(name)
    captured = members['env/.env'].decode('utf-8')
    text = render_env(captured, values)
    if refuse_shared:
        copy = InstanceConfig.from_dotenv(parse_dotenv(text), os.path.dirname(os.path.abspath(env_file)), env_file)
        _guard.refuse_shared(copy, 'the configuration for %s' % env_file, 'cairn_clone_env_overrides',
                             [_guard.source_as_captured(manifest, captured)])
    result = {'changed': False, 'path': env_file, 'rotated': sorted(fresh), 'overridden': sorted(overrides),
              'files': []}
    if current is not None and not fresh and current == text:
        result['msg'] = 'the .env already holds the configuration of restore point %s' % manifest['id']
    elif current is not None and not replace:
        result['skipped'] = True
        result['warnings'] = ['%s exists and differs from the configuration in restore point %s; it was not '
                              'overwritten (set cairn_restore_replace to replace it)' % (env_file, manifest['id'])]
    else:
        result['changed'] = True
        if not check_mode:
            with AtomicFile(env_file, mode=0o600) as handle:
                handle.write(text.encode('utf-8'))
    if restore_files:
        for entry in index['files']:
            data = members[entry['member']]
            if os.path.exists(entry['path']):
                with open(entry['path'], 'rb') as handle:
                    if handle.read() == data:
                        continue
                if not replace:
                    raise CairnError('%s exists and differs from the copy in restore point %s; set '
                                     'cairn_restore_replace to overwrite it' % (entry['path'], manifest['id']))
            result['changed'] = True
            result['files'].append(entry['path'])
            if not check_mode:
                with AtomicFile(entry['path'], mode=int(entry['mode'], 8)) as handle:
                    handle.write(data)
    return result
