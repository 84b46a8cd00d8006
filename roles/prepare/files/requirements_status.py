# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which requirement lines the Python running this script does not satisfy (used by the prepare role).

    python - 'zstandard>=0.21.0' 'boto3>=1.26.0' < requirements_status.py

prints ``{"missing": [...], "python": "3.11.2"}``: the lines whose distribution, or any distribution it needs
(recursively, with extras and environment markers), is absent or of a version outside the line's specifier.
It only reads installed metadata, so the role can say what ``pip install`` would change (check mode) and skip
it when nothing would (idempotence). A line it cannot read counts as missing: pip then decides.
"""

from __future__ import annotations

import json
import platform
import re
import sys

try:  # pip's own copy first: the venv always has pip, and pip installs by its rules
    from pip._vendor.packaging.requirements import Requirement
except ImportError:  # pragma: no cover - a venv without pip
    from packaging.requirements import Requirement

try:
    from importlib import metadata
except ImportError:  # pragma: no cover - Python < 3.8 is not supported by the modules anyway
    metadata = None


def canonical(name):
    return re.sub(r'[-_.]+', '-', name).lower()


def installed():
    """Every installed distribution, by canonical name."""
    found = {}
    for dist in metadata.distributions():
        name = dist.metadata['Name']
        if name:
            found.setdefault(canonical(name), dist)
    return found


def applies(requirement, extras):
    if requirement.marker is None:
        return True
    return any(requirement.marker.evaluate({'extra': extra}) for extra in (sorted(extras) or ['']))


def satisfied(requirement, dists, seen):
    key = (canonical(requirement.name), tuple(sorted(requirement.extras)))
    if key in seen:
        return True
    seen.add(key)
    dist = dists.get(key[0])
    if dist is None or not requirement.specifier.contains(dist.version, prereleases=True):
        return False
    for line in dist.requires or ():
        needed = Requirement(line)
        if applies(needed, requirement.extras) and not satisfied(needed, dists, seen):
            return False
    return True


def missing(lines):
    dists = installed()
    result = []
    for line in lines:
        try:
            requirement = Requirement(line)
            if applies(requirement, ()) and not satisfied(requirement, dists, set()):
                result.append(line)
        except Exception:  # pylint: disable=broad-except  # unreadable: let pip decide
            result.append(line)
    return result


def main():
    lines = [line.strip() for line in sys.argv[1:] if line.strip()]
    if metadata is None:
        print(json.dumps({'missing': lines, 'python': platform.python_version()}))
        return
    print(json.dumps({'missing': missing(lines), 'python': platform.python_version()}))


if __name__ == '__main__':
    main()
