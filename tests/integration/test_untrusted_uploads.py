# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Uploads directories are untrusted input: symlinks, FIFOs, files swapped while read, rows without bytes and the
leftovers of a killed restore, through the backup and restore roles (ansible-playbook) and the module."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import uuid

import demo_instance
from conftest import COLLECTIONS, part_of, recap, run_module, run_playbook, write_inventory
from trees import entries

from ansible_collections.cairncms.ops.plugins.module_utils import _fs

SECRET = b'a file outside the uploads: never captured, never overwritten\n'

# Loaded by the module's Python (PYTHONPATH): right after the storage listing, the names in CAIRN_TEST_SWAP are
# replaced by symlinks, as an attacker racing the backup would do between the listing and the read.
SWAP_HOOK = '''
import json, os
from ansible_collections.cairncms.ops.plugins.module_utils import _fs
_walk = _fs.walk


def walk(root, *args, **kwargs):
    listing = _walk(root, *args, **kwargs)
    for name, target in json.loads(os.environ['CAIRN_TEST_SWAP']).items():
        os.unlink(os.path.join(root, name))
        os.symlink(target, os.path.join(root, name))
    return listing


_fs.walk = walk
'''


def hosts(source, target):
    return {'blog': {'cairn_env_file': str(source / '.env')},
            'clone': {'cairn_env_file': str(target / '.env'), 'cairn_restore_from': 'blog'}}


def originals(directory):
    """The files of a demo instance's uploads that a backup captures (derivatives are regenerable)."""
    return {name: entry for name, entry in entries(directory).items() if '__' not in name}


def newest_point(repo):
    points_dir = os.path.join(repo['path'], 'blog', 'points')
    point = sorted(os.listdir(points_dir))[-1]
    with open(os.path.join(points_dir, point, 'manifest.json'), 'rb') as handle:
        manifest = json.load(handle)
    with open(os.path.join(points_dir, point, part_of(manifest, 'files')['artifacts'][0]['path']), 'rb') as handle:
        rows = [json.loads(line) for line in handle.read().decode('utf-8').splitlines()]
    return manifest, rows


def words(process):
    """The playbook's output with every run of whitespace made one space (Ansible wraps warnings)."""
    return ' '.join((process.stdout + process.stderr).split())


def warned(result):
    """The warnings of a module result as one text (plain strings, or ansible-core's structured summaries)."""
    return json.dumps(result.get('warnings', []))


def test_symlinks_in_the_target_never_lead_a_restore_outside_it(source, target, repo, tmp_path):
    """A directory symlinked out of the target (uploads/sub -> outside) and a file that is a symlink to a file
    outside: refused without replace (counted as an overwrite and an extra), replaced by real files with replace;
    nothing outside changes, ever."""
    nested = 'sub/%s.txt' % uuid.UUID(int=42)
    (source / 'uploads' / 'sub').mkdir()
    (source / 'uploads' / nested).write_bytes(b'a file in a subdirectory of the uploads\n')
    demo_instance.register(source, 'local', {nested: b'a file in a subdirectory of the uploads\n'})
    inventory = write_inventory(str(tmp_path / 'inventory.json'), hosts(source, target), repo['path'])
    backup = run_playbook('backup.yml', inventory, limit='blog')
    assert backup.returncode == 0, backup.stdout + backup.stderr

    outside = tmp_path / 'outside'
    outside.mkdir()
    (outside / os.path.basename(nested)).write_bytes(b'what a restore through the link would overwrite\n')
    (outside / 'secret').write_bytes(SECRET)
    first = sorted(name for name in originals(source / 'uploads') if '/' not in name)[0]
    os.symlink(str(outside), str(target / 'uploads' / 'sub'))
    os.symlink(str(outside / 'secret'), str(target / 'uploads' / first))
    before, planted = entries(outside), entries(target / 'uploads')

    refused = run_playbook('restore.yml', inventory, limit='clone')
    assert refused.returncode != 0
    said = words(refused)
    assert 'Set replace (cairn_restore_replace: true)' in said, said
    assert '2 file(s) would be overwritten or removed, among them 2 symlink(s) or special file(s)' in said, said
    assert entries(outside) == before and entries(target / 'uploads') == planted
    assert not (target / 'data.db').exists()

    plan = run_module('cairn_storage_sync', check_mode=True, env_file=str(target / '.env'), repository=repo,
                      instance='blog', direction='restore', replace=True)
    assert not plan.failed, plan
    assert (plan['transferred'], plan['removed'], plan['unchanged']) == (7, 1, 0), plan
    assert (plan['locations'][0]['overwrite'], plan['locations'][0]['remove']) == (1, 1), plan
    assert plan['locations'][0]['examples'] == {'overwrite': [first], 'remove': ['sub']}, plan
    assert plan['irregular_files'] == {'count': 2, 'examples': ['local:%s (symlink)' % first, 'local:sub (symlink)']}
    assert 'the target storage holds 2 symlink(s) or special file(s)' in warned(plan), plan

    replaced = run_playbook('restore.yml', inventory, limit='clone', extra=['-e', 'cairn_restore_replace=true'])
    assert replaced.returncode == 0, replaced.stdout + replaced.stderr
    assert entries(outside) == before
    assert entries(target / 'uploads') == originals(source / 'uploads')
    assert not os.path.islink(str(target / 'uploads' / 'sub')) and not os.path.islink(str(target / 'uploads' / first))
    again = run_playbook('restore.yml', inventory, limit='clone')
    assert again.returncode == 0, again.stdout + again.stderr
    assert recap(again.stdout, 'clone')['changed'] == 0, again.stdout


def test_backup_leaves_out_and_reports_symlinks_fifos_and_rows_without_bytes(source, target, repo, tmp_path):
    """Live uploads with a symlink to a file outside, a FIFO, a row whose file was deleted and a row whose file is
    a symlink: the backup succeeds without reading any of them, warns with the counts and records them."""
    uploads = source / 'uploads'
    hostname = tmp_path / 'hostname'
    hostname.write_bytes(SECRET)
    with_derivative = {name.split('__')[0] for name in entries(uploads) if '__' in name}
    gone, linked = [name for name in sorted(originals(uploads)) if name.rsplit('.', 1)[0] not in with_derivative][:2]
    kept = set(originals(uploads)) - {gone, linked}
    os.symlink(str(hostname), str(uploads / 'evil.png'))
    os.mkfifo(str(uploads / 'pipe'))
    os.unlink(str(uploads / gone))
    os.unlink(str(uploads / linked))
    os.symlink(str(hostname), str(uploads / linked))
    inventory = write_inventory(str(tmp_path / 'inventory.json'), hosts(source, target), repo['path'])

    backup = run_playbook('backup.yml', inventory, limit='blog')
    assert backup.returncode == 0, backup.stdout + backup.stderr
    said = words(backup)
    assert '3 symlink(s) or special file(s) in the storage locations were not followed' in said, said
    assert '2 directus_files row(s) have no regular file of their bytes' in said, said
    assert 'local:%s (missing)' % gone in said and 'local:%s (a symlink)' % linked in said, said

    manifest, rows = newest_point(repo)
    captured = {row['filename_disk'] for row in rows}
    assert captured == kept and len(captured) == 4, captured
    assert not captured & {'evil.png', 'pipe', gone, linked}
    storage = part_of(manifest, 'files')
    assert storage['irregular_files'] == {'count': 3, 'examples': sorted([
        'local:%s (symlink)' % linked, 'local:evil.png (symlink)', 'local:pipe (fifo)'])}, storage
    assert storage['missing_files'] == {'count': 2, 'examples': sorted(
        ['local:%s (missing)' % gone, 'local:%s (a symlink)' % linked])}, storage
    assert storage['swapped_files'] == {'count': 0, 'examples': []}
    assert storage['locations'][0]['irregular_files'] == 3
    blobs = [name for _parent, _dirs, files in os.walk(os.path.join(repo['path'], 'blog')) for name in files]
    assert hashlib.sha256(SECRET).hexdigest() not in ' '.join(blobs)


def test_a_file_swapped_for_a_symlink_after_listing_is_not_captured(source, repo, tmp_path):
    """The exact race, made deterministic: the module lists the uploads, then the file becomes a symlink to a
    file outside before it is read. It is left out, counted and reported; its row is reported too."""
    hook = tmp_path / 'hook'
    hook.mkdir()
    (hook / 'sitecustomize.py').write_text(SWAP_HOOK)
    hostname = tmp_path / 'hostname'
    hostname.write_bytes(SECRET)
    victim = sorted(originals(source / 'uploads'))[0]
    point = run_module('cairn_restore_point', repository=repo, instance='blog')
    assert not point.failed, point
    dump = run_module('cairn_db_dump', env_file=str(source / '.env'), repository=repo, instance='blog',
                      restore_point=point['restore_point'])
    assert not dump.failed, dump
    files = run_module('cairn_storage_sync', env_file=str(source / '.env'), repository=repo, instance='blog',
                       restore_point=point['restore_point'], direction='backup',
                       environ={'PYTHONPATH': '%s:%s' % (hook, COLLECTIONS),
                                'CAIRN_TEST_SWAP': json.dumps({victim: str(hostname)})})
    assert not files.failed, files
    assert os.path.islink(str(source / 'uploads' / victim))  # the hook ran
    assert files['swapped_files'] == {'count': 1, 'examples': ['local:%s (symlink)' % victim]}, files
    assert files['missing_files'] == {'count': 1, 'examples': [
        'local:%s (replaced by a symlink during the backup)' % victim]}, files
    assert (files['files'], files['transferred'], files['irregular_files']['count']) == (5, 5, 0), files
    assert '1 file(s) were regular files when listed but a symlink' in warned(files), files
    final = run_module('cairn_restore_point', env_file=str(source / '.env'), repository=repo, instance='blog',
                       restore_point=point['restore_point'], state='complete')
    assert not final.failed, final
    manifest, rows = newest_point(repo)
    assert victim not in {row['filename_disk'] for row in rows} and len(rows) == 5
    assert part_of(manifest, 'files')['swapped_files']['count'] == 1


def test_leftovers_of_a_killed_restore_are_removed_by_the_next_restore(source, target, repo, tmp_path):
    inventory = write_inventory(str(tmp_path / 'inventory.json'), hosts(source, target), repo['path'])
    assert run_playbook('backup.yml', inventory, limit='blog').returncode == 0
    restored = run_playbook('restore.yml', inventory, limit='clone')
    assert restored.returncode == 0, restored.stdout + restored.stderr
    uploads = target / 'uploads'
    expected = entries(uploads)
    # What a killed restore leaves beside the final places: this version's temporary file (in a directory it
    # made) and an earlier version's (tempfile.mkstemp), both partly written.
    staged = _fs.StagedFile(str(uploads), 'sub/%s.png' % uuid.UUID(int=7))
    staged.write(b'partial')
    staged.close()
    handle, older = tempfile.mkstemp(prefix='.cairn-', suffix='.part', dir=str(uploads))
    os.write(handle, b'partial')
    os.close(handle)
    leftovers = {'sub', 'sub/' + staged.tmp, os.path.basename(older)}  # the directory the killed run made, too
    assert set(entries(uploads)) - set(expected) == leftovers

    plan = run_module('cairn_storage_sync', check_mode=True, env_file=str(target / '.env'), repository=repo,
                      instance='blog', direction='restore')
    assert (plan['changed'], plan['leftovers_removed'], plan['transferred'], plan['removed']) == (True, 2, 0, 0), plan
    dry = run_playbook('restore.yml', inventory, limit='clone', check=True)
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert set(entries(uploads)) - set(expected) == leftovers

    again = run_playbook('restore.yml', inventory, limit='clone')
    assert again.returncode == 0, again.stdout + again.stderr
    assert recap(again.stdout, 'clone')['changed'] >= 1, again.stdout
    assert entries(uploads) == expected and not (uploads / 'sub').exists()
    settled = run_playbook('restore.yml', inventory, limit='clone')
    assert settled.returncode == 0, settled.stdout + settled.stderr
    assert recap(settled.stdout, 'clone')['changed'] == 0, settled.stdout


def test_names_with_odd_bytes_round_trip_and_are_shown_escaped(source, target, repo, tmp_path):
    """A name with bytes that are not UTF-8 and a terminal escape is restored byte for byte; in messages it is
    shown escaped, never raw."""
    uploads = os.fsencode(str(source / 'uploads'))
    odd, data = b'odd \xff\x1b[31m name.png', b'bytes of a file with an odd name\n'
    with open(os.path.join(uploads, odd), 'wb') as handle:
        handle.write(data)
    hostname = tmp_path / 'hostname'
    hostname.write_bytes(SECRET)
    os.symlink(str(hostname), os.path.join(uploads, b'link \xfe\n.png'))
    inventory = write_inventory(str(tmp_path / 'inventory.json'), hosts(source, target), repo['path'])
    backup = run_playbook('backup.yml', inventory, limit='blog')
    assert backup.returncode == 0, backup.stdout + backup.stderr
    assert 'local:link \\udcfe\\n.png (symlink)' in words(backup), words(backup)
    assert '\x1b' not in backup.stdout + backup.stderr
    # The restore role, verification included: the name goes through every step and every message escaped.
    restored = run_playbook('restore.yml', inventory, limit='clone', extra=['-v'])
    assert restored.returncode == 0, restored.stdout + restored.stderr
    assert '7 files written' in restored.stdout and '5 of 5 checks passed' in restored.stdout, restored.stdout
    assert '\x1b' not in restored.stdout + restored.stderr
    with open(os.path.join(os.fsencode(str(target / 'uploads')), odd), 'rb') as handle:
        assert handle.read() == data
    assert not os.path.lexists(os.path.join(os.fsencode(str(target / 'uploads')), b'link \xfe\n.png'))
