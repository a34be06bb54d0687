"""playbooks/heat_stack.yml writes HOT templates; the templates are parsed and checked.

Topology `shared` (the default): <course>-course.yaml holds the course's network, subnet, router and security
group, and each <course>-<student>.yaml a keypair, a port on the course network, a server and a floating IP.
Topology `isolated`: one <course>-<student>.yaml per student with the whole environment.

Heat does not run on the local cloud, so each template is checked the way Heat's parser would start: it is
YAML, its resources have the expected types and only properties Heat's schema knows, and every get_resource /
get_param / get_attr / depends_on names something the template defines. Resource names must be what
plugins/module_utils/names.py (the resource_names filter) gives, and the user data what
plugins/module_utils/cloud_init.py (the course_user_data filter) writes. Nothing is sent to a cloud.

At -vvv (issue 14), a render and refused ones (a private key pasted where a public key belongs, in the roster or
in cohort_admin_public_keys) print none of the private keys beside the public ones given (tests/support/secret_sweep.py).
"""

import csv
import functools
import importlib.util
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

import secret_sweep  # tests/support, on sys.path via conftest

ROOT = Path(__file__).resolve().parents[2]
COURSE = "tm351"


def _load(name):
    """A module of plugins/module_utils by path: both are pure Python without collection imports."""
    spec = importlib.util.spec_from_file_location("coursevm_" + name, ROOT / "plugins" / "module_utils" / (name + ".py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


names = _load("names")
cloud_init = _load("cloud_init")

NETWORK_TYPES = {
    "network": "OS::Neutron::Net",
    "subnet": "OS::Neutron::Subnet",
    "router": "OS::Neutron::Router",
    "router_interface": "OS::Neutron::RouterInterface",
    "security_group": "OS::Neutron::SecurityGroup",
}
STUDENT_TYPES = {
    "keypair": "OS::Nova::KeyPair",
    "port": "OS::Neutron::Port",
    "server": "OS::Nova::Server",
    "floating_ip": "OS::Neutron::FloatingIP",
    "floating_ip_association": "OS::Neutron::FloatingIPAssociation",
}
ISOLATED_TYPES = dict(NETWORK_TYPES, **STUDENT_TYPES)
# Properties of each type in Heat's resource schema (the ones a course template could use); a typo fails.
HEAT_PROPERTIES = {
    "OS::Neutron::Net": {"name", "admin_state_up", "shared", "port_security_enabled", "value_specs", "tags"},
    "OS::Neutron::Subnet": {"name", "network", "cidr", "ip_version", "enable_dhcp", "dns_nameservers",
                            "gateway_ip", "allocation_pools", "host_routes", "tags"},
    "OS::Neutron::Router": {"name", "external_gateway_info", "admin_state_up", "tags"},
    "OS::Neutron::RouterInterface": {"router", "subnet", "port"},
    "OS::Neutron::SecurityGroup": {"name", "description", "rules"},
    "OS::Nova::KeyPair": {"name", "public_key", "save_private_key", "type", "user"},
    "OS::Neutron::Port": {"name", "network", "fixed_ips", "security_groups", "admin_state_up", "tags"},
    "OS::Nova::Server": {"name", "image", "flavor", "key_name", "networks", "metadata", "user_data_format",
                         "user_data", "config_drive"},
    "OS::Neutron::FloatingIP": {"floating_network", "port_id", "fixed_ip_address", "floating_ip_address"},
    "OS::Neutron::FloatingIPAssociation": {"floatingip_id", "port_id", "fixed_ip_address"},
}
RULE_KEYS = {"direction", "ethertype", "port_range_min", "port_range_max", "protocol", "remote_mode",
             "remote_group_id", "remote_ip_prefix"}
STUDENT_OUTPUTS = {"floating_ip", "url", "server_id"}


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    """{name: public key line}; keys.private[name] is the private key file beside it."""
    folder = tmp_path_factory.mktemp("keys")
    made = KeyPairs()
    for name in ("ab12", "admin"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", str(folder / name)],
                       check=True)
        made[name] = (folder / (name + ".pub")).read_text().strip()
        made.private[name] = folder / name
    return made


class KeyPairs(dict):
    """Public key lines by name, with the private key files in .private."""

    def __init__(self):
        super().__init__()
        self.private = {}


@pytest.fixture(scope="module")
def render(tmp_path_factory, keys):
    """render(name, **extra_vars) -> (exit status, output folder, stdout+stderr). A render is done once per
    name and settings; render.again(...) runs the playbook again."""
    if not shutil.which("ansible-playbook"):
        pytest.fail("ansible-playbook not on PATH: run through ./coursevm test")
    folder = tmp_path_factory.mktemp("heat")
    roster = folder / "roster.csv"
    roster.write_text("student_id,name,email,ssh_public_key\n"
                      "ab12,Ada Byron,ada@example.edu,%s\n"
                      "cd34,\"Hopper, Grace\",grace@example.edu,\n" % keys["ab12"])
    env = dict(os.environ, ANSIBLE_NOCOLOR="1")

    def run(name, extra_json, verbosity=0):
        out = folder / name
        settings = {"cohort_course": COURSE, "cohort_roster": str(roster), "cohort_heat_dir": str(out),
                    "cohort_image": "course-2026", "cohort_flavor": "m1.course",
                    "cohort_admin_public_keys": [keys["admin"]]}
        settings.update(json.loads(extra_json))
        proc = subprocess.run(["ansible-playbook", "-i", str(ROOT / "inventory" / "example"),
                               str(ROOT / "playbooks" / "heat_stack.yml"), "-e", json.dumps(settings)],
                              capture_output=True, text=True, env=dict(env, ANSIBLE_VERBOSITY=str(verbosity)),
                              timeout=600, check=False, cwd=ROOT)
        return proc.returncode, out, proc.stdout + proc.stderr

    once = functools.lru_cache(maxsize=None)(run)

    def rendered(name="out", **extra):
        return once(name, json.dumps(extra, sort_keys=True))

    rendered.again = lambda name, **extra: run(name, json.dumps(extra, sort_keys=True))
    # At -vvv, as a CI log keeps a run (issue 14).
    rendered.vvv = lambda name, **extra: run(name, json.dumps(extra, sort_keys=True), 3)
    rendered.folder = folder
    return rendered


def load(out, name):
    return yaml.safe_load((out / name).read_text())


def references(node):
    """Every (function, argument) of get_resource, get_param and get_attr in a template fragment."""
    found = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("get_resource", "get_param", "get_attr"):
                found.append((key, value))
            found.extend(references(value))
    elif isinstance(node, list):
        for item in node:
            found.extend(references(item))
    return found


def check_template(template, types):
    """The checks every template passes: version, resource types, known properties, every reference and
    dependency resolving, parameters that all have a default (Launch Stack can use the file alone)."""
    assert set(template) <= {"heat_template_version", "description", "parameters", "resources", "outputs"}
    assert str(template["heat_template_version"]) == "2018-08-31"
    resources = template["resources"]
    assert dict((name, r["type"]) for name, r in resources.items()) == types
    for name, resource in resources.items():
        assert set(resource) <= {"type", "properties", "depends_on"}, name
        assert set(resource["properties"]) <= HEAT_PROPERTIES[resource["type"]], name
        for target in resource.get("depends_on", []):
            assert target in resources, (name, target)
    for function, argument in references(template["resources"]) + references(template["outputs"]):
        target = argument[0] if function == "get_attr" else argument
        pool = template["parameters"] if function == "get_param" else resources
        assert target in pool, (function, argument)
    for name, parameter in template["parameters"].items():
        assert parameter["type"] == "string" and "default" in parameter, name


def ingress_ports(template):
    """The security group's ports; it admits tcp only, from address prefixes only (no remote group)."""
    rules = template["resources"]["security_group"]["properties"]["rules"]
    for rule in rules:
        assert set(rule) <= RULE_KEYS
        assert rule["direction"] == "ingress" and rule["protocol"] == "tcp" and rule["ethertype"] == "IPv4"
        assert rule["port_range_min"] == rule["port_range_max"]
        assert "remote_group_id" not in rule and "remote_mode" not in rule and rule["remote_ip_prefix"]
    return sorted(r["port_range_min"] for r in rules)


def check_network(template, expected_names):
    """Router gateway on the external network, interface on the subnet, names from resource_names."""
    resources = template["resources"]
    assert resources["router"]["properties"]["external_gateway_info"]["network"] == {"get_param": "external_network"}
    assert resources["router_interface"]["properties"] == {"router": {"get_resource": "router"},
                                                           "subnet": {"get_resource": "subnet"}}
    assert resources["subnet"]["properties"]["network"] == {"get_resource": "network"}
    assert resources["subnet"]["properties"]["cidr"] == {"get_param": "cidr"}
    for kind in names.NETWORK_KINDS:
        assert resources[kind]["properties"]["name"] == expected_names[kind], kind
    assert resources["security_group"]["properties"]["name"] != "default"


def check_student(template, keys, student, expected_names, key):
    """Keypair, server and floating IP as every provisioned student gets them."""
    resources = template["resources"]
    server = resources["server"]["properties"]
    assert resources["keypair"]["properties"] == {"name": expected_names["keypair"],
                                                  "public_key": {"get_param": "public_key"}}
    assert template["parameters"]["public_key"]["default"] == key
    assert server["name"] == expected_names["server"]
    assert server["networks"] == [{"port": {"get_resource": "port"}}]
    assert server["key_name"] == {"get_resource": "keypair"}
    assert server["metadata"] == {"coursevm_course": COURSE, "coursevm_student": student}
    assert server["image"] == {"get_param": "image"} and server["flavor"] == {"get_param": "flavor"}
    assert resources["floating_ip"]["properties"] == {"floating_network": {"get_param": "external_network"}}
    assert resources["floating_ip_association"]["properties"] == {"floatingip_id": {"get_resource": "floating_ip"},
                                                                  "port_id": {"get_resource": "port"}}
    assert "server" in resources["floating_ip_association"]["depends_on"]
    params = template["parameters"]
    assert params["image"]["default"] == "course-2026" and params["flavor"]["default"] == "m1.course"
    assert params["external_network"]["default"] == "public"
    assert set(template["outputs"]) == STUDENT_OUTPUTS


# --- isolated: one template per student with the whole environment ---------------------------------------

def test_isolated_one_template_per_student_with_the_whole_topology(render, keys):
    status, out, log = render("isolated", cohort_topology="isolated")
    assert status == 0, log
    assert sorted(p.name for p in out.iterdir()) == ["tm351-ab12.yaml", "tm351-cd34.yaml"]
    template = load(out, "tm351-ab12.yaml")
    check_template(template, ISOLATED_TYPES)
    assert ingress_ports(template) == [22, 80]
    assert template["parameters"]["cidr"]["default"] == "192.168.50.0/24"
    # The student's own network kinds, named as provisioning names them.
    expected = names.resource_names(COURSE, "ab12", "isolated")
    assert expected["network"] == "tm351-ab12-net"
    check_network(template, expected)
    check_student(template, keys, "ab12", expected, keys["ab12"])
    resources = template["resources"]
    # The port on the student's network with only the student's group; the floating IP associated after the
    # router interface exists.
    assert resources["port"]["properties"] == {"network": {"get_resource": "network"},
                                               "fixed_ips": [{"subnet": {"get_resource": "subnet"}}],
                                               "security_groups": [{"get_resource": "security_group"}]}
    assert "router_interface" in resources["floating_ip_association"]["depends_on"]


@pytest.mark.parametrize("topology", ["isolated", "shared"])
def test_user_data_is_the_course_servers(render, keys, topology):
    status, out, log = render(topology, cohort_topology=topology)
    assert status == 0, log
    server = load(out, "tm351-ab12.yaml")["resources"]["server"]["properties"]
    assert server["user_data_format"] == "RAW"
    assert server["user_data"] == cloud_init.user_data(COURSE, "ab12", [keys["ab12"], keys["admin"]])
    config = yaml.safe_load(server["user_data"])
    assert server["user_data"].startswith("#cloud-config\n")
    assert config["ssh_authorized_keys"] == [keys["ab12"], keys["admin"]]
    assert config["ssh_pwauth"] is False
    # A student without a key: the course team's key is the keypair and the only key installed.
    other = load(out, "tm351-cd34.yaml")
    assert other["parameters"]["public_key"]["default"] == keys["admin"]
    assert yaml.safe_load(other["resources"]["server"]["properties"]["user_data"])["ssh_authorized_keys"] == [
        keys["admin"]]


def test_isolated_https_adds_443_and_per_student_cidrs(render):
    status, out, log = render("isolated-https", cohort_topology="isolated", cohort_https=True,
                              cohort_cidr="10.60.0.0/22", cohort_cidr_prefix=24)
    assert status == 0, log
    first = load(out, "tm351-ab12.yaml")
    second = load(out, "tm351-cd34.yaml")
    assert ingress_ports(first) == [22, 80, 443]
    assert first["parameters"]["cidr"]["default"] == "10.60.0.0/24"
    assert second["parameters"]["cidr"]["default"] == "10.60.1.0/24"


# --- shared (the default): the course's network once, and per student only what is the student's --------

def test_shared_course_template_is_the_course_network(render):
    status, out, log = render("shared")  # no cohort_topology: shared is the default
    assert status == 0, log
    assert sorted(p.name for p in out.iterdir()) == ["tm351-ab12.yaml", "tm351-cd34.yaml", "tm351-course.yaml"]
    course = load(out, "tm351-course.yaml")
    check_template(course, NETWORK_TYPES)
    assert set(course["parameters"]) == {"external_network", "cidr"}
    assert course["parameters"]["external_network"]["default"] == "public"
    assert course["parameters"]["cidr"]["default"] == "192.168.50.0/24"
    expected = names.resource_names(COURSE)
    assert expected == {"network": "tm351-net", "subnet": "tm351-subnet", "router": "tm351-router",
                        "security_group": "tm351-sg"}
    check_network(course, expected)
    # Only 22 and 80 in, from the given prefixes, and no rule with a remote group: students do not reach
    # each other through the group they share.
    assert ingress_ports(course) == [22, 80]
    outputs = course["outputs"]
    assert outputs["network_id"]["value"] == {"get_resource": "network"}
    assert outputs["network_name"]["value"] == {"get_attr": ["network", "name"]}
    assert outputs["security_group_id"]["value"] == {"get_resource": "security_group"}
    assert outputs["security_group_name"]["value"] == {"get_attr": ["security_group", "show", "name"]}


def test_shared_student_templates_use_the_course_network_and_group(render, keys):
    status, out, log = render("shared")
    assert status == 0, log
    for student, key in (("ab12", keys["ab12"]), ("cd34", keys["admin"])):
        template = load(out, "tm351-%s.yaml" % student)
        check_template(template, STUDENT_TYPES)
        expected = names.resource_names(COURSE, student, "shared")
        assert expected["server"] == expected["keypair"] == "tm351-" + student
        check_student(template, keys, student, expected, key)
        params = template["parameters"]
        assert set(params) == {"image", "flavor", "external_network", "network", "security_group", "public_key"}
        # The course's network and security group, by the names the course's stack gives them.
        assert params["network"]["default"] == expected["network"] == "tm351-net"
        assert params["security_group"]["default"] == expected["security_group"] == "tm351-sg"
        # The port carries the course group and only it (not the project's `default`).
        assert template["resources"]["port"]["properties"] == {"network": {"get_param": "network"},
                                                               "security_groups": [{"get_param": "security_group"}]}


def test_shared_https_adds_443_to_the_course_group(render):
    status, out, log = render("shared-https", cohort_https=True, cohort_cidr="10.60.0.0/22",
                              cohort_web_remote_cidr="10.0.0.0/8")
    assert status == 0, log
    course = load(out, "tm351-course.yaml")
    assert ingress_ports(course) == [22, 80, 443]
    assert course["parameters"]["cidr"]["default"] == "10.60.0.0/22"
    prefixes = dict((r["port_range_min"], r["remote_ip_prefix"])
                    for r in course["resources"]["security_group"]["properties"]["rules"])
    assert prefixes == {22: "0.0.0.0/0", 80: "10.0.0.0/8", 443: "10.0.0.0/8"}
    student = load(out, "tm351-ab12.yaml")
    assert "security_group" not in student["resources"] and "cidr" not in student["parameters"]


# --- both ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("topology", ["isolated", "shared"])
def test_rerun_rewrites_nothing(render, topology):
    render.again("again-" + topology, cohort_topology=topology)
    status, unused, log = render.again("again-" + topology, cohort_topology=topology)
    assert status == 0, log
    assert "changed=0" in log


@pytest.mark.parametrize("extra, expected", [
    ({"cohort_cidr": "10.0.0.1/24"}, "has host bits set"),
    ({"cohort_course": "TM351"}, "cohort_course 'TM351' must be 1-20 characters"),
    ({"cohort_topology": "star"}, "cohort_topology must be shared"),
    ({"cohort_boot_from_volume": True}, "cohort_boot_from_volume"),
    ({"cohort_student_volume_size": 5}, "cohort_student_volume_size"),
    ({"cohort_student_volume_size": "five"}, "cohort_student_volume_size"),
])
def test_bad_input_writes_nothing(render, extra, expected):
    status, out, log = render.again("bad", **extra)
    assert status != 0
    assert expected in log
    assert not out.exists()


def test_shared_student_named_course_is_refused(render):
    roster = render.folder / "course-roster.csv"
    roster.write_text("student_id,name,email,ssh_public_key\ncourse,Carl Course,carl@example.edu,\n")
    status, out, log = render.again("bad-course", cohort_roster=str(roster))
    assert status != 0
    assert "tm351-course.yaml is the course network's template" in log
    assert not out.exists()


# --- -vvv: nothing secret printed (issue 14) ----------------------------------------------------------------

def private_keys(keys):
    """{place: line} of the private keys beside the public ones the runs are given: the sweep's secrets."""
    found = {}
    for path in keys.private.values():
        found.update(secret_sweep.private_key(path))
    assert len(found) >= 8  # two ed25519 keys of several lines each: a sweep that looks for nothing passes all
    return found


def assert_vvv(log):
    # -vvv shows each task's path and the facts set: without them this is not the run a CI log keeps.
    assert "task path:" in log and "ansible_facts:" in log, log


def test_a_render_at_vvv_prints_no_private_key(render, keys):
    status, out, log = render.vvv("vvv", cohort_topology="isolated")
    assert status == 0, log
    assert_vvv(log)
    assert sorted(p.name for p in out.iterdir()) == ["tm351-ab12.yaml", "tm351-cd34.yaml"]
    assert keys["ab12"].split()[1] in log  # a public key is no secret, and -vvv does show what the run read
    assert secret_sweep.printed(log, private_keys(keys)) == []


def test_a_private_key_as_the_course_teams_key_is_refused_unprinted_at_vvv(render, keys):
    """A private key pasted into cohort_admin_public_keys: refused by position before any template is written,
    and not shown by the -vvv run, not even in the settings fact it gathers first."""
    status, out, log = render.vvv("vvv-admin-private", cohort_admin_public_keys=[
        keys["admin"], keys.private["admin"].read_text()])
    assert status != 0
    assert_vvv(log)
    assert "cohort_admin_public_keys must be OpenSSH public key lines" in log and "item 1 " in log, log
    assert not out.exists()
    assert secret_sweep.printed(log, private_keys(keys)) == []


def test_a_private_key_in_the_roster_is_refused_unprinted_at_vvv(render, keys):
    roster = render.folder / "private-key-roster.csv"
    with roster.open("w", newline="") as handle:
        csv.writer(handle).writerows([("student_id", "name", "email", "ssh_public_key"),
                                      ("ab12", "Ada Byron", "ada@example.edu", keys.private["ab12"].read_text())])
    status, out, log = render.vvv("vvv-roster-private", cohort_roster=str(roster))
    assert status != 0
    assert_vvv(log)
    assert "the SSH public key of 'ab12' is a private key" in log, log
    assert not out.exists()
    assert secret_sweep.printed(log, private_keys(keys)) == []
