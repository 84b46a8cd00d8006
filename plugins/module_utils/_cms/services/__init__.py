# -*- coding: utf-8 -*-
# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The kinds of service manager a CMS runs under (private): one file per kind, this one the contract.

A kind is a subclass of ``Kind``. It declares the keys of its part of the service spec (``KEYS``) and answers four
questions: does the CMS run (``running``), what of it is left (``leftovers``), and how is it stopped and started
(``stop``, ``start``). Health, the common keys, waiting and the module's result live in ``_cms.service``; a new kind
is one new file here and one line in ``_cms.service.KINDS``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile

from ansible_collections.cairncms.ops.plugins.module_utils._common import CairnError
from ansible_collections.cairncms.ops.plugins.module_utils._process import STDERR_TAIL, mask

SPEC = 'cairn_cms_service'  # how the operator knows the spec: its inventory variable
QUERY_TIMEOUT = 30  # seconds for a read-only query (systemctl show, compose ps, a status command)
TAIL_LINES = 20


class Key:
    """One key of a service spec: its type (``str``, ``int``, ``bool``, ``list`` of strings, ``dict`` of strings),
    whether it is required, its default, the values it may take."""

    def __init__(self, kind, required=False, default=None, choices=None):
        self.kind = kind
        self.required = required
        self.default = default
        self.choices = choices

    def check(self, name, value, owner):
        """``value`` as this key takes it; CairnError naming ``name`` (of ``owner``) and what it must be."""
        def refuse(must):
            raise CairnError('%s %s: %s must be %s, not %r' % (SPEC, owner, name, must, value))
        if self.kind == 'int':
            if isinstance(value, str) and value.strip().isdigit():
                value = int(value)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                refuse('a whole number of seconds above 0')
        elif self.kind == 'bool':
            text = str(value).lower()
            if text not in ('true', 'false', 'yes', 'no', '1', '0', 'on', 'off'):
                refuse('true or false')
            value = text in ('true', 'yes', '1', 'on')
        elif self.kind == 'list':
            if not isinstance(value, (list, tuple)) or not value or not all(
                    isinstance(item, (str, int, float)) and not isinstance(item, bool) for item in value):
                refuse('a non-empty list of strings (a command and its arguments, no shell)')
            value = [str(item) for item in value]
        elif self.kind == 'dict':
            if not isinstance(value, dict):
                refuse('a mapping of names to strings')
            value = {str(key): str(item) for key, item in value.items()}
        elif not isinstance(value, str) or not value:
            refuse('a non-empty string')
        if self.choices and value not in self.choices:
            refuse('one of %s' % ', '.join(self.choices))
        return value


def tool_env():
    """The environment of a service manager's tool (systemctl, docker): this one's, with messages in English."""
    return dict(os.environ, LC_ALL='C')


def _kill_group(proc):
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except OSError:
        pass
    proc.wait()


def tail(text, secrets=()):
    """The last lines of ``text`` with ``secrets`` masked."""
    return '\n'.join(mask(text, secrets).strip().splitlines()[-TAIL_LINES:])


def run_to_file(args, timeout, cwd=None, env=None, kill_group=False, tail_bytes=STDERR_TAIL):
    """Run ``args`` (a list, never a shell; stdin /dev/null; its own session) for at most ``timeout`` s (None or
    0: no limit); ``(exit code, or None when it ran out of time and was killed with its process group, the last
    ``tail_bytes`` of its output)``, stdout and stderr together. With ``kill_group``, what it left running in its
    process group is killed when it ends too. An OSError of the start is the caller's to word.

    The output goes to a temporary file, not a pipe: a start command that leaves the CMS running in the background
    hands it its output, and a pipe would stay open as long as the CMS runs, so the command would never seem to
    end."""
    with tempfile.TemporaryFile() as output:
        proc = subprocess.Popen(list(args), cwd=cwd, env=tool_env() if env is None else env,
                                stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT,
                                start_new_session=True, close_fds=True)
        try:
            code = proc.wait(timeout=timeout or None)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            code = None
        except BaseException:  # a deadline of the module ran out: leave nothing of ours running
            _kill_group(proc)
            raise
        if kill_group:
            _kill_group(proc)
        output.seek(0, os.SEEK_END)
        output.seek(max(0, output.tell() - tail_bytes))
        return code, output.read()


def execute(args, timeout, what, cwd=None, env=None, secrets=()):
    """Run ``args`` (see ``run_to_file``) for at most ``timeout`` s; ``(exit code, tail of its output)``, stdout
    and stderr together, ``secrets`` masked. A command that does not finish in time is killed with its process
    group and is a CairnError naming ``what``. The command gets its own session, so what it leaves behind is not
    killed with this module."""
    try:
        code, data = run_to_file(args, timeout, cwd=cwd, env=env)
    except OSError as exc:
        where = ' in %s' % cwd if cwd else ''
        raise CairnError('cannot run %s (%s%s): %s' % (what, args[0], where, exc.strerror or exc))
    text = tail(data.decode('utf-8', 'replace'), secrets)
    if code is None:
        raise CairnError('%s did not finish within %d s and was killed%s'
                         % (what, round(timeout), '; its output:\n%s' % text if text else ' (it printed nothing)'))
    return code, text


def checked(args, timeout, what, cwd=None, env=None, secrets=()):
    """``execute``, and a CairnError with the output's tail when the command fails; its output otherwise."""
    code, text = execute(args, timeout, what, cwd=cwd, env=env, secrets=secrets)
    if code != 0:
        raise CairnError('%s failed (exit %d)%s' % (what, code, ': %s' % text if text else ' and printed nothing'))
    return text


class Kind:
    """A service manager the CMS runs under. ``settings`` are the spec's keys of the kind, checked against ``KEYS``
    and with their defaults; ``_cms.service.load`` adds the common ones (``url``, ``stop_timeout``,
    ``start_timeout``, ``validate_certs``) as attributes."""

    NAME = None
    KEYS = {}

    def __init__(self, settings):
        self.settings = settings
        self.url = None
        self.stop_timeout = 60
        self.start_timeout = 180
        self.validate_certs = True

    def describe(self):
        """What runs the CMS, in a few words (``systemd unit cairncms.service``)."""
        raise NotImplementedError

    def secrets(self):
        """Values to mask in whatever this kind prints."""
        return ()

    def running(self):
        """True when the service manager says the CMS runs, False when it says not, None when it cannot tell."""
        raise NotImplementedError

    def leftovers(self):
        """What of the CMS still runs, one line each (``2 processes in cgroup ...``); empty when nothing does."""
        raise NotImplementedError

    def state(self):
        """What the service manager says now, for an error message (``systemd says ActiveState=failed``)."""
        return ''

    def stop(self, timeout):
        """Run the stop action (at most ``timeout`` s); CairnError when it fails."""
        raise NotImplementedError

    def start(self, timeout):
        """Run the start action (at most ``timeout`` s); CairnError when it fails."""
        raise NotImplementedError

    def start_output(self):
        """The tail of the output of the last start action, when there is one worth showing."""
        return ''

    def advice(self, action):
        """Where to look when ``action`` (``stop`` or ``start``) did not bring the CMS down or up."""
        return ''
