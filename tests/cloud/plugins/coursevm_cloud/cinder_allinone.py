"""All of Cinder in one uwsgi process: the block-storage API plus cinder-scheduler and cinder-volume,
on oslo.messaging's in-process fake:// transport (which only works inside one process: no RabbitMQ),
native threads (no eventlet), in the style of coursevm_cloud.nova_allinone.

Config: $COURSEVM_CINDER_CONF (one file; cinder.wsgi.api reads only sys.argv, there is no config-dir variable).
"""

import os
import sys

os.environ.setdefault("OS_CINDER_DISABLE_EVENTLET_PATCHING", "1")
# Under uwsgi, sys.executable is uwsgi itself; oslo.concurrency runs `sys.executable -m oslo_concurrency.prlimit`
# around every qemu-img call (image to volume), which uwsgi refuses ("unable to load configuration").
sys.executable = os.path.join(sys.prefix, "bin", "python")
from cinder import monkey_patch  # noqa: E402  first: chooses eventlet vs threading

monkey_patch.patch(backend="threading")

import logging as python_logging  # noqa: E402

from oslo_config import cfg  # noqa: E402
from oslo_log import log as logging  # noqa: E402
import os_brick  # noqa: E402

from cinder.common import config  # noqa: E402,F401
from cinder.common import constants  # noqa: E402
from cinder import coordination  # noqa: E402
from cinder import i18n  # noqa: E402
i18n.enable_lazy()
from cinder import objects  # noqa: E402
from cinder import rpc  # noqa: E402
from cinder import service  # noqa: E402
from cinder import version  # noqa: E402
from oslo_service import wsgi  # noqa: E402

CONF = cfg.CONF
CONF.register_opt(cfg.StrOpt("cluster"))  # cinder.cmd.volume registers it; the manager reads it
LOG = logging.getLogger("coursevm_cinder.allinone")

objects.register_all()
CONF(["--config-file", os.environ["COURSEVM_CINDER_CONF"]], project="cinder",
     version=version.version_string())
logging.setup(CONF, "cinder")
python_logging.captureWarnings(True)
config.set_middleware_defaults()

# We run as root: privileged calls (os-brick, cinder.privsep) run in this process, no sudo/privsep-helper.
import cinder.privsep  # noqa: E402
import os_brick.privileged  # noqa: E402
for _ctx in (cinder.privsep.sys_admin_pctxt, os_brick.privileged.default,
             os_brick.privileged.brick_privsep_hide_output):
    _ctx.set_client_mode(False)
os_brick.setup(CONF)

# cinder.image.image_utils still hands image files to eventlet's tpool (tpool.Proxy, tpool.execute) even in
# native-thread mode, where cinder.utils.tpool_wrap already does nothing. Two image-to-volume copies at once (a
# cohort booting from volumes) then deadlock inside eventlet's hub. Threads need no proxy: call straight through.
from cinder.image import image_utils  # noqa: E402


class _NoTpool(object):
    @staticmethod
    def Proxy(obj, *unused_args, **unused_kwargs):  # noqa: N802  eventlet's name
        return obj

    @staticmethod
    def execute(fn, *args, **kwargs):
        return fn(*args, **kwargs)


image_utils.tpool = _NoTpool

coordination.COORDINATOR.start()
rpc.init(CONF)
application = wsgi.Loader(CONF).load_app(name="osapi_volume")

SERVICES = []
_sched = service.Service.create(binary=constants.SCHEDULER_BINARY)
_sched.start()
SERVICES.append(_sched)
for backend in filter(None, CONF.enabled_backends):
    _svc = service.Service.create(host="%s@%s" % (CONF.host, backend), service_name=backend,
                                  binary=constants.VOLUME_BINARY, coordination=True)
    _svc.start()
    SERVICES.append(_svc)
LOG.info("cinder api + scheduler + %d volume service(s) in one process", len(SERVICES) - 1)
