# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A throwaway Redis server on a free port in a temporary directory (nothing kept on disk), with a password."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import time

import pytest


def _free_port():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


class Redis:
    """``with Redis() as redis:`` a running redis-server; ``redis.command('KEYS', '*')`` talks to it."""

    def __init__(self):
        self.port = _free_port()
        self.password = secrets.token_hex(16)
        self.directory = None
        self.proc = None

    @property
    def url(self):
        return 'redis://:%s@127.0.0.1:%d/0' % (self.password, self.port)

    def __enter__(self):
        binary = shutil.which('redis-server')
        if binary is None:
            if os.environ.get('CAIRN_REQUIRE_DB_SERVERS'):
                raise RuntimeError('redis-server is not installed (Debian package redis-server)')
            pytest.skip('redis-server is not installed')
        self.directory = tempfile.mkdtemp(prefix='cairn-redis-')
        self.proc = subprocess.Popen(
            [binary, '--port', str(self.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no',
             '--dir', self.directory, '--requirepass', self.password],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 20
        while True:
            with contextlib.suppress(OSError):
                if self.command('PING') == 'PONG':
                    return self
            if time.monotonic() > deadline or self.proc.poll() is not None:
                self.__exit__()
                raise RuntimeError('redis-server did not start on port %d' % self.port)
            time.sleep(0.05)

    def __exit__(self, *exc_info):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if self.directory:
            shutil.rmtree(self.directory, ignore_errors=True)

    def command(self, *args):
        """Send one command (after AUTH) and return its answer: str, int, None or a list of them."""
        with socket.create_connection(('127.0.0.1', self.port), timeout=5) as sock:
            reader = sock.makefile('rb')
            for command in (('AUTH', self.password), args):
                sock.sendall(b'*%d\r\n' % len(command) + b''.join(
                    b'$%d\r\n%s\r\n' % (len(part.encode()), part.encode()) for part in map(str, command)))
                answer = _read(reader)
            return answer


def _read(reader):
    line = reader.readline().rstrip(b'\r\n')
    kind, rest = line[:1], line[1:]
    if kind == b'+':
        return rest.decode()
    if kind == b'-':
        raise RuntimeError(rest.decode())
    if kind == b':':
        return int(rest)
    if kind == b'$':
        size = int(rest)
        return None if size < 0 else reader.read(size + 2)[:-2].decode('utf-8', 'replace')
    if kind == b'*':
        size = int(rest)
        return None if size < 0 else [_read(reader) for _index in range(size)]
    raise RuntimeError('unexpected answer from redis: %r' % line)
