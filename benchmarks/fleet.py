#!/usr/bin/env python
# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The backup playbook over SSH against a fleet, at several forks, against the data work it does, measured in the
same run.

    .venv/bin/python benchmarks/fleet.py [--hosts 10] [--per-host 3] [--files 6] [--forks 1,5,10] [--workdir DIR]

Starts HOSTS sshd "hosts" (tests/integration/_ssh.py: each in its own mount namespace, reached over SSH on
127.0.0.1 as root with pipelining), each holding PER_HOST demo instances (tests/support/demo_instance.py: a
SQLite database and FILES uploads) at /srv/cairn/site<N> and a local repository at /srv/cairn-repository.
Needs root and /usr/sbin/sshd (openssh-server).

* The backup playbook (playbooks/backup.yml, the role's defaults: zstd level 3, verify) over every instance at
  each of FORKS, each run into a fresh repository directory, so every run does the same first backup.
* The reference data work, on the same instances: for each instance, one after the other, ``sqlite3 data.db
  ".backup X"``, ``zstd -3`` of X, ``cp -a`` of the uploads and ``sync`` of what was written: the bytes any
  backup of the instance reads, compresses and writes, with nothing else (no checksums, manifest, verify,
  lock, SSH or Ansible).
* A transport baseline: one no-op remote task (``ansible.builtin.ping``; a playbook of 11 pings against one of 1,
  on one instance at forks 1): what Ansible and SSH cost per task with no module work.

Prints the wall time per forks value with the ratio to the reference data work, the speed-up and efficiency
against forks 1, and the collection's per-instance overhead beyond the data work:
(wall at forks 1 - reference data work) / instances. Exit code 0 whatever the numbers, 1 when a run fails
(a playbook failure or a missing restore point).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COLLECTIONS = os.path.join(ROOT, '.build', 'collections')
sys.path.insert(0, os.path.join(ROOT, 'tests', 'integration'))
sys.path.insert(0, os.path.join(ROOT, 'tests', 'support'))

import _ssh  # noqa: E402  (the test harness's SSH hosts)
import demo_instance  # noqa: E402  (the demo's CairnCMS-shaped instance)

REPOSITORY = '/srv/cairn-repository'


def ansible_env():
    return dict(os.environ, ANSIBLE_COLLECTIONS_PATH=COLLECTIONS, ANSIBLE_FORCE_COLOR='0', ANSIBLE_NOCOLOR='1',
                ANSIBLE_LOCALHOST_WARNING='0')


def playbook(path, inventory, forks):
    command = [os.path.join(os.path.dirname(sys.executable), 'ansible-playbook'), '-i', inventory, '-f', str(forks),
               path]
    start = time.monotonic()
    proc = subprocess.run(command, capture_output=True, text=True, env=ansible_env(), cwd=ROOT, check=False)
    seconds = time.monotonic() - start
    if proc.returncode != 0:
        raise SystemExit('%s at forks %d failed:\n%s\n%s' % (os.path.basename(path), forks, proc.stdout[-4000:],
                                                             proc.stderr[-2000:]))
    return seconds, proc.stdout


def recap_ok(output):
    """The 'ok' count (tasks that ran, changed ones included) of every host of the PLAY RECAP."""
    return {match.group(1): int(match.group(2)) for match in re.finditer(r'^(\S+)\s+:\s+ok=(\d+)', output, re.M)}


def build(fleet, per_host, files):
    """Instances on every host; returns {inventory name: (host, instance directory)}."""
    instances = {}
    for number, (name, host) in enumerate(fleet.hosts.items()):
        for index in range(1, per_host + 1):
            directory = '/srv/cairn/site%d' % index
            demo_instance.populated(host.outside(directory), files=files, seed=number * 100 + index)
            instances['%s-site%d' % (name, index)] = (name, directory)
    return instances


def reference(fleet, instances, work):
    """Seconds of the reference data work over every instance, one after the other."""
    total = 0.0
    for name, (host, directory) in instances.items():
        source = fleet.hosts[host].outside(directory)
        target = os.path.join(work, name)
        shutil.rmtree(target, ignore_errors=True)
        os.makedirs(target)
        start = time.monotonic()
        copy = os.path.join(target, 'data.db')
        subprocess.run(['sqlite3', os.path.join(source, 'data.db'), '.backup %s' % copy], check=True)
        subprocess.run(['zstd', '-q', '-3', '--rm', copy], check=True)
        subprocess.run(['cp', '-a', os.path.join(source, 'uploads'), os.path.join(target, 'uploads')], check=True)
        written = [os.path.join(where, item) for where, _dirs, names in os.walk(target) for item in names]
        subprocess.run(['sync'] + written, check=True)
        total += time.monotonic() - start
    return total


def transport_baseline(fleet, host, work, tasks=10):
    """Seconds of one no-op remote task (``ansible.builtin.ping`` over SSH, forks 1): a playbook of 1 + ``tasks``
    pings against one playbook of 1 ping, on one instance of ``host``."""
    inventory = fleet.write_inventory(os.path.join(work, 'inventory-ping.json'), {'ping': (host, {})})
    seconds = []
    for count in (1, 1 + tasks):
        path = os.path.join(work, 'ping-%d.yml' % count)
        with open(path, 'w', encoding='utf-8') as handle:
            handle.write('- hosts: all\n  gather_facts: false\n  tasks:\n' + '    - ansible.builtin.ping:\n' * count)
        seconds.append(playbook(path, inventory, 1)[0])
    return (seconds[1] - seconds[0]) / tasks


def count_points(fleet, instances, repository):
    found = 0
    for name, (host, _directory) in instances.items():
        points = fleet.hosts[host].outside('%s/%s/points' % (repository, name))
        found += len(os.listdir(points)) if os.path.isdir(points) else 0
    return found


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n', 1)[0])
    parser.add_argument('--hosts', type=int, default=10)
    parser.add_argument('--per-host', type=int, default=3)
    parser.add_argument('--files', type=int, default=6, help='uploads per demo instance')
    parser.add_argument('--forks', default='1,5,10')
    parser.add_argument('--workdir', help='where the hosts and the reference copies live (default: a temp dir)')
    args = parser.parse_args()
    forks = [int(value) for value in args.forks.split(',')]
    for tool in ('sqlite3', 'zstd'):
        if not shutil.which(tool):
            raise SystemExit('%s not found (apt-get install %s)' % (tool, tool))
    if not os.path.exists(os.path.join(COLLECTIONS, 'ansible_collections', 'cairncms', 'ops')):
        raise SystemExit('run `make demo` or `make test` once first: the collection link in .build/ is missing')
    work = args.workdir or tempfile.mkdtemp(prefix='cairn-bench-fleet-')
    os.makedirs(work, exist_ok=True)
    names = ['h%02d' % number for number in range(1, args.hosts + 1)]
    print('load average at start: %.2f %.2f %.2f (2 cores shared with other work skew wall times)'
          % os.getloadavg(), flush=True)
    try:
        with _ssh.SshFleet(names, base_dir=os.path.join(work, 'fleet')) as fleet:
            instances = build(fleet, args.per_host, args.files)
            count = len(instances)
            print('%d instances on %d SSH hosts, %d uploads each' % (count, args.hosts, args.files), flush=True)
            reference(fleet, instances, os.path.join(work, 'reference'))  # warms the page cache for both sides
            data_work = reference(fleet, instances, os.path.join(work, 'reference'))
            walls, tasks = {}, None
            for value in forks:
                repository = '%s/forks-%d' % (REPOSITORY, value)
                inventory = fleet.write_inventory(
                    os.path.join(work, 'inventory-%d.json' % value),
                    {name: (host, {'cairn_env_file': directory + '/.env'})
                     for name, (host, directory) in instances.items()},
                    {'cairn_repository': {'type': 'local', 'path': repository}})
                walls[value], output = playbook(os.path.join(ROOT, 'playbooks', 'backup.yml'), inventory, value)
                stored = count_points(fleet, instances, repository)
                if stored != count:
                    raise SystemExit('forks %d: %d restore points for %d instances' % (value, stored, count))
                tasks = tasks or recap_ok(output)
                print('forks %2d: %7.2f s' % (value, walls[value]), flush=True)
            per_instance_tasks = sum(tasks.values()) / float(len(tasks))
            noop = transport_baseline(fleet, names[0], work)
    finally:
        if not args.workdir:
            shutil.rmtree(work, ignore_errors=True)

    print()
    print('%-34s %9s %9s %9s %9s %11s' % ('run', 'seconds', 's/inst', 'ratio', 'speed-up', 'efficiency'))
    print('%-34s %9.2f %9.3f %9.3f' % ('reference data work (sequential)', data_work, data_work / count, 1.0))
    for value in forks:
        speedup = walls[forks[0]] / walls[value] if forks[0] == 1 else float('nan')
        print('%-34s %9.2f %9.3f %9.3f %9.2f %11.2f' % (
            'backup.yml over SSH, forks %d' % value, walls[value], walls[value] / count, walls[value] / data_work,
            speedup, speedup / value))
    if 1 in walls:
        overhead = (walls[1] - data_work) / count
        print()
        print('overhead per instance beyond the data work at forks 1: %.2f s ((%.2f - %.2f) / %d); %.1f tasks ran '
              'per instance (set_fact and debug included)' % (overhead, walls[1], data_work, count, per_instance_tasks))
        print('one no-op remote task (ansible.builtin.ping over SSH, forks 1): %.2f s, so the overhead is %.1f '
              'no-op tasks' % (noop, overhead / noop))
    print('load average at end: %.2f %.2f %.2f' % os.getloadavg())


if __name__ == '__main__':
    main()
