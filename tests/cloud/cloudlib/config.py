"""Configuration written by `start`: the services' configuration files, cloud.json for bootstrap.py,
clouds.yaml; and the state stamp that decides whether the baseline still fits them."""

import json
import shutil

from . import common
from .common import (ADMIN_PASSWORD, BOOTSTRAP, COURSE_PASSWORD, COURSE_PROJECT, COURSE_USER, DB_PASSWORD, DB_PORT,
                     DB_USER, HOST, NOVA_HOST, PLUGINS, PORTS, REGION, SERVICE_PASSWORD, STATE_VERSION, sha256_of)
from .install import deps_stamp


def db_url(name):
    return f"mysql+pymysql://{DB_USER}:{DB_PASSWORD}@{HOST}:{DB_PORT}/{name}?charset=utf8mb4"


def auth_section(section, user, extra=""):
    return f"""
[{section}]
auth_url = http://{HOST}:{PORTS['keystone']}
auth_type = password
project_domain_name = Default
user_domain_name = Default
project_name = service
username = {user}
password = {SERVICE_PASSWORD}
region_name = {REGION}
{extra}"""


def authtoken(user):
    return auth_section("keystone_authtoken", user, f"www_authenticate_uri = http://{HOST}:{PORTS['keystone']}\n")


def config_files():
    """{path: text} of every configuration file. Pure: the baseline stamp hashes the result."""
    data = str(common.DATA)
    files = {}
    files[common.ETC / "keystone" / "keystone.conf"] = f"""
[database]
connection = {db_url('keystone')}

[token]
provider = fernet

[fernet_tokens]
key_repository = {data}/keystone/fernet-keys

[fernet_receipts]
key_repository = {data}/keystone/fernet-keys

[credential]
key_repository = {data}/keystone/credential-keys

[identity]
# Cheap password checks on a test rig (the default bcrypt cost makes every token request slow).
password_hash_rounds = 4

[cache]
# Every OpenStack module run authenticates anew and every service validates the new token: Keystone's cache keeps
# the catalog, role assignments and validated tokens in the process instead of rebuilding them from MariaDB for
# each request. Keystone runs as one process here, so an in-memory cache stays consistent with its writes.
enabled = true
backend = dogpile.cache.memory
"""
    files[common.ETC / "glance" / "glance-api.conf"] = f"""
[DEFAULT]
enabled_backends = fs:file

[database]
connection = {db_url('glance')}

[paste_deploy]
flavor = keystone

[glance_store]
default_backend = fs

[fs]
filesystem_store_datadir = {data}/glance/images/

[os_glance_staging_store]
filesystem_store_datadir = {data}/glance/staging/

[os_glance_tasks_store]
filesystem_store_datadir = {data}/glance/tasks/

[oslo_concurrency]
lock_path = {data}/glance/lock
{authtoken('glance')}"""
    files[common.ETC / "placement" / "placement.conf"] = f"""
[placement_database]
connection = {db_url('placement')}

[api]
auth_strategy = keystone
{authtoken('placement')}"""
    files[common.ETC / "neutron" / "neutron.conf"] = f"""
[DEFAULT]
core_plugin = ml2
service_plugins = router
auth_strategy = keystone
allow_overlapping_ips = true
# No agents and no RPC server: messages go to oslo.messaging's in-process fake transport.
transport_url = fake://
dhcp_agent_notification = false
notify_nova_on_port_status_changes = true
notify_nova_on_port_data_changes = true
api_paste_config = {common.ETC}/neutron/api-paste.ini
state_path = {data}/neutron

[database]
connection = {db_url('neutron')}

[oslo_concurrency]
lock_path = {data}/neutron/lock

[oslo_messaging_notifications]
driver = noop
{authtoken('neutron')}{auth_section('nova', 'nova')}"""
    files[common.ETC / "neutron" / "ml2_conf.ini"] = """
[ml2]
type_drivers = flat,vxlan
tenant_network_types = vxlan
mechanism_drivers = coursevm_noop
extension_drivers = port_security

[ml2_type_flat]
flat_networks = public

[ml2_type_vxlan]
vni_ranges = 1:1000
"""
    venv_etc = common.VENV / "etc" / "cinder"
    files[common.ETC / "cinder" / "cinder.conf"] = f"""
[DEFAULT]
host = {NOVA_HOST}
my_ip = {HOST}
state_path = {data}/cinder
auth_strategy = keystone
# API, scheduler and volume service share one process (coursevm_cloud.cinder_allinone).
transport_url = fake://
enabled_backends = files
api_paste_config = {venv_etc}/api-paste.ini
rootwrap_config = {venv_etc}/rootwrap.conf
# Without it every list call logs an ERROR.
resource_query_filters_file = {venv_etc}/resource_filters.json
glance_api_servers = http://{HOST}:{PORTS['glance']}
periodic_interval = 60
report_interval = 10
# The scheduler gets the volume service's capabilities at once (they share the process).
scheduler_driver_init_wait_time = 1

[database]
connection = {db_url('cinder')}

[oslo_concurrency]
lock_path = {data}/cinder/lock

[oslo_messaging_notifications]
driver = noop

[coordination]
backend_url = file://{data}/cinder/coordination

[files]
volume_driver = coursevm_cloud.cinder_files.FileVolumeDriver
volume_backend_name = coursevm-files
coursevm_volumes_dir = {data}/cinder/volumes
""" + authtoken("cinder") + auth_section("nova", "cinder") \
        + auth_section("service_user", "cinder", "send_service_user_token = true\n")
    files[common.ETC / "nova" / "nova.conf"] = f"""
[DEFAULT]
host = {NOVA_HOST}
my_ip = {HOST}
state_path = {data}/nova
instances_path = {data}/nova/instances
# Nova imports drivers from nova.virt only; nova_allinone registers ours there.
compute_driver = coursevm_fake.CourseFakeDriver
# API, conductor, scheduler and compute share one process and talk over the in-process fake transport.
transport_url = fake://
# Periodic tasks start at once: without this, host discovery may wait up to 60 s.
periodic_fuzzy_delay = 0

[api]
auth_strategy = keystone

[api_database]
connection = {db_url('nova_api')}

[database]
connection = {db_url('nova')}

[wsgi]
api_paste_config = {common.ETC}/nova/api-paste.ini

[scheduler]
discover_hosts_in_cells_interval = 2

[oslo_concurrency]
lock_path = {data}/nova/lock

[oslo_messaging_notifications]
driver = noop

[vnc]
enabled = false

[glance]
valid_interfaces = public
""" + authtoken("nova") + auth_section("placement", "placement", "valid_interfaces = public\n") \
        + auth_section("neutron", "neutron", "valid_interfaces = public\ndefault_floating_pool = public\n") \
        + auth_section("service_user", "nova", "send_service_user_token = true\n")\
        + auth_section("cinder", "nova", "os_region_name = RegionOne\ncatalog_info = block-storage:cinder:publicURL\n")
    return {path: text.lstrip("\n") for path, text in files.items()}


def write_config():
    for path, text in config_files().items():
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
    # Paste pipelines ship with the wheels (data files in the venv's etc/).
    for svc, name in (("nova", "api-paste.ini"), ("neutron", "api-paste.ini"), ("glance", "glance-api-paste.ini")):
        shutil.copyfile(common.VENV / "etc" / svc / name, common.ETC / svc / name)
    (common.ETC / "cloud.json").write_text(json.dumps({
        "auth_url": f"http://{HOST}:{PORTS['keystone']}/v3",
        "region": REGION,
        "ports": PORTS,
        "admin_password": ADMIN_PASSWORD,
        "service_password": SERVICE_PASSWORD,
        "course": {"project": COURSE_PROJECT, "user": COURSE_USER, "password": COURSE_PASSWORD},
        "image_file": str(common.IMAGE_FILE),
        "nova_host": NOVA_HOST,
    }, indent=1))


def state_stamp():
    text = "".join(f"{p}\n{t}" for p, t in sorted(config_files().items(), key=lambda kv: str(kv[0])))
    return sha256_of([BOOTSTRAP, PLUGINS], extra=STATE_VERSION + text + deps_stamp())


def write_clouds_yaml():
    def cloud(name, user, password, project):
        return (f"  {name}:\n"
                f"    auth:\n"
                f"      auth_url: http://{HOST}:{PORTS['keystone']}/v3\n"
                f"      username: {user}\n"
                f"      password: {password}\n"
                f"      project_name: {project}\n"
                f"      user_domain_name: Default\n"
                f"      project_domain_name: Default\n"
                f"    region_name: {REGION}\n"
                f"    interface: public\n"
                f"    identity_api_version: 3\n")
    common.CLOUDS_YAML.write_text("# Written by tests/cloud/cloud.py start: the local test cloud on loopback.\n"
                                  "clouds:\n"
                                  + cloud("coursevm-local-admin", "admin", ADMIN_PASSWORD, "admin")
                                  + cloud("coursevm-local", COURSE_USER, COURSE_PASSWORD, COURSE_PROJECT))
    common.CLOUDS_YAML.chmod(0o644)
