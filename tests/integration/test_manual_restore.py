# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The by-hand restore in docs/restore-point-format.md works, run as written with standard tools."""

from __future__ import annotations

import os
import re
import subprocess

from conftest import ROOT
from test_modules import backup, digests, dump_sql, originals


def test_documented_manual_restore(source, tmp_path, repo):
    manifest = backup(source / '.env', repo)[0]
    doc = open(os.path.join(ROOT, 'docs', 'restore-point-format.md'), encoding='utf-8').read()
    script = re.search(r'## Restoring by hand.*?```sh\n(.*?)```', doc, re.S).group(1)
    home = tmp_path / 'by-hand'
    (home / 'uploads').mkdir(parents=True)
    script = script.replace('/srv/cairn', str(home))
    env = dict(os.environ, R=os.path.join(repo['path'], 'blog', 'points', manifest['id']),
               B=os.path.join(repo['path'], 'blog', 'blobs'))
    proc = subprocess.run(['bash', '-euo', 'pipefail', '-c', script], capture_output=True, text=True, env=env,
                          check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert 'database.sqlite3.zst: OK' in proc.stdout and 'files.jsonl: OK' in proc.stdout
    assert dump_sql(home / 'data.db') == dump_sql(source / 'data.db')
    assert digests(home / 'uploads') == originals(source / 'uploads')
