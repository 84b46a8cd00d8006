# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The action groups of meta/runtime.yml, which roles and playbooks set shared options with (module_defaults):
every module of a group takes every option of the group, every module that takes them all is in the group, and
the roles set nothing else through a group - so module_defaults never hands a module an option it refuses."""

from __future__ import annotations

import glob
import importlib
import os

import pytest
import yaml

from ansible_collections.cairncms.ops.plugins.module_utils._args import instance_spec, repository_spec

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODULES = sorted(os.path.basename(path)[:-3] for path in glob.glob(os.path.join(ROOT, 'plugins', 'modules', 'cairn_*.py')))
GROUP_OPTIONS = {'instance': set(instance_spec()), 'repository': set(repository_spec(point=False))}
# Modules that take some options of a group with a meaning of their own; a group default would be wrong for them.
PARTIAL = {
    ('cairn_cms_process', 'instance'): 'env_file is the sandbox .env the CMS is started with',
    ('cairn_drill_sandbox', 'instance'): 'env_overrides and env_secret_overrides are those of the sandbox',
    ('cairn_storage_posture', 'repository'): 'reads the posture of the repository bucket, of no instance',
}


class _Spec(Exception):
    pass


def argument_spec(name, monkeypatch):
    """The argument spec a module hands to AnsibleModule, taken from a real call of its main()."""
    module = importlib.import_module('ansible_collections.cairncms.ops.plugins.modules.' + name)

    def capture(*args, **kwargs):
        raise _Spec(kwargs.get('argument_spec', args[0] if args else None))
    monkeypatch.setattr(module, 'AnsibleModule', capture)
    with pytest.raises(_Spec) as caught:
        module.main()
    return caught.value.args[0]


@pytest.fixture(scope='module')
def specs():
    with pytest.MonkeyPatch.context() as monkeypatch:
        return {name: argument_spec(name, monkeypatch) for name in MODULES}


@pytest.fixture(scope='module')
def groups():
    with open(os.path.join(ROOT, 'meta', 'runtime.yml'), encoding='utf-8') as handle:
        return yaml.safe_load(handle)['action_groups']


def test_the_groups_are_those_the_roles_use(groups):
    assert sorted(groups) == sorted(GROUP_OPTIONS)
    assert 'encryption_identity' in GROUP_OPTIONS['repository']


@pytest.mark.parametrize('group', sorted(GROUP_OPTIONS))
def test_every_module_of_a_group_takes_every_option_of_it(group, groups, specs):
    for name in groups[group]:
        assert name in specs, '%s lists %s, which is not a module of the collection' % (group, name)
        missing = sorted(GROUP_OPTIONS[group] - set(specs[name]))
        assert not missing, ('%s is in the action group %s but does not take %s: module_defaults would fail it'
                             % (name, group, ', '.join(missing)))


@pytest.mark.parametrize('group', sorted(GROUP_OPTIONS))
def test_every_module_that_takes_the_options_of_a_group_is_in_it(group, groups, specs):
    for name, spec in sorted(specs.items()):
        taken = GROUP_OPTIONS[group] & set(spec)
        if taken == GROUP_OPTIONS[group]:
            assert name in groups[group], '%s takes every option of %s but is not in the group' % (name, group)
        elif taken:
            assert (name, group) in PARTIAL, (
                '%s takes %s of the action group %s but not all of it: add the others, or say in PARTIAL why it '
                'stays out of the group' % (name, ', '.join(sorted(taken)), group))
    for name, partial_group in PARTIAL:
        assert name not in groups[partial_group]


def _module_defaults(node):
    if isinstance(node, dict):
        if 'module_defaults' in node:
            yield node['module_defaults']
        for value in node.values():
            yield from _module_defaults(value)
    elif isinstance(node, list):
        for item in node:
            yield from _module_defaults(item)


ROLE_TASK_FILES = sorted(glob.glob(os.path.join(ROOT, 'roles', '*', 'tasks', '*.yml')))


@pytest.mark.parametrize('path', ROLE_TASK_FILES, ids=lambda path: os.path.relpath(path, ROOT))
def test_roles_set_only_options_of_the_group(path):
    with open(path, encoding='utf-8') as handle:
        tasks = yaml.safe_load(handle)
    for defaults in _module_defaults(tasks):
        for key, options in defaults.items():
            assert key.startswith('group/cairncms.ops.'), '%s: module_defaults for %s, not a group' % (path, key)
            group = key[len('group/cairncms.ops.'):]
            assert group in GROUP_OPTIONS, '%s: unknown action group %s' % (path, key)
            unknown = sorted(set(options) - GROUP_OPTIONS[group])
            assert not unknown, '%s sets %s through %s, which not every module of it takes' % (path, unknown, key)
