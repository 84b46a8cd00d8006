# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The pure part of _promote: a source is exactly one of an instance, a restore point or a directory, and is named
in messages without its token; the parts are applied schema first; a snapshot directory is written only where its
bytes change and read back as it was written; each config change is shown before and after."""

from __future__ import annotations

import json
import os

import pytest

from ansible_collections.cairncms.ops.plugins.module_utils import _promote
from ansible_collections.cairncms.ops.plugins.module_utils._common import CairnError


def snapshot(vendor='sqlite'):
    return {'version': 1, 'directus': '10.0.0', 'vendor': vendor,
            'collections': [{'collection': 'books', 'meta': {'icon': 'book'}, 'schema': {'name': 'books'}}],
            'fields': [{'collection': 'books', 'field': 'title', 'type': 'string', 'meta': {}, 'schema': {}},
                       {'collection': 'books', 'field': 'id', 'type': 'integer', 'meta': {}, 'schema': {}}],
            'relations': []}


@pytest.mark.parametrize('source, kind', [
    ({'directory': '/srv/structure'}, 'directory'),
    ({'restore_point': 'latest', 'instance': 'dev'}, 'restore_point'),
    ({'env_file': '/srv/dev/.env', 'command': ['node', 'cli.js']}, 'instance'),
    ({'url': 'http://127.0.0.1:8055', 'token': 't'}, 'instance'),
])
def test_a_source_is_one_kind(source, kind):
    assert _promote.source_kind(source) == kind


@pytest.mark.parametrize('source, said', [
    ({}, 'none was given'),
    ({'directory': '/srv/structure', 'url': 'http://x', 'token': 't'}, 'it names directory and instance'),
    ({'directory': '/srv/structure', 'restore_point': 'latest'}, 'it names directory and restore_point'),
])
def test_a_source_of_no_or_several_kinds_is_refused(source, said):
    with pytest.raises(CairnError) as caught:
        _promote.source_kind(source)
    assert caught.value.message.startswith('the source of a promotion is one of: an instance on this host')
    assert caught.value.message.endswith(said)


def test_a_source_is_named_without_its_token():
    assert _promote.source_name({'url': 'http://dev:8055', 'token': 'secret-token'}) == 'instance http://dev:8055'
    assert _promote.source_name({'restore_point': 'latest', 'instance': 'dev'}) == 'restore point latest of dev'
    assert _promote.source_name({'directory': '/srv/s', 'name': 'structure at abc123'}) == 'structure at abc123'


def test_the_schema_goes_first():
    assert _promote.check_parts(['config', 'schema']) == ('schema', 'config')
    assert _promote.check_parts(['config']) == ('config',)
    with pytest.raises(CairnError, match='parts is empty'):
        _promote.check_parts([])


def test_a_schema_snapshot_directory_is_written_once_and_read_back(tmp_path):
    dest = str(tmp_path / 'structure')
    found = {'kind': 'instance', 'name': 'dev', 'schema': snapshot(), 'config': None}
    checked = _promote.snapshot(found, dest, ('schema',), check_mode=True)
    assert checked['changed'] is True and not os.path.exists(dest)
    first = _promote.snapshot(found, dest, ('schema',), want_diff=True)
    assert first['changed'] is True and first['files'] == {'schema.json': 'changed'}
    assert first['diff'][0]['before'] == '' and '"title"' in first['diff'][0]['after']
    data = (tmp_path / 'structure' / 'schema.json').read_bytes()
    written = json.loads(data)
    assert [item['field'] for item in written['fields']] == ['id', 'title']  # normalised
    reordered = dict(found, schema=dict(snapshot(), fields=list(reversed(snapshot()['fields']))))
    again = _promote.snapshot(reordered, dest, ('schema',))
    assert again['changed'] is False and again['files'] == {'schema.json': 'unchanged'}
    assert (tmp_path / 'structure' / 'schema.json').read_bytes() == data
    read = _promote.read_directory(dest, ('schema',))
    assert read['schema'] == written and read['config'] is None


def test_a_missing_directory_or_part_says_how_to_make_it(tmp_path):
    with pytest.raises(CairnError, match='write it with mode snapshot'):
        _promote.read_directory(str(tmp_path / 'nowhere'), ('schema',))
    (tmp_path / 'schema.json').write_text(json.dumps(snapshot()))
    with pytest.raises(CairnError, match='has no config/ with the config'):
        _promote.read_directory(str(tmp_path), ('schema', 'config'))
    (tmp_path / 'file').write_text('')
    with pytest.raises(CairnError, match='is a file'):
        _promote.snapshot({'kind': 'directory', 'name': 'x', 'schema': snapshot()}, str(tmp_path / 'file'),
                          ('schema',))


def test_the_source_is_described_with_its_schema():
    described = _promote.describe_source({'kind': 'restore_point', 'name': 'restore point latest of dev',
                                          'restore_point': '20250101T000000Z', 'schema': snapshot('postgres')})
    assert described == {'kind': 'restore_point', 'name': 'restore point latest of dev',
                         'restore_point': '20250101T000000Z', 'vendor': 'postgres', 'cms_version': '10.0.0',
                         'counts': {'collections': 1, 'fields': 2, 'relations': 0}}


def config_document(kinds=('roles', 'permissions')):
    from ansible_collections.cairncms.ops.plugins.module_utils._cms import config
    rows = {'directus_roles': [{'id': 'r-1', 'name': 'Editors', 'admin_access': 0, 'app_access': 1},
                               {'id': 'r-admin', 'name': 'Administrator', 'admin_access': 1, 'app_access': 1}],
            'directus_permissions': [{'id': 1, 'role': 'r-1', 'collection': 'books', 'action': 'read',
                                      'fields': '*', 'permissions': None}],
            'directus_webhooks': [{'id': 1, 'name': 'notify', 'actions': 'create', 'collections': 'books'}]}
    return config.from_rows(rows, kinds, 'sqlite')


def test_a_snapshot_directory_holds_the_schema_and_the_config_and_reads_back(tmp_path):
    dest = str(tmp_path / 'structure')
    found = {'kind': 'instance', 'name': 'dev', 'schema': snapshot(), 'config': config_document()}
    first = _promote.snapshot(found, dest, ('schema', 'config'))
    assert first['changed'] is True
    assert first['files'] == {'schema.json': 'changed', 'config/config.json': 'changed',
                              'config/roles/editors.json': 'changed',
                              'config/permissions/editors/books.json': 'changed'}
    again = _promote.snapshot(found, dest, ('schema', 'config'))
    assert again['changed'] is False and set(again['files'].values()) == {'unchanged'}
    read = _promote.read_directory(dest, ('schema', 'config'))
    assert read['config'] == found['config'] and read['schema']['vendor'] == 'sqlite'


def test_a_config_is_promoted_with_the_kinds_asked_for():
    from ansible_collections.cairncms.ops.plugins.module_utils._cms import config
    whole = config_document(('roles', 'permissions', 'webhooks'))
    assert _promote.restrict(config, whole, None) is whole
    narrowed = _promote.restrict(config, whole, ['permissions', 'roles'])
    assert narrowed['kinds'] == ['roles', 'permissions'] and 'webhooks' not in narrowed
    assert narrowed['permissions'] == whole['permissions']
    with pytest.raises(CairnError) as caught:
        _promote.restrict(config, narrowed, ['roles', 'flows'])
    assert caught.value.message.startswith("the source's config has no flows (it has roles, permissions)")
