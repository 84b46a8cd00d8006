# -*- coding: utf-8 -*-
# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run a CMS process in the background for a drill (private).

The process gets its own session (so it outlives the module and is stopped as a whole process group), a
minimal environment plus ``CONFIG_PATH`` (the configuration comes from its ``.env``, never from argv or the
environment), and a log file. A pid file records its pid and kernel start time, so a later stop never
signals a process that merely reuses the pid.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time

from ansible_collections.cairncms.ops.plugins.module_utils._cms.bootstrap import secret_values
from ansible_collections.cairncms.ops.plugins.module_utils._common import (
    CairnError, process_start_time, read_json, write_json)
from ansible_collections.cairncms.ops.plugins.module_utils._http import health
from ansible_collections.cairncms.ops.plugins.module_utils._process import mask

PID_FILE = '.cairn-cms.pid'  # in the directory the CMS runs in, unless told otherwise
PASSTHROUGH = ('PATH', 'HOME', 'LANG', 'LC_ALL', 'TZ', 'TMPDIR', 'USER', 'LOGNAME')
LOG_TAIL = 30


def _group(pgid):
    """Pids of the live (not zombie) processes of process group ``pgid``."""
    found = []
    for name in os.listdir('/proc'):
        if not name.isdigit():
            continue
        try:
            with open('/proc/%s/stat' % name, 'rb') as handle:
                fields = handle.read().rsplit(b')', 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[0] != b'Z' and int(fields[2]) == pgid:
            found.append(int(name))
    return found


def running(pid_file):
    """The pid recorded in ``pid_file`` while that very process runs, else None."""
    if not os.path.exists(pid_file):
        return None
    recorded = read_json(pid_file, 'CMS pid file')
    pid = recorded.get('pid')
    if isinstance(pid, int) and pid > 0 and process_start_time(pid) == recorded.get('start_time'):
        return pid
    return None


def _masked_tail(log_file, env_file):
    """The end of the CMS log with every secret value of its configuration masked."""
    try:
        with open(log_file, 'rb') as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(0, handle.tell() - 64 * 1024))
            text = handle.read().decode('utf-8', 'replace')
    except OSError:
        return ''
    text = mask(text, secret_values(None, env_file))
    return '\n'.join(text.splitlines()[-LOG_TAIL:])


def stop(pid_file, timeout=15):
    """Stop the process group of ``pid_file``: SIGTERM, then SIGKILL for what is left of the group after
    ``timeout`` s (a wrapper's children too). True when one ran."""
    pid = running(pid_file)
    if pid is None:
        if os.path.exists(pid_file):
            os.unlink(pid_file)
        return False
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5)):
        if not _group(pid):
            break
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + wait
        while _group(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
    os.unlink(pid_file)
    return True


def start(command, chdir, url, env_file, pid_file, log_file, environment=None, timeout=180, validate_certs=True):
    """Start ``command`` in ``chdir`` unless it already runs, and wait until ``url`` reports healthy.
    Returns ``(changed, facts)``; on failure the process is stopped and the error carries the log's end."""
    pid = running(pid_file)
    if pid is not None:
        health(url, timeout=10, validate_certs=validate_certs)
        return False, {'pid': pid, 'startup_s': 0.0}
    if not os.path.isfile(env_file):
        raise CairnError('the CMS configuration %s does not exist; the drill sandbox writes it first' % env_file)
    child_env = {name: os.environ[name] for name in PASSTHROUGH if name in os.environ}
    child_env.update({str(name): str(value) for name, value in (environment or {}).items()})
    child_env['CONFIG_PATH'] = env_file
    began = time.monotonic()
    with open(log_file, 'ab') as log:
        os.chmod(log_file, 0o600)
        try:
            process = subprocess.Popen(list(command), cwd=chdir, env=child_env, stdin=subprocess.DEVNULL,
                                       stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                       close_fds=True)
        except OSError as exc:
            raise CairnError('cannot start the CMS with %s: %s; set cairn_drill_cms_command to the command that '
                             'starts CairnCMS (for example [node, /opt/cairncms/cli.js, start])'
                             % (command[0], exc.strerror))
    write_json(pid_file, {'pid': process.pid, 'start_time': process_start_time(process.pid), 'command': list(command)})
    last = None
    while True:
        code = process.poll()
        if code is not None:
            stop(pid_file)
            raise CairnError('the CMS exited with code %s before it became healthy; the end of its log (%s):\n%s'
                             % (code, log_file, _masked_tail(log_file, env_file)))
        try:
            health(url, timeout=5, validate_certs=validate_certs)
            break
        except CairnError as exc:
            last = exc.message
        if time.monotonic() - began > timeout:
            stop(pid_file)
            raise CairnError('the CMS did not become healthy within %d s (%s); the end of its log (%s):\n%s'
                             % (timeout, last, log_file, _masked_tail(log_file, env_file)))
        time.sleep(0.5)
    return True, {'pid': process.pid, 'startup_s': round(time.monotonic() - began, 3)}
