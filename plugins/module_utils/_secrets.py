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

from ansible_collections.cairncms.ops.plugins.module_utils import _fs, _guard
from ansible_collections.cairncms.ops.plugins.module_utils._common import AtomicFile, CairnError, HashingWriter, utc_now
from ansible_collections.cairncms.ops.plugins.module_utils._manifest import part
from ansible_collections.cairncms.ops.plugins.module_utils._env import (
    InstanceConfig, decode_env, looks_secret, mask_secrets, parse_dotenv, read_env_text)

BUNDLE = 'secrets.tar'
FINGERPRINT_CONTEXT = b'cairncms.ops/fingerprint/v1'
EXTRA_SECRET = re.compile(r'^(KEY|AUTH_.*_CLIENT_SECRET|EMAIL_SMTP_PASSWORD|.*_KEY_FILENAME)$')


def is_secret(name, extra=()):
    return looks_secret(name) or bool(EXTRA_SECRET.match(name)) or any(re.match('^%s$' % p, name) for p in extra)


def secret_test(manifest=None, names=()):
    """Whether a variable is a secret, for showing a .env: what ``is_secret`` says, what the restore point's
    capture classed as secret (with the operator's cairn_secret_variables), and the ``names`` given as secret
    overrides."""
    flagged = {name for name, entry in ((part(manifest, 'secrets') if manifest else None) or {}).get('variables', {}).items()
               if isinstance(entry, dict) and entry.get('secret')}
    flagged.update(str(name) for name in names or ())
    return lambda name: name in flagged or is_secret(name)


def env_diff(path, before, after, secret):
    """The ``diff`` of a module result for the .env ``path`` going from ``before`` (None: it does not exist) to
    ``after``, with every secret value masked (``_env.mask_secrets``): a changed secret shows as changed, never
    its value."""
    return {'before_header': path, 'after_header': path,
            'before': '' if before is None else mask_secrets(before, secret),
            'after': mask_secrets(after, secret, None if before is None else parse_dotenv(before))}


def fingerprint_key(values):
    secret = values.get('SECRET')
    if secret:
        return hmac.new(str(secret).encode('utf-8'), FINGERPRINT_CONTEXT, hashlib.sha256).digest(), 'secret'
    return secrets.token_bytes(32), 'bundle'


def fingerprint(key, name, value):
    return hmac.new(key, b'%s=%s' % (name.encode('utf-8'), value.encode('utf-8')), hashlib.sha256).hexdigest()[:32]


def _resolve(path, base_dir):
    return os.path.normpath(path if os.path.isabs(path) else os.path.join(base_dir, path))


def build_bundle(config, extra_files=(), secret_patterns=()):
    """(tar bytes, manifest section) of an instance's configuration and secrets."""
    if not config.env_file:
        raise CairnError('capturing secrets needs the instance .env (cairn_env_file)')
    with open(config.env_file, 'rb') as handle:
        env_bytes = handle.read()
    raw = parse_dotenv(decode_env(env_bytes, config.env_file))
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
    section = part(manifest, 'secrets') or {}
    if not section.get('captured'):
        raise CairnError('restore point %s holds no secrets: %s' % (manifest['id'], section.get('reason', '')))
    with repository.open_artifact(instance, manifest['id'], section['artifact'], encrypted=True) as handle:
        data = handle.read()
    if hashlib.sha256(data).hexdigest() != section['artifacts'][0]['sha256']:
        raise CairnError('the secrets bundle of restore point %s does not match its manifest' % manifest['id'])
    members = {}
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode='r') as archive:
            for member in archive.getmembers():
                if member.isfile():
                    members[member.name] = archive.extractfile(member).read()
        index = json.loads(members['index.json'].decode('utf-8'))
        decode_env(members['env/.env'], 'the .env captured in restore point %s' % manifest['id'])
        _check_index(index, members)
    except (tarfile.TarError, KeyError, ValueError, TypeError) as exc:
        raise CairnError('the secrets bundle of restore point %s is not a bundle this version can read (%s: %s)'
                         % (manifest['id'], exc.__class__.__name__, exc))
    return index, members


def captured_env(repository, instance, manifest):
    """The text of the .env captured in a restore point (decrypted and checked); an error saying why when the
    point holds none or it cannot be read here."""
    _index, members = open_bundle(repository, instance, manifest)
    return decode_env(members['env/.env'], 'the .env captured in restore point %s' % manifest['id'])


def _check_index(index, members):
    """The bundle's index lists files with an absolute path, an octal mode and a member that is there."""
    if not isinstance(index, dict) or not isinstance(index.get('files', []), list):
        raise ValueError('index.json is not an object with a list of files')
    for entry in index.get('files', []):
        if not (isinstance(entry, dict) and isinstance(entry.get('path'), str) and os.path.isabs(entry['path'])
                and entry.get('member') in members and isinstance(entry.get('mode'), str)):
            raise ValueError('a file entry of index.json is malformed: %r' % (entry,)[:80])
        int(entry['mode'], 8)


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
            check_mode=False, rotate_once=False, refuse_shared=False, instance_dir=None, allowed=(), diff=False,
            secret_names=()):
    """Write ``env_file`` from the restore point's captured .env with ``overrides``. ``rotate``: new KEY and/or
    SECRET (with ``rotate_once``, only where ``env_file`` has none yet: a copy keeps its own). ``refuse_shared``:
    refuse, writing nothing, a configuration that shares the database or storage of the source as captured.
    ``restore_files``: also write the captured files back, confined to ``instance_dir`` (default: the directory
    of ``env_file``) and the ``allowed`` paths (see ``_restore_files``). ``diff``: the result holds the .env's
    change with secrets masked (``secret_names``: more names to mask, the secret overrides)."""
    index, members = open_bundle(repository, instance, manifest)
    current = read_env_text(env_file) if os.path.exists(env_file) else None
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
    captured = decode_env(members['env/.env'], 'the .env captured in restore point %s' % manifest['id'])
    text = render_env(captured, values)
    if refuse_shared:
        copy = InstanceConfig.from_dotenv(parse_dotenv(text), os.path.dirname(os.path.abspath(env_file)), env_file)
        _guard.refuse_shared(copy, 'the configuration for %s' % env_file, 'cairn_clone_env_overrides',
                             [_guard.source_as_captured(manifest, captured)])
    result = {'changed': False, 'path': env_file, 'rotated': sorted(fresh), 'overridden': sorted(overrides),
              'files': [], 'kept': False}
    if current is not None and not fresh and current == text:
        result['msg'] = 'the .env already holds the configuration of restore point %s' % manifest['id']
    elif current is not None and not replace:
        result['kept'] = True
        result['warnings'] = ['%s exists and differs from the configuration in restore point %s; it was not '
                              'overwritten (set cairn_restore_replace to replace it)' % (env_file, manifest['id'])]
    else:
        result['changed'] = True
        if diff:
            result['diff'] = env_diff(env_file, current, text, secret_test(manifest, secret_names))
        if not check_mode:
            # the CMS's user keeps reading it: owner and group of the file replaced (or of its directory)
            with AtomicFile(env_file, mode=0o600, keep_owner=True) as handle:
                handle.write(text.encode('utf-8'))
    if restore_files:
        result['files'] = _restore_files(index, members, manifest, instance_dir or os.path.dirname(
            os.path.abspath(env_file)), allowed, replace, check_mode)
        result['changed'] = result['changed'] or bool(result['files'])
    return result


def _confine(path, roots):
    """(root, name below it) for a normalized absolute ``path`` inside one of ``roots`` (directories, or files
    allowed one by one), or None."""
    for root in roots:
        root = os.path.normpath(root)
        if path == root:
            return os.path.dirname(root), os.path.basename(root)
        if path.startswith(root.rstrip(os.sep) + os.sep):
            return root, os.path.relpath(path, root)
    return None


def _restore_files(index, members, manifest, instance_dir, allowed, replace, check_mode):
    """Write the bundle's files back, confined: only below the target's instance directory or paths the operator
    listed (``allowed``), reached without following a symlink, never with setuid, setgid or sticky bits, owned
    like the file they replace (or like the directory they are confined to). Everything is checked before
    anything is written; returns the paths written (or that would be)."""
    roots = [instance_dir] + [path for path in allowed or () if path]
    plan, outside = [], []
    for entry in index['files']:
        path = os.path.normpath(entry['path'])
        place = _confine(path, roots)
        if place is None:
            outside.append(path)
        else:
            plan.append((entry, path) + place)
    if outside:
        raise CairnError('restore point %s holds secret file(s) for %s, outside the instance directory %s and the '
                         'paths allowed in cairn_restore_secret_paths; nothing was written. A restore point only '
                         'writes where you allow it: list those paths (or their directories) in '
                         'cairn_restore_secret_paths' % (manifest['id'], ', '.join(sorted(outside)[:5]), instance_dir))
    writes = []
    for entry, path, root, name in plan:
        data = members[entry['member']]
        try:
            current = _fs.read_bytes(root, name)
        except _fs.Missing:
            current = None
        except (_fs.NotRegular, _fs.BadName) as exc:
            raise CairnError('cannot restore %s from restore point %s: %s; nothing was written'
                             % (path, manifest['id'], exc))
        if current == data:
            continue
        if current is not None and not replace:
            raise CairnError('%s exists and differs from the copy in restore point %s; nothing was written. Set '
                             'cairn_restore_replace to overwrite it' % (path, manifest['id']))
        writes.append((entry, path, root, name, data, current is not None))
    if not check_mode:
        for entry, _path, root, name, data, exists in writes:
            info = _fs.lstat(root, name) if exists else os.stat(root)
            owner = (info.st_uid, info.st_gid) if os.geteuid() == 0 else None
            _fs.write_bytes(root, name, data, mode=int(entry['mode'], 8) & 0o777, owner=owner, dir_mode=0o700)
    return [write[1] for write in writes]
