"""Run a real Directus 10.0.0 server (the CairnCMS upstream) for integration tests.

The server comes from the npm project next to this file (``directus/``: pinned
``directus`` 10.0.0 plus a pinned ``sqlite3``) and runs against a SQLite
database with the ``local`` storage driver, so a test instance is nothing more
than a directory holding ``.env``, the database file and ``uploads/``.

Typical use::

    cli = ensure_installed()
    bootstrap(workdir, {"ADMIN_PASSWORD": "secret-pw"})
    with running(workdir) as url:
        token = login(url, "admin@example.com", "secret-pw")
        create_collection(url, token, "articles")
        create_item(url, token, "articles", {"title": "Hello"})

Things worth knowing about Directus 10.0.0 (see ``@directus/api/dist/env.js``):

* Values from ``.env`` override the process environment, so the port is
  changed by rewriting ``.env`` (``running`` does that), not via ``PORT=``.
* Values are type-converted: ``true``/``false``/``null``, numbers that do not
  start with ``0``, anything containing a comma becomes an array, and JSON is
  parsed.  Prefix a value with ``string:`` to keep it verbatim (for example a
  numeric or comma-containing ``ADMIN_PASSWORD``).
* Each ``GET /server/health`` writes and then deletes ``health-<5 chars>`` in
  every storage location.

Only the standard library is used.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import _npm

PACKAGE_DIR = Path(__file__).resolve().parent / "directus"
"""The npm project that pins the Directus server."""

CLI_RELPATH = Path("node_modules", "directus", "cli.js")

ENV_FILENAME = ".env"
LOG_FILENAME = "directus.log"
DB_FILENAME = "data.db"
UPLOADS_DIRNAME = "uploads"
EXTENSIONS_DIRNAME = "extensions"

DEFAULT_ADMIN_EMAIL = "admin@example.com"
DEFAULT_ADMIN_PASSWORD = "cairncms-test-password"

INSTALL_TIMEOUT = 1200  # a cold `npm ci` compiles argon2 and sqlite3 (~1-2 min here)
BOOTSTRAP_TIMEOUT = 300
START_TIMEOUT = 60
STOP_TIMEOUT = 15
HTTP_TIMEOUT = 30

# Environment variables handed to the node processes.  Everything else is
# dropped so that a developer's DB_*, STORAGE_*, HOST, CONFIG_PATH, ... can
# never leak into a test server (Directus reads *all* of process.env).
_PASSTHROUGH_ENV = ("PATH", "HOME", "USER", "LOGNAME", "LANG", "TZ", "TMPDIR", "SystemRoot")
_PASSTHROUGH_PREFIXES = ("LC_",)

_ENV_KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class DirectusError(RuntimeError):
    """The Directus server or CLI did not do what was asked."""

    def __init__(self, message: str, *, status: int | None = None, body: str | None = None):
        super().__init__(message)
        self.status = status
        self.body = body


# --------------------------------------------------------------------------
# Installation
# --------------------------------------------------------------------------


def _node() -> str:
    node = shutil.which("node")
    if node is None:
        raise DirectusError("`node` not found on PATH; Node.js 18+ is required for the Directus tests")
    return node


def _npm_env() -> dict[str, str]:
    """Environment for `npm ci`.

    argon2 and sqlite3 fetch prebuilt binaries from GitHub, which fails
    offline, and then compile from source with node-gyp.  node-gyp would also
    download the Node headers unless told where the installed ones are.
    """
    env = dict(os.environ)
    if not any(key.lower() == "npm_config_nodedir" for key in env):
        prefix = Path(_node()).resolve().parent.parent
        if (prefix / "include" / "node" / "node_api.h").is_file():
            env["npm_config_nodedir"] = str(prefix)
    return env


def ensure_installed(base_dir: str | os.PathLike[str] = PACKAGE_DIR) -> Path:
    """Install the pinned Directus if needed (``npm ci`` in ``base_dir``, once, see ``_npm``) and return the
    path to its CLI entry."""
    return Path(_npm.ensure_npm_ci(base_dir, CLI_RELPATH, DirectusError, env=_npm_env(), timeout=INSTALL_TIMEOUT))


# --------------------------------------------------------------------------
# Instance setup
# --------------------------------------------------------------------------


def free_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port that is free on ``host`` right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def default_env(
    workdir: str | os.PathLike[str],
    port: int | None = None,
    *,
    package_dir: str | os.PathLike[str] = PACKAGE_DIR,
) -> dict[str, str]:
    """The ``.env`` settings of a quiet, offline SQLite + local-storage instance.

    Paths are absolute so that nothing depends on the server's cwd (Directus
    resolves a relative DB_FILENAME and STORAGE_LOCAL_ROOT against it).
    """
    work = Path(workdir).resolve()
    port = port or free_port()
    return {
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "PUBLIC_URL": f"http://127.0.0.1:{port}",
        "KEY": str(uuid.uuid4()),
        "SECRET": secrets.token_urlsafe(32),
        "DB_CLIENT": "sqlite3",
        "DB_FILENAME": str(work / DB_FILENAME),
        "ADMIN_EMAIL": DEFAULT_ADMIN_EMAIL,
        "ADMIN_PASSWORD": DEFAULT_ADMIN_PASSWORD,
        "STORAGE_LOCATIONS": "local",
        "STORAGE_LOCAL_DRIVER": "local",
        "STORAGE_LOCAL_ROOT": str(work / UPLOADS_DIRNAME),
        "EXTENSIONS_PATH": str(work / EXTENSIONS_DIRNAME),
        # Directus reads extension dependencies from this package.json (default:
        # the cwd, which has none -> "Couldn't load extensions" warning).
        "PACKAGE_FILE_LOCATION": str(Path(package_dir).resolve()),
        # offline and quiet
        "TELEMETRY": "false",
        "SERVE_APP": "false",
        "LOG_LEVEL": "warn",
        "LOG_STYLE": "raw",
        "EMAIL_VERIFY_SETUP": "false",
        # no caching: tests may change the database behind the server's back
        "CACHE_ENABLED": "false",
        "CACHE_SCHEMA": "false",
        "CACHE_PERMISSIONS": "false",
        "RATE_LIMITER_ENABLED": "false",
        "RATE_LIMITER_GLOBAL_ENABLED": "false",
    }


def _env_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _format_env_value(key: str, value: Any) -> str:
    if not _ENV_KEY_RE.match(key):
        raise ValueError(f"invalid environment variable name: {key!r}")
    text = _env_text(value)
    if "\n" in text or "\r" in text:
        raise ValueError(f"{key}: multi-line values are not supported in .env")
    if text and re.fullmatch(r"[A-Za-z0-9_@%+=:,./\-]+", text):
        return text
    # dotenv: single-quoted values are literal; double-quoted ones expand \n
    if "'" not in text:
        return f"'{text}'"
    if '"' not in text and "\\" not in text:
        return f'"{text}"'
    raise ValueError(f"{key}: value cannot be quoted for .env (has ' and \" or \\)")


def read_env(workdir: str | os.PathLike[str]) -> dict[str, str]:
    """Parse the simple KEY=value ``.env`` this module writes (quotes stripped)."""
    result: dict[str, str] = {}
    for line in (Path(workdir) / ENV_FILENAME).read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _sep, value = line.partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        result[key.strip()] = value
    return result


def write_env(workdir: str | os.PathLike[str], env: Mapping[str, Any]) -> Path:
    """Write ``env`` as ``workdir/.env`` (mode 0600) and return its path."""
    path = Path(workdir) / ENV_FILENAME
    lines = ["# Written by tests/integration/_directus.py"]
    lines += [f"{key}={_format_env_value(key, value)}" for key, value in env.items()]
    path.write_text("\n".join(lines) + "\n")
    path.chmod(0o600)
    return path


def _child_env() -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if key in _PASSTHROUGH_ENV or key.startswith(_PASSTHROUGH_PREFIXES)
    }
    env["NODE_ENV"] = "production"
    return env


def bootstrap(
    workdir: str | os.PathLike[str],
    env: Mapping[str, Any] | None = None,
    *,
    package_dir: str | os.PathLike[str] = PACKAGE_DIR,
) -> dict[str, str]:
    """Write ``workdir/.env`` and run ``directus bootstrap`` there.

    ``env`` overrides/extends :func:`default_env`.  Returns the settings that
    were written.  On an already installed database Directus only runs any
    pending migrations.
    """
    cli = ensure_installed(package_dir)
    work = Path(workdir).resolve()
    work.mkdir(parents=True, exist_ok=True)
    settings = default_env(work, package_dir=package_dir)
    settings.update({key: _env_text(value) for key, value in (env or {}).items()})
    if "PORT" in (env or {}) and "PUBLIC_URL" not in (env or {}):
        settings["PUBLIC_URL"] = f"http://{settings['HOST']}:{settings['PORT']}"
    write_env(work, settings)
    for key in ("STORAGE_LOCAL_ROOT", "EXTENSIONS_PATH"):
        (work / settings[key]).mkdir(parents=True, exist_ok=True)  # relative -> workdir

    proc = subprocess.run(
        [_node(), str(cli), "bootstrap"],
        cwd=work,
        env=_child_env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=BOOTSTRAP_TIMEOUT,
        check=False,
    )
    if proc.returncode != 0:
        raise DirectusError(
            f"`directus bootstrap` in {work} failed (exit {proc.returncode}):\n{_tail(proc.stdout)}"
        )
    return settings


# --------------------------------------------------------------------------
# Server process
# --------------------------------------------------------------------------


def _tail(text: str, lines: int = 40) -> str:
    return "\n".join(text.splitlines()[-lines:])


def _log_tail(path: Path, offset: int = 0, lines: int = 40) -> str:
    """The last ``lines`` lines written to ``path`` after byte ``offset``."""
    try:
        with open(path, "rb") as fh:
            fh.seek(offset)
            text = fh.read().decode(errors="replace")
    except FileNotFoundError:
        text = ""
    return _tail(text, lines) or "(nothing logged)"


def _health(url: str) -> str | None:
    """Return the health status ("ok", "warn", "error") or None if unreachable."""
    try:
        with urllib.request.urlopen(f"{url}/server/health", timeout=5) as resp:
            return json.load(resp).get("status")
    except urllib.error.HTTPError as exc:  # 503 with {"status": "error"}
        try:
            return json.loads(exc.read()).get("status")
        except ValueError:
            return "error"
    except (OSError, ValueError):
        return None


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


@contextlib.contextmanager
def running(
    workdir: str | os.PathLike[str],
    port: int | None = None,
    *,
    timeout: float = START_TIMEOUT,
    package_dir: str | os.PathLike[str] = PACKAGE_DIR,
) -> Iterator[str]:
    """Run ``directus start`` in a bootstrapped ``workdir``; yield its base URL.

    The server listens on 127.0.0.1:``port`` (a free port when None); HOST,
    PORT and PUBLIC_URL in ``.env`` are rewritten accordingly because the file
    takes precedence over the environment.  Output goes to
    ``workdir/directus.log``.  The whole process group is terminated on exit.
    """
    cli = ensure_installed(package_dir)
    work = Path(workdir).resolve()
    if not (work / ENV_FILENAME).is_file():
        raise DirectusError(f"{work} has no {ENV_FILENAME}; call bootstrap() first")
    port = port or free_port()
    url = f"http://127.0.0.1:{port}"

    settings = read_env(work)
    settings.update({"HOST": "127.0.0.1", "PORT": str(port), "PUBLIC_URL": url})
    write_env(work, settings)

    log_path = work / LOG_FILENAME
    with open(log_path, "ab") as log:
        log_offset = log.tell()
        proc = subprocess.Popen(
            [_node(), str(cli), "start"],
            cwd=work,
            env=_child_env(),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # own process group, killed as a whole
        )
    try:
        deadline = time.monotonic() + timeout
        status = None
        while True:
            if proc.poll() is not None:
                raise DirectusError(
                    f"Directus exited with code {proc.returncode} during startup "
                    f"({log_path}):\n{_log_tail(log_path, log_offset)}"
                )
            status = _health(url)
            if status in ("ok", "warn"):
                break
            if time.monotonic() > deadline:
                raise DirectusError(
                    f"Directus on {url} not healthy after {timeout:g}s "
                    f"(last status: {status}; {log_path}):\n{_log_tail(log_path, log_offset)}"
                )
            time.sleep(0.25)
        yield url
    finally:
        _stop(proc)


# --------------------------------------------------------------------------
# HTTP helpers
# --------------------------------------------------------------------------


def request(
    method: str,
    url: str,
    token: str | None = None,
    *,
    json_body: Any = None,
    data: bytes | None = None,
    headers: Mapping[str, str] | None = None,
    params: Mapping[str, Any] | None = None,
) -> bytes:
    """Send one request and return the raw response body.

    Raises :class:`DirectusError` (with ``status`` and ``body``) on HTTP errors.
    """
    hdrs = dict(headers or {})
    if token:
        hdrs["Authorization"] = f"Bearer {token}"
    if json_body is not None:
        data = json.dumps(json_body).encode()
        hdrs.setdefault("Content-Type", "application/json")
    if params:
        url = f"{url}?{urllib.parse.urlencode(params)}"
    req = urllib.request.Request(url, data=data, headers=hdrs, method=method)
    try:
        with urllib.request.urlopen(req, timeout=HTTP_TIMEOUT) as resp:
            return resp.read()
    except urllib.error.HTTPError as exc:
        body = exc.read().decode(errors="replace")
        raise DirectusError(
            f"{method} {url} -> HTTP {exc.code}: {body[:2000]}", status=exc.code, body=body
        ) from None


def request_json(method: str, url: str, token: str | None = None, **kwargs: Any) -> Any:
    """Like :func:`request` but decode the JSON response and return its ``data``."""
    body = request(method, url, token, **kwargs)
    return json.loads(body)["data"] if body else None


def login(url: str, email: str, password: str) -> str:
    """Log in with email/password and return the access token (a JWT, issuer "directus")."""
    data = request_json("POST", f"{url}/auth/login", json_body={"email": email, "password": password})
    return data["access_token"]


def create_collection(
    url: str, token: str, name: str, fields: Iterable[Mapping[str, Any]] = ()
) -> dict[str, Any]:
    """Create a content collection with an auto-increment integer ``id`` and a string ``title``.

    ``fields`` are extra field definitions in Directus' format, e.g.
    ``{"field": "body", "type": "text"}``.
    """
    payload = {
        "collection": name,
        "meta": {"icon": "article"},
        "schema": {},
        "fields": [
            {
                "field": "id",
                "type": "integer",
                "meta": {"hidden": True, "readonly": True, "interface": "input"},
                "schema": {"is_primary_key": True, "has_auto_increment": True},
            },
            {"field": "title", "type": "string", "meta": {"interface": "input"}, "schema": {}},
            *[dict(field) for field in fields],
        ],
    }
    return request_json("POST", f"{url}/collections", token, json_body=payload)


# What a live instance has that a drill must never run: a flow scheduled every minute and an active webhook, as SQL
# statements for its database (restored into a sandbox, the drill turns them off).
OUTWARD_FLOW = (
    "INSERT INTO directus_flows (id, name, status, trigger, options) VALUES "
    "('6f1c9d2e-0000-4000-8000-00000000f10a', 'nightly export', 'active', 'schedule', '{\"cron\": \"* * * * *\"}')"
)
OUTWARD_WEBHOOK = (
    "INSERT INTO directus_webhooks (name, method, url, status, data, actions, collections) VALUES "
    "('notify', 'POST', 'http://127.0.0.1:9/hook', 'active', true, 'create', 'articles')"
)


def seed_drill_content(url: str, token: str) -> None:
    """The content the drill tests back up: a collection ``articles`` with 4 items, an image and a text file."""
    import demo_instance  # tests/support, on the path wherever this harness is (conftest, the Molecule scenario)

    create_collection(url, token, "articles")
    for number in range(4):
        create_item(url, token, "articles", {"title": "Article %d" % number})
    upload_file(url, token, "cover.png", demo_instance.png(40, 30, 2), "image/png")
    upload_file(url, token, "notes.txt", b"drill attachment\n" * 200, "text/plain")


def create_item(url: str, token: str, collection: str, item: Mapping[str, Any]) -> dict[str, Any]:
    """Create one item in ``collection`` and return it as stored."""
    return request_json("POST", f"{url}/items/{collection}", token, json_body=dict(item))


def upload_file(
    url: str,
    token: str,
    filename: str,
    data: bytes,
    content_type: str = "application/octet-stream",
    *,
    fields: Mapping[str, str] | None = None,
) -> str:
    """Upload ``data`` with a multipart ``POST /files`` and return the new file id.

    ``fields`` (e.g. ``{"title": ...}``) are sent before the file part, as
    Directus requires.
    """
    boundary = f"----cairncms{uuid.uuid4().hex}"
    quoted = filename.replace("\\", "\\\\").replace('"', '\\"')
    parts: list[bytes] = []
    for key, value in (fields or {}).items():
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{key}"\r\n\r\n{value}\r\n'.encode()
        )
    parts.append(
        f"--{boundary}\r\n"
        f'Content-Disposition: form-data; name="file"; filename="{quoted}"\r\n'
        f"Content-Type: {content_type}\r\n\r\n".encode()
        + data
        + b"\r\n"
    )
    parts.append(f"--{boundary}--\r\n".encode())
    created = request_json(
        "POST",
        f"{url}/files",
        token,
        data=b"".join(parts),
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    return created["id"]


def get_asset(
    url: str, token: str | None, file_id: str, params: Mapping[str, Any] | None = None
) -> bytes:
    """Return the bytes of ``GET /assets/<id>``; ``params`` such as ``{"width": 10}``
    make Directus transform the image and store the derivative next to the original."""
    return request("GET", f"{url}/assets/{file_id}", token, params=params)
