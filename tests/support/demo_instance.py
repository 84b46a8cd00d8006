#!/usr/bin/env python
# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Build a CairnCMS-shaped demo instance: a SQLite database with the real system-table
columns, a content collection, uploads on local disk and a .env.

    demo_instance.py populated DIR [--name blog] [--files 6] [--port 8055]
    demo_instance.py empty DIR [--port 8056]

Used by `make demo` and by the tests. Stdlib only.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import os
import random
import secrets
import sqlite3
import struct
import uuid
import zlib

SCHEMA = '''
CREATE TABLE directus_migrations (version VARCHAR(255) PRIMARY KEY NOT NULL, name VARCHAR(255) NOT NULL,
  timestamp DATETIME DEFAULT CURRENT_TIMESTAMP);
CREATE TABLE directus_roles (id CHAR(36) PRIMARY KEY NOT NULL, name VARCHAR(100) NOT NULL,
  icon VARCHAR(30) NOT NULL DEFAULT 'supervised_user_circle', description TEXT, ip_access TEXT,
  enforce_tfa BOOLEAN NOT NULL DEFAULT 0, admin_access BOOLEAN NOT NULL DEFAULT 0,
  app_access BOOLEAN NOT NULL DEFAULT 1);
CREATE TABLE directus_users (id CHAR(36) PRIMARY KEY NOT NULL, first_name VARCHAR(50), last_name VARCHAR(50),
  email VARCHAR(128) UNIQUE, password VARCHAR(255), location VARCHAR(255), title VARCHAR(50), description TEXT,
  tags JSON, avatar CHAR(36), language VARCHAR(255), theme VARCHAR(20) DEFAULT 'auto', tfa_secret VARCHAR(255),
  status VARCHAR(16) NOT NULL DEFAULT 'active', role CHAR(36) REFERENCES directus_roles(id), token VARCHAR(255),
  last_access DATETIME, last_page VARCHAR(255), provider VARCHAR(128) NOT NULL DEFAULT 'default',
  external_identifier VARCHAR(255), auth_data JSON, email_notifications BOOLEAN DEFAULT 1);
CREATE TABLE directus_folders (id CHAR(36) PRIMARY KEY NOT NULL, name VARCHAR(255) NOT NULL,
  parent CHAR(36) REFERENCES directus_folders(id));
CREATE TABLE directus_files (id CHAR(36) PRIMARY KEY NOT NULL, storage VARCHAR(255) NOT NULL,
  filename_disk VARCHAR(255), filename_download VARCHAR(255) NOT NULL, title VARCHAR(255), type VARCHAR(255),
  folder CHAR(36) REFERENCES directus_folders(id), uploaded_by CHAR(36) REFERENCES directus_users(id),
  uploaded_on DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP, modified_by CHAR(36) REFERENCES directus_users(id),
  modified_on DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP, charset VARCHAR(50), filesize BIGINT DEFAULT NULL,
  width INTEGER, height INTEGER, duration INTEGER, embed VARCHAR(200), description TEXT, location TEXT,
  tags TEXT, metadata JSON);
CREATE TABLE directus_sessions (token VARCHAR(64) PRIMARY KEY NOT NULL, user CHAR(36) REFERENCES directus_users(id),
  expires DATETIME NOT NULL, ip VARCHAR(255), user_agent VARCHAR(255), share CHAR(36), origin VARCHAR(255));
CREATE TABLE directus_activity (id INTEGER PRIMARY KEY AUTOINCREMENT, action VARCHAR(45) NOT NULL,
  user CHAR(36), timestamp DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP, ip VARCHAR(50), user_agent VARCHAR(255),
  collection VARCHAR(64) NOT NULL, item VARCHAR(255) NOT NULL, comment TEXT, origin VARCHAR(255));
CREATE TABLE directus_collections (collection VARCHAR(64) PRIMARY KEY NOT NULL, icon VARCHAR(30), note TEXT,
  hidden BOOLEAN NOT NULL DEFAULT 0, singleton BOOLEAN NOT NULL DEFAULT 0, accountability VARCHAR(255) DEFAULT 'all',
  sort_field VARCHAR(64), archive_field VARCHAR(64), sort INTEGER, "group" VARCHAR(64), collapse VARCHAR(255)
  NOT NULL DEFAULT 'open');
CREATE TABLE directus_settings (id INTEGER PRIMARY KEY AUTOINCREMENT, project_name VARCHAR(100) NOT NULL
  DEFAULT 'Directus', project_url VARCHAR(255), project_color VARCHAR(50) DEFAULT NULL, storage_asset_transform
  VARCHAR(7) DEFAULT 'all');
CREATE TABLE directus_relations (id INTEGER PRIMARY KEY AUTOINCREMENT, many_collection VARCHAR(64) NOT NULL,
  many_field VARCHAR(64) NOT NULL, one_collection VARCHAR(64), one_field VARCHAR(64), junction_field VARCHAR(64));
CREATE TABLE articles (id INTEGER PRIMARY KEY AUTOINCREMENT, status VARCHAR(255) NOT NULL DEFAULT 'draft',
  title VARCHAR(255), body TEXT, cover CHAR(36) REFERENCES directus_files(id), date_created DATETIME);
'''

MIGRATIONS = [
    ('20201028A', 'Remove Collection Foreign Keys'), ('20210802A', 'Replace Groups'),
    ('20220429A', 'Add Flows'), ('20221103A', 'Add Activity Origin'), ('20230401A', 'Update Material Icons'),
]


def png(width, height, seed):
    """A small valid RGB PNG made with the standard library."""
    rng = random.Random(seed)
    raw = b''.join(b'\x00' + bytes(rng.randrange(256) for _round in range(width * 3)) for _round in range(height))

    def chunk(kind, data):
        return struct.pack('>I', len(data)) + kind + data + struct.pack('>I', zlib.crc32(kind + data) & 0xffffffff)
    return (b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', width, height, 8, 2, 0, 0, 0))
            + chunk(b'IDAT', zlib.compress(raw, 6)) + chunk(b'IEND', b''))


def write_env(directory, port, db='./data.db', uploads='./uploads'):
    env = os.path.join(directory, '.env')
    with open(env, 'w', encoding='utf-8') as handle:
        handle.write('# CairnCMS demo instance\n'
                     'KEY="%s"\nSECRET="%s"\n'
                     'PUBLIC_URL=http://127.0.0.1:%d\nPORT=%d\n\n'
                     'DB_CLIENT=sqlite3\nDB_FILENAME=%s\n\n'
                     'STORAGE_LOCATIONS=local\nSTORAGE_LOCAL_DRIVER=local\nSTORAGE_LOCAL_ROOT=%s  # uploads\n'
                     % (uuid.uuid4(), secrets.token_urlsafe(32), port, port, db, uploads))
    os.chmod(env, 0o600)
    return env


def populated(directory, files=6, port=8055, seed=1):
    os.makedirs(os.path.join(directory, 'uploads'), exist_ok=True)
    rng = random.Random(seed)
    conn = sqlite3.connect(os.path.join(directory, 'data.db'))
    conn.executescript(SCHEMA)
    conn.executemany('INSERT INTO directus_migrations (version, name) VALUES (?, ?)', MIGRATIONS)
    role = str(uuid.UUID(int=rng.getrandbits(128)))
    admin = str(uuid.UUID(int=rng.getrandbits(128)))
    conn.execute("INSERT INTO directus_roles (id, name, admin_access) VALUES (?, 'Administrator', 1)", (role,))
    conn.execute("INSERT INTO directus_users (id, first_name, email, password, role) "
                 "VALUES (?, 'Admin', 'admin@example.com', '$argon2id$v=19$m=65536,t=3,p=4$demo', ?)", (admin, role))
    conn.execute("INSERT INTO directus_settings (project_name) VALUES ('Demo')")
    conn.execute("INSERT INTO directus_collections (collection, icon) VALUES ('articles', 'article')")
    conn.execute("INSERT INTO directus_relations (many_collection, many_field, one_collection) "
                 "VALUES ('articles', 'cover', 'directus_files')")
    now = datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M:%S')
    file_ids = []
    for number in range(files):
        file_id = str(uuid.UUID(int=rng.getrandbits(128)))
        if number % 3 == 2:
            data = ('Attachment %d\n' % number).encode() * (200 + number * 50)
            ext, mime, width, height = '.txt', 'text/plain', None, None
        else:
            width, height = 16 + number * 4, 12 + number * 2
            data = png(width, height, seed * 1000 + number)
            ext, mime = '.png', 'image/png'
        name = file_id + ext
        with open(os.path.join(directory, 'uploads', name), 'wb') as handle:
            handle.write(data)
        conn.execute('INSERT INTO directus_files (id, storage, filename_disk, filename_download, title, type, '
                     'uploaded_by, uploaded_on, modified_on, filesize, width, height) VALUES '
                     "(?, 'local', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                     (file_id, name, 'file-%d%s' % (number, ext), 'File %d' % number, mime, admin, now, now,
                      len(data), width, height))
        file_ids.append((file_id, ext))
    # A resized derivative, as CairnCMS writes it beside the original: regenerable, not backed up.
    first_id, first_ext = file_ids[0]
    suffix = hashlib.sha1(b'width=8').hexdigest()
    with open(os.path.join(directory, 'uploads', '%s__%s%s' % (first_id, suffix, first_ext)), 'wb') as handle:
        handle.write(png(8, 6, 99))
    for number in range(files * 2):
        cover = file_ids[number % len(file_ids)][0]
        conn.execute('INSERT INTO articles (status, title, body, cover, date_created) VALUES (?, ?, ?, ?, ?)',
                     ('published', 'Article %d' % number, 'Body of article %d. ' % number * 20, cover, now))
        conn.execute("INSERT INTO directus_activity (action, user, collection, item) "
                     "VALUES ('create', ?, 'articles', ?)", (admin, str(number + 1)))
    conn.commit()
    conn.close()
    return write_env(directory, port)


def register(directory, location, files):
    """Add a directus_files row in ``location`` for each ``filename_disk -> bytes`` of ``files``."""
    conn = sqlite3.connect(os.path.join(str(directory), 'data.db'))
    with conn:
        for name, data in files.items():
            conn.execute("INSERT INTO directus_files (id, storage, filename_disk, filename_download, filesize) "
                         "VALUES (?, ?, ?, ?, ?)", (str(uuid.uuid4()), location, name, name.rsplit('/', 1)[-1],
                                                    len(data)))
    conn.close()


def empty(directory, port=8056):
    os.makedirs(os.path.join(directory, 'uploads'), exist_ok=True)
    return write_env(directory, port)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n', 1)[0])
    parser.add_argument('kind', choices=['populated', 'empty'])
    parser.add_argument('directory')
    parser.add_argument('--files', type=int, default=6)
    parser.add_argument('--port', type=int, default=None)
    args = parser.parse_args()
    os.makedirs(args.directory, exist_ok=True)
    if os.listdir(args.directory):
        parser.error('%s is not empty' % args.directory)
    if args.kind == 'populated':
        env = populated(args.directory, files=args.files, port=args.port or 8055)
    else:
        env = empty(args.directory, port=args.port or 8056)
    print(env)


if __name__ == '__main__':
    main()
