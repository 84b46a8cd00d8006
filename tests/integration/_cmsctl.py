# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A service manager of the tests' own for a Directus instance, as the ``command`` kind of cairn_cms_service
drives one (systemd is not available here): ``_cmsctl.py start|stop|status WORKDIR``.

``start`` runs ``directus start`` in WORKDIR in the background (its own session, output appended to
WORKDIR/directus.log, pid in WORKDIR/cms.pid) and returns at once, as ``systemctl start`` of a simple unit does;
``stop`` sends SIGTERM to its process group and waits for it to end (SIGKILL after 15 s); ``status`` exits 0 while
it runs, 3 when it does not (the LSB code systemctl uses)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _directus  # noqa: E402

PID_FILE = 'cms.pid'


def _pid(workdir):
    try:
        with open(os.path.join(workdir, PID_FILE), encoding='ascii') as handle:
            pid = int(handle.read().strip())
    except (OSError, ValueError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    with open('/proc/%d/stat' % pid, encoding='ascii') as handle:  # a zombie is not running
        if handle.read().rsplit(')', 1)[1].split()[0] == 'Z':
            return None
    return pid


def start(workdir):
    if _pid(workdir):
        return 0
    with open(os.path.join(workdir, _directus.LOG_FILENAME), 'ab') as log:
        proc = subprocess.Popen([_directus._node(), str(_directus.ensure_installed()), 'start'], cwd=workdir,
                                env=_directus._child_env(), stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
    with open(os.path.join(workdir, PID_FILE), 'w', encoding='ascii') as handle:
        handle.write('%d\n' % proc.pid)
    return 0


def stop(workdir):
    pid = _pid(workdir)
    if pid is None:
        return 0
    os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + 15
    while _pid(workdir) and time.monotonic() < deadline:
        time.sleep(0.1)
    if _pid(workdir):
        os.killpg(pid, signal.SIGKILL)
    return 0


def status(workdir):
    return 0 if _pid(workdir) else 3


if __name__ == '__main__':
    sys.exit({'start': start, 'stop': stop, 'status': status}[sys.argv[1]](os.path.abspath(sys.argv[2])))
