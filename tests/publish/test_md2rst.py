# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Markdown guides to RST conversion of the docsite (tests/publish/md2rst.py): links between guides,
anchors, markup at word boundaries, tables, and the errors that keep a guide from being lost or broken.
Run by tests/publish/check.sh; the RST it makes is then linted and built by antsibull-docs and Sphinx."""

from __future__ import annotations

import os
import sys

import pytest
from docutils.core import publish_doctree
from docutils.utils import SystemMessage

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import md2rst  # noqa: E402  pylint: disable=wrong-import-position

GALAXY = 'namespace: cairncms\nname: ops\nrepository: https://github.com/cairncms/ops\n'


def _repo(tmp_path, guides, listed=None, files=()):
    (tmp_path / 'docs' / 'docsite').mkdir(parents=True, exist_ok=True)
    (tmp_path / 'galaxy.yml').write_text(GALAXY)
    for name, text in guides.items():
        (tmp_path / 'docs' / (name + '.md')).write_text(text)
    for name in files:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text('x')
    listed = list(guides) if listed is None else listed
    (tmp_path / 'docs' / 'docsite' / 'extra-docs.yml').write_text(
        'sections:\n  - title: Guides\n    toctree: [%s]\n' % ', '.join(listed))
    return str(tmp_path)


def _convert(tmp_path, guides, **kwargs):
    return md2rst.convert_all(_repo(tmp_path, guides, **kwargs))


def _parses(rst):
    """docutils reads it without a warning (the labels and :ref: are Sphinx's, so they are left out)."""
    text = '\n'.join(line for line in rst.splitlines() if not line.startswith('.. _'))
    text = text.replace(':ref:', ':literal:')
    publish_doctree(text, settings_overrides={'halt_level': 2, 'report_level': 2})


def test_links_between_guides_become_refs(tmp_path):
    out = _convert(tmp_path, {
        'a': '# Guide A\n\nSee [the other guide](b.md), [its part](b.md#the-part-two) and [b.md](b.md).\n',
        'b': '# Guide B\n\n## The part (two)\n\nText.\n'})
    assert ':ref:`the other guide <ansible_collections.cairncms.ops.docsite.b>`' in out['a.rst']
    assert ':ref:`its part <ansible_collections.cairncms.ops.docsite.b.the-part-two>`' in out['a.rst']
    assert ':ref:`ansible_collections.cairncms.ops.docsite.b`' in out['a.rst']   # a bare file name: the title
    assert '.. _ansible_collections.cairncms.ops.docsite.b.the-part-two:' in out['b.rst']
    _parses(out['a.rst'])


def test_other_repository_files_link_to_github(tmp_path):
    out = _convert(tmp_path, {'a': '# A\n\nThe [benchmarks](../benchmarks/README.md).\n'},
                   files=['benchmarks/README.md'])
    assert '`benchmarks <https://github.com/cairncms/ops/blob/main/benchmarks/README.md>`__' in out['a.rst']


@pytest.mark.parametrize('link, problem', [
    ('missing.md', 'does not exist'),
    ('b.md#no-such-heading', 'no heading of b'),
    ('#nowhere', 'no heading of a'),
])
def test_broken_links_stop_the_build(tmp_path, link, problem):
    with pytest.raises(md2rst.ConversionError, match=problem):
        _convert(tmp_path, {'a': '# A\n\nSee [there](%s).\n' % link, 'b': '# B\n'})


def test_every_guide_is_in_the_toctree(tmp_path):
    with pytest.raises(md2rst.ConversionError, match='not listed: b'):
        _convert(tmp_path, {'a': '# A\n', 'b': '# B\n'}, listed=['a'])
    with pytest.raises(md2rst.ConversionError, match='not a guide: c'):
        _convert(tmp_path, {'a': '# A\n'}, listed=['a', 'c'])


def test_unknown_markdown_is_an_error(tmp_path):
    with pytest.raises(md2rst.ConversionError, match='unsupported inline Markdown: image'):
        _convert(tmp_path, {'a': '# A\n\n![diagram](x.png)\n'})
    with pytest.raises(md2rst.ConversionError, match='FENCE_LANGUAGES'):
        _convert(tmp_path, {'a': '# A\n\n```cobol\nDISPLAY\n```\n'})


def test_markup_next_to_words_and_rst_specials(tmp_path):
    out = _convert(tmp_path, {'a': '# A\n\nThe `cairn_repository`s and **bold**er, a_b, *star* (`x`)y, |pipe|.\n\n'
                                   '- item with `code`\n- 1. not a list\n'})['a.rst']
    assert '``cairn_repository``\\ s' in out and '**bold**\\ er' in out and 'a\\_b' in out
    assert '(``x``)y' in out and '\\|pipe\\|' in out
    _parses(out)


def test_paragraph_starts(tmp_path):
    """A paragraph RST would read as a list or an option list is escaped; one that starts with markup is not."""
    out = _convert(tmp_path, {'a': '# A\n\n**Bold** start.\n\n--limit staging runs one host.\n\n'
                                   'a. is no list in Markdown\n'})['a.rst']
    assert '\n**Bold** start.\n' in out
    assert '\n\\--limit staging' in out and '\n\\a. is no list' in out
    _parses(out)


def test_tables_and_nested_lists(tmp_path):
    text = ('# A\n\n| name | meaning |\n| --- | --- |\n| `x` | the [b](b.md) guide |\n\n'
            '1. First\n   * nested\n\n   more of first\n2. Second\n\n```yaml\nkey: value\n```\n')
    out = _convert(tmp_path, {'a': text, 'b': '# B\n'})['a.rst']
    assert '.. list-table::\n   :header-rows: 1' in out
    assert '   * - ``x``\n     - the :ref:`b <ansible_collections.cairncms.ops.docsite.b>` guide' in out
    assert '1. First\n\n   * nested\n\n   more of first\n\n2. Second' in out
    assert '.. code-block:: yaml\n\n   key: value' in out
    _parses(out)


def test_the_repository_guides_convert_and_parse():
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    out = md2rst.convert_all(root)
    assert set(out) == {name + '.rst' for name in md2rst.guides(root)}
    for name, rst in out.items():
        try:
            _parses(rst)
        except SystemMessage as exc:
            pytest.fail('%s: %s' % (name, exc))


def test_roles_and_modules_link_to_their_pages(tmp_path):
    out = _convert(tmp_path, {'a': '# A\n\nThe [backup](../roles/backup) role, [its README](../roles/backup/README.md)'
                                   ' and [cairn_db_dump](../plugins/modules/cairn_db_dump.py).\n'},
                   files=['roles/backup/meta/argument_specs.yml', 'roles/backup/README.md',
                          'plugins/modules/cairn_db_dump.py'])['a.rst']
    assert ':ref:`backup <ansible_collections.cairncms.ops.backup_role>`' in out
    assert ':ref:`its README <ansible_collections.cairncms.ops.backup_role>`' in out
    assert ':ref:`cairn_db_dump <ansible_collections.cairncms.ops.cairn_db_dump_module>`' in out


def test_edit_on_github_opens_the_markdown(tmp_path):
    out = _convert(tmp_path, {'a': '# A\n'})['a.rst']
    assert ':github_url: https://github.com/cairncms/ops/edit/main/docs/a.md' in out.splitlines()
