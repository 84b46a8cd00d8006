# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the object-store emulators of the tests share: a process on a free 127.0.0.1 port, ready
once it answers over HTTP, stopped cleanly (terminate, then kill)."""

from __future__ import annotations

import http.server
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


class Emulator:
    name = 'emulator'
    unavailable = RuntimeError   # the exception raised when it cannot be started
    probe_path = '/'             # requested until it answers
    http_error_is_ready = False  # whether an HTTP error status counts as an answer

    def __init__(self):
        self.port = None
        self.process = None

    @property
    def base_url(self):
        return 'http://127.0.0.1:%d' % self.port

    def launch(self, port):
        """(argv, extra Popen keyword arguments) that start the emulator on ``port``."""
        raise NotImplementedError

    def start(self, timeout=30):
        for _attempt in range(3):  # another process may take the free port first
            self.port = free_port()
            argv, options = self.launch(self.port)
            self.process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **options)
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and self.process.poll() is None:
                try:
                    urllib.request.urlopen(self.base_url + self.probe_path, timeout=1).read()
                    return self
                except urllib.error.HTTPError:
                    if self.http_error_is_ready:
                        return self
                    time.sleep(0.1)
                except (urllib.error.URLError, ConnectionError, OSError):
                    time.sleep(0.1)
            self.terminate()
        self.stop()
        raise self.unavailable('%s did not answer on %s' % (self.name, self.base_url))

    def terminate(self):
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def stop(self):
        self.terminate()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


class InProcessServer:
    """An HTTP server of the tests' own, served by a thread of the test process on 127.0.0.1 (the kernel
    picks the free port). Subclasses give ``handler()`` (a request handler class) and may set
    ``server_class``."""
    server_class = http.server.ThreadingHTTPServer
    thread_name = 'test-http-server'

    def __init__(self):
        self._server = None
        self._thread = None

    def handler(self):
        raise NotImplementedError

    @property
    def origin(self):
        return 'http://127.0.0.1:%d' % self._server.server_address[1]

    def start(self):
        self._server = self.server_class(('127.0.0.1', 0), self.handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name=self.thread_name, daemon=True)
        self._thread.start()
        return self

    def stop(self):
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(10)
            self._server = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
