#!/usr/bin/env bash
# Check what cairncms.ops publishes, as Galaxy, AWX and a docsite would take it (`make publish`):
#   1. the guides' RST for the docsite, made from the Markdown guides (tests/publish/md2rst.py, and its tests)
#   2. the collection tarball: built, and holding what it must and nothing it must not (galaxy.yml build_ignore)
#   3. galaxy-importer accepts the tarball (tests/publish/galaxy-importer.cfg; no ansible-test container)
#   4. `ansible-builder create` makes an execution environment build context from the tarball, and the
#      context's own introspection finds requirements.txt and bindep.txt (tests/publish/ee_context.py)
#   5. `antsibull-docs lint-collection-docs --plugin-docs` of the installed tarball is clean
#   6. the docsite (modules, roles and guides) builds with Sphinx, warnings as errors
# Everything goes to .build/publish/. Any error fails the script.
#
# Usage: bash tests/publish/check.sh [VENV_BIN]   (default: .venv/bin)
set -euo pipefail
cd "$(dirname "$0")/../.."
repo=$(pwd)
bin=$(cd "${1:-.venv/bin}" && pwd)
out=$repo/.build/publish
export PATH="$bin:$PATH"
export ANSIBLE_FORCE_COLOR=0 ANSIBLE_NOCOLOR=1

started=$SECONDS
step_started=$SECONDS
step() {
  echo "publish: $1 ($((SECONDS - step_started)) s)"
  step_started=$SECONDS
}
fail() {
  echo "publish: FAILED: $*" >&2
  exit 1
}

rm -rf "$out"
mkdir -p "$out/dist" "$out/collections"

# 1. The guides' RST (git-ignored, made at build time: the Markdown is their one source), and the converter's tests.
"$bin/python" -m pytest -q -p no:cacheprovider tests/publish
"$bin/python" tests/publish/md2rst.py
step "guides converted"

# 2. The tarball and what is in it.
"$bin/ansible-galaxy" collection build --force --output-path "$out/dist" . >/dev/null
tarballs=("$out"/dist/cairncms-ops-*.tar.gz)
[[ ${#tarballs[@]} -eq 1 && -f ${tarballs[0]} ]] || fail "expected one tarball in $out/dist"
tarball=${tarballs[0]}
tar -tzf "$tarball" | sed 's#/$##' | sort >"$out/files.txt"
required=(MANIFEST.json FILES.json README.md LICENSE meta/runtime.yml meta/execution-environment.yml
  requirements.txt bindep.txt changelogs/changelog.yaml docs/docsite/extra-docs.yml docs/docsite/links.yml)
for role_dir in roles/*/; do
  required+=("${role_dir}README.md" "${role_dir}meta/argument_specs.yml")
done
for guide in docs/docsite/rst/*.rst; do
  required+=("$guide")
done
missing=()
for file in "${required[@]}"; do
  grep -qxF "$file" "$out/files.txt" || missing+=("$file")
done
[[ ${#missing[@]} -eq 0 ]] || fail "the tarball lacks: ${missing[*]}"
unwanted='(^|/)(node_modules|__pycache__|\.git|\.venv|\.build|\.demo|\.ci|\.cache|\.pytest_cache|\.ansible)(/|$)'
unwanted+='|(^|/)(package-lock\.json|npm-shrinkwrap\.json|yarn\.lock|\.ansible-lint|Makefile|test-requirements\.txt)$'
unwanted+='|^benchmarks(/|$)|^changelogs/\.plugin-cache\.yaml$|^tests/output(/|$)|\.pyc$|\.tar\.gz$'
if grep -E "$unwanted" "$out/files.txt" >"$out/unwanted.txt"; then
  fail "the tarball holds files a user does not need (add them to build_ignore in galaxy.yml):
$(head -20 "$out/unwanted.txt")"
fi
step "built $(basename "$tarball"): $(wc -l <"$out/files.txt") entries, $(du -k "$tarball" | cut -f1) KiB"

# 3. galaxy-importer, as Galaxy imports it (it writes importer_result.json to its working directory).
(
  cd "$out"
  GALAXY_IMPORTER_CONFIG=$repo/tests/publish/galaxy-importer.cfg "$bin/python" -m galaxy_importer.main "$tarball" \
    >"$out/galaxy-importer.log" 2>&1
) || fail "galaxy-importer refused the tarball:
$(grep -E 'ERROR|WARNING|Error' "$out/galaxy-importer.log" | head -20)"
if grep -E '^(ERROR|WARNING)' "$out/galaxy-importer.log" >"$out/importer-problems.txt"; then
  fail "galaxy-importer reported problems:
$(head -20 "$out/importer-problems.txt")"
fi
step "galaxy-importer accepted it"

# 4. The execution environment build context, from the built tarball.
cp "$tarball" "$out/cairncms-ops.tar.gz"
"$bin/ansible-builder" create -f tests/publish/execution-environment.yml -c "$out/ee" --output-filename Containerfile \
  >"$out/ansible-builder.log" 2>&1 || fail "ansible-builder create failed: $(tail -5 "$out/ansible-builder.log")"
ANSIBLE_COLLECTIONS_PATH=$out/collections "$bin/ansible-galaxy" collection install --offline --no-deps \
  -p "$out/collections" "$out/ee/_build/collections/cairncms-ops.tar.gz" >/dev/null
"$bin/python" "$out/ee/_build/scripts/introspect.py" introspect "$out/collections" \
  --write-pip "$out/ee-requirements.txt" --write-bindep "$out/ee-bindep.txt" >"$out/introspect.log"
"$bin/python" tests/publish/ee_context.py "$repo" "$out/ee" "$out/ee-requirements.txt" "$out/ee-bindep.txt"
rc=0
"$bin/bindep" -f "$out/ee-bindep.txt" -l newline >/dev/null || rc=$?
[[ $rc -ne 2 ]] || fail "bindep cannot parse bindep.txt"
"$bin/ansible-builder" create -f docs/awx/execution-environment.yml -c "$out/ee-awx" --output-filename Containerfile >/dev/null \
  || fail "ansible-builder create failed for docs/awx/execution-environment.yml"
step "execution environment build context created"

# 5. antsibull-docs lint of the installed tarball (module and role docs, the guides and their toctree).
export ANSIBLE_COLLECTIONS_PATH=$out/collections
"$bin/antsibull-docs" lint-collection-docs --plugin-docs --check-extra-docs-refs \
  "$out/collections/ansible_collections/cairncms/ops" >"$out/antsibull-lint.log" 2>&1 \
  || fail "antsibull-docs lint-collection-docs:
$(head -30 "$out/antsibull-lint.log")"
step "antsibull-docs lint-collection-docs clean"

# 6. The docsite: antsibull-docs' pages with the guides, built by Sphinx with warnings as errors.
mkdir -p "$out/site/rst"
chmod og-w "$out/site/rst"
"$bin/antsibull-docs" collection --use-current --squash-hierarchy --fail-on-error --dest-dir "$out/site/rst" \
  cairncms.ops >"$out/site.log" 2>&1 || fail "antsibull-docs collection: $(tail -20 "$out/site.log")"
for guide in docs/docsite/rst/*.rst; do
  [[ -f $out/site/rst/docsite/$(basename "$guide") ]] || fail "the docsite lacks the guide $(basename "$guide")"
done
"$bin/sphinx-build" -q -W --keep-going -b html -c tests/publish/docsite "$out/site/rst" "$out/site/html" \
  >>"$out/site.log" 2>&1 || fail "the docsite does not build:
$(grep -E 'WARNING|ERROR' "$out/site.log" | head -30)"
step "docsite built: $out/site/html/index.html"

echo "publish: all checks passed in $((SECONDS - started)) s"
