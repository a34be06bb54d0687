#!/usr/bin/env bash
# The whole test suite; ./coursevm test sets up the venv and calls this.
#   tests/run.sh            lint, collection build, sanity, unit tests, every Molecule scenario, then on the local
#                           OpenStack: its smoke test, the README's first command (checked in Chromium) and the
#                           integration tests
#   tests/run.sh --quick    everything but Molecule
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
OUT=$ROOT/tests/output
mkdir -p "$OUT"
quick=false; [ "${1:-}" = "--quick" ] && quick=true
step() { printf '\n\033[1m=== %s\033[0m (at %d s)\n' "$*" "$SECONDS"; }
# The machine's load through the run (where CI's time goes: tests/output/vmstat.log, one line per 15 s).
vmstat_pid=
if command -v vmstat >/dev/null; then vmstat -n -t 15 >"$OUT/vmstat.log" 2>/dev/null </dev/null & vmstat_pid=$!; fi
trap '[ -z "$vmstat_pid" ] || kill "$vmstat_pid" 2>/dev/null || true' EXIT
# A skipped test is a hole: every pytest run below (Molecule's testinfra runs too) fails on a skip that
# tests/skips-allowed.txt does not allow (tests/pytest_plugins/coursevm_skip_guard.py).
export PYTHONPATH=$ROOT/tests/pytest_plugins${PYTHONPATH:+:$PYTHONPATH}
export PYTEST_ADDOPTS="-p coursevm_skip_guard${PYTEST_ADDOPTS:+ $PYTEST_ADDOPTS}"

# The static checks (ansible-lint, the collection build and docs, ansible-test sanity) use one core most of the
# time: they run in the background beside the unit tests, their output in tests/output/static.log, shown at the end.
static_checks() {
  step "ansible-lint (production profile)"
  # Molecule installs a copy of the collection into ~/.ansible/collections, which ansible-lint searches first: a
  # copy left by an older checkout would hide roles added since ("role not found"). It is remade on demand.
  rm -rf ~/.ansible/collections/ansible_collections/coursevm/openstack
  ansible-lint --profile production --offline -q

  step "Collection build, install and docs"
  rm -rf "$OUT/galaxy" && mkdir -p "$OUT/galaxy"
  ansible-galaxy collection build --force --output-path "$OUT/galaxy" >/dev/null
  ansible-galaxy collection install --offline --no-deps --force -p "$OUT/galaxy/installed" "$OUT"/galaxy/coursevm-openstack-*.tar.gz >/dev/null
  ANSIBLE_COLLECTIONS_PATH="$OUT/galaxy/installed:$ANSIBLE_COLLECTIONS_PATH" \
    ansible-doc -t filter coursevm.openstack.jupyter_password_hash | grep -q "PasswordIdentityProvider"
  for filter in unix_password_hash:passlib roster:"student id"; do
    ANSIBLE_COLLECTIONS_PATH="$OUT/galaxy/installed:$ANSIBLE_COLLECTIONS_PATH" \
      ansible-doc -t filter "coursevm.openstack.${filter%%:*}" | grep -q "${filter#*:}" ||
      { echo "ansible-doc cannot render the filter ${filter%%:*}"; exit 1; }
  done
  # Every module's documentation renders from the installed copy (what a user of the built collection reads).
  for module in plugins/modules/*.py; do
    name=$(basename "$module" .py)
    ANSIBLE_COLLECTIONS_PATH="$OUT/galaxy/installed:$ANSIBLE_COLLECTIONS_PATH" \
      ansible-doc "coursevm.openstack.$name" | grep -q "EXAMPLES" || { echo "ansible-doc cannot render $name"; exit 1; }
  done
  # The inventory plugin and the tests too.
  for plugin in inventory:course:course_vms test:student_id:"student id" test:course_id:"course id" test:linux_name:"linux name"; do
    IFS=: read -r kind name marker <<<"$plugin"
    ANSIBLE_COLLECTIONS_PATH="$OUT/galaxy/installed:$ANSIBLE_COLLECTIONS_PATH" \
      ansible-doc -t "$kind" "coursevm.openstack.$name" | grep -qi "$marker" ||
      { echo "ansible-doc cannot render the $kind plugin $name"; exit 1; }
  done
  echo "built, installed, ansible-doc renders the filters, tests, inventory plugin and modules"

  step "ansible-test sanity"
  # ansible-test wants the collection at ansible_collections/<ns>/<name> as a real folder, not a symlink.
  SANITY=$OUT/sanity/ansible_collections/coursevm/openstack
  rm -rf "$OUT/sanity" && mkdir -p "$SANITY" "$OUT/sanity/ansible_collections/openstack"
  git ls-files -co --exclude-standard -z | grep -zv '^tests/output/' | xargs -0 -I{} cp --parents -P {} "$SANITY"/ 2>/dev/null || true
  # Our OpenStack modules build on openstack.cloud (its OpenStackModule and doc fragment): the import and
  # validate-modules tests look for it beside our collection, so a copy of the venv's goes there.
  cp -r "$(python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/ansible_collections/openstack/cloud" \
    "$OUT/sanity/ansible_collections/openstack/"
  # Its own venv: --requirements pins sanity tools that must not disturb ansible-lint's; --venv would fetch a
  # pip bootstrap script from a host outside the package registries (docs/versions.md).
  SANITY_VENV=$ROOT/.build/sanity-venv
  pyver=$(python -c 'import sys; print("%d.%d" % sys.version_info[:2])')
  core=$(python -c 'import importlib.metadata as m; print(m.version("ansible-core"))')
  if [ "$("$SANITY_VENV/bin/ansible-test" --version 2>/dev/null | awk '{print $2}')" != "$core" ]; then
    python -m venv --clear "$SANITY_VENV"
    # pip's status decides (pipefail; grep -v fails when nothing is left to print). A failed install takes the
    # venv with it, so a partial one is not taken for ready on the next run.
    "$SANITY_VENV/bin/python" -m pip install -q "ansible-core==$core" 2>&1 | { grep -v '^WARNING: Location' || true; } \
      || { rm -rf "$SANITY_VENV"; echo "installing ansible-core $core into $SANITY_VENV failed"; exit 1; }
  fi
  pipver=$("$SANITY_VENV/bin/python" -c 'import re, ansible_test._internal.python_requirements as r, inspect
print(re.search(r"pip=.([0-9.]+).", inspect.getsource(r)).group(1))')
  mkdir -p ~/.ansible/test/cache
  cp tests/support/get_pip_standin.py ~/.ansible/test/cache/get_pip_"${pipver//./_}".py
  (cd "$SANITY" && git init -q && git add -A &&
    "$SANITY_VENV/bin/ansible-test" sanity --local --requirements --python "$pyver" --color no 2>&1 |
    grep -v '^WARNING: Location')
}
# The local cloud's start (apt, its venv from PyPI, the databases' first sync) and the test machines' image
# (debootstrap) wait on the network and the disk about half of their time: started now, they finish beside the unit
# tests and Molecule instead of adding their own minutes (about three on a fresh machine) before the cloud phase.
cloud() { /usr/bin/python3 "$ROOT/tests/cloud/cloud.py" "$@"; }
cloud_pid=
if ! $quick; then
  step "In the background: the local cloud starts (log: tests/output/cloud-start.log), the machine image is built"
  trap 'cloud stop >/dev/null 2>&1 || true; [ -z "$vmstat_pid" ] || kill "$vmstat_pid" 2>/dev/null || true' EXIT
  { /usr/bin/python3 tests/machines/machines.py build && cloud start; } >"$OUT/cloud-start.out" 2>"$OUT/cloud-start.log" </dev/null &
  cloud_pid=$!
fi

step "In the background: ansible-lint, the collection build and docs, ansible-test sanity (log: tests/output/static.log)"
static_checks >"$OUT/static.log" 2>&1 </dev/null &
static_pid=$!

step "Unit tests, and integration tests that need no test machine"
# Two workers: most of this time is ansible-playbook starting, one core each.
python -m pytest -q -n 2 --dist loadfile tests/unit tests/integration
step "The static checks' output"
static_status=0; wait "$static_pid" || static_status=$?
cat "$OUT/static.log"
[ "$static_status" = 0 ] || { echo "FAILED: the static checks (above)"; exit 1; }

if ! $quick; then
  jobs=${COURSEVM_MOLECULE_JOBS:-2}
  step "Molecule scenarios, $jobs at a time (each one's log: tests/output/molecule/<scenario>.log)"
  # Much of a scenario's time is waiting (apt, Java and Jupyter starting, ssh), so two side by side finish
  # sooner than one after the other even on two cores. Longest first, so the last one is not a long one.
  rm -rf "$OUT/molecule" && mkdir -p "$OUT/molecule"
  order="nginx_proxy server_proxy credentials egress_proxy openrefine mongodb jupyter postgresql student_volume"
  scenarios=()
  for name in $order; do [ -f "molecule/$name/molecule.yml" ] && scenarios+=("$name"); done
  for scenario in molecule/*/molecule.yml; do
    name=$(basename "$(dirname "$scenario")")
    [[ " ${scenarios[*]} " == *" $name "* ]] || scenarios+=("$name")
  done
  run_scenario() {
    local started=$SECONDS
    if molecule test -s "$1" >"$2/$1.log" 2>&1; then
      echo "passed: molecule $1 ($((SECONDS - started)) s)"
    else
      echo "FAILED: molecule $1 ($((SECONDS - started)) s); its failed checks (pytest's E lines), then its end:"
      grep -E '(^|│ *)E {2,}' "$2/$1.log" | head -n 60 || true
      tail -n 120 "$2/$1.log"
      return 1
    fi
  }
  export -f run_scenario
  # shellcheck disable=SC2016  # $1 and $2 are expanded by the inner bash
  printf '%s\n' "${scenarios[@]}" | xargs -P "$jobs" -I{} bash -c 'run_scenario "$1" "$2"' _ {} "$OUT/molecule" ||
    { echo "Molecule: at least one scenario failed (above)"; exit 1; }
fi

if ! $quick; then
  step "The local OpenStack control plane (started in the background): smoke test through openstacksdk and openstack.cloud"
  wait "$cloud_pid" || { echo "FAILED: the machine image or the local cloud's start; its log:"; tail -n 80 "$OUT/cloud-start.log"; exit 1; }
  clouds=$(tail -n 1 "$OUT/cloud-start.out")
  OS_CLIENT_CONFIG_FILE=$clouds "${COURSEVM_CLOUD_HOME:-/var/lib/coursevm-cloud}/venv/bin/python" tests/cloud/smoke.py
  # The controller's openstack.cloud (from the `ansible` package) against the same cloud.
  OS_CLIENT_CONFIG_FILE=$clouds ANSIBLE_LOAD_CALLBACK_PLUGINS=1 ANSIBLE_STDOUT_CALLBACK=ansible.posix.json \
    ansible localhost -m openstack.cloud.networks_info -a cloud=coursevm-local 2>/dev/null \
    | grep -q '"name": "public"' || { echo "openstack.cloud did not see the public network"; exit 1; }
  echo "openstack.cloud sees the local cloud's public network"
  # Side by side: the README's first command for one student (course `local`) and for a cohort of three from a
  # golden image (course `cohort`), each VM a test machine, checked through nginx and in Chromium; they wait
  # mostly on the machines. The integration tests (courses t5a, t5b, ...) wait on the cloud's API. None touches
  # another's names.
  step "On the local cloud, side by side: the README's commands for one student and a cohort, checked as a user \
(tests/e2e, logs tests/output/e2e-*.log), and our modules, roles and playbooks (tests/cloud_integration)"
  # The one-student job (Jupyter at a sub-path) once, for its own checks, the web checks through nginx and the
  # student's password page and deploy.yml through ansible-runner as AWX runs it (tests/e2e/conftest.py's
  # local_job); the test that stops it runs last.
  python -m pytest -q --durations=10 tests/e2e/test_local_job.py tests/e2e/test_local_job_runner.py \
    tests/e2e/test_local_job_web.py tests/e2e/test_local_job_password.py >"$OUT/e2e-job.log" 2>&1 &
  e2e_job=$!
  python -m pytest -q --durations=10 tests/e2e/test_local_cohort.py >"$OUT/e2e-cohort.log" 2>&1 &
  e2e_cohort=$!
  integration=0
  # --durations: the slowest tests and fixtures in the log, to see where the cloud phase's time goes.
  OS_CLIENT_CONFIG_FILE=$clouds python -m pytest -q --durations=15 -m "not disruptive" tests/cloud_integration || integration=$?
  for e2e in job:$e2e_job cohort:$e2e_cohort; do
    if wait "${e2e#*:}"; then
      echo "passed: tests/e2e, ${e2e%%:*} ($(tail -n 1 "$OUT/e2e-${e2e%%:*}.log"))"
      sed -n '/slowest .* durations/,/^$/p' "$OUT/e2e-${e2e%%:*}.log" | head -n 12
    else
      echo "FAILED: tests/e2e, ${e2e%%:*}; the end of its log:"; tail -n 150 "$OUT/e2e-${e2e%%:*}.log"; exit 1
    fi
  done
  [ "$integration" = 0 ] || { echo "tests/cloud_integration failed (above)"; exit 1; }
  # Alone, once nothing else uses the cloud: tests that kill one of its services in the middle of a run.
  step "On the local cloud, alone: a service killed in the middle of a cohort run (tests marked disruptive)"
  OS_CLIENT_CONFIG_FILE=$clouds python -m pytest -q -m disruptive tests/cloud_integration
  cloud stop
fi
