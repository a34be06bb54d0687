"""Bootstrap of the local cloud, through the real APIs (openstacksdk). Run by cloud.py with the venv's Python.

    bootstrap.py identity  CLOUD_JSON   service users, catalog, the course project and its user
    bootstrap.py resources CLOUD_JSON   external network, flavors, the cirros-like and course-vm images
    bootstrap.py ready     CLOUD_JSON   wait until nova-compute is up and its resources are in placement, and
                                        cinder's scheduler and volume service are up

Every step looks before it creates, so a phase can be re-run.
"""

import json
import sys
import time

import openstack

SERVICE_USERS = ["glance", "nova", "neutron", "placement", "cinder"]
CATALOG = [  # (service name, type, port, path)
    ("glance", "image", "glance", ""),
    ("placement", "placement", "placement", ""),
    ("nova", "compute", "nova", "/v2.1"),
    ("neutron", "network", "neutron", ""),
    # No project id in the URL: Cinder takes it from the token (microversion 3.67 and later; Nova and the SDK
    # both work with it).
    ("cinder", "block-storage", "cinder", "/v3"),
]
FLAVORS = [  # name, vcpus, ram MB, disk GB
    ("m1.tiny", 1, 512, 1),        # too small a disk for the course image
    ("m1.course", 2, 2048, 20),
    ("m1.huge", 64, 524288, 100),  # larger than the fake hypervisor (60 vCPU, 256 GiB): No valid host
    # No root disk, as on clouds that back instances with Ceph volumes: Nova boots only from a volume on it
    # (booting an image onto a 0 GB disk is for admins only).
    ("m1.nodisk", 2, 2048, 0),
]

# key_pairs: Nova's default (100, per user) is short of a cohort of 100 once any other keypair exists.
COMPUTE_QUOTAS = {"instances": 120, "cores": 400, "ram": 1024 * 1024, "key_pairs": 130}  # ram in MB: 1 TiB
NETWORK_QUOTAS = {"ports": 400, "floating_ips": 130}
# Cinder: a boot volume and a data volume per student of a cohort of 100, plus the other tests (defaults: 10
# volumes, 1000 GB). The file backend keeps volumes sparse, so gigabytes are only counted, not used.
VOLUME_QUOTAS = {"volumes": 250, "gigabytes": 6000, "snapshots": 20}


def log(msg):
    print(f"[bootstrap] {msg}", flush=True)


def admin(cfg):
    return openstack.connect(
        auth_url=cfg["auth_url"], username="admin", password=cfg["admin_password"], project_name="admin",
        user_domain_name="Default", project_domain_name="Default", region_name=cfg["region"],
        identity_api_version="3")


def identity(cfg):
    conn = admin(cfg)
    idn = conn.identity
    roles = {r.name: r for r in idn.roles()}
    for name in ("admin", "member", "reader", "service"):
        if name not in roles:
            roles[name] = idn.create_role(name=name)
    service_project = idn.find_project("service") or idn.create_project(
        name="service", domain_id="default", description="OpenStack services")
    for user in SERVICE_USERS:
        u = idn.find_user(user, domain_id="default") or idn.create_user(
            name=user, password=cfg["service_password"], domain_id="default",
            default_project_id=service_project.id)
        # admin for their own calls; `service` is what the new default policies ask of service-to-service calls.
        for role in ("admin", "service"):
            idn.assign_project_role_to_user(service_project, u, roles[role])
    existing = {s.type: s for s in idn.services()}
    endpoints = {(e.service_id, e.interface) for e in idn.endpoints()}
    for name, type_, svc, path in CATALOG:
        s = existing.get(type_) or idn.create_service(name=name, type=type_, enabled=True)
        url = f"http://127.0.0.1:{cfg['ports'][svc]}{path}"
        for interface in ("public", "internal", "admin"):
            if (s.id, interface) not in endpoints:
                idn.create_endpoint(service_id=s.id, interface=interface, url=url, region_id=cfg["region"])
    c = cfg["course"]
    project = idn.find_project(c["project"], domain_id="default") or idn.create_project(
        name=c["project"], domain_id="default", description="The course team's project")
    user = idn.find_user(c["user"], domain_id="default") or idn.create_user(
        name=c["user"], password=c["password"], domain_id="default", default_project_id=project.id)
    # member implies reader; enough to build networks, routers, servers, floating IPs and images.
    idn.assign_project_role_to_user(project, user, roles["member"])
    log("identity done")


def resources(cfg):
    conn = admin(cfg)
    net = conn.network.find_network("public")
    if net is None:
        net = conn.network.create_network(
            name="public", is_router_external=True, provider_network_type="flat",
            provider_physical_network="public", description="External network (database rows only)")
    if not list(conn.network.subnets(network_id=net.id)):
        conn.network.create_subnet(
            name="public-subnet", network_id=net.id, ip_version=4, cidr="172.24.4.0/24",
            gateway_ip="172.24.4.1", is_dhcp_enabled=False,
            allocation_pools=[{"start": "172.24.4.10", "end": "172.24.4.250"}])
    # Quotas of the course project: room for a cohort of 100 on m1.course (the fake hypervisor holds 120)
    # plus the other tests' servers, and for m1.huge on top, so that the scheduler (not the quota check,
    # HTTP 403) is what refuses it; a keypair per student. Neutron: a port and a floating IP per server,
    # plus router interfaces.
    # Routers and security groups keep Neutron's defaults (10 each) on purpose: the tests prove that a
    # shared-topology cohort of 50 fits them. Networks, subnets and security group rules keep theirs too.
    course = conn.identity.find_project(cfg["course"]["project"], domain_id="default")
    conn.set_compute_quotas(course.id, **COMPUTE_QUOTAS)
    conn.network.update_quota(course.id, **NETWORK_QUOTAS)
    conn.set_volume_quotas(course.id, **VOLUME_QUOTAS)
    for name, vcpus, ram, disk in FLAVORS:
        if conn.compute.find_flavor(name) is None:
            conn.compute.create_flavor(name=name, vcpus=vcpus, ram=ram, disk=disk, is_public=True)
    # cirros-like: servers that are only fake (scale tests). course-vm: the course VM fresh from VirtualBox;
    # its servers run on a real machine of tests/machines (plugins/coursevm_cloud/machine_link.py).
    for name, properties in (("cirros-like", {}), ("course-vm", {"coursevm_machine": "base"})):
        image = conn.image.find_image(name)
        if image is None:
            image = conn.image.create_image(
                name=name, filename=cfg["image_file"], disk_format="qcow2", container_format="bare",
                visibility="public", wait=True, timeout=120, **properties)
        if image.status != "active":
            conn.image.wait_for_status(image, "active", wait=120)
    log("resources done")


def ready(cfg, timeout=120):
    """nova-compute is up and its node has inventory in placement (cloud.py checks the host mapping)."""
    conn = admin(cfg)
    deadline = time.monotonic() + timeout
    while True:
        services = {s.binary: s for s in conn.compute.services()}
        compute_up = all(services.get(b) is not None and services[b].state == "up"
                         for b in ("nova-compute", "nova-conductor", "nova-scheduler"))
        hypervisors = list(conn.compute.hypervisors(details=True)) if compute_up else []
        rps = list(conn.placement.resource_providers()) if hypervisors else []
        inventory = rps and conn.placement.get(
            f"/resource_providers/{rps[0].id}/inventories").json().get("inventories", {}).get("VCPU")
        volume = compute_up and {s.binary: s.state for s in conn.block_storage.services()}
        volume_up = bool(volume) and all(volume.get(b) == "up" for b in ("cinder-scheduler", "cinder-volume"))
        if compute_up and hypervisors and inventory and volume_up:
            break
        if time.monotonic() > deadline:
            states = {b: s.state for b, s in services.items()}
            raise SystemExit(f"compute not ready after {timeout}s: services {states}, "
                             f"hypervisors {len(hypervisors)}, resource providers {len(rps)}, volume services "
                             f"{volume or 'not asked'}")
        time.sleep(0.5)
    log("compute and volume services ready")


def main():
    phase, cfg_path = sys.argv[1], sys.argv[2]
    with open(cfg_path) as fh:
        cfg = json.load(fh)
    {"identity": identity, "resources": resources, "ready": ready}[phase](cfg)


if __name__ == "__main__":
    main()
