# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The restore's one run (cairn_restore), through the restore playbook against a real PostgreSQL server: the
database and the files go side by side, and a failure of either leaves the other as it was."""

from __future__ import annotations

import os

import _servers
from conftest import SHOW_STATS, custom_stats, digest_tree, run_playbook, write_inventory


def _instance(tmp_path, name, env):
    directory = tmp_path / name
    (directory / 'uploads').mkdir(parents=True)
    (directory / '.env').write_text(''.join('%s="%s"\n' % item for item in env.items()) + (
        'KEY="k-%s"\nSECRET="s-%s"\nSTORAGE_LOCATIONS=local\nSTORAGE_LOCAL_DRIVER=local\n'
        'STORAGE_LOCAL_ROOT=./uploads\n' % (name, name)))
    return directory


def _world(tmp_path, repo, pg_database, **copy_vars):
    """A source instance on ``pg_database`` with its uploads, backed up; a target instance on another database of
    the server holding content of its own, with an upload of the same name and other bytes, and one more."""
    server = pg_database.server
    source = _instance(tmp_path, 'source', pg_database.env())
    names = [name for name, _size in pg_database.rows('SELECT filename_disk, filesize FROM directus_files')]
    for name, size in pg_database.rows('SELECT filename_disk, filesize FROM directus_files'):
        (source / 'uploads' / name).write_bytes(os.urandom(int(size)))
    copy = 'copy_%s' % pg_database.name
    server.create_database(copy)
    _servers.load_cairn_schema(server, copy, rows=3)
    target = _instance(tmp_path, 'target', server.env(database=copy))
    (target / 'uploads' / names[0]).write_bytes(b'the target\'s own bytes')
    (target / 'uploads' / 'only-in-target.txt').write_bytes(b'kept')
    inventory = write_inventory(str(tmp_path / 'inventory.json'), {
        'cms': {'cairn_env_file': str(source / '.env')},
        'copy': dict({'cairn_env_file': str(target / '.env'), 'cairn_restore_from': 'cms',
                      'cairn_restore_replace': True, 'cairn_restore_secrets': False}, **copy_vars),
    }, repo['path'])
    backup = run_playbook('backup.yml', inventory, limit='cms')
    assert backup.returncode == 0, backup.stdout + backup.stderr
    return {'server': server, 'copy': copy, 'source': source, 'target': target, 'inventory': inventory,
            'before': _servers.row_counts(server, copy), 'files': digest_tree(target / 'uploads')}


def test_the_database_and_the_files_are_restored_together(tmp_path, repo, pg_database):
    world = _world(tmp_path, repo, pg_database)
    try:
        run = run_playbook('restore.yml', world['inventory'], limit='copy', environ=SHOW_STATS)
        assert run.returncode == 0, run.stdout + run.stderr
        result = custom_stats(run.stdout)['cairn_restore']['copy']
        assert result['outcome'] == 'succeeded' and result['database_changed'], result
        assert _servers.row_counts(world['server'], world['copy']) == pg_database.row_counts()
        source_files = digest_tree(world['source'] / 'uploads')
        assert digest_tree(world['target'] / 'uploads') == source_files  # with replace: the extra file goes
        assert len(result['checks']) == 5 and all(check['ok'] for check in result['checks']), result['checks']
        # the files it wrote were hashed as written and, unchanged since, not read again; the one it kept is read
        files_check, = [check for check in result['checks'] if check['name'] == 'file bytes sha256']
        written = result['files_written']
        assert written == len(source_files) and files_check['detail'] == (
            '%d file(s) equal (%d hashed as this restore wrote them and unchanged since, 0 read back)'
            % (written, written)), (files_check, result)
        steps = result['steps']
        assert all(steps[name] is not None and steps[name] >= 0 for name in (
            'plan_s', 'repository_s', 'database_s', 'files_s', 'verify_s')), steps
        again = run_playbook('restore.yml', world['inventory'], limit='copy', environ=SHOW_STATS)
        assert again.returncode == 0, again.stdout
        again_result = custom_stats(again.stdout)['cairn_restore']['copy']
        assert again_result['database_changed'] is False and again_result['files_written'] == 0
        files_check, = [check for check in again_result['checks'] if check['name'] == 'file bytes sha256']
        assert files_check['ok'] and files_check['detail'] == '%d file(s) equal' % written  # all read back
    finally:
        world['server'].drop_database(world['copy'])


def test_a_database_that_fails_to_load_changes_no_file(tmp_path, repo, pg_database):
    world = _world(tmp_path, repo, pg_database)
    server, copy = world['server'], world['copy']
    # An object the dump does not know depends on a table it drops: pg_restore --clean fails midway, after the
    # files beside it were staged.
    server.sql('CREATE VIEW target_only AS SELECT id FROM directus_roles', copy)
    try:
        run = run_playbook('restore.yml', world['inventory'], limit='copy', environ=SHOW_STATS)
        assert run.returncode != 0, run.stdout
        result = custom_stats(run.stdout)['cairn_restore']['copy']
        assert result['failed_step'] == 'Restore the database', result
        # the first line of the error says what state the instance is in
        assert result['error'].startswith('restoring the database failed (the database was put back from its safety '
                                          'copy; no file was changed): pg_restore failed'), result['error']
        assert result['files_written'] == 0 and not result['database_changed'], result
        assert _servers.row_counts(server, copy) == world['before']
        # every file as it was, and nothing staged left beside them
        assert digest_tree(world['target'] / 'uploads') == world['files']
    finally:
        server.drop_database(copy)


def test_a_file_that_fails_while_staged_puts_the_database_back(tmp_path, repo, pg_database):
    # A damaged blob is found while the files are staged beside the database load (one read of each blob): the
    # load stops, or the loaded database is put back; no file changes.
    world = _world(tmp_path, repo, pg_database)
    server, copy = world['server'], world['copy']
    blobs = os.path.join(repo['path'], 'cms', 'blobs')
    prefix = sorted(os.listdir(blobs))[0]
    blob = os.path.join(blobs, prefix, sorted(os.listdir(os.path.join(blobs, prefix)))[0])
    with open(blob, 'r+b') as handle:
        handle.write(b'\x00damaged')
    try:
        run = run_playbook('restore.yml', world['inventory'], limit='copy', environ=SHOW_STATS)
        assert run.returncode != 0, run.stdout
        result = custom_stats(run.stdout)['cairn_restore']['copy']
        assert result['failed_step'] == 'Restore the file bytes', result
        assert result['error'].startswith('restoring the file bytes failed (the database restore was stopped: the '
                                          'database was put back from its safety copy): blob '), result['error']
        assert 'fails its checksum' in result['error'] and 'the repository copy is damaged' in result['error'], result
        assert _servers.row_counts(server, copy) == world['before']
        assert digest_tree(world['target'] / 'uploads') == world['files']
        # A restore that stops the CMS first reads every blob before it (the check phase): refused, nothing changed.
        refused = run_playbook('restore.yml', world['inventory'], limit='copy', environ=SHOW_STATS, extra=[
            '-e', '{"cairn_cms_service": {"kind": "command", "start": ["true"], "stop": ["true"], '
                  '"status": ["false"], "url": "http://127.0.0.1:9"}}'])
        assert refused.returncode != 0
        result = custom_stats(refused.stdout)['cairn_restore']['copy']
        assert result['failed_step'] == 'Check every checksum of the restore point before writing', result
        assert 'file blobs sha256' in result['error'] and 'nothing was changed' in result['error'], result
        assert result['cms']['was_running'] is None, result  # never stopped
        assert _servers.row_counts(server, copy) == world['before']
        assert digest_tree(world['target'] / 'uploads') == world['files']
    finally:
        server.drop_database(copy)
