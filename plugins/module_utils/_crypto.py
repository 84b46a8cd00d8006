# -*- coding: utf-8 -*-
# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Encryption at rest in the age format, through pyrage (private).

Streaming both ways with flat memory: pyrage pulls from a reader and pushes to a writer, so each
direction runs it in a thread on one end of an OS pipe. Anything encrypted here decrypts with the
stock ``age`` tool: ``age -d -i key.txt FILE``.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
import traceback

from ansible_collections.cairncms.ops.plugins.module_utils._common import CHUNK, CairnError, read_file

try:
    import pyrage
    HAS_PYRAGE = True
    PYRAGE_IMPORT_ERROR = None
except ImportError:
    HAS_PYRAGE = False
    PYRAGE_IMPORT_ERROR = traceback.format_exc()

SCHEME = 'age'


def _require():
    if not HAS_PYRAGE:
        raise CairnError('the Python library pyrage is needed for encryption on this host: pip install '
                         '"pyrage>=1.2.0" for the Python Ansible uses here', exception=PYRAGE_IMPORT_ERROR)


def parse_recipient(text):
    _require()
    text = text.strip()
    try:
        if text.startswith('age1'):
            return pyrage.x25519.Recipient.from_str(text)
        if text.startswith(('ssh-ed25519 ', 'ssh-rsa ')):
            return pyrage.ssh.Recipient.from_str(text)
    except Exception as exc:  # pyrage raises its own RecipientError and ValueError
        raise CairnError('encryption recipient %s... is not a valid age or SSH public key (%s)' % (text[:12], exc))
    raise CairnError('encryption recipient %s... is neither an age public key (age1...) nor an ssh-ed25519 or '
                     'ssh-rsa public key; generate one with age-keygen' % text[:12])


def load_identities(path):
    """The age identities (AGE-SECRET-KEY-1...) of an identity file, or an SSH private key."""
    _require()
    data = read_file(path, 'encryption identity file', 'set cairn_encryption_identity_file')
    return parse_identities(data, 'the identity file %s' % path)


def parse_identities(data, where):
    """The age identities (AGE-SECRET-KEY-1...) in ``data`` (bytes), or the SSH private key it is, parsed in
    memory; ``where`` names the source in errors, which never quote the key."""
    _require()
    identities = []
    for line in data.decode('utf-8', 'replace').splitlines():
        line = line.strip()
        if line.startswith('AGE-SECRET-KEY-'):
            try:
                identities.append(pyrage.x25519.Identity.from_str(line))
            except Exception:  # its own IdentityError
                raise CairnError('%s holds a malformed age secret key' % where)
    if not identities and b'PRIVATE KEY' in data:
        try:
            identities.append(pyrage.ssh.Identity.from_buffer(data.replace(b'\r\n', b'\n').strip() + b'\n'))
        except Exception as exc:
            raise CairnError('%s: the SSH private key cannot be used for age (%s)' % (
                where, str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__))
    if not identities:
        raise CairnError('%s holds no age secret key (AGE-SECRET-KEY-1...) and no SSH private key' % where)
    return identities


class Crypto:
    """What a run may do: encrypt to ``recipients``, decrypt with the identities in ``identity_files`` and in
    ``identity_texts`` (key text handed over as an option, parsed in memory and never written anywhere)."""

    def __init__(self, recipients=(), identity_files=(), required=False, passphrase=None, identity_texts=()):
        self.recipient_texts = [text.strip() for text in recipients or () if text and text.strip()]
        self.identity_files = [path for path in identity_files or () if path]
        self._identity_texts = [text for text in identity_texts or () if text and text.strip()]
        self.passphrase = passphrase or None
        self.required = required
        if required and not self.recipient_texts and not self.passphrase:
            raise CairnError('encryption is required (cairn_encryption_required) but no recipient is configured; '
                             'set cairn_encryption_recipients to the age public keys to encrypt to')
        self._recipients = None
        self._identities = None
        self._extra = []  # identities unwrapped with the passphrase: read with them, and encrypt to them

    def add_identity(self, text):
        """Use an age identity (from the passphrase-wrapped repository key) for reading and writing."""
        _require()
        identity = pyrage.x25519.Identity.from_str(text)
        self._extra.append(identity)
        self.recipient_texts.append(str(identity.to_public()))
        self._recipients = None

    @property
    def encrypts(self):
        return bool(self.recipient_texts)

    def recipients(self):
        if self._recipients is None:
            self._recipients = [parse_recipient(text) for text in self.recipient_texts]
        return self._recipients

    @property
    def can_decrypt(self):
        return bool(self.identity_files or self._identity_texts or self._extra)

    def identities(self):
        if self._identities is None:
            if not self.can_decrypt:
                raise CairnError('this restore point is encrypted; set cairn_encryption_identity_file to a file with '
                                 'the age secret key of one of its recipients, cairn_encryption_identity to the key '
                                 'itself, or cairn_encryption_passphrase')
            self._identities = [identity for path in self.identity_files for identity in load_identities(path)]
            self._identities += [identity for text in self._identity_texts for identity in parse_identities(
                text.encode('utf-8'), 'the encryption identity given as text (cairn_encryption_identity)')]
            self._identities += self._extra
        return self._identities

    def describe(self):
        described = {'scheme': SCHEME, 'recipients': list(self.recipient_texts)}
        if self._extra:
            described['passphrase_key'] = [str(identity.to_public()) for identity in self._extra]
        return described

    def writer(self, handle):
        """A writable whose bytes reach ``handle`` encrypted; ``close()`` finishes the age stream."""
        return _EncryptingWriter(handle, self.recipients())

    @contextlib.contextmanager
    def sink(self, handle, encrypted=True):
        """``handle`` itself, or (``encrypted``) a writer encrypting into it, finished with the block (and
        abandoned, its error swallowed, when the block fails)."""
        if not encrypted:
            yield handle
            return
        writer = self.writer(handle)
        try:
            yield writer
        except BaseException:
            try:
                writer.close()
            except CairnError:
                pass
            raise
        writer.close()

    def reader(self, handle, what):
        """A readable of the plaintext of the age stream read from ``handle`` (closed with it)."""
        try:
            identities = self.identities()
        except CairnError:
            handle.close()
            raise
        return _DecryptingReader(handle, identities, what)

    def encrypt_bytes(self, data):
        _require()
        return pyrage.encrypt(data, self.recipients())

    def decrypt_bytes(self, data, what):
        _require()
        try:
            return pyrage.decrypt(data, self.identities())
        except Exception as exc:
            raise _decrypt_error(what, exc)


def _decrypt_error(what, exc):
    cause = (str(exc) or exc.__class__.__name__).splitlines()[0]
    return CairnError('cannot decrypt %s: %s. Either the identity is not one of its recipients or the data was '
                      'damaged or tampered with; nothing was restored from it' % (what, cause))


class _Worker(threading.Thread):
    def __init__(self, target):
        super().__init__(daemon=True)
        self._target_call = target
        self.error = None

    def run(self):
        try:
            self._target_call()
        except Exception as exc:  # pyrage's errors, BrokenPipe: reported by the owner
            self.error = exc


class _EncryptingWriter:
    def __init__(self, handle, recipients):
        read_fd, write_fd = os.pipe()
        self._source = os.fdopen(read_fd, 'rb')
        self._pipe = os.fdopen(write_fd, 'wb')
        self._worker = _Worker(lambda: pyrage.encrypt_io(self._source, handle, recipients))
        self._worker.start()

    def write(self, data):
        try:
            self._pipe.write(data)
        except BrokenPipeError:
            self._stopped()
        return len(data)

    def flush(self):
        try:
            self._pipe.flush()
        except BrokenPipeError:
            self._stopped()

    def _stopped(self):
        self.close()
        raise CairnError('encryption stopped: %s' % self._worker.error)

    def close(self):
        if not self._pipe.closed:
            try:
                self._pipe.close()
            except BrokenPipeError:
                pass
        self._worker.join()
        self._source.close()
        if self._worker.error:
            raise CairnError('encryption failed: %s' % self._worker.error)


class _DecryptingReader:
    def __init__(self, handle, identities, what):
        read_fd, write_fd = os.pipe()
        self._plain = os.fdopen(read_fd, 'rb')
        self._pipe = os.fdopen(write_fd, 'wb')
        self._what = what
        self._handle = handle

        def work():
            try:
                pyrage.decrypt_io(handle, self._pipe, identities)
            finally:
                try:
                    self._pipe.close()
                except BrokenPipeError:
                    pass
        self._worker = _Worker(work)
        self._worker.start()

    def read(self, size=CHUNK):
        data = self._plain.read(size)
        if not data:
            self._worker.join()
            if self._worker.error:
                raise _decrypt_error(self._what, self._worker.error)
        return data

    def readinto(self, buffer):
        data = self.read(len(buffer))
        buffer[:len(data)] = data
        return len(data)

    def close(self):
        self._plain.close()
        self._worker.join()
        self._handle.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()
        return False


def wrap_identity(passphrase):
    """A new age identity, and its text encrypted with ``passphrase`` (age's scrypt recipient)."""
    _require()
    identity = pyrage.x25519.Identity.generate()
    text = '# cairncms.ops repository key, public key: %s\n%s\n' % (identity.to_public(), identity)
    return str(identity), pyrage.passphrase.encrypt(text.encode('ascii'), passphrase)


# age refuses to unwrap a passphrase-wrapped file whose scrypt work factor is more than 16 times what this host
# does in a second, and it times this host with one scrypt of a few milliseconds, just before it unwraps. On a busy
# host that one measure can be slowed tenfold or more by the scheduler, and the right passphrase is refused. A
# measure that is off is taken again: up to this many times, this many seconds apart.
UNWRAP_ATTEMPTS = 20
UNWRAP_PAUSE = 0.1


def unwrap_identity(data, passphrase, what):
    _require()
    for attempt in range(UNWRAP_ATTEMPTS):
        try:
            text = pyrage.passphrase.decrypt(data, passphrase).decode('ascii')
            break
        except Exception as exc:  # pylint: disable=broad-except  # pyrage says why only in its message
            if 'excessive work' not in str(exc).lower():
                raise CairnError('the passphrase does not open %s (cairn_encryption_passphrase is wrong, or the file '
                                 'is damaged)' % what)
            if attempt + 1 < UNWRAP_ATTEMPTS:
                time.sleep(UNWRAP_PAUSE)
    else:
        raise CairnError('%s was wrapped with more scrypt work than age accepts on this host now (it asks at most 16 '
                         'times what the host does in a second, and found it %d times in a row): the host is far '
                         'slower or busier than the one that wrote it; run again when it is less busy'
                         % (what, UNWRAP_ATTEMPTS))
    for line in text.splitlines():
        if line.startswith('AGE-SECRET-KEY-'):
            return line.strip()
    raise CairnError('%s holds no age identity' % what)
