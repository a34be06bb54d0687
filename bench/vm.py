"""bench/vm: a no-change re-run of configure.yml against its floor, and nginx's cost in front of Jupyter (issue 15).

    ./coursevm setup && .venv/bin/python bench/vm.py [--machines 10] [--repeat 2] [--markdown] [--keep]

Needs root and tests/machines (no cloud). One test machine (benchvm-base) is configured from scratch with
playbooks/configure.yml as deploy.yml runs it (credentials included, secrets in a temporary folder; Jupyter's
packages from the controller's wheelhouse, as inventory/local says), its services stopped, and kept as the
derived image derived-benchvm-configured. N copies (benchvm-1..N) boot from it; each gets the base's records
(credentials, database passwords) under its own name and address, the identity a copied VM has, then one
unmeasured run (its changes are reported: on a copy it should change only the controller's handout).
Measured side by side, alternating, --repeat times (medians):
  - floor: a play with become and fact gathering and no tasks, on benchvm-1 and on all N;
  - rerun: configure.yml again on benchvm-1 and on all N; its tasks, changed tasks, time per role, slowest tasks;
  - on benchvm-1, from inside the machine (one client for both paths): GET /api/status and a kernel execute
    round trip over the websocket, through nginx (:80) and straight to Jupyter (127.0.0.1:8888), interleaved.
Targets: rerun 1 <= 6x floor 1; rerun N <= 2x rerun 1; nginx p50 <= 1.15x direct. Every target and the derived
image are removed at the end (--keep leaves them running). Not part of CI; bench/README.md keeps the last table.
"""

import argparse
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

import yaml  # the venv's

ROOT = Path(__file__).resolve().parents[1]
MACHINES = ["/usr/bin/python3", str(ROOT / "tests" / "machines" / "machines.py")]
IMAGE = "derived-benchvm-configured"
BASE = "benchvm-base"
SERVICES = ["jupyter", "nbdime", "openrefine", "postgresql", "nginx"]
sys.path.insert(0, str(Path(__file__).resolve().parent))

# bench/cohort.py's env(): the controller's venv and collections.
from benchtable import print_table  # noqa: E402  # pylint: disable=wrong-import-position
from cohort import env  # noqa: E402  # pylint: disable=wrong-import-position

FLOOR = """---
- name: The floor, fact gathering and nothing else
  hosts: course_vms
  become: true
  gather_facts: true
  tasks: []
"""

# Runs on the VM with Jupyter's Python (websocket-client comes with jupyter-server); the settings and the text of
# plugins/module_utils/jupyter_probe.py (login and kernel websocket) come on stdin. Prints milliseconds per path.
CLIENT = r"""
import contextlib, http.client, json, sys, time, uuid
cfg = json.load(sys.stdin)
probe = {"__name__": "jupyter_probe"}
exec(cfg["probe"], probe)
out, opened = {}, {}
with contextlib.ExitStack() as stack:
    for name, port in cfg["paths"]:
        # Port 80 unwritten: the login cookie is named after the Host header, which must match the websocket's.
        base = "http://127.0.0.1%s/" % ("" if port == 80 else ":%d" % port)
        login = probe["login"](base, cfg["password"])
        assert login["login_ok"], (name, login)
        cookie = "; ".join("%s=%s" % (c.name, c.value) for c in login["_session"][1])
        session = uuid.uuid4().hex
        ws = stack.enter_context(probe["_opened"](base, login["_session"], "kernels",
                                                  "api/kernels/{}/channels?session_id=" + session, 60))
        opened[name] = (http.client.HTTPConnection("127.0.0.1", port, timeout=30), cookie, ws, session)
        out[name] = {"get": [], "execute": []}

    def get(name):
        conn, cookie = opened[name][:2]
        conn.request("GET", "/api/status", headers={"Cookie": cookie})
        resp = conn.getresponse()
        resp.read()
        assert resp.status == 200, (name, resp.status)

    def execute(name):
        ws, session = opened[name][2:]
        msg_id = uuid.uuid4().hex
        ws.send(json.dumps({"header": {"msg_id": msg_id, "username": "bench", "session": session,
                                       "msg_type": "execute_request", "version": "5.3", "date": ""},
                            "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
                            "content": {"code": "6*7", "silent": False, "store_history": False,
                                        "user_expressions": {}, "allow_stdin": False, "stop_on_error": True}}))
        while True:
            reply = json.loads(ws.recv())
            if reply.get("parent_header", {}).get("msg_id") == msg_id and reply["msg_type"] == "execute_reply":
                assert reply["content"]["status"] == "ok", reply["content"]
                return

    for kind, fn, count in (("get", get, cfg["gets"]), ("execute", execute, cfg["executes"])):
        for i in range(count + cfg["warmup"]):
            for name in (list(opened) if i % 2 else list(opened)[::-1]):
                start = time.perf_counter()
                fn(name)
                if i >= cfg["warmup"]:
                    out[name][kind].append((time.perf_counter() - start) * 1000)
print(json.dumps(out))
"""


def run(cmd, what, **kwargs):
    """stdout of cmd; on failure, exit naming what failed, with the end of its output."""
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, **kwargs)
    if proc.returncode != 0:
        sys.exit("%s failed (exit %d):\n%s\n%s" % (what, proc.returncode, proc.stdout[-4000:], proc.stderr[-3000:]))
    return proc.stdout


def median(values):
    """The median, for a row of times."""
    return statistics.median(values)


def percentile(values, pct):
    """The pct-th percentile (1-99) of values."""
    return statistics.quantiles(values, n=100, method="inclusive")[pct - 1]


class Bench:
    """The test machines, their inventory and records in a folder, and the playbook runs against them."""

    def __init__(self, folder):
        self.folder = folder
        self.env = dict(env(), ANSIBLE_STDOUT_CALLBACK="ansible.posix.json", ANSIBLE_CALLBACKS_ENABLED="ansible.posix.json")
        self.secrets = folder / "secrets"
        self.machines = {}
        self.started = []
        (folder / "floor.yml").write_text(FLOOR)
        inventory = folder / "inventory" / "group_vars" / "all"
        inventory.mkdir(parents=True)
        # The local inventory's group_vars: Jupyter from a wheelhouse, PostgreSQL with the local course's seed.
        for path in (ROOT / "inventory" / "local" / "group_vars" / "all").glob("*.yml"):
            (inventory / path.name).symlink_to(path)
        (inventory / "zz-bench.json").write_text(json.dumps({"credentials_secrets_dir": str(self.secrets)}))

    def start(self, name, image=None):
        """Boot a machine (from the base image or IMAGE) and wait until every unit of it has started."""
        info = json.loads(run([*MACHINES, "start", name, "--json"] + (["--image", image] if image else []),
                              "starting " + name))
        self.started.append(name)
        self.machines[name] = info
        # Every unit of the machine started (a copy boots Jupyter, OpenRefine, PostgreSQL and nginx).
        self.ssh(name, ["systemctl", "is-system-running", "--wait"], check=False)
        return info

    def ssh(self, name, argv, stdin=None, check=True):
        """Run argv on a machine as its user; its stdout."""
        info = self.machines[name]
        cmd = ["ssh", "-i", info["identity_file"], "-p", str(info["port"]), "-o", "StrictHostKeyChecking=no",
               "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", "-o", "BatchMode=yes",
               "%s@%s" % (info["user"], info["address"]), shlex.join(argv)]
        if not check:
            return subprocess.run(cmd, input=stdin, capture_output=True, text=True, check=False).stdout
        return run(cmd, "ssh %s %s" % (name, argv[0]), input=stdin)

    def write_hosts(self, names):
        """The inventory's course_vms: these machines."""
        hosts = {n: {"ansible_host": self.machines[n]["address"], "ansible_port": self.machines[n]["port"],
                     "ansible_user": self.machines[n]["user"],
                     "ansible_ssh_private_key_file": self.machines[n]["identity_file"]} for n in names}
        (self.folder / "inventory" / "hosts.json").write_text(json.dumps({"course_vms": {"hosts": hosts}}))

    def playbook(self, path, limit=None):
        """Wall time and the json callback's report of one playbook run."""
        cmd = ["ansible-playbook", "-i", str(self.folder / "inventory"), str(path)] + (["--limit", limit] if limit else [])
        start = time.monotonic()
        out = run(cmd, "%s%s" % (path.name, " on " + limit if limit else ""), env=self.env, cwd=ROOT)
        seconds = time.monotonic() - start
        return seconds, json.loads(out[out.index("{"):])

    def configure(self, limit=None):
        """playbooks/configure.yml, as playbook() runs it."""
        return self.playbook(ROOT / "playbooks" / "configure.yml", limit)

    def copy_records(self, clone):
        """The base's records (credentials, database passwords) under the copy's name and address."""
        base_address, address = self.machines[BASE]["address"], self.machines[clone]["address"]
        for path in list(self.secrets.rglob(BASE + ".yml")):
            text = path.read_text().replace(BASE, clone).replace("//%s/" % base_address, "//%s/" % address)
            target = path.with_name(clone + ".yml")
            target.write_text(text)
            target.chmod(0o600)

    def cleanup(self):
        """Stop every machine this run started and forget the derived image."""
        for name in self.started:
            subprocess.run([*MACHINES, "stop", name], capture_output=True, check=False)
        subprocess.run([*MACHINES, "forget", IMAGE], capture_output=True, check=False)


def tasks_of(report):
    """(task name, seconds, changed hosts) for every task a playbook ran, in order."""
    found = []
    for play in report["plays"]:
        for task in play["tasks"]:
            span = task["task"]["duration"]  # no end: a task no host ran (a skipped include)
            seconds = (datetime.fromisoformat(span.get("end", span["start"])) - datetime.fromisoformat(span["start"])).total_seconds()
            changed = sorted(h for h, r in task["hosts"].items() if r.get("changed"))
            found.append((task["task"]["name"], seconds, changed))
    return found


def recap(report, host):
    """Tasks ok, changed and skipped on host, from the play recap."""
    stats = report["stats"][host]
    return stats["ok"], stats["changed"], stats["skipped"]


def role_of(task_name):
    """The role a task belongs to (the last part of its FQCN), or the play's own tasks."""
    return task_name.split(" : ", 1)[0].rsplit(".", 1)[-1] if " : " in task_name else "(play: facts, checks)"


def measure_vm(bench, names, repeat):
    """floor and re-run, on the first machine and on all, alternating: median seconds, the last (seconds, report)."""
    first = names[0]
    times = {key: [] for key in ("floor1", "rerun1", "floorn", "rerunn")}
    reports = {}
    for unused in range(repeat):
        for key, path, limit in (("floor1", bench.folder / "floor.yml", first), ("rerun1", None, first),
                                 ("floorn", bench.folder / "floor.yml", None), ("rerunn", None, None)):
            seconds, report = bench.configure(limit) if path is None else bench.playbook(path, limit)
            times[key].append(seconds)
            reports[key] = (seconds, report)
            print("  %-7s %6.1f s" % (key, seconds), flush=True)
    return {key: median(values) for key, values in times.items()}, reports


def measure_proxy(bench, name, gets, executes):
    """p50 and p99 (ms) of each path and kind of request, measured from inside the machine by CLIENT."""
    password = yaml.safe_load((bench.secrets / (name + ".yml")).read_text())["jupyter_password"]
    cfg = {"probe": (ROOT / "plugins" / "module_utils" / "jupyter_probe.py").read_text(), "password": password,
           "paths": [["nginx", 80], ["direct", 8888]], "gets": gets, "executes": executes, "warmup": 10}
    out = json.loads(bench.ssh(name, ["/opt/jupyter/bin/python", "-c", CLIENT], stdin=json.dumps(cfg)))
    return {(path, kind, stat): (median(v) if stat == "p50" else percentile(v, 99))
            for path, kinds in out.items() for kind, v in kinds.items() for stat in ("p50", "p99")}


def verdict(ok):
    """The table's last column."""
    return "met" if ok else "MISSED"


def main():  # pylint: disable=too-many-locals,too-many-statements
    """Run everything, then print the tables."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", maxsplit=1)[0])
    parser.add_argument("--machines", type=int, default=10, help="copies of the configured machine (default 10)")
    parser.add_argument("--repeat", type=int, default=2, help="rounds of floor/rerun, 1 and N (default 2)")
    parser.add_argument("--gets", type=int, default=500, help="GET /api/status per path (default 500)")
    parser.add_argument("--executes", type=int, default=200, help="kernel executes per path (default 200)")
    parser.add_argument("--markdown", action="store_true", help="print the tables as Markdown (bench/README.md)")
    parser.add_argument("--keep", action="store_true", help="leave the machines and the derived image in place")
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench/vm.py needs root (tests/machines)")
    n = args.machines
    names = ["benchvm-%d" % i for i in range(1, n + 1)]
    with tempfile.TemporaryDirectory() as tmp:
        bench = Bench(Path(tmp))
        try:
            print("bench/vm: %d machines, %s, %d cores" % (n, platform.node(), os.cpu_count()), flush=True)
            run([*MACHINES, "build"], "building the test machine image")
            subprocess.run([*MACHINES, "forget", IMAGE], capture_output=True, check=False)
            bench.start(BASE)
            bench.write_hosts([BASE])
            scratch, report = bench.configure()
            print("  configure.yml from scratch on %s: %.0f s, %d tasks" % (BASE, scratch, recap(report, BASE)[0]),
                  flush=True)
            # A clean copy: the services stopped (a cloud snapshot of a running VM is only crash-consistent).
            bench.ssh(BASE, ["sudo", "systemctl", "stop", *SERVICES])
            run([*MACHINES, "snapshot", BASE, IMAGE], "snapshot of " + BASE)
            run([*MACHINES, "stop", BASE], "stopping " + BASE)
            with ThreadPoolExecutor(max_workers=3) as pool:
                list(pool.map(lambda name: bench.start(name, IMAGE), names))
            for name in names:
                bench.copy_records(name)
            bench.write_hosts(names)
            settle, report = bench.configure()
            first_changes = Counter(t for t, unused_s, changed in tasks_of(report) for unused_c in changed)
            print("  first run on the %d copies: %.0f s, changed: %s" % (n, settle, dict(first_changes) or "nothing"),
                  flush=True)
            times, reports = measure_vm(bench, names, args.repeat)
            proxy = measure_proxy(bench, names[0], args.gets, args.executes)
        finally:
            if not args.keep:
                bench.cleanup()
    ok, changed, skipped = recap(reports["rerun1"][1], names[0])
    changed_n = sum(recap(reports["rerunn"][1], name)[1] for name in names)
    tasks = tasks_of(reports["rerun1"][1])
    roles = Counter()
    for task, seconds, unused in tasks:
        roles[role_of(task)] += seconds
    r1, rn = times["rerun1"] / times["floor1"], times["rerunn"] / times["rerun1"]
    rows = [
        ("configure.yml from scratch, 1 machine", "%.0f s" % scratch, "", ""),
        ("first run on %d copies of it (records copied)" % n, "%.0f s, %d changed tasks" % (settle, sum(first_changes.values())),
         "", ""),
        ("floor (facts, no tasks), 1 / %d machines" % n, "%.1f s / %.1f s" % (times["floor1"], times["floorn"]), "", ""),
        ("no-change re-run, 1 / %d machines" % n, "%.1f s / %.1f s" % (times["rerun1"], times["rerunn"]), "", ""),
        ("re-run: tasks ok / changed / skipped (1 machine)", "%d / %d / %d" % (ok, changed, skipped), "changed 0",
         verdict(changed == 0)),
        ("re-run, %d machines: changed tasks" % n, "%d" % changed_n, "0", verdict(changed_n == 0)),
        ("re-run 1 / floor 1", "%.1fx" % r1, "<= 6x", verdict(r1 <= 6)),
        ("re-run %d / re-run 1" % n, "%.2fx" % rn, "<= 2x", verdict(rn <= 2)),
    ]
    for kind, label in (("get", "GET /api/status"), ("execute", "kernel execute (websocket)")):
        ratio = proxy[("nginx", kind, "p50")] / proxy[("direct", kind, "p50")]
        for path in ("nginx", "direct"):
            rows.append(("%s p50 / p99, %s" % (label, path),
                         "%.2f / %.2f ms" % (proxy[(path, kind, "p50")], proxy[(path, kind, "p99")]), "", ""))
        rows.append(("%s nginx / direct, p50 (p99)" % label,
                     "%.2fx (%.2fx)" % (ratio, proxy[("nginx", kind, "p99")] / proxy[("direct", kind, "p99")]),
                     "<= 1.15x", verdict(ratio <= 1.15)))
    accounted = sum(roles.values())
    roles["(between tasks: start-up, parsing, results)"] = reports["rerun1"][0] - accounted
    breakdown = [(role, "%.1f s" % seconds) for role, seconds in roles.most_common()]
    slowest = [(task, "%.1f s" % seconds) for task, seconds, unused in sorted(tasks, key=lambda t: -t[1])[:10]]
    tables = [(("measured", "value", "target", ""), rows),
              (("the last re-run of 1 machine (%.0f s), by role" % reports["rerun1"][0], "time"), breakdown),
              (("slowest tasks of that re-run", "time"), slowest)]
    for header, body in tables:
        print_table(header, body, args.markdown)


if __name__ == "__main__":
    main()
