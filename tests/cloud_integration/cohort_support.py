"""What the cohort tests share: a course's resources seen through openstacksdk, a safety-net removal, keys,
rosters and a playbook runner. Every function takes the course's prefix (`<course>-`), so test modules with
different courses can share one local cloud."""

import json
import subprocess

from ansible_json import run_json  # tests/support, on sys.path via conftest
from cloud_support import ROOT


def course_resources(conn, prefix):
    """Everything of a course, by kind: names (ports and floating IPs: ids) through openstacksdk."""
    servers = [s for s in conn.compute.servers() if s.name.startswith(prefix)]
    networks = [n for n in conn.network.networks() if n.name.startswith(prefix)]
    routers = [r for r in conn.network.routers() if r.name.startswith(prefix)]
    owners = set(s.id for s in servers) | set(r.id for r in routers)
    network_ids = set(n.id for n in networks)
    ports = [p for p in conn.network.ports()
             if p.device_id in owners or p.network_id in network_ids or (p.name or "").startswith(prefix)]
    port_ids = set(p.id for p in ports)
    return {
        "servers": sorted(s.name for s in servers),
        "keypairs": sorted(k.name for k in conn.compute.keypairs() if k.name.startswith(prefix)),
        "networks": sorted(n.name for n in networks),
        "subnets": sorted(s.name for s in conn.network.subnets() if s.name.startswith(prefix)),
        "routers": sorted(r.name for r in routers),
        "security_groups": sorted(g.name for g in conn.network.security_groups() if g.name.startswith(prefix)),
        "ports": sorted(port_ids),
        "floating_ips": sorted(f.id for f in conn.network.ips() if f.port_id in port_ids),
    }


def left_over(conn, prefix):
    return dict((kind, names) for kind, names in course_resources(conn, prefix).items() if names)


def remove_course(conn, prefix):
    """Safety net, not the code under test: remove whatever a failed run left."""
    servers = [s for s in conn.compute.servers() if s.name.startswith(prefix)]
    ports = [p for p in conn.network.ports() if (p.name or "").startswith(prefix)
             or p.device_id in set(s.id for s in servers)]
    for port in ports:
        for fip in conn.network.ips(port_id=port.id):
            conn.network.delete_ip(fip)
    for server in servers:
        conn.compute.delete_server(server)
    for server in servers:
        conn.compute.wait_for_delete(server, wait=180)
    for port in ports:
        conn.network.delete_port(port, ignore_missing=True)
    for router in [r for r in conn.network.routers() if r.name.startswith(prefix)]:
        for port in conn.network.ports(device_id=router.id, device_owner="network:router_interface"):
            conn.network.remove_interface_from_router(router, port_id=port.id)
        conn.network.delete_router(router)
    for network in [n for n in conn.network.networks() if n.name.startswith(prefix)]:
        conn.network.delete_network(network)
    for group in [g for g in conn.network.security_groups() if g.name.startswith(prefix)]:
        conn.network.delete_security_group(group)
    for key in [k for k in conn.compute.keypairs() if k.name.startswith(prefix)]:
        conn.compute.delete_keypair(key)


def make_keys(folder, names):
    made = {}
    for name in names:
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", str(folder / name)],
                       check=True)
        made[name] = (folder / (name + ".pub")).read_text().strip()
    return made


def write_roster(folder, name, rows):
    path = folder / name
    path.write_text("student_id,name,email,ssh_public_key\n" + "".join("%s\n" % row for row in rows))
    return str(path)


def playbook_runner(env, folder, course, admin_key):
    """play(playbook, **extra_vars) -> (exit status, json callback output, the error messages)."""
    admin_keys = folder / ("admin_keys_%s.json" % course)
    admin_keys.write_text(json.dumps({"cohort_admin_public_keys": [admin_key]}))

    def play(name, **extra):
        # cirros-like: purely fake servers (inventory/local's course-vm would start a real machine for each).
        cmd = ["ansible-playbook", "-i", str(ROOT / "inventory" / "local"), str(ROOT / "playbooks" / name),
               "-e", "cohort_course=" + course, "-e", "cohort_image=cirros-like", "-e", "@" + str(admin_keys),
               "-e", json.dumps(extra)]
        proc, out = run_json(cmd, env, timeout=1800, cwd=ROOT)
        errors = [result.get("msg", "") for play_ in out["plays"] for task in play_["tasks"]
                  for result in task["hosts"].values() if result.get("failed")]
        return proc.returncode, out, errors + [proc.stderr]

    return play


def changed_total(out):
    return sum(stats["changed"] for stats in out["stats"].values())


def task_result(out, name, host="localhost"):
    """The result of the (last) task called ``name`` on ``host`` in a json callback output."""
    found = None
    for play_ in out["plays"]:
        for task in play_["tasks"]:
            if task["task"]["name"].split(" : ")[-1] == name and host in task["hosts"]:
                found = task["hosts"][host]
    assert found is not None, "no task %r ran on %s" % (name, host)
    return found
