"""The volume cases of the openstack.cloud collection's own CI `server` role, run through the installed
openstack.cloud modules against the local cloud (Nova's fake driver, Cinder's file-backed volumes).

That role is not shipped in the `ansible` package, so this is our own playbook for the same cases, not a copy:

1. server with boot_from_volume, volume_size and terminate_volume on m1.nodisk (0 GB disk): ACTIVE with one
   bootable volume made from the image, which goes with the server;
2. volume made from the image, server booted from it (boot_volume, terminate_volume false): the volume outlives
   the server, available again, until volume state absent removes it;
3. server booted from the image with `volumes:` (an empty volume): the volume is in-use by that server;
4. server_volume attaches another volume to the running server once (a second run changes nothing), and
   state absent detaches it (available again, the first volume untouched);
5. volume_info lists them, and case 1's task run again with the same arguments changes nothing.

Everything runs in one ansible-playbook run (CI's time is short), whose json callback output each test reads by
task name; what does not depend on each other runs side by side (`async`, then a `Wait: <task>` task whose result
is the module's). openstacksdk then checks what was left. Resources are named `t18oc-...`, on a network of their own
(auto_ip off: no router, no floating IP). The playbook deletes what cases 1 and 2 made; case 3's server and
case 4's volumes stay for the openstacksdk checks, and a module-scoped safety net removes whatever is left,
before and after.
"""

import json
import sys
import time
from pathlib import Path

import pytest

import cohort_support
from ansible_json import run_json  # tests/support
from cloud_support import CLOUD, ROOT

PREFIX = "t18oc-"
CIDR = "10.218.18.0/24"
BFV_SERVER = PREFIX + "bfv"            # case 1
BOOT_VOLUME = PREFIX + "bootvol"       # case 2
BOOT_VOLUME_SERVER = PREFIX + "from-vol"
DATA_SERVER = PREFIX + "vols"          # cases 3 and 4
AT_BOOT = PREFIX + "at-boot"
ATTACHED_LATER = PREFIX + "attach"

PLAYBOOK = """
- name: The server role's volume cases, through openstack.cloud
  hosts: localhost
  connection: local
  gather_facts: false
  module_defaults:
    group/openstack.cloud.openstack:
      cloud: "{{ cloud }}"
  # Started with `async`, waited for by `Wait: <task>`: the cloud works on them side by side (half the time).
  tasks:
    # Case 2
    - name: Create a bootable volume from the image
      openstack.cloud.volume:
        name: "{{ prefix }}bootvol"
        image: cirros-like
        size: 1
        is_bootable: true
      async: 300
      poll: 0
      register: bootvol_job

    # Case 3
    - name: Create an empty volume to attach at boot
      openstack.cloud.volume:
        name: "{{ prefix }}at-boot"
        size: 1
      async: 300
      poll: 0
      register: at_boot_job

    # Case 4
    - name: Create another empty volume
      openstack.cloud.volume:
        name: "{{ prefix }}attach"
        size: 1
      async: 300
      poll: 0
      register: attach_job

    - name: Create the network
      openstack.cloud.network:
        name: "{{ prefix }}net"

    - name: Create the subnet
      openstack.cloud.subnet:
        name: "{{ prefix }}subnet"
        network: "{{ prefix }}net"
        cidr: "{{ cidr }}"

    # Case 1
    - name: Boot a server from a new volume made from the image
      openstack.cloud.server: &boot_from_volume
        name: "{{ prefix }}bfv"
        image: cirros-like
        flavor: m1.nodisk
        network: "{{ prefix }}net"
        auto_ip: false
        boot_from_volume: true
        volume_size: 1
        terminate_volume: true
      async: 300
      poll: 0
      register: bfv_job

    - name: "Wait: Create a bootable volume from the image"
      ansible.builtin.async_status:
        jid: "{{ bootvol_job.ansible_job_id }}"
      register: job
      until: job.finished
      retries: 150
      delay: 1

    - name: Boot a server from that volume, keeping the volume
      openstack.cloud.server:
        name: "{{ prefix }}from-vol"
        boot_volume: "{{ prefix }}bootvol"
        flavor: m1.nodisk
        network: "{{ prefix }}net"
        auto_ip: false
        terminate_volume: false
      async: 300
      poll: 0
      register: from_vol_job

    - name: "Wait: Create an empty volume to attach at boot"
      ansible.builtin.async_status:
        jid: "{{ at_boot_job.ansible_job_id }}"
      register: job
      until: job.finished
      retries: 150
      delay: 1

    - name: Boot a server from the image with that volume
      openstack.cloud.server:
        name: "{{ prefix }}vols"
        image: cirros-like
        flavor: m1.tiny
        network: "{{ prefix }}net"
        auto_ip: false
        volumes:
          - "{{ prefix }}at-boot"

    - name: "Wait: Create another empty volume"
      ansible.builtin.async_status:
        jid: "{{ attach_job.ansible_job_id }}"
      register: job
      until: job.finished
      retries: 150
      delay: 1

    - name: Attach it to the running server
      openstack.cloud.server_volume:
        server: "{{ prefix }}vols"
        volume: "{{ prefix }}attach"

    - name: Attach it again
      openstack.cloud.server_volume:
        server: "{{ prefix }}vols"
        volume: "{{ prefix }}attach"

    - name: "Wait: Boot a server from a new volume made from the image"
      ansible.builtin.async_status:
        jid: "{{ bfv_job.ansible_job_id }}"
      register: job
      until: job.finished
      retries: 150
      delay: 1

    - name: "Wait: Boot a server from that volume, keeping the volume"
      ansible.builtin.async_status:
        jid: "{{ from_vol_job.ansible_job_id }}"
      register: job
      until: job.finished
      retries: 150
      delay: 1

    # Case 5, once every volume is there
    - name: List the volumes
      openstack.cloud.volume_info:
        details: true

    - name: Boot the server from a new volume again
      openstack.cloud.server: *boot_from_volume

    # Cases 1 and 2, continued: the servers go while case 4's volume is detached.
    - name: Delete the server booted from a new volume
      openstack.cloud.server:
        name: "{{ prefix }}bfv"
        state: absent
      async: 300
      poll: 0
      register: bfv_delete_job

    - name: Delete the server booted from the kept volume
      openstack.cloud.server:
        name: "{{ prefix }}from-vol"
        state: absent
      async: 300
      poll: 0
      register: from_vol_delete_job

    # Case 4, continued
    - name: Detach the volume
      openstack.cloud.server_volume:
        server: "{{ prefix }}vols"
        volume: "{{ prefix }}attach"
        state: absent

    - name: Read the detached volume
      openstack.cloud.volume_info:
        name: "{{ prefix }}attach"

    - name: "Wait: Delete the server booted from a new volume"
      ansible.builtin.async_status:
        jid: "{{ bfv_delete_job.ansible_job_id }}"
      register: job
      until: job.finished
      retries: 150
      delay: 1

    - name: "Wait: Delete the server booted from the kept volume"
      ansible.builtin.async_status:
        jid: "{{ from_vol_delete_job.ansible_job_id }}"
      register: job
      until: job.finished
      retries: 150
      delay: 1

    - name: Read the kept boot volume
      openstack.cloud.volume_info:
        name: "{{ prefix }}bootvol"

    - name: Delete the kept boot volume
      openstack.cloud.volume:
        name: "{{ prefix }}bootvol"
        state: absent
"""


def volumes(conn):
    """Our volumes, {name: volume}."""
    return dict((v.name, v) for v in conn.block_storage.volumes(details=True) if (v.name or "").startswith(PREFIX))


def remove_all(conn):
    """Safety net, not the code under test: servers (Nova deletes case 1's unnamed boot volume with its server)
    and the network, then the named volumes."""
    cohort_support.remove_course(conn, PREFIX)
    left = [v for v in volumes(conn).values() if v.status in ("available", "error")]
    for volume in left:
        conn.block_storage.delete_volume(volume, ignore_missing=True)
    for volume in left:
        conn.block_storage.wait_for_delete(volume, wait=120)


@pytest.fixture(scope="module", autouse=True)
def clean(conn):
    remove_all(conn)
    yield
    remove_all(conn)


@pytest.fixture(scope="module")
def run(env, tmp_path_factory):
    """(exit status, json callback output, the failed tasks' messages) of the one playbook run."""
    path = tmp_path_factory.mktemp("server-volumes") / "server_volumes.yml"
    path.write_text(PLAYBOOK)
    extra = {"cloud": CLOUD, "prefix": PREFIX, "cidr": CIDR}
    proc, out = run_json(["ansible-playbook", path, "-e", json.dumps(extra),
                          "-e", "ansible_python_interpreter=" + sys.executable], env, cwd=ROOT)
    errors = ["%s: %s" % (step["task"]["name"], result.get("msg", "")) for play in out["plays"]
              for step in play["tasks"] for result in step["hosts"].values() if result.get("failed")]
    for play in out["plays"]:  # the async jobs' result files (~/.ansible_async), read by then
        for step in play["tasks"]:
            for result in step["hosts"].values():
                if result.get("results_file") and result.get("finished"):
                    Path(result["results_file"]).unlink(missing_ok=True)
    return proc.returncode, out, errors


def task(run, name):
    return cohort_support.task_result(run[1], name)


def listed(run, name="List the volumes"):
    """The volumes a volume_info task listed, {id: volume}."""
    return dict((v["id"], v) for v in task(run, name)["volumes"])


def gone(find, wait=60):
    """True once find() returns None, within `wait` seconds."""
    for unused in range(wait):
        if find() is None:
            return True
        time.sleep(1)
    return False


def attached_to(volume):
    return [a["server_id"] for a in volume["attachments"]]


def test_the_playbook_runs_every_case_without_a_failure(run):
    status, out, errors = run
    assert errors == [] and status == 0, errors
    assert out["stats"]["localhost"]["failures"] == 0


def test_1_boot_from_volume_makes_a_bootable_volume_that_goes_with_the_server(run, conn):
    created = task(run, "Wait: Boot a server from a new volume made from the image")
    assert created["changed"] is True
    server = created["server"]
    assert server["name"] == BFV_SERVER
    assert server["status"] == "ACTIVE" and server["flavor"]["name"] == "m1.nodisk" and server["flavor"]["disk"] == 0
    assert not server["image"].get("id")  # booted from the volume, not the image
    assert [v["delete_on_termination"] for v in server["attached_volumes"]] == [True]
    volume = listed(run)[server["attached_volumes"][0]["id"]]
    assert volume["is_bootable"] is True and volume["size"] == 1
    assert volume["status"] == "in-use" and attached_to(volume) == [server["id"]]
    assert volume["volume_image_metadata"]["image_name"] == "cirros-like"

    assert task(run, "Wait: Delete the server booted from a new volume")["changed"] is True
    assert conn.compute.find_server(server["id"], ignore_missing=True) is None
    # Nova asked Cinder to delete the volume with the server; Cinder does it a moment later.
    assert gone(lambda: conn.block_storage.find_volume(volume["id"], ignore_missing=True))


def test_2_a_volume_made_from_the_image_boots_a_server_and_outlives_it(run, conn):
    made = task(run, "Wait: Create a bootable volume from the image")
    assert made["changed"] is True and made["volume"]["is_bootable"] is True and made["volume"]["size"] == 1
    volume_id = made["volume"]["id"]

    booted = task(run, "Wait: Boot a server from that volume, keeping the volume")
    assert booted["changed"] is True
    server = booted["server"]
    assert server["name"] == BOOT_VOLUME_SERVER
    assert server["status"] == "ACTIVE" and not server["image"].get("id")
    assert [(v["id"], v["delete_on_termination"]) for v in server["attached_volumes"]] == [(volume_id, False)]
    in_use = listed(run)[volume_id]
    assert in_use["status"] == "in-use" and attached_to(in_use) == [server["id"]] and in_use["is_bootable"] is True
    assert in_use["volume_image_metadata"]["image_name"] == "cirros-like"

    assert task(run, "Wait: Delete the server booted from the kept volume")["changed"] is True
    kept = task(run, "Read the kept boot volume")["volumes"]
    assert [(v["id"], v["status"], v["attachments"]) for v in kept] == [(volume_id, "available", [])]

    assert task(run, "Delete the kept boot volume")["changed"] is True
    assert conn.compute.find_server(server["id"], ignore_missing=True) is None
    assert conn.block_storage.find_volume(volume_id, ignore_missing=True) is None


def test_3_a_volume_given_at_boot_is_attached_to_the_server(run, conn):
    made = task(run, "Wait: Create an empty volume to attach at boot")
    assert made["changed"] is True and made["volume"]["is_bootable"] is False
    volume_id = made["volume"]["id"]
    booted = task(run, "Boot a server from the image with that volume")
    assert booted["changed"] is True
    server = booted["server"]
    assert server["name"] == DATA_SERVER
    assert server["status"] == "ACTIVE" and server["image"]["id"] == conn.image.find_image("cirros-like").id
    assert [v["id"] for v in server["attached_volumes"]] == [volume_id]
    assert attached_to(listed(run)[volume_id]) == [server["id"]]
    # Still so after the playbook (case 4 attached and detached another volume on the same server).
    volume = conn.block_storage.get_volume(volume_id)
    assert volume.status == "in-use" and [a["server_id"] for a in volume.attachments] == [server["id"]]
    assert [v.volume_id for v in conn.compute.volume_attachments(server["id"])] == [volume_id]


def test_4_server_volume_attaches_once_and_detaches(run, conn):
    server_id = task(run, "Boot a server from the image with that volume")["server"]["id"]
    volume_id = task(run, "Wait: Create another empty volume")["volume"]["id"]

    attached = task(run, "Attach it to the running server")
    assert attached["changed"] is True
    assert attached["volume"]["id"] == volume_id and attached_to(attached["volume"]) == [server_id]
    again = task(run, "Attach it again")
    assert again["changed"] is False and attached_to(again["volume"]) == [server_id]
    assert listed(run)[volume_id]["status"] == "in-use"

    assert task(run, "Detach the volume")["changed"] is True
    read = task(run, "Read the detached volume")["volumes"]
    assert [(v["id"], v["status"], v["attachments"]) for v in read] == [(volume_id, "available", [])]
    volume = conn.block_storage.get_volume(volume_id)
    assert volume.status == "available" and volume.attachments == []
    assert conn.compute.get_server(server_id).status == "ACTIVE"


def test_5_volume_info_finds_them_and_the_boot_from_volume_server_is_not_made_twice(run, conn):
    everything = listed(run)
    ours = sorted(v["name"] for v in everything.values() if (v["name"] or "").startswith(PREFIX))
    assert ours == sorted((BOOT_VOLUME, AT_BOOT, ATTACHED_LATER))
    first = task(run, "Wait: Boot a server from a new volume made from the image")["server"]
    assert first["attached_volumes"][0]["id"] in everything  # the unnamed one Nova made

    rerun = task(run, "Boot the server from a new volume again")
    assert rerun["changed"] is False
    assert rerun["server"]["id"] == first["id"]
    assert [v["id"] for v in rerun["server"]["attached_volumes"]] == [v["id"] for v in first["attached_volumes"]]
    # Left after the playbook: case 3's server, its volume and case 4's.
    assert [s.name for s in conn.compute.servers() if s.name.startswith(PREFIX)] == [DATA_SERVER]
    assert sorted(volumes(conn)) == sorted((AT_BOOT, ATTACHED_LATER))
