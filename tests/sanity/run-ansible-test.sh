#!/usr/bin/env bash
# Run `ansible-test sanity` for the cairncms.ops collection, non-interactively,
# without downloading anything except packages from the configured pip indexes.
#
# Usage (from anywhere, typically the repo root):
#   tests/sanity/run-ansible-test.sh /path/to/venv/bin/python [extra ansible-test sanity args...]
#
#   The python must be a Python 3.11+ interpreter that has ansible-core installed.
#   Extra arguments are passed to `ansible-test sanity`, e.g. `--test pylint`,
#   `--skip-test shellcheck`, `--junit`, `-v`.
#
# What it does:
#   1. Copies the repo's git-tracked + untracked-not-ignored files into
#      <repo>/.build/sanity/ansible_collections/cairncms/ops (ansible-test needs
#      that path layout) and makes that copy its own git repo (ansible-test
#      lists content with `git ls-files`; without a .git of its own it would
#      find the outer repo, where .build/ is ignored, and see no files).
#   2. Pre-seeds ansible-test's pip bootstrap cache
#      (~/.ansible/test/cache/get_pip_<pip version>.py). ansible-test normally
#      downloads get-pip.py from a hard-coded URL (no env var/option to change
#      it) the first time it bootstraps pip into one of its venvs, but it uses
#      the cached file when it exists. The stand-in written there bootstraps
#      pip with `ensurepip` (offline) and then runs `pip install pip==<pinned>`
#      through the normal pip configuration. Because ansible-test strips almost
#      all environment variables (PIP_*, proxies, ...) from the processes it
#      starts, the stand-in also writes the caller's PIP_* / PIP_CONFIG_FILE /
#      https_proxy settings into a site pip.conf inside each venv it bootstraps.
#   3. Runs `ansible-test sanity --venv --python X.Y` from the copy.
#
# Requirements: bash, git, tar, a Python 3.11+ with ansible-core (+ its venv module).
# Optional: `shellcheck` on PATH (Debian package "shellcheck"); without it
# ansible-test skips the shellcheck sanity test with a warning.
#
# Optional environment:
#   SANITY_BUILD_ROOT   build root (default: <repo>/.build/sanity)
set -euo pipefail

readonly COLLECTION_NAMESPACE=cairncms
readonly COLLECTION_NAME=ops

if [[ $# -lt 1 ]]; then
    echo "usage: $0 /path/to/venv/bin/python [ansible-test sanity args...]" >&2
    exit 2
fi

python_bin=$1
shift

if [[ ${python_bin} != */* ]]; then
    python_bin=$(command -v -- "${python_bin}" || true)
fi
if [[ -z ${python_bin} || ! -x ${python_bin} ]]; then
    echo "error: python interpreter not found or not executable: $1" >&2
    exit 2
fi
# Make the path absolute without resolving symlinks (a venv's bin/python is a symlink).
python_bin=$(cd -- "$(dirname -- "${python_bin}")" && pwd)/$(basename -- "${python_bin}")

# This script lives in <repo>/tests/sanity/.
script_dir=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
repo_root=$(cd -- "${script_dir}/../.." && pwd)

# safe.directory: CI checkouts are often owned by another uid than the one running the job.
repo_git() {
    git -c safe.directory="${repo_root}" -C "${repo_root}" "$@"
}

if [[ $(repo_git rev-parse --is-inside-work-tree 2>/dev/null) != true ]]; then
    echo "error: ${repo_root} is not a git work tree" >&2
    exit 2
fi
build_root=${SANITY_BUILD_ROOT:-${repo_root}/.build/sanity}
mkdir -p -- "${build_root}"
build_root=$(cd -- "${build_root}" && pwd)
collection_dir=${build_root}/ansible_collections/${COLLECTION_NAMESPACE}/${COLLECTION_NAME}

if [[ -z ${HOME:-} ]]; then
    echo "error: HOME must be set (ansible-test requires it)" >&2
    exit 2
fi

# --- 1. interpreter facts -------------------------------------------------------
# Prints: python X.Y, pip version ansible-test pins in its venvs, path of the ansible-test entry point.
py_info=$("${python_bin}" - <<'EOF'
import os
import re
import sys

import ansible_test

version = '%d.%d' % sys.version_info[:2]
try:
    from ansible_test._internal.host_configs import NativePythonConfig
    from ansible_test._internal.python_requirements import get_venv_packages
    pip_version = get_venv_packages(NativePythonConfig(version=version, path=sys.executable))['pip']
except Exception:  # private API changed; fall back to reading the pin from the source
    src = os.path.join(os.path.dirname(ansible_test.__file__), '_internal', 'python_requirements.py')
    with open(src, encoding='utf-8') as f:
        pip_version = re.search(r"pip='([0-9.]+)'", f.read()).group(1)
stub = os.path.join(os.path.dirname(ansible_test.__file__), '_util', 'target', 'cli', 'ansible_test_cli_stub.py')
print(version)
print(pip_version)
print(stub)
EOF
) || {
    echo "error: ${python_bin} cannot import ansible_test (is ansible-core installed in that environment?)" >&2
    exit 2
}
{
    read -r py_version
    read -r pip_version
    read -r ansible_test_stub
} <<<"${py_info}"

# --- 2. pip bootstrap stand-in --------------------------------------------------
# ansible-test (ansible_test/_util/target/setup/requirements.py, bootstrap()) looks for
# ~/.ansible/test/cache/get_pip_<version with dots as underscores>.py and only downloads
# https://ci-files.testing.ansible.com/ansible-test/get-pip-<version>.py when it is missing.
# It runs the file as `python <file> --disable-pip-version-check pip==<version> --no-setuptools --no-wheel`
# with the (empty, --without-pip) venv's python.
cache_dir=${HOME}/.ansible/test/cache
bootstrap_script=${cache_dir}/get_pip_${pip_version//./_}.py
mkdir -p -- "${cache_dir}"
"${python_bin}" - "${bootstrap_script}" "${python_bin}" <<'EOF'
import configparser
import io
import os
import sys

target, caller_python = sys.argv[1], sys.argv[2]

# Snapshot the caller's pip configuration that lives in the environment, because
# ansible-test does not pass PIP_* or proxy variables to the processes it starts.
conf = configparser.RawConfigParser()
conf_file = os.environ.get('PIP_CONFIG_FILE')
if conf_file and conf_file != os.devnull and os.path.isfile(conf_file):
    conf.read(conf_file)
if not conf.has_section('global'):
    conf.add_section('global')
for key, value in sorted(os.environ.items()):
    if key.startswith('PIP_') and key != 'PIP_CONFIG_FILE' and value:
        conf.set('global', key[4:].lower().replace('_', '-'), value)
proxy = os.environ.get('https_proxy') or os.environ.get('HTTPS_PROXY')
if proxy and not conf.has_option('global', 'proxy'):
    conf.set('global', 'proxy', proxy)
if conf.sections() == ['global'] and not conf.options('global'):
    pip_conf = ''
else:
    buf = io.StringIO()
    conf.write(buf)
    pip_conf = buf.getvalue()

script = '''\
"""Local stand-in for get-pip.py, written by cairncms.ops tests/sanity/run-ansible-test.sh.

Bootstraps pip with ensurepip (no download), then installs the requested
packages through the normal pip configuration. Safe to delete: it is
regenerated on every run of run-ansible-test.sh.
"""
import os
import subprocess
import sys

PIP_CONF = %(pip_conf)r
CALLER_PYTHON = %(caller_python)r


def main():
    args = sys.argv[1:]
    no_setuptools = '--no-setuptools' in args
    no_wheel = '--no-wheel' in args
    args = [arg for arg in args if arg not in ('--no-setuptools', '--no-wheel')]
    env = dict(os.environ)
    env.pop('GET_PIP', None)

    if PIP_CONF and sys.prefix != sys.base_prefix:
        # site-level pip config of this venv, used by every later pip call ansible-test makes in it
        with open(os.path.join(sys.prefix, 'pip.conf'), 'w') as conf:
            conf.write(PIP_CONF)

    try:
        import ensurepip  # noqa: F401  pylint: disable=unused-import
        have_ensurepip = True
    except ImportError:
        have_ensurepip = False

    if have_ensurepip:
        subprocess.check_call([sys.executable, '-m', 'ensurepip', '--default-pip'], env=env, stdout=subprocess.DEVNULL)
        pip = [sys.executable, '-m', 'pip']
    else:
        # e.g. Debian python3.X without python3.X-venv: drive the caller's pip against this interpreter
        pip = [CALLER_PYTHON, '-m', 'pip', '--python', sys.executable]

    subprocess.check_call(pip + ['install', '--quiet'] + args, env=env)

    installed = subprocess.check_output([sys.executable, '-m', 'pip', 'list', '--format=freeze'], env=env, text=True)
    names = {line.split('==')[0].lower() for line in installed.splitlines()}
    unwanted = [name for name, flag in (('setuptools', no_setuptools), ('wheel', no_wheel)) if flag and name in names]
    if unwanted:
        subprocess.check_call([sys.executable, '-m', 'pip', 'uninstall', '--yes', '--quiet'] + unwanted, env=env)


if __name__ == '__main__':
    main()
''' % dict(pip_conf=pip_conf, caller_python=caller_python)

tmp = '%s.%d.tmp' % (target, os.getpid())
with open(tmp, 'w', encoding='utf-8') as f:
    f.write(script)
os.replace(tmp, target)
EOF

# --- 3. stage the collection under .../ansible_collections/<ns>/<name> ------------
if [[ ${build_root} == "${repo_root}"/* ]] && ! repo_git check-ignore -q -- "${build_root#"${repo_root}"/}/"; then
    echo "warning: ${build_root} is not git-ignored; add '/.build/' to .gitignore (and '.build' to build_ignore in galaxy.yml)" >&2
fi
rm -rf -- "${collection_dir}"
mkdir -p -- "${collection_dir}"

build_rel=${build_root#"${repo_root}"/}
(
    cd -- "${repo_root}"
    repo_git ls-files -z --cached --others --exclude-standard |
        while IFS= read -r -d '' path; do
            # never copy the build area into itself (even if it is not git-ignored), nor old ansible-test output
            if [[ ${build_rel} != /* && ( ${path} == "${build_rel}" || ${path} == "${build_rel}"/* ) ]]; then
                continue
            fi
            if [[ ${path} == tests/output/* ]]; then
                continue
            fi
            # skip deleted-but-tracked files and submodule directories
            if [[ -L ${path} || -f ${path} ]]; then
                printf '%s\0' "${path}"
            fi
        done |
        tar --null --no-recursion -T - -cf -
) | tar -C "${collection_dir}" -xf -

(
    cd -- "${collection_dir}"
    git init --quiet .
    printf '/tests/output/\n' >>.git/info/exclude
    # -f: stage exactly the copied file set, even files the repo's .gitignore would match
    git add --all --force .
)

# --- 4. run ansible-test --------------------------------------------------------
cd -- "${collection_dir}"
echo "Running ansible-test sanity (python ${py_version}, pip bootstrap ${pip_version} via ${bootstrap_script}) in ${collection_dir}" >&2
set -x
"${python_bin}" "${ansible_test_stub}" sanity --venv --python "${py_version}" "$@"
