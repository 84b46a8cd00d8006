#!/usr/bin/env python
# -*- coding: utf-8 -*-
# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Generate the docsite's guides (docs/docsite/rst/*.rst) from the Markdown guides.

The guides have one source: docs/*.md and docs/awx/README.md, the files people read on GitHub and in the
collection tarball. antsibull-docs takes extra documentation only as RST in docs/docsite/rst/ (its
``find_extra_docs`` collects ``*.rst`` files, nothing else), so this script writes an RST copy of each guide
there at build time; that directory is git-ignored and is never edited by hand. ``make build``,
``make docs`` and tests/publish/check.sh run it.

The conversion covers the Markdown the guides use (headings, paragraphs, emphasis, code, links, lists,
pipe tables, fenced code, block quotes) and stops with an error on anything else, so a new construct is
noticed rather than lost. Links between guides become ``:ref:`` links to labels that follow GitHub's
heading anchors (``configuration.md#cloudinary-locations``), links to a role or a module ``:ref:`` links to
its docsite page, a link to another file of the repository a link to it on GitHub, and a link whose guide,
anchor or file does not exist is an error.

Usage: python tests/publish/md2rst.py [--root REPO] [--check]
  --check  compare with what is in docs/docsite/rst/ instead of writing (exit 1 when it differs)
"""

from __future__ import annotations

import argparse
import os
import re
import sys

import yaml
from markdown_it import MarkdownIt
from markdown_it.tree import SyntaxTreeNode

LABEL_PREFIX = 'ansible_collections.cairncms.ops.docsite.'
OUT_DIR = os.path.join('docs', 'docsite', 'rst')
ADORNMENTS = '=-~^"'
FENCE_LANGUAGES = {'': 'text', 'sh': 'shell', 'console': 'console', 'yaml': 'yaml', 'json': 'json',
                   'text': 'text', 'ini': 'ini', 'python': 'python', 'jinja': 'jinja'}
# A paragraph line RST would read as something else: a list item, an enumerator, a field, a comment, an
# option, a doctest or a block quote attribution.
_BLOCK_START = re.compile(r'^([-+*\u2022>:]|\.\.|#\.|\(?[0-9]+[.)]\s|\(?[a-zA-Z][.)]\s|\(?[ivxlcdmIVXLCDM]+[.)]\s)')
_SPECIAL = re.compile(r'([\\`*_|])')
# What may stand right before and right after inline markup (docutils' inline markup recognition rules).
_BEFORE_MARKUP = '-:/\'"<([{'
_AFTER_MARKUP = '-.,:;!?\\/\'")]}>'


class ConversionError(Exception):
    pass


def guides(root):
    """{name: Markdown path relative to ``root``} of every guide: docs/*.md by file name, docs/awx/README.md
    as ``awx``."""
    found = {}
    docs = os.path.join(root, 'docs')
    for entry in sorted(os.listdir(docs)):
        if entry.endswith('.md'):
            found[entry[:-3]] = 'docs/' + entry
    if os.path.isfile(os.path.join(docs, 'awx', 'README.md')):
        found['awx'] = 'docs/awx/README.md'
    return found


def github_slug(text, seen):
    """The anchor GitHub gives a heading with the plain ``text``; ``seen`` counts earlier ones (duplicates get
    -1, -2...)."""
    slug = re.sub(r'[^\w\- ]', '', text.strip().lower()).replace(' ', '-')
    count = seen.get(slug, 0)
    seen[slug] = count + 1
    return slug if count == 0 else '%s-%d' % (slug, count)


def plain(node):
    """The text of an inline node without markup (as GitHub uses it for anchors and link titles)."""
    if node.type in ('text', 'code_inline'):
        return node.content
    if node.type in ('softbreak', 'hardbreak'):
        return ' '
    return ''.join(plain(child) for child in node.children)


def escape(text):
    return _SPECIAL.sub(r'\\\1', text)


class Converter:
    """One guide: Markdown text in, RST text out."""

    def __init__(self, root, name, sources, anchors, repository, branch='main'):
        self.root = root
        self.name = name
        self.source = sources[name]             # path relative to the repository root
        self.by_path = {path: guide for guide, path in sources.items()}
        self.anchors = anchors                  # {guide name: set of its heading anchors}
        self.repository = repository.rstrip('/')
        self.branch = branch

    def fail(self, node, what):
        line = node.map[0] + 1 if getattr(node, 'map', None) else '?'
        raise ConversionError('%s:%s: %s' % (self.source, line, what))

    # inline -------------------------------------------------------------------------------------------
    def inline(self, node):
        return ''.join(self.inline_piece(child) for child in node.children)

    def inline_piece(self, node):
        kind = node.type
        if kind == 'text':
            return escape(node.content)
        if kind in ('softbreak', 'hardbreak'):
            return '\n'
        if kind == 'code_inline':
            content = node.content
            if not content.strip() or content != content.strip() or '``' in content:
                self.fail(node, 'inline code %r cannot be written in RST' % content)
            return self.guard('``%s``' % content)
        if kind in ('strong', 'em'):
            mark = '**' if kind == 'strong' else '*'
            inner = node.children
            if all(child.type in ('text', 'softbreak') for child in inner) and plain(node).strip() == plain(node):
                return self.guard(mark + self.inline(node) + mark)
            return self.inline(node)  # RST cannot nest markup: keep the inner markup, drop the emphasis
        if kind == 'link':
            return self.guard(self.link(node))
        self.fail(node, 'unsupported inline Markdown: %s' % kind)
        return ''

    @staticmethod
    def guard(markup):
        # \x00 marks the edges of inline markup, so that joining pieces can keep them apart from words
        return '\x00' + markup + '\x00'

    def link(self, node):
        href = node.attrs.get('href', '')
        text = plain(node).strip()
        title = re.sub(r'([`<>\\])', r'\\\1', text)
        if re.match(r'^[a-z][a-z0-9+.-]*:', href):
            return '`%s <%s>`__' % (title or href, href) if title != href else '`<%s>`__' % href
        path, _sep, anchor = href.partition('#')
        if not path:
            target = self.name
        else:
            full = os.path.normpath(os.path.join(os.path.dirname(self.source), path)).replace(os.sep, '/')
            target = self.by_path.get(full)
            page = self.plugin_page(full)
            if target is None and page:
                return ':ref:`%s <%s>`' % (title, page) if title and title not in (href, path) else ':ref:`%s`' % page
            if target is None:
                if full.startswith('..') or not os.path.exists(os.path.join(self.root, full)):
                    self.fail(node, 'the link %s points to %s, which does not exist' % (href, full))
                kind = 'tree' if os.path.isdir(os.path.join(self.root, full)) else 'blob'
                url = '%s/%s/%s/%s%s' % (self.repository, kind, self.branch, full, '#' + anchor if anchor else '')
                return '`%s <%s>`__' % (title or full, url)
        label = LABEL_PREFIX + target
        if title in (href, path, os.path.basename(path)):
            title = ''  # a link that only names the file shows the guide's (or section's) own title
        if anchor:
            if anchor not in self.anchors[target]:
                self.fail(node, 'the link %s names the anchor #%s, which is no heading of %s'
                          % (href, anchor, target))
            label += '.' + anchor
        return ':ref:`%s <%s>`' % (title, label) if title else ':ref:`%s`' % label

    def plugin_page(self, path):
        """The label of the docsite page of a role (roles/<name>, its README) or a module (plugins/modules/<name>.py)
        that ``path`` names, or None."""
        role = re.match(r'^roles/([a-z0-9_]+)(/README\.md)?/?$', path)
        if role and os.path.isfile(os.path.join(self.root, 'roles', role.group(1), 'meta', 'argument_specs.yml')):
            return LABEL_PREFIX[:-len('docsite.')] + role.group(1) + '_role'
        module = re.match(r'^plugins/modules/([a-z0-9_]+)\.py$', path)
        if module and os.path.isfile(os.path.join(self.root, path)):
            return LABEL_PREFIX[:-len('docsite.')] + module.group(1) + '_module'
        return None

    def text_of(self, node):
        """The RST of an inline container, with inline markup kept apart from adjacent word characters (RST
        only sees markup that starts and ends at a word boundary)."""
        raw = self.inline(node)
        pieces = raw.split('\x00')
        out = ''
        for index, piece in enumerate(pieces):
            if index % 2 == 1:          # markup
                if out and not (out[-1].isspace() or out[-1] in _BEFORE_MARKUP):
                    out += '\\ '
                out += piece
                following = pieces[index + 1] if index + 1 < len(pieces) else ''
                if not following and index + 2 < len(pieces):
                    following = pieces[index + 2][:1]   # markup right after markup
                if following and not (following[0].isspace() or following[0] in _AFTER_MARKUP):
                    out += '\\ '
            else:
                out += piece
        return out

    # blocks -------------------------------------------------------------------------------------------
    def blocks(self, nodes, state):
        out = []
        for node in nodes:
            lines = self.block(node, state)
            if lines:
                if out:
                    out.append('')
                out.extend(lines)
        return out

    def block(self, node, state):
        kind = node.type
        if kind == 'heading':
            return self.heading(node, state)
        if kind == 'paragraph':
            return self.paragraph(node)
        if kind in ('fence', 'code_block'):
            info = (node.info or '').strip().split(' ')[0] if kind == 'fence' else ''
            if info not in FENCE_LANGUAGES:
                self.fail(node, 'fenced code in %r: add the language to FENCE_LANGUAGES in %s' % (info, __file__))
            body = node.content.rstrip('\n').split('\n')
            return ['.. code-block:: %s' % FENCE_LANGUAGES[info], ''] + [('   ' + line).rstrip() for line in body]
        if kind in ('bullet_list', 'ordered_list'):
            return self.listing(node, state)
        if kind == 'table':
            return self.table(node)
        if kind == 'blockquote':
            return ['   ' + line if line else '' for line in self.blocks(node.children, state)]
        if kind == 'hr':
            return ['----']
        self.fail(node, 'unsupported Markdown block: %s' % kind)
        return []

    def paragraph(self, node):
        inline = node.children[0] if node.children else None
        text = self.text_of(inline) if inline is not None else ''
        lines = text.split('\n')
        first = [child for child in (inline.children if inline is not None else []) if child.type != 'text' or child.content]
        starts_with_text = bool(first) and first[0].type == 'text'
        if starts_with_text and _BLOCK_START.match(lines[0]):
            lines[0] = '\\' + lines[0]
        if lines[-1].endswith('::'):
            lines[-1] = lines[-1][:-1] + '\\:'
        return lines

    def heading(self, node, state):
        level = int(node.tag[1])
        # RST levels follow the order adornments appear in: never skip one
        level = min(level, state['level'] + 1)
        state['level'] = level
        if level > len(ADORNMENTS):
            self.fail(node, 'heading too deep')
        inline = node.children[0]
        anchor = github_slug(plain(inline), state['seen'])
        title = self.text_of(inline).replace('\n', ' ')
        lines = ['.. _%s%s.%s:' % (LABEL_PREFIX, self.name, anchor), '']
        if state['first']:
            lines = ['.. _%s%s:' % (LABEL_PREFIX, self.name)] + lines
            state['first'] = False
        return lines + [title, ADORNMENTS[level - 1] * max(len(title), 4)]

    def listing(self, node, state):
        ordered = node.type == 'ordered_list'
        number = int(node.attrs.get('start', 1) or 1) if ordered else None
        out = []
        for item in node.children:
            marker = ('%d. ' % number) if ordered else '* '
            indent = ' ' * len(marker)
            body = self.blocks(item.children, state) or ['']
            if out:
                out.append('')
            out.append(marker + body[0])
            out.extend((indent + line) if line else '' for line in body[1:])
            if ordered:
                number += 1
        return out

    def table(self, node):
        rows = []
        header_rows = 0
        for section in node.children:
            for row in section.children:
                cells = []
                for cell in row.children:
                    text = self.text_of(cell.children[0]) if cell.children else ''
                    cells.append(text.replace('\n', ' ').strip())
                rows.append(cells)
                if section.type == 'thead':
                    header_rows += 1
        out = ['.. list-table::', '   :header-rows: %d' % header_rows, '']
        for cells in rows:
            for index, text in enumerate(cells):
                lead = '   * - ' if index == 0 else '     - '
                out.append((lead + text).rstrip())
        return out

    def convert(self, text):
        tree = SyntaxTreeNode(markdown().parse(text))
        state = {'level': 0, 'seen': {}, 'first': True}
        body = self.blocks(tree.children, state)
        head = ['..', '  Generated from %s by tests/publish/md2rst.py at build time: edit the Markdown, not this '
                'file.' % self.source, '',
                # the docsite's "Edit on GitHub" opens the Markdown source
                ':github_url: %s/edit/%s/%s' % (self.repository, self.branch, self.source), '']
        return '\n'.join(head + body) + '\n'


def markdown():
    return MarkdownIt('commonmark').enable('table')


def anchors_of(text):
    tree = SyntaxTreeNode(markdown().parse(text))
    seen = {}
    found = set()
    for node in tree.walk():
        if node.type == 'heading':
            found.add(github_slug(plain(node.children[0]), seen))
    return found


def listed_guides(root):
    """The guide names docs/docsite/extra-docs.yml puts in the docsite's table of contents."""
    path = os.path.join(root, 'docs', 'docsite', 'extra-docs.yml')
    with open(path, encoding='utf-8') as handle:
        index = yaml.safe_load(handle) or {}
    names = []
    for section in index.get('sections') or []:
        for entry in section.get('toctree') or []:
            names.append(entry if isinstance(entry, str) else entry.get('ref'))
    return names


def convert_all(root):
    """{output file name: RST text} of every guide; ConversionError when a guide cannot be converted or is not
    in extra-docs.yml (or extra-docs.yml lists what is no guide)."""
    with open(os.path.join(root, 'galaxy.yml'), encoding='utf-8') as handle:
        repository = yaml.safe_load(handle)['repository']
    sources = guides(root)
    texts = {}
    for name, path in sources.items():
        with open(os.path.join(root, path), encoding='utf-8') as handle:
            texts[name] = handle.read()
    listed = listed_guides(root)
    missing = sorted(set(sources) - set(listed))
    unknown = sorted(set(listed) - set(sources))
    if missing or unknown:
        raise ConversionError('docs/docsite/extra-docs.yml must list every guide once: %s%s'
                              % ('not listed: %s' % ', '.join(missing) if missing else '',
                                 (' ' if missing else '') + ('not a guide: %s' % ', '.join(unknown) if unknown else '')))
    anchors = {name: anchors_of(text) for name, text in texts.items()}
    results = {}
    for name in sources:
        results[name + '.rst'] = Converter(root, name, sources, anchors, repository).convert(texts[name])
    return results


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n', maxsplit=1)[0])
    parser.add_argument('--root', default=os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    parser.add_argument('--check', action='store_true')
    args = parser.parse_args(argv)
    try:
        results = convert_all(args.root)
    except ConversionError as exc:
        sys.stderr.write('md2rst: %s\n' % exc)
        return 2
    out_dir = os.path.join(args.root, OUT_DIR)
    os.makedirs(out_dir, exist_ok=True)
    present = {entry for entry in os.listdir(out_dir) if entry.endswith('.rst')}
    if args.check:
        stale = sorted(name for name, text in results.items() if not _same(os.path.join(out_dir, name), text))
        stale += sorted(present - set(results))
        if stale:
            sys.stderr.write('md2rst: %s differ from the Markdown guides; run python tests/publish/md2rst.py\n'
                             % ', '.join(stale))
            return 1
        return 0
    for name in present - set(results):
        os.unlink(os.path.join(out_dir, name))
    for name, text in sorted(results.items()):
        with open(os.path.join(out_dir, name), 'w', encoding='utf-8') as handle:
            handle.write(text)
    print('md2rst: %d guide(s) written to %s' % (len(results), OUT_DIR))
    return 0


def _same(path, text):
    try:
        with open(path, encoding='utf-8') as handle:
            return handle.read() == text
    except OSError:
        return False


if __name__ == '__main__':
    sys.exit(main())
