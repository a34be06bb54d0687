#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, coursevm.openstack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r"""
module: cohort_health
short_description: Check every student's course VM as the student meets it, and report
version_added: 0.4.0
author:
  - coursevm.openstack contributors (@coursevm)
description:
  - Finds the servers of O(course) (server metadata C(coursevm_course); C(coursevm_student) names the student)
    and their floating IPs with a handful of list calls for the whole cohort, then checks each student side
    by side on a bounded thread pool.
  - "Each student is checked in steps, in this order, stopping at the first that fails (the later ones are
    reported as not run): C(server) - the server exists and is C(ACTIVE); C(floating_ip) - a floating IP is
    bound to it; C(ssh) - TCP port 22 of the floating IP answers with an C(SSH-) banner; C(web) - the Jupyter
    login page (C(<url>login)) answers HTTP 200 through nginx; C(kernel) - the student's recorded password
    logs in to Jupyter, a new kernel computes C(6*7) = C(42), and the kernel is deleted."
  - The students checked are those found in the cloud and those given in O(students). A given student with
    no server fails at step C(server).
  - Read-only on the cloud. An unhealthy student does not make the module fail; it is reported in
    RV(unhealthy) and the playbook decides (C(playbooks/health.yml) fails, naming them).
  - Optionally writes the report as JSON (O(report_json)) and CSV (O(report_csv)), mode C(0600). Neither the
    report nor the module's result ever holds a password.
extends_documentation_fragment:
  - openstack.cloud.openstack
options:
  course:
    description: The course id (1-20 characters of C(a-z), C(0-9) and C(_)) whose servers are checked.
    type: str
    required: true
  students:
    description:
      - Students to check with what was recorded for them when they were provisioned (the credentials
        role's secrets files). Students of the course found in the cloud but not listed here are checked
        too, without a password (so their C(kernel) step fails).
    type: list
    elements: dict
    default: []
    suboptions:
      id:
        description: The student id.
        type: str
        required: true
      url:
        description:
          - The Jupyter URL recorded for the student, ending with C(/) (one is added when missing), for
            example C(http://172.24.4.10/) or C(http://172.24.4.10/jupyter/).
          - Default C(http://<the server's floating IP>/).
        type: str
      password:
        description: The student's Jupyter password; without it the C(kernel) step fails.
        type: str
      password_changed_at:
        description:
          - When the student changed their Jupyter password in the browser (the record's C(student_changed_at)).
            The recorded password is then stale, so the C(kernel) step is not tried and passes, saying so.
        type: str
  concurrency:
    description: How many students are checked at once (threads in this one process), 1 to 100.
    type: int
    default: 10
  timeout:
    description:
      - Seconds each step of each student may take (an SSH banner, a page, the login and the kernel's answer).
      - The common OpenStack option of the same name, with its own default here.
    type: int
    default: 20
  report_json:
    description:
      - Write the report as JSON to this file (mode C(0600)); its folder must exist.
      - Not written in check mode.
    type: path
  report_csv:
    description:
      - Write the report as CSV to this file (mode C(0600), every field quoted, one row per student); its
        folder must exist.
      - Not written in check mode.
    type: path
attributes:
  check_mode:
    support: full
    description: The checks run as usual (they change nothing that lasts); the report files are not written.
  diff_mode:
    support: none
    description: No diff is reported.
notes:
  - C(changed) is always C(false), also when the report files are written, because they are a record of the
    check (like a log), not a change to the cohort.
  - The C(kernel) step starts a kernel on the student's Jupyter and deletes it again, as a student opening
    and closing a notebook would.
  - HTTP requests follow the controller's C(http_proxy)/C(no_proxy) environment, as a browser on the
    controller would; the C(ssh) step always connects directly.
  - O(wait) and the other common OpenStack options apply to the calls to the cloud only.
"""

EXAMPLES = r"""
- name: Check every student of the course
  coursevm.openstack.cohort_health:
    cloud: mycloud
    course: tm351
    students:
      - id: ab12
        url: http://172.24.4.10/
        password: "{{ ab12_jupyter_password }}"
    report_json: /home/me/.local/share/coursevm/secrets/tm351/health.json
    report_csv: /home/me/.local/share/coursevm/secrets/tm351/health.csv
  register: health

- name: Show the report
  ansible.builtin.debug:
    msg: "{{ health.table }}"
"""

RETURN = r"""
students:
  description: Every student checked, sorted by id.
  returned: always
  type: list
  elements: dict
  contains:
    id:
      description: The student id.
      type: str
    server:
      description: The server's name, or null when the student has no server.
      type: str
    status:
      description: The server's status (C(ACTIVE), C(SHUTOFF), ...), or null when there is no server.
      type: str
    floating_ip:
      description: The server's floating IP, or null.
      type: str
    url:
      description: The Jupyter URL checked (the recorded one, else C(http://<floating_ip>/)), or null.
      type: str
    healthy:
      description: Whether every step passed.
      type: bool
    failed_step:
      description: The first step that failed (C(server), C(floating_ip), C(ssh), C(web), C(kernel)), or null.
      type: str
    steps:
      description: The five steps in order.
      type: list
      elements: dict
      contains:
        name:
          description: The step.
          type: str
        ok:
          description: true when it passed, false when it failed, null when it was not run.
          type: bool
        detail:
          description: What was seen (a banner, an HTTP status, an error), for a person to read.
          type: str
  sample:
    - id: ab12
      server: tm351-ab12
      status: ACTIVE
      floating_ip: 172.24.4.10
      url: http://172.24.4.10/
      healthy: false
      failed_step: ssh
      steps:
        - {name: server, ok: true, detail: ACTIVE}
        - {name: floating_ip, ok: true, detail: 172.24.4.10}
        - {name: ssh, ok: false, detail: "port 22: Connection refused"}
        - {name: web, ok: null, detail: "not run: ssh failed"}
        - {name: kernel, ok: null, detail: "not run: ssh failed"}
healthy:
  description: How many students passed every step.
  returned: always
  type: int
unhealthy:
  description: The ids of the students who failed a step, sorted.
  returned: always
  type: list
  elements: str
table:
  description: The report as fixed-width text lines, a header line and then one line per student, to print.
  returned: always
  type: list
  elements: str
  sample:
    - "STUDENT  SERVER      STATUS  FLOATING IP  HEALTH     FAILED STEP  DETAIL"
    - "ab12     tm351-ab12  ACTIVE  172.24.4.10  UNHEALTHY  ssh          port 22: Connection refused"
"""

import csv
import io
import json
import os
import socket
import tempfile
import time
import urllib.error
from concurrent.futures import ThreadPoolExecutor

from ansible_collections.coursevm.openstack.plugins.module_utils.cloud import CourseVMCloudModule
from ansible_collections.coursevm.openstack.plugins.module_utils.jupyter_probe import login, page_status, run_code
from ansible_collections.coursevm.openstack.plugins.module_utils.names import cohort_problems

STEPS = ("server", "floating_ip", "ssh", "web", "kernel")
KERNEL_CODE = "6*7"
KERNEL_ANSWER = "42"
SSH_PORT = 22
DETAIL_LIMIT = 300
CSV_HEADER = ("student", "server", "status", "floating_ip", "url", "healthy", "failed_step", "detail") + tuple(
    "step_" + name for name in STEPS)


# ---- pure parts (unit-tested)

def one_line(text, limit=DETAIL_LIMIT):
    """``text`` on one line, at most ``limit`` characters."""
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit - 3] + "..."


def describe_error(exc, timeout):
    """What an exception of a step means, in one line (never a traceback)."""
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return "no answer within %s s" % timeout
    if isinstance(exc, urllib.error.HTTPError):
        return "HTTP %s %s from %s" % (exc.code, exc.reason, exc.url)
    if isinstance(exc, urllib.error.URLError):
        if isinstance(exc.reason, (socket.timeout, TimeoutError)):
            return "no answer within %s s" % timeout
        return "cannot connect: %s" % (getattr(exc.reason, "strerror", None) or exc.reason)
    # websocket-client's handshake errors carry the response's headers after " -+-+- ": not for a report.
    text = str(exc).split(" -+-+- ", maxsplit=1)[0]
    return "%s: %s" % (type(exc).__name__, text) if text else type(exc).__name__


def run_steps(checks, timeout=None):
    """Run ``checks`` ((name, check) pairs, in order; a check returns (ok, detail)) until one fails.

    Returns (steps, failed_step): every step as {name, ok, detail}, those after the failure with ok None; an
    exception in a check is a failure of that step, described in one line.
    """
    steps, failed = [], None
    for name, check in checks:
        if failed is not None:
            steps.append({"name": name, "ok": None, "detail": "not run: %s failed" % failed})
            continue
        try:
            ok, detail = check()
        except Exception as exc:  # pylint: disable=broad-except  # whatever breaks, the step failed
            ok, detail = False, describe_error(exc, timeout)
        steps.append({"name": name, "ok": bool(ok), "detail": one_line(detail)})
        if not ok:
            failed = name
    return steps, failed


def student_report(sid, server, status, floating_ip, url, steps, failed):
    return {"id": sid, "server": server, "status": status, "floating_ip": floating_ip, "url": url,
            "healthy": failed is None, "failed_step": failed, "steps": steps}


def failed_detail(student):
    """The detail of the step a student failed at ('' when healthy)."""
    return next((s["detail"] for s in student["steps"] if s["name"] == student["failed_step"]), "")


def table_lines(students):
    """A header line and one fixed-width line per student; the last column (the failure's detail) is not padded."""
    header = ("STUDENT", "SERVER", "STATUS", "FLOATING IP", "HEALTH", "FAILED STEP", "DETAIL")
    rows = [header] + [(s["id"], s["server"] or "-", s["status"] or "-", s["floating_ip"] or "-",
                        "ok" if s["healthy"] else "UNHEALTHY", s["failed_step"] or "-", failed_detail(s))
                       for s in students]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header) - 1)]
    return ["  ".join([cell.ljust(width) for cell, width in zip(row, widths)] + [row[-1]]).rstrip()
            for row in rows]


def step_word(ok):
    return "ok" if ok else ("not run" if ok is None else "failed")


def csv_rows(students):
    """The CSV report's rows, header first: one row per student, each step as ok / failed / not run."""
    rows = [list(CSV_HEADER)]
    for s in students:
        outcome = dict((step["name"], step["ok"]) for step in s["steps"])
        rows.append([s["id"], s["server"] or "", s["status"] or "", s["floating_ip"] or "", s["url"] or "",
                     "true" if s["healthy"] else "false", s["failed_step"] or "", failed_detail(s)]
                    + [step_word(outcome.get(name)) for name in STEPS])
    return rows


def csv_text(students):
    out = io.StringIO()
    csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="\n").writerows(csv_rows(students))
    return out.getvalue()


def write_private(path, text):
    """Write ``text`` to ``path`` with mode 0600, replacing the file in one step (never a half-written report,
    never a moment with wider permissions)."""
    folder = os.path.dirname(os.path.abspath(path))
    fd, temporary = tempfile.mkstemp(dir=folder, prefix="." + os.path.basename(path) + ".")  # mode 0600
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise


def base_url(url, floating_ip):
    """The recorded URL (ending with '/'), else http://<floating ip>/, else None."""
    if url:
        return url if url.endswith("/") else url + "/"
    return "http://%s/" % floating_ip if floating_ip else None


# ---- the steps that reach a VM

def ssh_banner(address, timeout, port=SSH_PORT):
    """(ok, detail): does ``address:port`` send an SSH identification line (``SSH-...``) within ``timeout``?"""
    deadline = time.monotonic() + timeout
    data = b""
    try:
        with socket.create_connection((address, port), timeout=timeout) as sock:
            # RFC 4253: the server may send other lines before its identification line.
            while len(data) < 4096:
                sock.settimeout(max(0.1, deadline - time.monotonic()))
                chunk = sock.recv(1024)
                if not chunk:
                    break
                data += chunk
                lines = data.split(b"\n")
                banner = next((line for line in lines[:-1] if line.startswith(b"SSH-")), None)
                if banner is not None:
                    return True, banner.strip().decode("ascii", "replace")
    except (socket.timeout, TimeoutError):
        return False, "no SSH banner on port %d within %s s" % (port, timeout)
    except OSError as exc:
        return False, "port %d: %s" % (port, exc.strerror or exc)
    first = data.split(b"\n")[0].strip().decode("ascii", "replace")
    return False, "port %d answered %s, not an SSH banner" % (port, repr(first[:40]) if first else "nothing")


def web_page(url, timeout):
    status = page_status(url + "login", timeout=timeout)
    return status == 200, "HTTP %s from %slogin" % (status, url)


def kernel_runs(url, password, timeout, password_changed_at=None):
    if password_changed_at:
        # The student's own password is theirs alone: what the operator can check ends at the login page.
        return True, "not tried: the student chose their own password at %s" % one_line(password_changed_at, 30)
    if not password:
        return False, "no recorded password for this student, so Jupyter's login cannot be tried"
    outcome = login(url, password, timeout=timeout)
    if not outcome["login_ok"]:
        return False, "Jupyter refused the recorded password (login HTTP %s, then API HTTP %s)" % (
            outcome["login_status"], outcome["api_status"])
    answer = run_code(url, outcome["_session"], KERNEL_CODE, timeout=timeout)
    if answer == KERNEL_ANSWER:
        return True, "a new kernel computed %s = %s" % (KERNEL_CODE, KERNEL_ANSWER)
    if answer is None:
        return False, "the kernel gave no answer to %s within %s s" % (KERNEL_CODE, timeout)
    return False, "the kernel answered %s to %s" % (one_line(answer, 40), KERNEL_CODE)


class CohortHealthModule(CourseVMCloudModule):
    argument_spec = dict(
        course=dict(type="str", required=True),
        students=dict(type="list", elements="dict", default=[], options=dict(
            id=dict(type="str", required=True),
            url=dict(type="str"),
            password=dict(type="str", no_log=True),
            # When the student chose their own password (a time, not a secret).
            password_changed_at=dict(type="str", no_log=False),
        )),
        concurrency=dict(type="int", default=10),
        timeout=dict(type="int", default=20),
        report_json=dict(type="path"),
        report_csv=dict(type="path"),
    )
    module_kwargs = dict(supports_check_mode=True)

    def run(self):
        p = self.params
        self.check_input()
        given = dict((s["id"], s) for s in p["students"])
        servers, floating_ips = self.survey()
        work = [(sid, servers.get(sid), given.get(sid, {})) for sid in sorted(set(servers) | set(given))]
        with ThreadPoolExecutor(max_workers=p["concurrency"]) as executor:
            students = list(executor.map(
                lambda w: self.check_student(w[0], w[1], floating_ips.get(w[1].id) if w[1] else None, w[2]),
                work))
        unhealthy = [s["id"] for s in students if not s["healthy"]]
        result = dict(changed=False, students=students, healthy=len(students) - len(unhealthy),
                      unhealthy=unhealthy, table=table_lines(students))
        if not self.check_mode:
            try:
                self.write_reports(students, unhealthy)
            except OSError as exc:
                self.fail_json(msg="The students were checked but the report could not be written: %s (%s)." % (
                    exc.strerror or exc, exc.filename), **result)
        return result

    def check_input(self):
        """Every problem with the options at once, before the cloud is asked anything."""
        p = self.params
        problems = cohort_problems(p["course"], p["students"], p["concurrency"])
        if p["timeout"] < 1:
            problems.append("timeout must be at least 1 (seconds per step); got %d" % p["timeout"])
        for option in ("report_json", "report_csv"):
            path = p[option]
            if path and not os.path.isdir(os.path.dirname(os.path.abspath(path))):
                problems.append("the folder of %s (%s) does not exist" % (option, path))
        if problems:
            self.fail_json(msg="Nothing was checked: %s." % "; ".join(problems), problems=problems)

    def survey(self):
        """The course's servers by student id, and the floating IP of each server by server id: one list of
        servers, one of floating IPs and one of ports for the whole cohort."""
        course = self.params["course"]
        found = {}
        for server in self.conn.compute.servers(details=True):
            metadata = server.metadata or {}
            if metadata.get("coursevm_course") != course:
                continue
            sid = metadata.get("coursevm_student") or (server.name or "")[len(course) + 1:]
            found.setdefault(sid, []).append(server)
        # A student with two servers (a crashed run's leftover): the ACTIVE one is the student's VM.
        servers = dict((sid, sorted(group, key=lambda s: (str(s.status).upper() != "ACTIVE", s.name or ""))[0])
                       for sid, group in found.items())
        server_ids = set(server.id for server in servers.values())
        addresses = dict((ip.port_id, ip.floating_ip_address) for ip in self.conn.network.ips() if ip.port_id)
        floating_ips = {}
        if addresses:
            for port in self.conn.network.ports():
                if port.device_id in server_ids and port.id in addresses:
                    floating_ips.setdefault(port.device_id, addresses[port.id])
        return servers, floating_ips

    def check_student(self, sid, server, floating_ip, given):
        timeout = self.params["timeout"]
        status = str(server.status).upper() if server is not None else None
        url = base_url(given.get("url"), floating_ip)

        def server_active():
            if server is None:
                return False, "no server of course %s for this student" % self.params["course"]
            return status == "ACTIVE", status if status == "ACTIVE" else "the server is %s, not ACTIVE" % status

        checks = [
            ("server", server_active),
            ("floating_ip", lambda: (True, floating_ip) if floating_ip else (
                False, "no floating IP is bound to the server's port")),
            ("ssh", lambda: ssh_banner(floating_ip, timeout)),
            ("web", lambda: web_page(url, timeout)),
            ("kernel", lambda: kernel_runs(url, given.get("password"), timeout, given.get("password_changed_at"))),
        ]
        steps, failed = run_steps(checks, timeout)
        return student_report(sid, server.name if server is not None else None, status, floating_ip, url,
                              steps, failed)

    def write_reports(self, students, unhealthy):
        p = self.params
        if p["report_json"]:
            report = {"course": p["course"], "checked_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                      "healthy": len(students) - len(unhealthy), "unhealthy": unhealthy, "students": students}
            write_private(p["report_json"], json.dumps(report, indent=2, sort_keys=True) + "\n")
        if p["report_csv"]:
            write_private(p["report_csv"], csv_text(students))


def main():
    module = CohortHealthModule()
    module()


if __name__ == "__main__":
    main()
