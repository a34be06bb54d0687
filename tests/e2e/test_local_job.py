"""The README's first command, as a person runs it: `./coursevm local` provisions a student on the local OpenStack
(tests/cloud) and configures the server, a test machine of its own, then prints a URL and a password; a real
Chromium logs in with them, opens a new notebook and runs a cell. The URL is the server's floating IP; running
`./coursevm local-stop` leaves nothing behind in the cloud. Run again, the job changes nothing and keeps the
password: test_local_job_runner.py runs it a second time (as AWX does); the README command's own second run is the
cohort's (test_local_cohort.py), so the one-student VM is not deployed a third time.
Here Jupyter is at a sub-path (`-e jupyter_base_url=/jupyter/`, the harder case; the cohort at / is
test_local_cohort.py). The same job serves the web checks of test_local_job_web.py and the student's password page
of test_local_job_password.py (tests/e2e/conftest.py runs it once); the test that stops it runs last.
Needs root (test machines and the local cloud) and Chromium."""

import ipaddress
import json
import os
import re
import subprocess
from urllib.parse import urlparse

import pytest

from conftest import JOB_BASE, ROOT, STOPPED, printed, run_coursevm

SHOTS = ROOT / "tests" / "output" / "screenshots"
SERVER = "local-student1"

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="test machines need root")


@pytest.fixture(scope="module")
def conn(local_job, local_cloud):  # after the job, which starts the cloud
    return local_cloud()


def test_local_job_prints_url_and_password(local_job):
    assert local_job.returncode == 0, local_job.stdout[-3000:] + local_job.stderr[-3000:]
    url, password = printed(local_job)
    assert re.fullmatch(r"http://\d+\.\d+\.\d+\.\d+" + re.escape(JOB_BASE), url)
    assert len(password) >= 12


def test_chromium_logs_in_and_runs_a_cell(local_job):
    from browser import run_first_cell  # tests/support, on sys.path via conftest

    url, password = printed(local_job)
    SHOTS.mkdir(parents=True, exist_ok=True)
    shot = SHOTS / "local-job-notebook.png"
    assert run_first_cell(url, password, shot) == "2"
    assert shot.stat().st_size > 10_000


def test_openrefine_and_nbdime_are_behind_the_same_login(local_job):
    from jupyter_login import login  # tests/support

    url, password = printed(local_job)
    browser = login(url, password)["_session"][0]
    for path, marker in (("proxy/3334/", b"OpenRefine"), ("proxy/8899/", b"<title>nbdime")):
        with browser.open(url + path, timeout=60) as resp:
            assert resp.status == 200 and marker in resp.read(), path


# The course database (role postgresql, inventory/local/group_vars/all/databases.yml): seeded once with this table,
# reached from a notebook with no settings (PGHOST/PGDATABASE in Jupyter's unit, peer login as the course
# account), and over TCP with the course role's password from the account's ~/.pgpass.
SEEDED_PLANETS = [{"name": "Earth", "moons": 1}, {"name": "Mars", "moons": 2}, {"name": "Mercury", "moons": 0},
                  {"name": "Venus", "moons": 0}]
DATABASE_CELL = """
import pandas, psycopg, sqlalchemy
rows = pandas.read_sql("SELECT name, moons FROM planets ORDER BY name",
                       sqlalchemy.create_engine("postgresql+psycopg://")).to_dict("records")
with psycopg.connect() as peer, psycopg.connect("host=127.0.0.1 user=course") as tcp:
    users = [peer.execute("SELECT current_user").fetchone()[0], tcp.execute("SELECT current_user").fetchone()[0]]
{"rows": rows, "users": users}
"""


def test_a_notebook_selects_from_the_course_database_through_nginx(local_job):
    import ast

    from jupyter_login import login, run_code, run_in_terminal  # tests/support

    url, password = printed(local_job)
    session = login(url, password)["_session"]
    result = run_code(url, session, DATABASE_CELL, timeout=120)
    assert result and not result.startswith("error"), result
    answer = ast.literal_eval(result)
    assert answer == {"rows": SEEDED_PLANETS, "users": ["oustudent", "course"]}
    # A terminal of the same login: psql alone reaches the course database.
    assert run_in_terminal(url, session, "psql -Atc \"SELECT 'planets=' || count(*) FROM planets\"", "planets=4")


def test_the_url_is_the_floating_ip_of_the_students_server(local_job, conn):
    url = printed(local_job)[0]
    server = conn.compute.find_server(SERVER, ignore_missing=False)
    assert server.status == "ACTIVE"
    assert server.metadata.get("coursevm_student") == "student1"
    ports = list(conn.network.ports(device_id=server.id))
    fips = [ip.floating_ip_address for port in ports for ip in conn.network.ips(port_id=port.id)]
    assert fips == [urlparse(url).hostname]
    public = conn.network.find_network("public", ignore_missing=False)
    cidr = next(conn.network.subnets(network_id=public.id)).cidr
    assert ipaddress.ip_address(fips[0]) in ipaddress.ip_network(cidr)
    # The course's network (shared topology, the default), its router and a security group open on 22 and 80
    # only, carried by the student's own port.
    group = conn.network.find_security_group("local-sg", ignore_missing=False)
    ingress = sorted(r.port_range_min for r in conn.network.security_group_rules(security_group_id=group.id)
                     if r.direction == "ingress")
    assert ingress == [22, 80]
    assert conn.network.find_router("local-router", ignore_missing=False).external_gateway_info
    assert [(p.name, p.security_group_ids) for p in ports] == [(SERVER, [group.id])]


def test_the_course_inventory_lists_the_student_at_the_printed_address(local_job):
    """Day two (docs/day-two.md): the inventory `./coursevm local` wrote lists the student from the cloud."""
    from ansible_json import inventory_json  # tests/support
    from day_two import run  # tests/support

    listing = run(ROOT / ".build" / "local" / "inventory", None, "--list", timeout=300)
    assert listing.returncode == 0, listing.stderr[-3000:]
    inventory = inventory_json(listing.stdout)
    assert inventory["course_vms"]["hosts"] == [SERVER]
    hostvars = inventory["_meta"]["hostvars"][SERVER]
    assert hostvars["ansible_host"] == urlparse(printed(local_job)[0]).hostname
    assert hostvars["credentials_student"] == "student1"


@pytest.mark.stops_the_job
def test_local_stop_leaves_nothing_in_the_cloud(local_job, conn):
    url = printed(local_job)[0]
    project = conn.current_project_id
    # By id: once released, the address may be handed to another course's VM at once (the other e2e stream and
    # the integration tests allocate floating IPs side by side with this test).
    ours = {ip.id for ip in conn.network.ips(project_id=project) if ip.floating_ip_address == urlparse(url).hostname}
    assert ours
    stop = run_coursevm("local-stop", timeout=600)
    assert stop.returncode == 0, stop.stdout[-3000:] + stop.stderr[-3000:]
    STOPPED.add("local")
    left = [s.name for s in conn.compute.servers() if s.name.startswith("local-")]
    left += [n.name for n in conn.network.networks(project_id=project) if n.name.startswith("local-")]
    left += [r.name for r in conn.network.routers(project_id=project) if r.name.startswith("local-")]
    left += [g.name for g in conn.network.security_groups(project_id=project) if g.name.startswith("local-")]
    left += [k.name for k in conn.compute.keypairs() if k.name.startswith("local-")]
    left += [p.name for p in conn.network.ports(project_id=project) if (p.name or "").startswith("local-")]
    addresses_now = {ip.id: ip.floating_ip_address for ip in conn.network.ips(project_id=project)}
    left += [addresses_now[i] for i in ours if i in addresses_now]
    assert left == []
    # The machine is gone, and with it the route that sent the public subnet into it (unless the address
    # already went to another course's VM, whose route it then is).
    if urlparse(url).hostname not in addresses_now.values():
        route = subprocess.run(["ip", "-j", "route", "get", urlparse(url).hostname], capture_output=True,
                               text=True, check=True)
        assert not json.loads(route.stdout)[0].get("dev", "").startswith("cvmh")
