#!/usr/bin/env python
# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""`make demo`: back up a demo CairnCMS instance with the backup playbook, restore it into a
second, empty instance with the restore playbook, verify, and print a short summary.

Usage: demo.py WORKDIR   (WORKDIR is wiped and rebuilt; the collection must be on
ANSIBLE_COLLECTIONS_PATH and ansible-playbook next to this Python).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)

import demo_instance  # noqa: E402  (beside this file)


def part_of(manifest, kind):
    """The part ``kind`` of a restore point's manifest (format 2: a list of typed parts)."""
    return next(entry for entry in manifest['parts'] if entry['kind'] == kind)


def playbook(workdir, name, limit):
    command = [os.path.join(os.path.dirname(sys.executable), 'ansible-playbook'),
               '-i', os.path.join(workdir, 'inventory.yml'), '--limit', limit,
               os.path.join(ROOT, 'playbooks', name)]
    print('\n$ ' + ' '.join(os.path.relpath(part) if os.path.isabs(part) else part for part in command), flush=True)
    subprocess.run(command, check=True)


def demo_key(path):
    """A generated age key for the demo (a real deployment keeps its key off the CMS host)."""
    import pyrage
    identity = pyrage.x25519.Identity.generate()
    with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), 'w', encoding='ascii') as handle:
        handle.write('# demo key, public key: %s\n%s\n' % (identity.to_public(), identity))
    return str(identity.to_public())


def env_value(path, name):
    for line in open(path, encoding='utf-8'):
        if line.startswith(name + '='):
            return line.split('=', 1)[1].split('#')[0].strip().strip('"\'')
    return None


def table_counts(path):
    conn = sqlite3.connect('file:%s?mode=ro' % path, uri=True)
    try:
        names = [row[0] for row in conn.execute(
            "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%'")]
        return {name: conn.execute('SELECT COUNT(*) FROM "%s"' % name).fetchone()[0] for name in names}
    finally:
        conn.close()


def digests(directory):
    result = {}
    for name in sorted(os.listdir(directory)):
        with open(os.path.join(directory, name), 'rb') as handle:
            result[name] = hashlib.sha256(handle.read()).hexdigest()
    return result


def main():
    workdir = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else '.demo')
    shutil.rmtree(workdir, ignore_errors=True)
    source, target, repo = (os.path.join(workdir, name) for name in ('blog', 'restored', 'repository'))
    os.makedirs(workdir)
    demo_instance.populated(source)
    os.makedirs(os.path.join(target, 'uploads'))  # a new home: no database, no files, no .env yet
    key = os.path.join(workdir, 'demo-age-key.txt')
    recipient = demo_key(key)
    inventory = {'all': {
        'vars': {'ansible_connection': 'local', 'ansible_python_interpreter': sys.executable,
                 'cairn_repository': {'type': 'local', 'path': repo}},
        'hosts': {
            'blog': {'cairn_env_file': os.path.join(source, '.env'), 'cairn_encryption_recipients': [recipient]},
            'blog-restored': {
                'cairn_env_file': os.path.join(target, '.env'), 'cairn_restore_from': 'blog',
                'cairn_encryption_identity_file': key,
                'cairn_env_overrides': {'DB_CLIENT': 'sqlite3', 'DB_FILENAME': os.path.join(target, 'data.db'),
                                        'STORAGE_LOCAL_ROOT': os.path.join(target, 'uploads'),
                                        'PUBLIC_URL': 'http://127.0.0.1:8056', 'PORT': 8056}},
        }}}
    with open(os.path.join(workdir, 'inventory.yml'), 'w', encoding='utf-8') as handle:
        json.dump(inventory, handle, indent=2)  # JSON is YAML
    print('Demo instance: %s (SQLite + local uploads); empty target: %s' % (source, target))
    playbook(workdir, 'backup.yml', 'blog')
    playbook(workdir, 'restore.yml', 'blog-restored')

    points = sorted(os.listdir(os.path.join(repo, 'blog', 'points')))
    with open(os.path.join(repo, 'blog', 'points', points[-1], 'manifest.json'), encoding='utf-8') as handle:
        manifest = json.load(handle)
    before, after = table_counts(os.path.join(source, 'data.db')), table_counts(os.path.join(target, 'data.db'))
    source_files = digests(os.path.join(source, 'uploads'))
    target_files = digests(os.path.join(target, 'uploads'))
    originals = {name: digest for name, digest in source_files.items() if '__' not in name}
    same_rows = before == after
    same_files = originals == target_files
    same_key = env_value(os.path.join(source, '.env'), 'KEY') == env_value(os.path.join(target, '.env'), 'KEY')
    print('\n== cairncms.ops demo summary ==')
    print('restore point   %s (%s, migration %s)' % (manifest['id'], part_of(manifest, 'database')['vendor'],
                                                     manifest['cms']['migration_level']))
    print('database        %d tables, %d rows; restored copy equal: %s'
          % (len(after), sum(after.values()), 'yes' if same_rows else 'NO'))
    print('uploads         %d files backed up, %d regenerable skipped; restored bytes equal: %s'
          % (part_of(manifest, 'files')['files'], len(source_files) - len(originals), 'yes' if same_files else 'NO'))
    print('secrets         .env captured in an age-encrypted bundle; restored .env has the same KEY: %s, '
          'PUBLIC_URL %s' % ('yes' if same_key else 'NO', env_value(os.path.join(target, '.env'), 'PUBLIC_URL')))
    print('repository      %s (encrypted to %s...)' % (repo, manifest['encryption']['recipients'][0][:16]))
    if not (same_rows and same_files and same_key):
        sys.exit('demo FAILED: the restored instance differs from the original')
    print('demo OK: backed up, restored into an empty instance and verified')


if __name__ == '__main__':
    main()
