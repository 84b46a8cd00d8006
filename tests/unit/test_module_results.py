# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Module results never use the keys Ansible reads itself, in the documentation or at run time."""

from __future__ import annotations

import ast
import glob
import json
import os

import pytest
import yaml

from ansible_collections.cairncms.ops.plugins.module_utils import _common

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODULES = sorted(glob.glob(os.path.join(ROOT, 'plugins', 'modules', 'cairn_*.py')))
# What Ansible reads from a result itself (a list under "failed" fails the task, "skipped: true" skips it,
# "rc" other than 0 fails it, "results" is taken for loop items, "ansible_facts" become facts...).
ANSIBLE_READS = {'failed', 'changed', 'skipped', 'msg', 'rc', 'results', 'invocation'}


def _return_doc(path):
    tree = ast.parse(open(path, encoding='utf-8').read())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, 'id', None) == 'RETURN' for t in node.targets):
            return yaml.safe_load(node.value.value) or {}
    raise AssertionError('%s has no RETURN' % path)


def test_every_module_is_walked():
    assert len(MODULES) >= 17, MODULES


@pytest.mark.parametrize('path', MODULES, ids=os.path.basename)
def test_return_docs_use_no_reserved_name(path):
    keys = set(_return_doc(path))
    misused = sorted(key for key in keys if key in ANSIBLE_READS or key.startswith(('ansible_', '_ansible')))
    assert not misused, '%s documents result keys Ansible reserves: %s' % (os.path.basename(path), misused)


@pytest.mark.parametrize('key', sorted(ANSIBLE_READS - {'changed', 'msg'}) + ['ansible_facts', '_ansible_no_log'])
def test_reserved_names_are_known_to_the_one_result_path(key):
    assert _common.reserved(key)


class _FakeModule:
    _name = 'cairncms.ops.cairn_test'

    def __init__(self):
        self.params = {}
        self.outcome = None
        self.warnings = []

    def warn(self, text):
        self.warnings.append(text)

    def exit_json(self, **result):
        self.outcome = ('exit', result)
        raise SystemExit(0)

    def fail_json(self, **result):
        self.outcome = ('fail', result)
        raise SystemExit(1)


def _run(action):
    module = _FakeModule()
    with pytest.raises(SystemExit):
        _common.run(module, action)
    return module.outcome


def test_a_result_with_a_reserved_key_fails_as_a_defect():
    kind, result = _run(lambda module: {'changed': False, 'failed': ['20261121T101500.042Z-1a2b3c']})
    assert kind == 'fail' and 'failed' in result['msg'] and 'reserves' in result['msg'], result


def test_an_unexpected_error_is_one_line_naming_it_not_unknown_error():
    def broken(module):
        return {}['missing']
    kind, result = _run(broken)
    assert kind == 'fail' and result['msg'] == "internal error in cairncms.ops.cairn_test: KeyError: 'missing'"
    assert 'Traceback' in result['exception']


def test_error_details_with_reserved_names_are_dropped():
    def refuse(module):
        raise _common.CairnError('refused', rc=3, results=[1], target_state='different')
    kind, result = _run(refuse)
    assert kind == 'fail' and json.dumps(result, sort_keys=True) == json.dumps(
        {'msg': 'refused', 'target_state': 'different'}, sort_keys=True)
