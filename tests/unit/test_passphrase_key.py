# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The repository key wrapped with a passphrase (age's scrypt recipient, pyrage): unwrapped with the right one,
refused with a wrong one, and a refusal of age's for the work it would take (which depends on a measure of the host
taken just before, and which a busy host's scheduler can spoil) is taken again instead of being called a wrong
passphrase."""

from __future__ import annotations

import pyrage
import pytest

from ansible_collections.cairncms.ops.plugins.module_utils import _crypto
from ansible_collections.cairncms.ops.plugins.module_utils._common import CairnError


@pytest.fixture(scope='module')
def wrapped():
    identity, data = _crypto.wrap_identity('right horse battery')
    return identity, data


def _work_factor(data, log_n):
    """``data`` with its scrypt stanza asking for 2**log_n (its MAC no longer matches, which age checks after)."""
    head, stanza, rest = data.split(b'\n', 2)
    words = stanza.split(b' ')
    assert words[:2] == [b'->', b'scrypt'], stanza
    return b'\n'.join([head, b' '.join(words[:-1] + [b'%d' % log_n]), rest])


def test_the_right_passphrase_unwraps_the_key_and_a_wrong_one_is_named(wrapped):
    identity, data = wrapped
    assert _crypto.unwrap_identity(data, 'right horse battery', 'keys/passphrase.age') == identity
    with pytest.raises(CairnError, match='the passphrase does not open keys/passphrase.age'):
        _crypto.unwrap_identity(data, 'wrong horse battery', 'keys/passphrase.age')


def test_a_work_factor_age_refuses_every_time_is_said_so_not_a_wrong_passphrase(wrapped, monkeypatch):
    monkeypatch.setattr(_crypto, 'UNWRAP_PAUSE', 0)
    forged = _work_factor(wrapped[1], 40)  # far beyond what any host does in 16 seconds: refused before any work
    with pytest.raises(CairnError) as raised:
        _crypto.unwrap_identity(forged, 'right horse battery', 'keys/passphrase.age')
    message = str(raised.value)
    assert 'more scrypt work than age accepts on this host' in message and '20 times in a row' in message
    assert 'passphrase does not open' not in message


def test_a_refusal_for_work_is_taken_again_and_the_key_unwraps(wrapped, monkeypatch):
    """As when the scheduler slowed age's measure of the host: refused twice, then unwrapped for real."""
    identity, data = wrapped
    monkeypatch.setattr(_crypto, 'UNWRAP_PAUSE', 0)
    real = pyrage.passphrase.decrypt
    calls = []

    def measured_while_busy(ciphertext, passphrase):
        calls.append(1)
        if len(calls) <= 2:
            return real(_work_factor(ciphertext, 40), passphrase)  # age's own refusal, from pyrage
        return real(ciphertext, passphrase)

    monkeypatch.setattr(pyrage.passphrase, 'decrypt', measured_while_busy)
    assert _crypto.unwrap_identity(data, 'right horse battery', 'keys/passphrase.age') == identity
    assert len(calls) == 3
