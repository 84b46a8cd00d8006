# -*- coding: utf-8 -*-
# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Signed restore points (private): an ed25519 signature over the manifest.

The manifest holds the size and sha256 of every artifact, and the file inventory (an artifact) the sha256 of
every blob, so one signature over the manifest covers the whole restore point. What is signed is the
manifest's canonical JSON (keys sorted, no spaces, ASCII), so the signature does not depend on how a
repository type lays the file out. The signature lives beside the manifest as ``manifest.sig``:

    {"format": "cairncms.ops/signature", "algorithm": "ed25519",
     "public_key": "ssh-ed25519 AAAA...", "signature": "<base64 of 64 bytes>"}

Keys are OpenSSH ed25519 keys (``ssh-keygen -t ed25519``): the backup host holds the private key
(``cairn_signing_key``), restores list the public keys they trust (``cairn_trusted_signers``).
"""

from __future__ import annotations

import base64
import json
import traceback

from ansible_collections.cairncms.ops.plugins.module_utils._common import CairnError, read_file

SIGNATURE = 'manifest.sig'
FORMAT = 'cairncms.ops/signature'
ALGORITHM = 'ed25519'


class _Lib:
    """The parts of ``cryptography`` signing needs, imported on first use: every module that reads a repository
    imports this file for ``SIGNATURE``, and the library costs tens of milliseconds to import."""

    def __getattr__(self, name):
        # pylint: disable=import-outside-toplevel
        try:
            from cryptography.exceptions import InvalidSignature
            from cryptography.hazmat.primitives import serialization
            from cryptography.hazmat.primitives.asymmetric import ed25519
        except ImportError:
            raise CairnError('the Python library cryptography is needed to sign or check restore points on this '
                             'host: pip install "cryptography>=3.1" for the Python Ansible uses here',
                             exception=traceback.format_exc())
        self.InvalidSignature, self.serialization, self.ed25519 = InvalidSignature, serialization, ed25519
        return getattr(self, name)


_lib = _Lib()


def canonical(manifest):
    """The bytes a signature covers."""
    return json.dumps(manifest, sort_keys=True, separators=(',', ':'), ensure_ascii=True).encode('ascii')


def public_text(public_key):
    """``ssh-ed25519 AAAA...`` of a public key."""
    formats = _lib.serialization
    return public_key.public_bytes(formats.Encoding.OpenSSH, formats.PublicFormat.OpenSSH).decode('ascii')


def load_signing_key(path):
    """The ed25519 private key in ``path`` (OpenSSH or PEM, unencrypted)."""
    data = read_file(path, 'signing key', 'set cairn_signing_key to an ed25519 private key (ssh-keygen -t ed25519 '
                                          '-N "" -f FILE)')
    try:
        if b'OPENSSH PRIVATE KEY' in data:
            key = _lib.serialization.load_ssh_private_key(data, password=None)
        else:
            key = _lib.serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise CairnError('the signing key %s cannot be read (%s); it must be an unencrypted ed25519 private key '
                         '(ssh-keygen -t ed25519 -N "" -f FILE)' % (path, str(exc).split('\n', maxsplit=1)[0]))
    if not isinstance(key, _lib.ed25519.Ed25519PrivateKey):
        raise CairnError('the signing key %s is a %s key; restore points are signed with ed25519 keys '
                         '(ssh-keygen -t ed25519)' % (path, type(key).__name__.replace('PrivateKey', '')))
    return key


def parse_public(text):
    """An ed25519 public key from ``ssh-ed25519 AAAA... [comment]``."""
    words = str(text).strip().split()
    if len(words) < 2 or words[0] != 'ssh-ed25519':
        raise CairnError('trusted signer %r is not an ed25519 public key; give the line of the signing key\'s .pub '
                         'file (ssh-ed25519 AAAA...)' % str(text)[:40])
    try:
        key = _lib.serialization.load_ssh_public_key(('%s %s' % (words[0], words[1])).encode('ascii'))
    except (ValueError, UnicodeEncodeError) as exc:
        raise CairnError('trusted signer %s... cannot be read: %s' % (str(text)[:30], exc))
    return key


def sign(manifest, key):
    """The signature record of ``manifest``."""
    return {'format': FORMAT, 'algorithm': ALGORITHM, 'public_key': public_text(key.public_key()),
            'signature': base64.b64encode(key.sign(canonical(manifest))).decode('ascii')}


def encode(record):
    return json.dumps(record, indent=1, sort_keys=True).encode('utf-8') + b'\n'


class Trust:
    """The public keys a reader trusts; ``check`` refuses a manifest they did not sign."""

    def __init__(self, signers):
        self.keys = {}
        for text in signers or ():
            key = parse_public(text)
            self.keys[public_text(key)] = key

    def __bool__(self):
        return bool(self.keys)

    def check(self, manifest, data, where):
        """``data``: the bytes of ``manifest.sig`` beside the manifest stored at ``where``, or None."""
        if data is None:
            raise CairnError('restore point %s is not signed (no %s beside %s), and cairn_trusted_signers asks for '
                             'a signature; nothing was restored from it' % (manifest.get('id'), SIGNATURE, where))
        try:
            record = json.loads(data.decode('utf-8'))
            if not isinstance(record, dict) or record.get('format') != FORMAT or record.get('algorithm') != ALGORITHM:
                raise ValueError('not a %s record' % FORMAT)
            signature = base64.b64decode(record['signature'], validate=True)
            signer = str(record['public_key'])
        except (ValueError, KeyError, TypeError) as exc:
            raise CairnError('the signature of restore point %s (%s beside %s) is damaged: %s; nothing was restored '
                             'from it' % (manifest.get('id'), SIGNATURE, where, exc))
        key = self.keys.get(' '.join(signer.split()[:2]))
        if key is None:
            raise CairnError('restore point %s is signed by %s..., which is not in cairn_trusted_signers; nothing '
                             'was restored from it' % (manifest.get('id'), signer[:40]))
        try:
            key.verify(signature, canonical(manifest))
        except _lib.InvalidSignature:
            raise CairnError('the signature of restore point %s does not match its manifest (%s): the manifest was '
                             'changed after it was signed; nothing was restored from it' % (manifest.get('id'), where))
        return signer
