"""playbooks/heat_stack.yml writes one HOT template per student; the templates are parsed and checked.

Heat does not run on the local cloud, so the template is checked the way Heat's parser would start: it is
YAML, its resources have the expected types and properties, and every get_resource / get_param / get_attr
names something the template defines. Nothing is sent to a cloud.
"""

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
RESOURCE_TYPES = {
    "network": "OS::Neutron::Net",
    "subnet": "OS::Neutron::Subnet",
    "router": "OS::Neutron::Router",
    "router_interface": "OS::Neutron::RouterInterface",
    "security_group": "OS::Neutron::SecurityGroup",
    "keypair": "OS::Nova::KeyPair",
    "port": "OS::Neutron::Port",
    "server": "OS::Nova::Server",
    "floating_ip": "OS::Neutron::FloatingIP",
    "floating_ip_association": "OS::Neutron::FloatingIPAssociation",
}


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    folder = tmp_path_factory.mktemp("keys")
    made = {}
    for name in ("ab12", "admin"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", str(folder / name)],
                       check=True)
        made[name] = (folder / (name + ".pub")).read_text().strip()
    return made


@pytest.fixture(scope="module")
def render(tmp_path_factory, keys):
    """render(**extra_vars) -> (exit status, output folder, stdout+stderr)."""
    if not shutil.which("ansible-playbook"):
        pytest.fail("ansible-playbook not on PATH: run through ./coursevm test")
    folder = tmp_path_factory.mktemp("heat")
    roster = folder / "roster.csv"
    roster.write_text("student_id,name,email,ssh_public_key\n"
                      "ab12,Ada Byron,ada@example.edu,%s\n"
                      "cd34,\"Hopper, Grace\",grace@example.edu,\n" % keys["ab12"])
    env = dict(os.environ, ANSIBLE_NOCOLOR="1")

    def run(name="out", **extra):
        out = folder / name
        settings = {"cohort_course": "tm351", "cohort_roster": str(roster), "cohort_heat_dir": str(out),
                    "cohort_image": "course-2026", "cohort_flavor": "m1.course",
                    "cohort_admin_public_keys": [keys["admin"]]}
        settings.update(extra)
        proc = subprocess.run(["ansible-playbook", "-i", str(ROOT / "inventory" / "example"),
                               str(ROOT / "playbooks" / "heat_stack.yml"), "-e", json.dumps(settings)],
                              capture_output=True, text=True, env=env, timeout=600, check=False, cwd=ROOT)
        return proc.returncode, out, proc.stdout + proc.stderr

    return run


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


def ingress_ports(template):
    rules = template["resources"]["security_group"]["properties"]["rules"]
    assert all(r["direction"] == "ingress" and r["protocol"] == "tcp" for r in rules)
    assert all(r["port_range_min"] == r["port_range_max"] for r in rules)
    return sorted(r["port_range_min"] for r in rules)


def test_one_template_per_student_with_the_whole_topology(render, keys):
    status, out, log = render()
    assert status == 0, log
    assert sorted(p.name for p in out.iterdir()) == ["tm351-ab12.yaml", "tm351-cd34.yaml"]
    template = yaml.safe_load((out / "tm351-ab12.yaml").read_text())
    assert str(template["heat_template_version"]) == "2018-08-31"
    resources = template["resources"]
    assert dict((name, r["type"]) for name, r in resources.items()) == RESOURCE_TYPES
    assert ingress_ports(template) == [22, 80]
    # Parameters carry working defaults for the dashboard's Launch Stack form.
    params = template["parameters"]
    assert params["image"]["default"] == "course-2026" and params["flavor"]["default"] == "m1.course"
    assert params["external_network"]["default"] == "public" and params["cidr"]["default"] == "192.168.50.0/24"
    assert params["public_key"]["default"] == keys["ab12"]
    # Wiring: router gateway on the external network, interface on the subnet, the port on the network with
    # only the student's group, the floating IP associated with that port after the router interface.
    assert resources["router"]["properties"]["external_gateway_info"]["network"] == {"get_param": "external_network"}
    assert resources["router_interface"]["properties"] == {"router": {"get_resource": "router"},
                                                           "subnet": {"get_resource": "subnet"}}
    assert resources["port"]["properties"]["security_groups"] == [{"get_resource": "security_group"}]
    assert resources["server"]["properties"]["networks"] == [{"port": {"get_resource": "port"}}]
    assert resources["server"]["properties"]["key_name"] == {"get_resource": "keypair"}
    association = resources["floating_ip_association"]
    assert association["properties"] == {"floatingip_id": {"get_resource": "floating_ip"},
                                         "port_id": {"get_resource": "port"}}
    assert "router_interface" in association["depends_on"]
    # Names never clash with what provision.yml creates.
    assert resources["network"]["properties"]["name"] == "heat-tm351-ab12-net"
    # Every reference resolves.
    for function, argument in references(template["resources"]) + references(template["outputs"]):
        target = argument[0] if function == "get_attr" else argument
        pool = template["parameters"] if function == "get_param" else resources
        assert target in pool, (function, argument)
    assert set(template["outputs"]) == {"floating_ip", "url", "server_id"}


def test_user_data_is_the_course_servers(render, keys):
    status, out, log = render()
    assert status == 0, log
    server = yaml.safe_load((out / "tm351-ab12.yaml").read_text())["resources"]["server"]["properties"]
    assert server["user_data_format"] == "RAW"
    config = yaml.safe_load(server["user_data"])
    assert server["user_data"].startswith("#cloud-config\n")
    assert config["ssh_authorized_keys"] == [keys["ab12"], keys["admin"]]
    assert config["ssh_pwauth"] is False
    # A student without a key: the course team's key is the keypair and the only key installed.
    other = yaml.safe_load((out / "tm351-cd34.yaml").read_text())
    assert other["parameters"]["public_key"]["default"] == keys["admin"]
    assert yaml.safe_load(other["resources"]["server"]["properties"]["user_data"])["ssh_authorized_keys"] == [
        keys["admin"]]


def test_https_adds_443_and_per_student_cidrs(render):
    status, out, log = render("https", cohort_https=True, cohort_cidr="10.60.0.0/22", cohort_cidr_prefix=24)
    assert status == 0, log
    first = yaml.safe_load((out / "tm351-ab12.yaml").read_text())
    second = yaml.safe_load((out / "tm351-cd34.yaml").read_text())
    assert ingress_ports(first) == [22, 80, 443]
    assert first["parameters"]["cidr"]["default"] == "10.60.0.0/24"
    assert second["parameters"]["cidr"]["default"] == "10.60.1.0/24"


def test_rerun_rewrites_nothing(render):
    render("again")
    status, unused, log = render("again")
    assert status == 0, log
    assert "changed=0" in log


@pytest.mark.parametrize("extra, expected", [
    ({"cohort_cidr": "10.0.0.1/24"}, "has host bits set"),
    ({"cohort_course": "TM351"}, "cohort_course 'TM351' must be 1-20 characters"),
])
def test_bad_input_writes_nothing(render, extra, expected):
    status, out, log = render("bad", **extra)
    assert status != 0
    assert expected in log
    assert not out.exists()
