# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""`npm ci` of a pinned test dependency (Directus, Azurite), once, whatever the number of xdist workers.

An install counts as done only when `npm ci` has finished (install scripts and native builds included): a
marker holding the sha256 of package-lock.json is written into node_modules after it succeeds. Workers wait
for each other on a lock file outside the repository; none uses a tree another is still installing.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import tempfile

MARKER = os.path.join('node_modules', '.cairn-npm-ci')


def _lock_digest(base):
    with open(os.path.join(base, 'package-lock.json'), 'rb') as handle:
        return hashlib.sha256(handle.read()).hexdigest()


def _installed(base, digest):
    try:
        with open(os.path.join(base, MARKER), encoding='ascii') as handle:
            return handle.read().strip() == digest
    except OSError:
        return False


def ensure_npm_ci(base, entry, error, env=None, timeout=1200):
    """Path of ``entry`` (relative to ``base``) once ``npm ci`` has completed in ``base``; ``error`` is the
    exception type raised with npm's output when it cannot."""
    base = os.path.abspath(str(base))
    cli = os.path.join(base, str(entry))
    if not os.path.isfile(os.path.join(base, 'package-lock.json')):
        raise error('%s has no package-lock.json; cannot `npm ci`' % base)
    digest = _lock_digest(base)
    if _installed(base, digest) and os.path.isfile(cli):
        return cli
    npm = shutil.which('npm')
    if npm is None:
        raise error('`npm` not found on PATH; it is needed to install %s' % os.path.basename(base))
    lock_path = os.path.join(tempfile.gettempdir(), 'cairncms-npm-%s.lock' % hashlib.sha256(base.encode()).hexdigest()[:16])
    with open(lock_path, 'w') as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _installed(base, digest) and os.path.isfile(cli):  # another worker finished meanwhile
            return cli
        proc = subprocess.run([npm, 'ci', '--no-audit', '--no-fund'], cwd=base, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, timeout=timeout, check=False)
        if proc.returncode != 0 or not os.path.isfile(cli):
            tail = '\n'.join((proc.stdout or '').splitlines()[-40:])
            raise error('`npm ci` in %s failed (exit %d):\n%s' % (base, proc.returncode, tail))
        with open(os.path.join(base, MARKER), 'w', encoding='ascii') as handle:
            handle.write(digest + '\n')
    return cli
