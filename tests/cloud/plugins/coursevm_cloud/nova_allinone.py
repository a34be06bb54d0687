"""All of Nova in one process: the compute API (served by uwsgi) plus conductor, scheduler and compute.

uwsgi loads this module (`--module coursevm_cloud.nova_allinone:application`). The four services talk
over oslo.messaging's in-process `fake://` transport, which only works inside one process — hence one
process, and no RabbitMQ. Nova runs in its native threading mode (no eventlet), as its own
nova-compute/nova-conductor/nova-scheduler/nova-api-wsgi entry points do in this release.
The configuration comes from $OS_NOVA_CONFIG_DIR (api-paste.ini, nova.conf), as for nova's own WSGI app.
"""

from nova import monkey_patch  # must come first: it decides threading vs eventlet

monkey_patch.patch(backend="threading")

import sys  # noqa: E402

from coursevm_cloud import fake_virt  # noqa: E402

# Nova imports compute drivers only as nova.virt.<compute_driver>.
sys.modules["nova.virt.coursevm_fake"] = fake_virt

import os_vif  # noqa: E402
from oslo_log import log as logging  # noqa: E402

from nova.api.openstack import wsgi_app  # noqa: E402
from nova.compute import rpcapi as compute_rpcapi  # noqa: E402
from nova.conductor import rpcapi as conductor_rpcapi  # noqa: E402
from nova import objects  # noqa: E402
from nova.scheduler import rpcapi as scheduler_rpcapi  # noqa: E402
from nova import service  # noqa: E402

LOG = logging.getLogger("coursevm_cloud.nova_allinone")

# Parses the configuration, sets up logging and the database, registers the API service.
application = wsgi_app.init_application("osapi_compute", "nova-api-os-compute")

objects.Service.enable_min_version_cache()
os_vif.initialize()

SERVICES = []
for _binary, _topic, _topic_alt in (
    ("nova-conductor", conductor_rpcapi.RPC_TOPIC, None),
    ("nova-scheduler", scheduler_rpcapi.RPC_TOPIC, None),
    ("nova-compute", compute_rpcapi.RPC_TOPIC, compute_rpcapi.RPC_TOPIC_ALT),
):
    _service = service.Service.create(binary=_binary, topic=_topic, topic_alt=_topic_alt)
    _service.start()
    SERVICES.append(_service)
    LOG.info("%s started in the API process", _binary)
