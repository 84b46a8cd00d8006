# -*- coding: utf-8 -*-
# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Sphinx configuration of the docsite that tests/publish/check.sh builds (warnings are errors): the pages
antsibull-docs makes of the modules and roles, and the guides (docs/docsite/rst, made from docs/*.md).

CI is offline, so there is no intersphinx: a label the collection does not define (Ansible's own pages,
such as common_return_values) becomes a link to a search of the Ansible docs, while every label of the
collection (ansible_collections.cairncms.ops.*) must resolve here.
"""

from docutils import nodes

project = 'cairncms.ops'
extensions = ['sphinx_antsibull_ext']
html_theme = 'alabaster'
pygments_style = 'ansible'
highlight_language = 'YAML+Jinja'
nitpicky = True
html_copy_source = False

OWN_LABELS = 'ansible_collections.cairncms.ops.'
ANSIBLE_DOCS = 'https://docs.ansible.com/projects/ansible/latest/search.html?q='


def _ansible_label(app, env, node, contnode):
    target = node.get('reftarget', '')
    if node.get('reftype') != 'ref' or target.startswith(OWN_LABELS):
        return None
    reference = nodes.reference('', '', internal=False, refuri=ANSIBLE_DOCS + target)
    reference.append(contnode)
    return reference


def setup(app):
    app.connect('missing-reference', _ansible_label)
