# -*- coding: utf-8 -*-
# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Read a CairnCMS instance's configuration the way CairnCMS reads it (private).

``parse_dotenv`` follows the dotenv syntax CairnCMS (Directus 10) loads its
``.env`` with; ``process_values`` applies CairnCMS's own rules on top
(``<NAME>_FILE`` indirection, ``string:``/``number:``/``json:``/``array:``/
``regex:`` prefixes, automatic booleans, numbers, lists and JSON).
``InstanceConfig`` turns the result into what the collection needs: the
database and the storage locations, with relative paths resolved against the
instance directory (the ``.env``'s directory unless told otherwise).
"""

from __future__ import annotations

import json
import os
import re
import urllib.parse

from ansible_collections.cairncms.ops.plugins.module_utils._common import CairnError
from ansible_collections.cairncms.ops.plugins.module_utils._storage import backend_class, drivers

_KEY = re.compile(r'[\w.-]+')
_NUMBER = re.compile(r'^-?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$')
MAX_SAFE_INTEGER = 2 ** 53 - 1

DEFAULTS = {
    'STORAGE_LOCATIONS': 'local',
    'STORAGE_LOCAL_DRIVER': 'local',
    'STORAGE_LOCAL_ROOT': './uploads',
}

# Variables whose values are secrets (see docs/configuration.md); issue-level secret capture
# extends this list. Such values come in through env_secret_overrides, never env_overrides.
# A Redis connection string (CACHE_REDIS, RATE_LIMITER_REDIS, MESSENGER_REDIS) may carry its password.
_SECRET = re.compile(r'^(SECRET|DB_PASSWORD|DB_CONNECTION_STRING|.*_PASSWORD|.*_SECRET|.*_TOKEN|(.*_)?REDIS'
                     r'|STORAGE_[A-Z0-9_]+_(KEY|ACCOUNT_KEY|API_KEY|API_SECRET|CREDENTIALS)|.*_PRIVATE_KEY)$')


def looks_secret(name):
    return bool(_SECRET.match(name.upper()))


DB_CLIENTS = {
    'sqlite3': 'sqlite',
    'pg': 'postgres',
    'postgres': 'postgres',
    'mysql': 'mysql',
}


def parse_dotenv(text):
    """Parse dotenv text into an ordered dict of raw strings.

    Rules (those of the ``dotenv`` package CairnCMS uses): ``KEY=value`` or
    ``KEY: value``, optional leading ``export``; blank lines and ``#`` comments
    skipped; unquoted values end at ``#`` and are trimmed; values in single,
    double or back quotes may span lines and keep ``#``; in double quotes
    ``\\n`` and ``\\r`` become newlines; a later definition wins.
    """
    return {key: value for key, value, _span, _segment in _scan(text) if key is not None}


def _scan(text):
    """The pieces of dotenv ``text`` (newlines normalized), in order: ``(key, value, (value_start, value_stop),
    (start, stop))`` for a definition, whose raw value (quotes included) is ``text[value_start:value_stop]``,
    and ``(None, None, None, (start, stop))`` for a blank, comment or unreadable line. The pieces' texts joined
    with newlines give back ``text``."""
    text = text.replace('\r\n', '\n').replace('\r', '\n')
    pos, end = 0, len(text)
    while pos < end:
        line_end = text.find('\n', pos)
        if line_end == -1:
            line_end = end
        line = text[pos:line_end]
        stripped = line.strip()
        if not stripped or stripped.startswith('#'):
            yield None, None, None, (pos, line_end)
            pos = line_end + 1
            continue
        offset = pos + (len(line) - len(line.lstrip()))
        if text.startswith('export ', offset):
            offset += len('export ')
            while offset < line_end and text[offset] in ' \t':
                offset += 1
        match = _KEY.match(text, offset)
        if not match:
            yield None, None, None, (pos, line_end)
            pos = line_end + 1
            continue
        key = match.group(0)
        cursor = match.end()
        while cursor < line_end and text[cursor] in ' \t':
            cursor += 1
        if cursor < line_end and text[cursor] == '=':
            cursor += 1
        elif cursor < line_end - 1 and text[cursor] == ':' and text[cursor + 1] in ' \t':
            cursor += 2
        else:
            yield None, None, None, (pos, line_end)
            pos = line_end + 1
            continue
        while cursor < line_end and text[cursor] in ' \t':
            cursor += 1
        quote = text[cursor] if cursor < end and text[cursor] in '"\'`' else None
        closing = _closing_quote(text, cursor, quote) if quote else -1
        if quote and closing != -1:
            value = text[cursor + 1:closing]
            if quote == '"':
                value = value.replace('\\n', '\n').replace('\\r', '\r')
            next_line = text.find('\n', closing)
            stop = end if next_line == -1 else next_line
            yield key, value, (cursor, closing + 1), (pos, stop)
            pos = stop + 1
        else:
            raw = text[cursor:line_end].split('#', 1)[0]
            yield key, raw.strip(), (cursor, cursor + len(raw.rstrip())), (pos, line_end)
            pos = line_end + 1


SECRET_MASK = '<secret>'
SECRET_MASK_CHANGED = '<secret, changed>'
HIDDEN_LINE = '# <a line that defines no variable, hidden>'


def mask_secrets(text, secret, previous=None):
    """``text`` (dotenv) for showing: the value of every variable ``secret(name)`` holds for replaced by
    ``<secret>``, also where a comment holds such a definition; lines that define nothing and are no comment
    are hidden whole (they may be a broken multi-line secret). With ``previous`` (the values of an earlier
    version), a secret whose value differs from it is ``<secret, changed>``: a diff then shows that it
    changed, never what it is."""
    text = text.replace('\r\n', '\n').replace('\r', '\n')
    shown = []
    for key, value, span, (start, stop) in _scan(text):
        piece = text[start:stop]
        if key is None:
            stripped = piece.strip()
            if stripped.startswith('#'):
                inner = stripped.lstrip('#').strip()
                if any(name is not None and secret(name) for name, _v, _s, _g in _scan(inner)):
                    piece = piece[:piece.index('#')] + '# ' + mask_secrets(inner, secret).rstrip('\n')
            elif stripped:
                piece = HIDDEN_LINE
        elif secret(key):
            changed = previous is not None and previous.get(key) != value
            piece = text[start:span[0]] + (SECRET_MASK_CHANGED if changed else SECRET_MASK) + text[span[1]:stop]
        shown.append(piece)
    return '\n'.join(shown) + ('\n' if text.endswith('\n') else '')


def decode_env(data, where):
    """The text of .env bytes read from ``where``; bytes that are not UTF-8 (as CairnCMS reads it) are one clear
    error naming the file and the first bad byte, never a traceback."""
    try:
        return data.decode('utf-8')
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b'\n') + 1
        raise CairnError('%s is not UTF-8 text: byte 0x%02x at offset %d (line %d) is not valid UTF-8; CairnCMS reads '
                         'its .env as UTF-8, so save the file as UTF-8' % (where, data[exc.start], exc.start, line))


def read_env_text(path):
    """The text of the .env file ``path`` (see ``decode_env``)."""
    with open(path, 'rb') as handle:
        return decode_env(handle.read(), path)


def _closing_quote(text, start, quote):
    cursor = start + 1
    while True:
        found = text.find(quote, cursor)
        if found == -1:
            return -1
        if text[found - 1] == '\\':
            cursor = found + 1
            continue
        rest = text[found + 1:text.find('\n', found) if text.find('\n', found) != -1 else len(text)]
        if rest.strip() == '' or rest.strip().startswith('#'):
            return found
        cursor = found + 1


def _as_text(value):
    """An inventory override as the text it would be in a .env file."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return 'true' if value else 'false'
    if isinstance(value, (list, dict)):
        return 'json:' + json.dumps(value)
    return str(value)


def _to_array(value):
    return [item.strip() for item in value.split(',') if item.strip()] if isinstance(value, str) else value


def _auto(value):
    if value == 'true':
        return True
    if value == 'false':
        return False
    if value == 'null':
        return None
    if value and not value.startswith('0') and _NUMBER.match(value):
        number = float(value)
        if number <= MAX_SAFE_INTEGER:
            return int(number) if number.is_integer() else number
    if ',' in value:
        return _to_array(value)
    try:
        return json.loads(value)
    except ValueError:
        return value


def convert(value):
    """Convert one raw value the way CairnCMS does."""
    if ':' in value:
        kind, rest = value.split(':', 1)
        if kind == 'string':
            return rest
        if kind == 'number':
            try:
                number = float(rest)
            except ValueError:
                raise CairnError('value %r has the number: prefix but is not a number' % value)
            return int(number) if number.is_integer() else number
        if kind == 'array':
            return _to_array(rest)
        if kind == 'json':
            try:
                return json.loads(rest)
            except ValueError as exc:
                raise CairnError('value with the json: prefix is not valid JSON (%s)' % exc)
        if kind == 'regex':
            return rest
    return _auto(value)


def process_values(raw, base_dir):
    """Apply ``<NAME>_FILE`` indirection and type conversion to raw strings."""
    result = {}
    for key, value in raw.items():
        if len(key) > 5 and key.endswith('_FILE'):
            name = key[:-5]
            if name in raw:
                raise CairnError('%s and %s are both set; CairnCMS refuses that, so remove one of them'
                                 % (name, key))
            path = value if os.path.isabs(value) else os.path.join(base_dir, value)
            try:
                value = read_env_text(path)  # as CairnCMS: not trimmed
            except OSError as exc:
                raise CairnError('%s names %s, which cannot be read (%s); fix the path or set %s directly'
                                 % (key, path, exc.strerror, name))
            key = name
        try:
            result[key] = convert(value) if isinstance(value, str) else value
        except CairnError as exc:
            raise CairnError('%s: %s' % (key, exc.message)) from None
    return result


class Location:
    def __init__(self, name, driver, options):
        self.name = name
        self.driver = driver
        self.options = options

    def describe(self):
        """What the location is, without its credentials (the driver says what it shows)."""
        described = {'name': self.name, 'driver': self.driver, 'root': self.options.get('root')}
        backend = backend_class(self.driver)
        if backend is not None:
            described.update(backend.describe_options(self.options))
        return described


class Database:
    def __init__(self, vendor, client, options):
        self.vendor = vendor
        self.client = client
        self.options = options

    def describe(self):
        """What the database is, without its password."""
        described = {'vendor': self.vendor, 'client': self.client}
        if self.vendor == 'sqlite':
            described['filename'] = self.options['filename']
        else:
            described.update({key: self.options.get(key) for key in ('host', 'port', 'database', 'user')})
            described['password_set'] = bool(self.options.get('password'))
            described['ssl'] = sorted(self.options.get('ssl') or {})
        return described


def merge_overrides(overrides, secret_overrides):
    """The plain and the secret overrides as one mapping; refuses secrets among the plain ones (they are logged)."""
    secret_names = sorted(name for name in (overrides or {}) if looks_secret(str(name)))
    if secret_names:
        raise CairnError('%s look(s) like secrets; pass them in env_secret_overrides '
                         '(cairn_env_secret_overrides), which is never logged, not in env_overrides'
                         % ', '.join(secret_names))
    return dict(overrides or {}, **(secret_overrides or {}))


class InstanceConfig:
    """The effective configuration of one CairnCMS instance."""

    def __init__(self, values, base_dir, env_file=None):
        self.values = values
        self.base_dir = base_dir
        self.env_file = env_file

    @classmethod
    def from_dotenv(cls, values, base_dir, env_file=None):
        """The configuration of parsed .env ``values`` (over CairnCMS's defaults, no overrides), relative paths
        resolved against ``base_dir``."""
        raw = dict(DEFAULTS)
        raw.update(values)
        return cls(process_values(raw, base_dir), base_dir, env_file)

    @classmethod
    def load(cls, env_file=None, overrides=None, instance_dir=None, secret_overrides=None):
        overrides = merge_overrides(overrides, secret_overrides)
        raw = dict(DEFAULTS)
        if env_file and overrides and not os.path.exists(env_file):
            pass  # a new home: its .env is written at restore, the overrides say where things go meanwhile
        elif env_file:
            try:
                raw.update(parse_dotenv(read_env_text(env_file)))
            except OSError as exc:
                raise CairnError('cannot read the instance .env file %s (%s); set cairn_env_file to '
                                 'the .env of the CairnCMS instance' % (env_file, exc.strerror))
        for key, value in overrides.items():
            raw[str(key)] = _as_text(value)
            if str(key).endswith('_FILE'):
                raw.pop(str(key)[:-5], None)
            else:
                raw.pop(str(key) + '_FILE', None)
        if instance_dir:
            base_dir = os.path.abspath(instance_dir)
        elif env_file:
            base_dir = os.path.dirname(os.path.abspath(env_file))
        else:
            base_dir = None
        return cls(process_values(raw, base_dir or os.getcwd()), base_dir, env_file)

    def get(self, name, default=None):
        return self.values.get(name, default)

    def require(self, name):
        value = self.values.get(name)
        if value is None or value == '':
            raise CairnError('%s is not set in %s; set it there or in cairn_env_overrides'
                             % (name, self.env_file or 'the instance configuration'))
        return value

    def path(self, name):
        value = str(self.require(name))
        value = os.path.expanduser(value)
        if os.path.isabs(value):
            return os.path.normpath(value)
        if self.base_dir is None:
            raise CairnError('%s is the relative path %r but there is no .env file or instance '
                             'directory to resolve it against; set cairn_instance_dir' % (name, value))
        return os.path.normpath(os.path.join(self.base_dir, value))

    @property
    def key(self):
        value = self.values.get('KEY')
        return None if value is None else str(value)

    @property
    def public_url(self):
        value = self.values.get('PUBLIC_URL')
        return None if value is None else str(value)

    def database(self):
        client = self.require('DB_CLIENT')
        vendor = DB_CLIENTS.get(str(client))
        if vendor is None:
            raise CairnError('DB_CLIENT=%s is not supported; cairncms.ops handles %s'
                             % (client, ', '.join(sorted(DB_CLIENTS))))
        if vendor == 'sqlite':
            return Database(vendor, client, {'filename': self.path('DB_FILENAME')})
        return Database(vendor, client, self._server_options(vendor))

    def _server_options(self, vendor):
        """host, port, database, user, password and ssl of a server database, as CairnCMS
        builds its connection: DB_CONNECTION_STRING (PostgreSQL) first, DB_* values over it."""
        options = {'host': None, 'port': None, 'database': None, 'user': None, 'password': None, 'ssl': {}}
        url = self.values.get('DB_CONNECTION_STRING')
        if url and vendor == 'postgres':
            parts = urllib.parse.urlsplit(str(url))
            if parts.scheme not in ('postgres', 'postgresql'):
                raise CairnError('DB_CONNECTION_STRING must be a postgres:// or postgresql:// URL')
            options.update({
                'host': parts.hostname, 'port': parts.port,
                'database': urllib.parse.unquote(parts.path.lstrip('/')) or None,
                'user': urllib.parse.unquote(parts.username) if parts.username else None,
                'password': urllib.parse.unquote(parts.password) if parts.password else None})
            query = dict(urllib.parse.parse_qsl(parts.query))
            if query.get('sslmode'):
                options['ssl']['mode'] = query['sslmode']
        for key in ('host', 'port', 'database', 'user', 'password'):
            value = self.values.get('DB_' + key.upper())
            if value is not None and value != '':
                options[key] = value
        for name, value in self.values.items():
            if name.startswith('DB_SSL__'):
                options['ssl'][name[len('DB_SSL__'):].lower()] = value
        options['port'] = int(options['port']) if options['port'] not in (None, '') else None
        for key in ('host', 'database', 'user', 'password'):
            options[key] = None if options[key] is None else str(options[key])
        for key in ('host', 'database', 'user'):
            if not options[key]:
                raise CairnError('DB_%s is not set (DB_CLIENT=%s) in %s; set it there or in cairn_env_overrides'
                                 % (key.upper(), self.values.get('DB_CLIENT'),
                                    self.env_file or 'the instance configuration'))
        return options

    def location_names(self):
        names = self.values.get('STORAGE_LOCATIONS')
        names = _to_array(names) if isinstance(names, str) else names
        if not isinstance(names, list) or not names:
            raise CairnError('STORAGE_LOCATIONS is empty; CairnCMS needs at least one storage location')
        return [str(name) for name in names]

    def locations(self):
        result = []
        for name in self.location_names():
            prefix = 'STORAGE_%s_' % name.upper()
            driver = self.values.get(prefix + 'DRIVER')
            if driver is None:
                raise CairnError('%sDRIVER is not set for storage location %r' % (prefix, name))
            backend = backend_class(driver)
            if backend is None:
                known = drivers()
                raise CairnError('%sDRIVER=%s is not supported by this version of cairncms.ops; %s and %s are'
                                 % (prefix, driver, ', '.join(known[:-1]), known[-1]))
            result.append(Location(name, backend.driver, backend.options_from_env(self, prefix)))
        return result

    # -- for the drivers' options_from_env (see _storage) ----------------------------------------

    @property
    def where(self):
        """Where the configuration comes from, for messages."""
        return self.env_file or 'the instance configuration'

    def texts(self, prefix, variables):
        """``{option: the text of <prefix><suffix> or None when unset or empty}`` for ``variables``
        (``{option: suffix}``)."""
        options = {}
        for option, suffix in variables.items():
            value = self.values.get(prefix + suffix)
            options[option] = None if value is None or value == '' else str(value)
        return options

    def missing(self, variable, driver, what):
        """The error for a ``driver`` location whose ``variable`` (its ``what``) is not set."""
        return CairnError('%s is not set in %s; a %s storage location needs its %s'
                          % (variable, self.where, driver, what))

    def location(self, name):
        for location in self.locations():
            if location.name == name:
                return location
        raise CairnError('storage location %r is not configured here (STORAGE_LOCATIONS=%s)'
                         % (name, ','.join(self.location_names())))

    def describe(self):
        return {
            'env_file': self.env_file,
            'instance_dir': self.base_dir,
            'key': self.key,
            'public_url': self.public_url,
            'database': self.database().describe(),
            'locations': [location.describe() for location in self.locations()],
        }
