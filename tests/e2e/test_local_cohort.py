"""The README's cohort command, as a person runs it: `./coursevm local --students 3` (here for course `cohort`,
COURSEVM_LOCAL_COURSE, so it runs beside test_local_job.py) builds the course's golden image
on the local OpenStack (one builder VM configured, sealed, snapshotted, removed) and deploys three students from it;
each server runs on a machine of its own, reached through its own floating IP. Three URLs, three passwords: each
password opens its own VM only, a kernel runs code on each through nginx, OpenRefine and nbdime answer behind each
login, no two VMs share a secret, the VMs were personalised without installing anything, a re-run changes nothing
and keeps the passwords, each student's work is on a data volume of their own (-e cohort_student_volume_size=1) that
outlives a rebuild of their VM from a new image, and `./coursevm local-stop` leaves the cloud empty (golden image and
data volumes included).
Needs root (test machines and the local cloud). The tests run in file order: the last one stops."""

import json
import os
import re
import subprocess
from pathlib import Path
from urllib.parse import urlparse

import pytest

from conftest import MACHINES, ROOT, STOPPED, machines_key, ssh_vm
STUDENTS = ["student1", "student2", "student3"]
# Its own course, so that tests/run.sh runs it beside test_local_job.py (course `local`) on the same cloud.
COURSE = "cohort"
# Per-VM secrets (what vm_identity checks), read on each VM as root: two VMs of one image must never share one.
SECRETS = {
    "machine_id": "/etc/machine-id",
    "ssh_ed25519": "/etc/ssh/ssh_host_ed25519_key",
    "ssh_rsa": "/etc/ssh/ssh_host_rsa_key",
    "jupyter_cookie": "/run/jupyter/jupyter_cookie_secret",
    # Debian's self-signed TLS key: PostgreSQL (in the golden image) pulls in ssl-cert, which makes it at install.
    "ssl_snakeoil": "/etc/ssl/private/ssl-cert-snakeoil.key",
}

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="test machines need root")


# Every playbook run of this file runs at -vvv, as a CI log keeps it (issue 14): what each printed is kept here
# and swept for the course's secrets before the course is stopped.
OUTPUTS = []


def run_job(*args, timeout=3000):
    run = subprocess.run([str(ROOT / "coursevm"), *args], capture_output=True, text=True, timeout=timeout,
                         check=False, env=dict(os.environ, COURSEVM_LOCAL_COURSE=COURSE, ANSIBLE_VERBOSITY="3"))
    OUTPUTS.append((" ".join(args), run.stdout + run.stderr))
    return run


def printed(job):
    """{student: (url, password)} from the command's output."""
    found = dict((m.group(1), (m.group(2), m.group(3))) for m in
                 re.finditer(r"^\s+(student\d+)\s+URL:\s+(\S+)\s+Password:\s+(\S+)$", job.stdout, re.M))
    assert sorted(found) == STUDENTS, job.stdout[-3000:] + job.stderr[-3000:]
    return found


@pytest.fixture(scope="module")
def cohort_job():
    run = run_job("local", "--students", "3", "-e", "cohort_student_volume_size=1")
    try:
        yield run
    finally:
        if COURSE not in STOPPED:  # unless the last test stopped it
            run_job("local-stop", timeout=900)


@pytest.fixture(scope="module")
def conn(cohort_job, local_cloud):  # after the job, which starts the cloud
    return local_cloud()


@pytest.fixture(scope="module")
def vms(cohort_job):
    """{student: {secret: sha256}} read over ssh through each floating IP, as the course team's account."""
    found = {}
    for student, (url, unused) in printed(cohort_job).items():
        script = "; ".join("sudo sha256sum %s 2>/dev/null || echo missing %s" % (p, p) for p in SECRETS.values())
        out = ssh_vm(urlparse(url).hostname, script + "; stat -c %Y /var/log/dpkg.log; hostname").stdout.split("\n")
        sums = dict((line.split()[1], line.split()[0]) for line in out if re.match(r"^[0-9a-f]{64}\s", line))
        found[student] = {"secrets": dict((name, sums.get(path)) for name, path in SECRETS.items()),
                          "dpkg_log_mtime": int(out[-3]), "hostname": out[-2]}
    return found


def test_three_urls_on_three_floating_ips_with_three_passwords(cohort_job):
    assert cohort_job.returncode == 0, cohort_job.stdout[-4000:] + cohort_job.stderr[-3000:]
    vms = printed(cohort_job)
    hosts = [urlparse(pair[0]).hostname for pair in vms.values()]
    assert len(set(hosts)) == 3 and all(re.fullmatch(r"\d+\.\d+\.\d+\.\d+", h) for h in hosts)
    passwords = [pair[1] for pair in vms.values()]
    assert len(set(passwords)) == 3 and min(map(len, passwords)) >= 12


def test_each_password_opens_its_own_vm_only_and_runs_code(cohort_job):
    from jupyter_login import login, run_code  # tests/support

    vms = printed(cohort_job)
    for student, (url, password) in vms.items():
        for other, other_pair in vms.items():
            other_password = other_pair[1]
            outcome = login(url, other_password)
            assert outcome["login_ok"] is (other == student), (student, other, outcome["login_status"])
        session = login(url, password)["_session"]
        assert run_code(url, session, "6*7") == "42", student


def test_openrefine_and_nbdime_answer_behind_each_login(cohort_job):
    from jupyter_login import login

    for student, (url, password) in printed(cohort_job).items():
        browser = login(url, password)["_session"][0]
        for path, marker in (("proxy/3334/", b"OpenRefine"), ("proxy/8899/", b"<title>nbdime")):
            with browser.open(url + path, timeout=60) as resp:
                assert resp.status == 200 and marker in resp.read(), (student, path)


def test_the_vms_come_from_the_golden_image(cohort_job, conn):
    images = set()
    for student in STUDENTS:
        server = conn.compute.find_server(COURSE + "-" + student, ignore_missing=False)
        assert server.status == "ACTIVE"
        images.add(server.image.id)
    assert len(images) == 1
    image = conn.image.get_image(images.pop())
    props = image.properties
    assert props["coursevm_golden_image"] == "true"
    assert props["coursevm_course"] == COURSE and props["coursevm_snapshot_series"] == COURSE + "-golden"
    assert props["coursevm_source_image"] == "course-vm"
    assert re.fullmatch(r"\d+\.\d+\.\d+", props["coursevm_collection_version"])
    for label in ("coursevm_deb_nginx", "coursevm_deb_openrefine", "coursevm_pip_jupyter_server",
                  "coursevm_pip_jupyter_server_proxy", "coursevm_pip_nbdime"):
        assert re.match(r"\d", props[label]), label
    for name in ("ssh_ed25519", "machine_id"):
        assert re.fullmatch(r"[0-9a-f]{64}", props["coursevm_builder_" + name]), name
    # The builder is gone: nothing of it is left in the cloud.
    assert conn.compute.find_server(COURSE + "-golden-builder") is None
    assert [p for p in conn.network.ports() if (p.name or "").startswith(COURSE + "-golden-builder")] == []


def test_no_two_vms_share_a_secret_nor_one_with_the_builder(vms, conn):
    server = conn.compute.find_server(COURSE + "-student1", ignore_missing=False)
    props = conn.image.get_image(server.image.id).properties
    for name in SECRETS:
        values = [vm["secrets"][name] for vm in vms.values()]
        assert None not in values, (name, values)
        assert len(set(values)) == 3, name
        builder = props.get("coursevm_builder_" + name)
        assert builder and builder not in values, name
    # Three machines, each with the server's own host name.
    assert sorted(vm["hostname"] for vm in vms.values()) == [COURSE + "-" + s for s in STUDENTS]


def test_each_vm_reads_the_seeded_course_database_with_passwords_of_its_own(cohort_job):
    """The golden image carries PostgreSQL, the course database and its seed, and the builder's passwords:
    personalise.yml gave each VM's password roles passwords of its own, recorded on the controller (0600), and each
    VM's notebook still reads the seeded table with the password its ~/.pgpass holds."""
    import yaml

    from jupyter_login import login, run_code  # tests/support

    folder = INVENTORY.parent / "secrets" / "postgresql"
    records = dict((p.stem, p) for p in folder.glob("*.yml"))
    assert sorted(records) == sorted(STUDENTS + ["golden-builder"])
    passwords = {}
    for name, path in records.items():
        assert path.stat().st_mode & 0o777 == 0o600, name
        passwords[name] = yaml.safe_load(path.read_text())["passwords"]
    for role in ("course", "admin"):
        assert len(set(p[role] for p in passwords.values())) == 4, role
    cell = ("import psycopg\n"
            "with psycopg.connect('host=127.0.0.1 user=course') as c:\n"
            "    n = c.execute('SELECT count(*) FROM planets').fetchone()[0]\n"
            "n")
    for student, (url, password) in printed(cohort_job).items():
        assert run_code(url, login(url, password)["_session"], cell, timeout=120) == "4", student


def test_personalising_installed_nothing(cohort_job, vms, conn):
    """dpkg's log was last written by the builder, before any student's server existed."""
    for student, vm in vms.items():
        server = conn.compute.find_server(COURSE + "-" + student, ignore_missing=False)
        created = subprocess.run(["date", "-d", server.created_at, "+%s"], capture_output=True, text=True,
                                 check=True).stdout.strip()
        assert vm["dpkg_log_mtime"] < int(created), student


NOTEBOOK = "kept-by-the-volume.ipynb"


def contents(url, session, method="GET", body=None):
    """(status, JSON) of Jupyter's contents API for NOTEBOOK through nginx, with the student's login."""
    import urllib.error
    import urllib.request

    browser, unused, xsrf = session
    request = urllib.request.Request(url.rstrip("/") + "/api/contents/" + NOTEBOOK, method=method,
                                     data=json.dumps(body).encode() if body is not None else None,
                                     headers={"X-XSRFToken": xsrf, "Content-Type": "application/json"})
    try:
        with browser.open(request, timeout=60) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as err:
        return err.code, None


def a_new_golden_image(conn, image_id):
    """A new golden image of the course (another Glance image with the same disk and labels): what a roll onto the
    next golden build looks like to the playbooks, without a second golden build's minutes in CI."""
    import io

    golden = conn.image.get_image(image_id)
    properties = dict((k, str(v)) for k, v in (golden.properties or {}).items() if k.startswith("coursevm_"))
    data = conn.image.download_image(golden).content
    return conn.image.create_image(name=golden.name + "-next", data=io.BytesIO(data), disk_format=golden.disk_format,
                                   container_format=golden.container_format, meta=properties, allow_duplicates=True,
                                   wait=True)


def test_each_students_work_lives_on_a_data_volume_of_their_own(cohort_job, conn):
    for student in STUDENTS:
        volume = conn.block_storage.find_volume("%s-%s-data" % (COURSE, student), ignore_missing=False)
        server = conn.compute.find_server("%s-%s" % (COURSE, student), ignore_missing=False)
        assert volume.status == "in-use" and [a["server_id"] for a in volume.attachments] == [server.id]
    url = printed(cohort_job)["student1"][0]
    mounts = ssh_vm(urlparse(url).hostname, "findmnt -n -o TARGET,FSTYPE -l; stat -c %U /home/oustudent/notebooks")
    lines = mounts.stdout.split()
    for target in ("/home/oustudent/notebooks", "/var/lib/openrefine"):
        assert target in lines, mounts.stdout
    assert lines[-1] == "oustudent"
    # student3 saves a notebook through nginx; test_rebuild_... looks for it on the VM that replaces this one.
    from jupyter_login import login  # tests/support

    url, password = printed(cohort_job)["student3"]
    saved = contents(url, login(url, password)["_session"], "PUT", {
        "type": "notebook", "format": "json",
        "content": {"cells": [], "metadata": {"saved_by": "student3"}, "nbformat": 4, "nbformat_minor": 5}})
    assert saved[0] == 201, saved


def test_running_it_again_changes_nothing_and_keeps_the_passwords(cohort_job):
    again = run_job("local", "--students", "3", "-e", "cohort_student_volume_size=1")
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert printed(again) == printed(cohort_job)
    for student in STUDENTS:
        recap = re.search(r"^%s-%s\s+: ok=\d+\s+changed=(\d+)" % (COURSE, student), again.stdout, re.M)
        assert recap and recap.group(1) == "0", again.stdout[-3000:]
    assert re.search(r"^localhost\s+: ok=\d+\s+changed=0\s", again.stdout, re.M), again.stdout[-3000:]


# Day two (docs/day-two.md): every later job reaches the deployed cohort through the course inventory plugin,
# with the inventory `./coursevm local` wrote; no host list is written by hand.
INVENTORY = ROOT / ".build" / ("local-" + COURSE) / "inventory"


def day_two(playbook, *args, timeout=1200, env=None):
    from day_two import run  # tests/support

    # Not ansible-inventory (playbook None): its -vvv lines would go to the JSON on stdout.
    env = dict({"ANSIBLE_VERBOSITY": "3"} if playbook else {}, **(env or {}))
    result = run(INVENTORY, playbook, *args, timeout=timeout, env=env)
    OUTPUTS.append((str(playbook), result.stdout + result.stderr))
    return result


def course_secrets():
    """{place: secret}: every password the course recorded and the course team's private key."""
    import secret_sweep  # tests/support

    found = secret_sweep.recorded(INVENTORY.parent / "secrets")
    assert sum("jupyter_password" in place for place in found) >= len(STUDENTS), sorted(found)
    found.update(secret_sweep.private_key(machines_key()))
    return found


def health():
    """(return code, {student: report entry}) of health.yml, from the health.json it wrote."""
    run = day_two("health.yml", "-e", "health_report_dir=%s" % (INVENTORY.parent / "health"))
    report = INVENTORY.parent / "health" / "health.json"
    assert report.exists(), run.stdout[-3000:] + run.stderr[-2000:]
    assert report.stat().st_mode & 0o777 == 0o600
    entries = json.loads(report.read_text())["students"]
    return run, dict((e["id"], e) for e in entries)


def recorded(student):
    import yaml

    return yaml.safe_load((INVENTORY.parent / "secrets" / (student + ".yml")).read_text())


def test_the_course_inventory_lists_each_student_at_its_printed_address(cohort_job):
    from ansible_json import inventory_json  # tests/support

    listing = day_two(None, "--list")
    assert listing.returncode == 0, listing.stderr[-3000:]
    inventory = inventory_json(listing.stdout)
    hosts = dict((COURSE + "-" + s, urlparse(url).hostname) for s, (url, unused) in printed(cohort_job).items())
    assert sorted(inventory["course_vms"]["hosts"]) == sorted(hosts)
    for host, address in hosts.items():
        assert inventory["_meta"]["hostvars"][host]["ansible_host"] == address
        assert inventory["_meta"]["hostvars"][host]["credentials_student"] == host[len(COURSE) + 1:]
    assert not inventory.get("coursevm_not_ready", {}).get("hosts")


def test_the_health_report_says_every_student_is_healthy(cohort_job):
    run, report = health()
    assert run.returncode == 0, run.stdout[-3000:]
    assert sorted(report) == STUDENTS
    assert all(e["healthy"] and e["failed_step"] is None for e in report.values()), report
    # Never a password in the report nor in the run's output.
    passwords = [pair[1] for pair in printed(cohort_job).values()]
    text = (INVENTORY.parent / "health" / "health.json").read_text() + \
        (INVENTORY.parent / "health" / "health.csv").read_text() + run.stdout + run.stderr
    assert not [p for p in passwords if p in text]


def test_reset_password_through_the_inventory(cohort_job):
    from jupyter_login import login  # tests/support

    url, old = printed(cohort_job)["student2"]
    run = day_two("reset_password.yml", "-e", "student=student2")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    new = recorded("student2")["jupyter_password"]
    assert new != old and len(new) >= 12
    assert login(url, new)["login_ok"] is True
    assert login(url, old)["login_ok"] is False
    # The other students keep theirs.
    for student in ("student1", "student3"):
        assert recorded(student)["jupyter_password"] == printed(cohort_job)[student][1]


KNOWN_HOSTS = INVENTORY.parent / "secrets" / "known_hosts"


def known_key(address):
    """The host key the course's known_hosts holds for address (ssh-keygen -F reads hashed entries too)."""
    found = subprocess.run(["ssh-keygen", "-F", address, "-f", str(KNOWN_HOSTS)], capture_output=True, text=True,
                           check=False)
    keys = [line.split()[-1] for line in found.stdout.splitlines() if line and not line.startswith("#")]
    return keys[0] if keys else None


def test_each_vms_host_key_was_recorded_and_a_changed_one_is_refused(cohort_job, tmp_path):
    addresses = dict((s, urlparse(url).hostname) for s, (url, unused) in printed(cohort_job).items())
    assert all(known_key(a) for a in addresses.values()), KNOWN_HOSTS.read_text()
    saved = KNOWN_HOSTS.read_bytes()
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "forged")], check=True)
    forged = (tmp_path / "forged.pub").read_text().split()[:2]
    try:
        subprocess.run(["ssh-keygen", "-R", addresses["student1"], "-f", str(KNOWN_HOSTS)], capture_output=True,
                       check=True)
        with KNOWN_HOSTS.open("a") as known:
            known.write("%s %s %s\n" % (addresses["student1"], forged[0], forged[1]))
        before = recorded("student1")["jupyter_password"]
        # A fresh ControlPath directory: the earlier tests' ssh masters (ControlPersist=60s) were authenticated
        # against the real key and would carry this run past the check without a new key exchange.
        run = day_two("reset_password.yml", "-e", "student=student1",
                      env={"ANSIBLE_SSH_CONTROL_PATH_DIR": str(tmp_path / "cp")})
        assert run.returncode != 0
        assert re.search(r"^%s-student1\s+: .*unreachable=1" % COURSE, run.stdout, re.M), run.stdout[-3000:]
        assert recorded("student1")["jupyter_password"] == before
    finally:
        KNOWN_HOSTS.write_bytes(saved)


def test_the_health_report_names_the_failing_step_of_a_broken_vm(cohort_job):
    url = printed(cohort_job)["student3"][0]
    ssh_vm(urlparse(url).hostname, "sudo systemctl stop jupyter")
    run, report = health()
    assert run.returncode != 0
    assert report["student3"]["healthy"] is False and report["student3"]["failed_step"] == "web", report["student3"]
    assert report["student1"]["healthy"] and report["student2"]["healthy"]
    assert "student3" in run.stdout + run.stderr


def test_rebuild_brings_the_student_back_on_the_same_floating_ip(cohort_job, conn):
    """From a new golden image: the VM is new, the notebook student3 saved on the old one (before it was broken,
    test_each_students_work_lives_on_a_data_volume_of_their_own) is still there."""
    from jupyter_login import login, run_code  # tests/support

    url, password = printed(cohort_job)["student3"]
    before = conn.compute.find_server(COURSE + "-student3", ignore_missing=False)
    old_key = known_key(urlparse(url).hostname)
    new_image = a_new_golden_image(conn, before.image.id)
    run = day_two("rebuild.yml", "-e", "rebuild_student=student3", "-e", "cohort_image=" + new_image.id)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    after = conn.compute.find_server(COURSE + "-student3", ignore_missing=False)
    assert after.id != before.id and after.status == "ACTIVE"
    assert after.image.id == new_image.id
    ports = list(conn.network.ports(device_id=after.id))
    assert [ip.floating_ip_address for p in ports for ip in conn.network.ips(port_id=p.id)] == \
        [urlparse(url).hostname]
    # The same password, and a kernel runs code on the new VM; the other students' servers were not touched.
    session = login(url, password)
    assert session["login_ok"] is True
    assert run_code(url, session["_session"], "6*7") == "42"
    # The notebook saved before, seen through nginx after the student's login on the new VM.
    status, notebook = contents(url, session["_session"])
    assert status == 200 and notebook["content"]["metadata"]["saved_by"] == "student3"
    assert not re.search(r"^%s-student[12]\s+: ok=" % COURSE, run.stdout, re.M)
    # The old VM's host key was forgotten and the new VM's recorded.
    assert known_key(urlparse(url).hostname) not in (None, old_key)
    unused, report = health()
    assert all(e["healthy"] for e in report.values()), report


def test_no_run_printed_a_secret_at_vvv(cohort_job):
    """golden_image.yml, deploy.yml (twice), health, reset_password (refused and done), rebuild: at -vvv, none
    printed a password the course recorded or the course team's key."""
    import secret_sweep  # tests/support

    secrets = course_secrets()
    assert len(OUTPUTS) >= 6 and any("<localhost> EXEC" in text for unused, text in OUTPUTS)
    leaks = dict((command, secret_sweep.printed(text, secrets)) for command, text in OUTPUTS)
    assert [command for command, places in leaks.items() if places] == [], leaks


def test_local_stop_leaves_the_cloud_empty(cohort_job, conn):
    hosts = [urlparse(pair[0]).hostname for pair in printed(cohort_job).values()]
    golden = {s.image.id for s in conn.compute.servers() if s.name.startswith(COURSE + "-")}
    project = conn.current_project_id
    # By id: once released, an address may be handed to another course's VM at once (the other e2e stream and
    # the integration tests allocate floating IPs side by side with this test).
    ours = {ip.id for ip in conn.network.ips(project_id=project) if ip.floating_ip_address in hosts}
    assert len(ours) == len(hosts)
    secrets = course_secrets()
    stop = run_job("local-stop", timeout=900)
    assert stop.returncode == 0, stop.stdout[-3000:] + stop.stderr[-3000:]
    STOPPED.add(COURSE)
    from secret_sweep import printed as leaked  # tests/support

    assert leaked(stop.stdout + stop.stderr, secrets) == []
    prefix = COURSE + "-"
    left = [s.name for s in conn.compute.servers() if s.name.startswith(prefix)]
    left += [n.name for n in conn.network.networks(project_id=project) if n.name.startswith(prefix)]
    left += [r.name for r in conn.network.routers(project_id=project) if r.name.startswith(prefix)]
    left += [g.name for g in conn.network.security_groups(project_id=project) if g.name.startswith(prefix)]
    left += [k.name for k in conn.compute.keypairs() if k.name.startswith(prefix)]
    left += [p.name for p in conn.network.ports(project_id=project) if (p.name or "").startswith(prefix)]
    left += [v.name for v in conn.block_storage.volumes() if (v.name or "").startswith(prefix)]  # data volumes too
    addresses_now = {ip.id: ip.floating_ip_address for ip in conn.network.ips(project_id=project)}
    left += [addresses_now[i] for i in ours if i in addresses_now]
    left += [i.name for i in conn.image.images(owner=project)
             if (i.properties or {}).get("coursevm_snapshot_series") == COURSE + "-golden"]
    assert left == []
    # The machines, their routes and the golden image's disk are gone (an address already handed to another
    # course's VM answers for that VM now).
    reused = set(addresses_now.values())
    listed = json.loads(subprocess.run([*MACHINES, "list", "--json"], capture_output=True, text=True,
                                       check=True).stdout)
    assert not [m for m in listed if m["answers"]
                and set(a.split("/")[0] for a in m["answers"]) & (set(hosts) - reused)]
    for host in set(hosts) - reused:
        route = subprocess.run(["ip", "-j", "route", "get", host], capture_output=True, text=True, check=True)
        assert not json.loads(route.stdout)[0].get("dev", "").startswith("cvmh")
    # Their addresses may serve other VMs later: no host key of theirs is kept.
    assert [h for h in hosts if known_key(h)] == []
    cache = Path(os.environ.get("COURSEVM_MACHINES_CACHE", "/var/cache/coursevm/machines"))
    assert [i for i in golden if (cache / ("derived-" + i)).exists()] == []
