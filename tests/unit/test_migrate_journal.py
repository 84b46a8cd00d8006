# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The journal a migration leaves for the next run (_migrate._Journal, _after_interruption): read as untrusted
input, and what each kind of interrupted run means for the next. The kill itself, then the next run, is tested
through the migrate playbook against real Directus in tests/integration/test_migrate.py."""

from __future__ import annotations

import json
import os
import types

import pytest

from ansible_collections.cairncms.ops.plugins.module_utils import _migrate
from ansible_collections.cairncms.ops.plugins.module_utils._common import CairnError

TARGET = '127.0.0.1:5432/cms'


def _journal(tmp_path, work_dir=None):
    return _migrate._Journal(types.SimpleNamespace(base_dir=str(tmp_path)), TARGET, work_dir)


def _forge(tmp_path, **entry):
    journal = _journal(tmp_path)
    base = {'target': TARGET, 'restore_point': 'P1', 'state_before': 'not_empty', 'started': 'then', 'work': None,
            'safety_copy': None}
    base.update(entry)
    with open(journal.path, 'w', encoding='utf-8') as handle:
        json.dump(base, handle)
    return journal


def test_a_journal_is_written_privately_read_back_and_removed(tmp_path):
    journal = _journal(tmp_path)
    assert journal.previous is None
    work = journal.work_dir()
    journal.write('P1', 'not_empty', work, os.path.join(work, 'safety.pgdump'))
    assert os.stat(journal.path).st_mode & 0o777 == 0o600 and os.stat(work).st_mode & 0o777 == 0o700
    again = _journal(tmp_path)
    assert again.previous['state_before'] == 'not_empty' and again.previous['work'] == work
    again.end()
    assert _journal(tmp_path).previous is None
    again.end()  # gone already: nothing to do


def test_a_journal_of_another_target_is_not_this_ones(tmp_path):
    _forge(tmp_path)
    assert _migrate._Journal(types.SimpleNamespace(base_dir=str(tmp_path)), 'elsewhere:5432/cms').previous is None


@pytest.mark.parametrize('entry', [
    {'safety_copy': '/etc/shadow', 'work': '/etc'},  # a copy to "put back" from anywhere
    {'work': '/tmp/.cairn-migrate-x', 'safety_copy': '/tmp/.cairn-migrate-x/safety.pgdump'},  # not beside it
    {'state_before': 'full'},
    {'restore_point': 7},
])
def test_a_forged_journal_refuses_the_run(tmp_path, entry):
    journal = _forge(tmp_path, **entry)
    with pytest.raises(CairnError, match='is not a migration journal of this collection for %s; nothing was changed'
                                         % TARGET):
        _journal(tmp_path)
    with open(journal.path, 'w', encoding='utf-8') as handle:
        handle.write('{not json')
    with pytest.raises(CairnError, match='is not a migration journal'):
        _journal(tmp_path)


def test_what_an_interrupted_run_means_for_the_next(tmp_path):
    safety = _migrate._Safety(None, None)
    # it began on an empty target: what it left is cleared; nothing left, nothing to say
    _forge(tmp_path, state_before='absent')
    state, said = _migrate._after_interruption(_journal(tmp_path), 'not_empty', False, safety)
    assert state == 'interrupted' and 'never ended; the target was empty before it' in said
    assert _migrate._after_interruption(_journal(tmp_path), 'empty', False, safety) == ('empty', None)
    # it replaced a target: refused without replace, naming the copy; with replace, this run takes the copy over
    journal = _journal(tmp_path)
    work = journal.work_dir()
    copy = os.path.join(work, 'safety.pgdump')
    with open(copy, 'wb') as handle:
        handle.write(b'what the target held')
    journal.write('P1', 'not_empty', work, copy)
    with pytest.raises(CairnError, match='it replaced what the target held, which is kept in %s. Nothing was changed'
                                         % copy):
        _migrate._after_interruption(_journal(tmp_path), 'empty', False, safety)
    state, said = _migrate._after_interruption(_journal(tmp_path), 'empty', True, safety)
    assert state == 'not_empty' and safety.copy == copy and safety.work == work and 'goes on from' in said
    # its copy gone: the run goes on from what the target holds, saying so
    os.unlink(copy)
    state, said = _migrate._after_interruption(_journal(tmp_path), 'not_empty', False, _migrate._Safety(None, None))
    assert state == 'not_empty' and 'is gone' in said
