#!/usr/bin/env bash
# The whole test suite; bin/coursevm test sets up the venv and calls this.
#   tests/run.sh            lint, collection build, sanity, unit tests, every Molecule scenario
#   tests/run.sh --quick    everything but Molecule
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
OUT=$ROOT/tests/output
mkdir -p "$OUT"
quick=false; [ "${1:-}" = "--quick" ] && quick=true
step() { printf '\n\033[1m=== %s\033[0m\n' "$*"; }

step "ansible-lint (production profile)"
ansible-lint --profile production --offline -q

step "Collection build, install and docs"
rm -rf "$OUT/galaxy" && mkdir -p "$OUT/galaxy"
ansible-galaxy collection build --force --output-path "$OUT/galaxy" >/dev/null
ansible-galaxy collection install --offline --no-deps --force -p "$OUT/galaxy/installed" "$OUT"/galaxy/coursevm-openstack-*.tar.gz >/dev/null
ANSIBLE_COLLECTIONS_PATH="$OUT/galaxy/installed:$ANSIBLE_COLLECTIONS_PATH" \
  ansible-doc -t filter coursevm.openstack.jupyter_password_hash | grep -q "PasswordIdentityProvider"
echo "built, installed, ansible-doc renders the filters"

step "ansible-test sanity"
# ansible-test wants the collection at ansible_collections/<ns>/<name> as a real folder, not a symlink.
SANITY=$OUT/sanity/ansible_collections/coursevm/openstack
rm -rf "$OUT/sanity" && mkdir -p "$SANITY"
git ls-files -co --exclude-standard -z | grep -zv '^tests/output/' | xargs -0 -I{} cp --parents -P {} "$SANITY"/ 2>/dev/null || true
(cd "$SANITY" && git init -q && git add -A && ansible-test sanity --venv --python "$(python -c 'import sys; print("%d.%d" % sys.version_info[:2])')" --color no)

step "Unit tests"
python -m pytest -q tests/unit

if ! $quick; then
  step "Molecule scenarios"
  for scenario in molecule/*/molecule.yml; do
    name=$(basename "$(dirname "$scenario")")
    molecule test -s "$name"
  done
fi
