#!/usr/bin/env python
# -*- coding: utf-8 -*-
# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Check the execution environment build context that `ansible-builder create` made (tests/publish/check.sh).

There is no container engine in CI, so the image is not built; what the build would install is checked
instead. The context must carry the collection tarball and a galaxy requirement that installs it, and the
tarball must carry meta/execution-environment.yml, requirements.txt and bindep.txt as they are in the
checkout. Then the context's own introspect script (the one the image build runs) has been run on the
collection installed from that tarball: the Python and system requirements it found must be exactly those
of requirements.txt (with its -r files) and bindep.txt.

Usage: ee_context.py REPO CONTEXT INTROSPECTED_PIP INTROSPECTED_BINDEP
"""

from __future__ import annotations

import os
import sys
import tarfile

import yaml

TARBALL = 'cairncms-ops.tar.gz'
CARRIED = ('meta/execution-environment.yml', 'requirements.txt', 'bindep.txt')


def requirement_lines(path):
    """The requirement lines of a pip or bindep file, following -r includes, without comments."""
    lines = []
    with open(path, encoding='utf-8') as handle:
        for line in handle:
            line = line.split(' #', 1)[0].strip()
            if not line or line.startswith('#'):
                continue
            if line.startswith(('-r ', '--requirement ')):
                lines += requirement_lines(os.path.join(os.path.dirname(path), line.split(None, 1)[1]))
            else:
                lines.append(line)
    return lines


def main(repo, context, pip_out, bindep_out):
    problems = []
    build = os.path.join(context, '_build')
    if not os.path.isfile(os.path.join(context, 'Containerfile')):
        problems.append('no Containerfile in %s' % context)
    with open(os.path.join(build, 'requirements.yml'), encoding='utf-8') as handle:
        galaxy = yaml.safe_load(handle) or {}
    names = [entry.get('name') for entry in galaxy.get('collections') or []]
    if '/build/collections/' + TARBALL not in names:
        problems.append('the galaxy requirements of the context do not install the built collection: %s' % names)
    tarball = os.path.join(build, 'collections', TARBALL)
    if not os.path.isfile(tarball):
        problems.append('the context does not carry %s' % tarball)
    else:
        with tarfile.open(tarball) as archive:
            for name in CARRIED:
                try:
                    carried = archive.extractfile(name).read()
                except KeyError:
                    problems.append('the collection tarball has no %s' % name)
                    continue
                with open(os.path.join(repo, name), 'rb') as handle:
                    if handle.read() != carried:
                        problems.append('%s in the tarball differs from the checkout' % name)
    for what, found, source in (('Python', pip_out, 'requirements.txt'), ('system', bindep_out, 'bindep.txt')):
        expected = requirement_lines(os.path.join(repo, source))
        got = requirement_lines(found) if os.path.isfile(found) else []
        if sorted(got) != sorted(expected):
            problems.append('the image would install these %s requirements: %s; %s has %s'
                            % (what, got, source, expected))
    for problem in problems:
        sys.stderr.write('ee_context: %s\n' % problem)
    if not problems:
        print('ee_context: the build context installs the collection with its %d Python and %d system requirements'
              % (len(requirement_lines(os.path.join(repo, 'requirements.txt'))),
                 len(requirement_lines(os.path.join(repo, 'bindep.txt')))))
    return 1 if problems else 0


if __name__ == '__main__':
    if len(sys.argv) != 5:
        sys.exit(__doc__)
    sys.exit(main(*sys.argv[1:]))
