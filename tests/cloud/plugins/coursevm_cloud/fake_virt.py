"""Nova's fake hypervisor, sized like a small real host, with snapshots that produce an image.

Nova loads compute drivers only from under `nova.virt`, so `nova_allinone` registers this module as
`nova.virt.coursevm_fake` and nova.conf says `compute_driver = coursevm_fake.CourseFakeDriver`.

- Capacity is finite (16 vCPU, 64 GiB RAM, 1000 GB disk; placement applies its allocation ratios),
  so a flavor larger than the host is refused by the scheduler with "No valid host was found", as on
  a real cloud. The stock fake driver reports 1000 vCPU / 800 GB RAM and accepts nearly anything.
- The stock fake snapshot uploads no data, so the snapshot image stays `queued` for ever. Here it
  uploads a small real qcow2 (Glance inspects uploaded data and refuses bytes that do not match the
  declared disk format), so the image becomes `active` like on a real cloud.
- It is based on FakeDriverWithoutFakeNodes: one stable node whose identity survives restarts.
"""

import os
import subprocess
import tempfile
import time

from nova.compute import task_states
from nova import exception
from nova.image import glance
from nova.virt import fake

SNAPSHOT_DATA_ENV = "COURSEVM_CLOUD_SNAPSHOT_IMAGE"


def _snapshot_data_path():
    """A real (tiny) qcow2 file: the one cloud.py made, or one made here on first use."""
    path = os.environ.get(SNAPSHOT_DATA_ENV)
    if path and os.path.exists(path):
        return path
    path = os.path.join(tempfile.gettempdir(), "coursevm-fake-snapshot.qcow2")
    if not os.path.exists(path):
        tmp = path + ".%d" % os.getpid()
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", tmp, "1G"], check=True)
        os.replace(tmp, path)
    return path


class CourseFakeDriver(fake.FakeDriverWithoutFakeNodes):
    vcpus = 16
    memory_mb = 65536
    local_gb = 1000

    capabilities = dict(
        fake.FakeDriverWithoutFakeNodes.capabilities,
        supports_image_type_qcow2=True,
    )

    def __init__(self, virtapi, read_only=False):
        super().__init__(virtapi, read_only)
        self._image_api = glance.API()

    def get_host_uptime(self):
        # The stock fake driver raises NotImplementedError, which `openstack hypervisor show` reports.
        with open("/proc/uptime") as fh:
            seconds = float(fh.read().split()[0])
        return " %s up %d min,  load average: 0.00, 0.00, 0.00" % (time.strftime("%H:%M:%S"), seconds // 60)

    def snapshot(self, context, instance, image_id, update_task_state):
        if instance.uuid not in self.instances:
            raise exception.InstanceNotRunning(instance_id=instance.uuid)
        snapshot = self._image_api.get(context, image_id)
        update_task_state(task_state=task_states.IMAGE_PENDING_UPLOAD)
        update_task_state(task_state=task_states.IMAGE_UPLOADING,
                          expected_state=task_states.IMAGE_PENDING_UPLOAD)
        # The same metadata the libvirt driver sends with its upload.
        metadata = {
            "status": "active",
            "name": snapshot["name"],
            "disk_format": "qcow2",
            "container_format": "bare",
            "properties": {
                "image_location": "snapshot",
                "image_state": "available",
                "owner_id": instance.project_id,
            },
        }
        with open(_snapshot_data_path(), "rb") as data:
            self._image_api.update(context, image_id, metadata, data, purge_props=False)
