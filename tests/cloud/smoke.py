"""Smoke test of the local cloud through openstacksdk, as the course project's user.

    $COURSEVM_CLOUD_HOME/venv/bin/python tests/cloud/smoke.py      (after `cloud.py start`)

Builds what a course deployment builds (network, subnet, router to `public`, security group, keypair,
server on m1.course from cirros-like, floating IP), snapshots the server to an active image, attaches,
detaches and extends a volume, boots a server from a volume on the 0 GB-disk flavor m1.nodisk (and sees
Nova refuse the image there), checks that a server on m1.huge fails with "No valid host", then deletes
everything and checks nothing is left.
Uses clouds.yaml from $OS_CLIENT_CONFIG_FILE, else $COURSEVM_CLOUD_HOME/clouds.yaml. Exit status 0 on
success; every step prints its time.
"""

import os
import sys
import time
from pathlib import Path

import openstack

HOME = Path(os.environ.get("COURSEVM_CLOUD_HOME", "/var/lib/coursevm-cloud"))
os.environ.setdefault("OS_CLIENT_CONFIG_FILE", str(HOME / "clouds.yaml"))
PREFIX = "smoke-"
TIMINGS = []
T0 = time.monotonic()


class Step:
    def __init__(self, name):
        self.name = name

    def __enter__(self):
        self.t = time.monotonic()
        return self

    def __exit__(self, exc_type, exc, tb):
        dt = time.monotonic() - self.t
        TIMINGS.append((self.name, dt))
        print(f"  {'FAIL' if exc_type else 'ok  '} {dt:6.1f}s  {self.name}", flush=True)
        return False


def public_key():
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519
    key = ed25519.Ed25519PrivateKey.generate().public_key()
    return key.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()


def wait_for(what, predicate, timeout=120, interval=0.5):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def active_or_none(resource):
    return resource if resource.status == "ACTIVE" else None


def leftovers(conn):
    """Everything of ours still in the project (the default security group is the project's own)."""
    found = []
    found += [f"server {s.name}" for s in conn.compute.servers()]
    found += [f"floating IP {f.floating_ip_address}" for f in conn.network.ips(project_id=conn.current_project_id)]
    found += [f"router {r.name}" for r in conn.network.routers(project_id=conn.current_project_id)]
    found += [f"network {n.name}" for n in conn.network.networks(project_id=conn.current_project_id)]
    found += [f"port {p.id} ({p.device_owner})" for p in conn.network.ports(project_id=conn.current_project_id)]
    found += [f"security group {g.name}" for g in conn.network.security_groups(project_id=conn.current_project_id)
              if g.name != "default"]
    found += [f"keypair {k.name}" for k in conn.compute.keypairs()]
    found += [f"image {i.name}" for i in conn.image.images(owner=conn.current_project_id)]
    # The boot volume of the bfv server goes with it (delete_on_termination).
    found += [f"volume {v.name or v.id} ({v.status})" for v in conn.block_storage.volumes()]
    return found


def cleanup(conn):
    """Delete everything named smoke-* in the project, in dependency order; idempotent."""
    for server in conn.compute.servers():
        if server.name.startswith(PREFIX):
            conn.compute.delete_server(server)
    for server in list(conn.compute.servers()):
        if server.name.startswith(PREFIX):
            conn.compute.wait_for_delete(server, wait=60)
    for volume in conn.block_storage.volumes():
        if (volume.name or "").startswith(PREFIX):
            conn.block_storage.delete_volume(volume)
    for ip in conn.network.ips(project_id=conn.current_project_id):
        if (ip.description or "").startswith(PREFIX):
            conn.network.delete_ip(ip)
    for image in conn.image.images(owner=conn.current_project_id):
        if image.name.startswith(PREFIX):
            conn.image.delete_image(image)
    for router in conn.network.routers(project_id=conn.current_project_id):
        if router.name.startswith(PREFIX):
            for port in conn.network.ports(device_id=router.id, device_owner="network:router_interface"):
                conn.network.remove_interface_from_router(router, port_id=port.id)
            conn.network.delete_router(router)
    for net in conn.network.networks(project_id=conn.current_project_id):
        if net.name.startswith(PREFIX):
            conn.network.delete_network(net)  # its subnets go with it
    for sg in conn.network.security_groups(project_id=conn.current_project_id):
        if sg.name.startswith(PREFIX):
            conn.network.delete_security_group(sg)
    for kp in conn.compute.keypairs():
        if kp.name.startswith(PREFIX):
            conn.compute.delete_keypair(kp)


def main():
    conn = openstack.connect(cloud="coursevm-local")
    print(f"smoke test against {conn.auth['auth_url']} as {conn.auth['username']} "
          f"(project {conn.auth['project_name']})", flush=True)
    cleanup(conn)  # a killed earlier run
    ok = False
    try:
        with Step("network, subnet, router with gateway on public, router interface"):
            public = conn.network.find_network("public")
            assert public is not None and public.is_router_external, "external network public missing"
            net = conn.network.create_network(name=PREFIX + "net")
            subnet = conn.network.create_subnet(name=PREFIX + "subnet", network_id=net.id, ip_version=4,
                                                cidr="10.10.0.0/24")
            router = conn.network.create_router(name=PREFIX + "router",
                                                external_gateway_info={"network_id": public.id})
            conn.network.add_interface_to_router(router, subnet_id=subnet.id)
        with Step("security group with ssh and http rules, keypair"):
            sg = conn.network.create_security_group(name=PREFIX + "sg", description="smoke test")
            for port in (22, 80):
                conn.network.create_security_group_rule(
                    security_group_id=sg.id, direction="ingress", ethertype="IPv4", protocol="tcp",
                    port_range_min=port, port_range_max=port, remote_ip_prefix="0.0.0.0/0")
            conn.compute.create_keypair(name=PREFIX + "key", public_key=public_key())
        image = conn.image.find_image("cirros-like")
        assert image is not None and image.status == "active", "image cirros-like missing or not active"
        # Started now, checked at the end: the scheduler must refuse it while the rest goes on.
        huge = conn.compute.create_server(
            name=PREFIX + "huge", flavor_id=conn.compute.find_flavor("m1.huge").id, image_id=image.id,
            networks=[{"uuid": net.id}])
        with Step("server on m1.course from cirros-like, ACTIVE"):
            server = conn.compute.create_server(
                name=PREFIX + "server", flavor_id=conn.compute.find_flavor("m1.course").id, image_id=image.id,
                networks=[{"uuid": net.id}], key_name=PREFIX + "key", security_groups=[{"name": sg.name}])
            server = conn.compute.wait_for_server(server, status="ACTIVE", wait=120, interval=0.5)
        with Step("floating IP from public associated with the server, ACTIVE"):
            port = next(conn.network.ports(device_id=server.id))
            ip = conn.network.create_ip(floating_network_id=public.id, port_id=port.id,
                                        description=PREFIX + "fip")
            ip = wait_for("floating IP ACTIVE", lambda: active_or_none(conn.network.get_ip(ip.id)))
            addresses = wait_for("floating IP in the server's addresses", lambda: [
                a["addr"] for a in conn.compute.get_server(server.id).addresses.get(net.name, [])
                if a.get("OS-EXT-IPS:type") == "floating"])
            assert ip.floating_ip_address in addresses, (ip.floating_ip_address, addresses)
            print(f"         server {server.id} has {ip.floating_ip_address}", flush=True)
        with Step("snapshot of the server to an image, active"):
            snap = conn.compute.create_server_image(server, name=PREFIX + "snapshot", wait=False)
            snap = conn.image.wait_for_status(conn.image.get_image(snap.id), "active", failures=["killed"],
                                              wait=120, interval=0.5)
            assert snap.size and snap.size > 0, "snapshot has no data"
            print(f"         image {snap.id}: {snap.disk_format}, {snap.size} bytes", flush=True)
        with Step("volume: 1 GB available, attached to the server (in-use), detached, extended to 2 GB"):
            volume = conn.block_storage.create_volume(name=PREFIX + "volume", size=1)
            volume = conn.block_storage.wait_for_status(volume, "available", failures=["error"], wait=60, interval=0.5)
            conn.compute.create_volume_attachment(server, volume_id=volume.id)
            volume = conn.block_storage.wait_for_status(volume, "in-use", failures=["error"], wait=60, interval=0.5)
            assert [a["server_id"] for a in volume.attachments] == [server.id], volume.attachments
            conn.compute.delete_volume_attachment(server, volume.id)
            volume = conn.block_storage.wait_for_status(volume, "available", failures=["error"], wait=60, interval=0.5)
            conn.block_storage.extend_volume(volume, 2)
            wait_for("volume extended", lambda: conn.block_storage.get_volume(volume.id).size == 2)
            conn.block_storage.wait_for_status(volume, "available", failures=["error"], wait=60, interval=0.5)
        with Step("server on m1.nodisk from a 1 GB volume made of cirros-like, ACTIVE (from the image: refused)"):
            nodisk = conn.compute.find_flavor("m1.nodisk").id
            try:
                conn.compute.create_server(name=PREFIX + "nodisk", flavor_id=nodisk, image_id=image.id,
                                           networks="none")
                raise AssertionError("Nova booted an image onto a 0 GB flavor for a non-admin")
            except openstack.exceptions.ForbiddenException:
                pass
            bfv = conn.compute.create_server(
                name=PREFIX + "bfv", flavor_id=nodisk, networks="none", block_device_mapping=[{
                    "boot_index": 0, "uuid": image.id, "source_type": "image", "destination_type": "volume",
                    "volume_size": 1, "delete_on_termination": True}])
            bfv = conn.compute.wait_for_server(bfv, status="ACTIVE", wait=120, interval=0.5)
        with Step("server on m1.huge goes to ERROR with 'No valid host'"):
            huge = conn.compute.wait_for_server(huge, status="ERROR", failures=["ACTIVE"], wait=120, interval=0.5)
            fault = (huge.fault or {}).get("message", "")
            assert "No valid host" in fault, f"fault was {fault!r}"
            print(f"         fault: {fault}", flush=True)
        ok = True
    finally:
        with Step("delete everything"):
            cleanup(conn)
        with Step("nothing is left in the project"):
            deadline = time.monotonic() + 30
            left = leftovers(conn)
            while left and time.monotonic() < deadline:
                time.sleep(1)
                left = leftovers(conn)
            assert not left, f"left behind: {left}"
    total = time.monotonic() - T0
    print(f"smoke test {'passed' if ok else 'FAILED'} in {total:.1f}s", flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except AssertionError as e:
        print(f"smoke test FAILED: {e}", file=sys.stderr)
        sys.exit(1)
