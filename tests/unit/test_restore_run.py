# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The pure logic of the restore's one run (_restore.Run): the warnings of its parts shown once each, and an error
whose first line says what state the instance is in (a tool's error may run over several lines, and the role
shows the first). The side-by-side restore itself runs against real servers in
tests/integration/test_restore_one_run.py."""

from __future__ import annotations

from ansible_collections.cairncms.ops.plugins.module_utils import _process
from ansible_collections.cairncms.ops.plugins.module_utils._common import CairnError
from ansible_collections.cairncms.ops.plugins.module_utils._restore import Run


def _run():
    return Run(config=None, repository=None, instance='blog', manifest={'id': 'P1'}, options={})


def test_warnings_of_the_plans_and_the_restores_are_lifted_once_each():
    run = _run()
    run.result['plan'] = {'database': {'warnings': ['server 15 vs 16']}, 'files': {}}
    run.result['database'] = {'warnings': ['server 15 vs 16', 'leftover removed']}
    run.result['files'] = {'warnings': []}
    result = run.finish()
    assert result['warnings'] == ['server 15 vs 16', 'leftover removed']
    assert 'warnings' not in result['database'] and 'warnings' not in result['plan']['database']
    assert result['duration_s'] >= 0


def test_no_warnings_no_key():
    run = _run()
    run.result['database'] = {'changed': True}
    assert 'warnings' not in run.finish()


def test_the_first_line_of_an_error_says_what_state_the_instance_is_in():
    run = _run()
    error = run._fail('database', CairnError('pg_restore failed (exit 1): ERROR: cannot drop table\nDETAIL: view v '
                                             'depends on it; the database was put back from its safety copy'),
                      'no file was changed')
    first = error.message.splitlines()[0]
    assert first.startswith('restoring the database failed (the database was put back from its safety copy; no file '
                            'was changed): pg_restore failed'), first
    assert error.details['step'] == 'database' and error.details['restore_point'] == 'P1'
    # said once when it is on the first line already
    once = run._fail('database', CairnError('load failed; the database was put back from its safety copy'))
    assert once.message == 'restoring the database failed: load failed; the database was put back from its safety copy'


def test_a_time_limit_names_its_step_already():
    run = _run()
    error = run._fail('files', _process.DeadlineExpired('cairn_restore stopped restoring the file bytes: ...'))
    assert error.message == 'cairn_restore stopped restoring the file bytes: ...' and error.details['step'] == 'files'
