"""Nova's fake hypervisor, sized like a small real host, with snapshots that produce an image.

Nova loads compute drivers only from under `nova.virt`, so `nova_allinone` registers this module as
`nova.virt.coursevm_fake` and nova.conf says `compute_driver = coursevm_fake.CourseFakeDriver`.

- Capacity is finite (60 vCPU, 256 GiB RAM, 2500 GB disk; placement applies its allocation ratios),
  so a flavor larger than the host is refused by the scheduler with "No valid host was found", as on
  a real cloud. The stock fake driver reports 1000 vCPU / 800 GB RAM and accepts nearly anything.
  The sizes are chosen for a cohort of 100 on m1.course; see the comment on the class constants.
- The stock fake snapshot uploads no data, so the snapshot image stays `queued` for ever. Here it
  uploads a small real qcow2 (Glance inspects uploaded data and refuses bytes that do not match the
  declared disk format), so the image becomes `active` like on a real cloud.
- It is based on FakeDriverWithoutFakeNodes: one stable node whose identity survives restarts.
- A volume attached to a server that has a machine appears in the machine as a real block device at the
  attachment's mountpoint (Cinder's file volume on a loop device: machines.py attach), and leaves it on detach.
  A volume attached while the server boots (a boot volume) is not given to the machine: the machine's root is its
  image's.
- A server of an image with the property `coursevm_machine` gets a real machine (see machine_link): spawn
  starts it (and routes the floating IPs the port already has), destroy stops it, and a snapshot keeps its
  disk as a derived machine image that the snapshot image names, so servers booted from the snapshot start
  with what the snapshotted machine had on disk. A machine that does not start fails the spawn as a real
  hypervisor would (the server goes to ERROR with the machine's error as the fault).
"""

import os
import subprocess
import tempfile
import time

from nova.compute import task_states
from nova import exception
from nova.image import glance
from nova.virt import fake

from coursevm_cloud import machine_link

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
    # Room for a cohort of 100 on m1.course (2 vCPU, 2048 MB, 20 GB) plus other tests, as placement
    # counts it with Nova's defaults (initial allocation ratios: CPU 4.0, RAM 1.0, disk 1.0;
    # reserved_host_memory_mb = 512, no reserved disk):
    #   VCPU      60 x 4.0            = 240  -> 120 servers  (the limit; the course quota is 120 instances)
    #   MEMORY_MB (262144 - 512) x 1.0 = 261632 -> 127 servers
    #   DISK_GB   2500 x 1.0          = 2500 -> 125 servers
    # m1.huge (64 vCPU, 524288 MB, 100 GB) must still fit no host ("No valid host was found"): it is over
    # both the VCPU max_unit (the driver sets max_unit = vcpus = 60) and the whole RAM of the host.
    vcpus = 60
    memory_mb = 262144
    local_gb = 2500

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

    def _machine_spec(self, context, instance):
        """The machine image a server of this image runs on, or None for a purely fake server."""
        if not machine_link.enabled():
            return None
        spec = (instance.system_metadata or {}).get("image_" + machine_link.PROPERTY)
        if spec is None and instance.image_ref:
            try:
                spec = self._image_api.get(context, instance.image_ref).get("properties", {}).get(
                    machine_link.PROPERTY)
            except exception.NovaException:
                spec = None
        return spec or None

    def spawn(self, context, instance, image_meta, injected_files, admin_password, allocations,
              network_info=None, block_device_info=None, power_on=True, accel_info=None):
        spec = self._machine_spec(context, instance)
        if spec:
            name = machine_link.machine_name(instance.uuid)
            try:
                machine_link.machines("start", name, "--image", spec, "--hostname", instance.hostname or name)
            except (machine_link.MachineError, OSError) as err:
                raise exception.InstanceDeployFailure(reason="the machine did not start: %s" % err)
        super().spawn(context, instance, image_meta, injected_files, admin_password, allocations,
                      network_info, block_device_info, power_on, accel_info)
        if spec:
            # Addresses associated with the port before the server existed (a cohort's ports get their
            # floating IP first); later associations are routed by Neutron's callback.
            for vif in network_info or []:
                for fixed in vif.fixed_ips():
                    for floating in fixed.get("floating_ips", []):
                        try:
                            machine_link.answer(instance.uuid, floating["address"])
                        except (machine_link.MachineError, OSError) as err:
                            machine_link.log_failure("routing %s" % floating["address"], err)

    def destroy(self, context, instance, network_info, block_device_info=None, destroy_disks=True,
                destroy_secrets=True):
        super().destroy(context, instance, network_info, block_device_info, destroy_disks, destroy_secrets)
        if machine_link.enabled() and machine_link.has_machine(instance.uuid):
            try:
                machine_link.machines("stop", machine_link.machine_name(instance.uuid))
            except (machine_link.MachineError, OSError) as err:
                machine_link.log_failure("stopping the machine of %s" % instance.uuid, err)

    def attach_volume(self, context, connection_info, instance, mountpoint, disk_bus=None, device_type=None,
                      encryption=None):
        super().attach_volume(context, connection_info, instance, mountpoint, disk_bus, device_type, encryption)
        path = (connection_info.get("data") or {}).get("device_path")
        if path and machine_link.enabled() and machine_link.has_machine(instance.uuid):
            try:
                machine_link.machines("attach", machine_link.machine_name(instance.uuid), path, mountpoint)
            except (machine_link.MachineError, OSError) as err:
                # As a hypervisor that cannot attach: Nova rolls the attachment back and the volume stays available.
                super().detach_volume(context, connection_info, instance, mountpoint, encryption)
                raise exception.VolumeAttachFailed(volume_id=connection_info.get("serial") or path,
                                                   reason="the machine did not get it: %s" % err)

    def detach_volume(self, context, connection_info, instance, mountpoint, encryption=None):
        super().detach_volume(context, connection_info, instance, mountpoint, encryption)
        if machine_link.enabled() and machine_link.has_machine(instance.uuid):
            try:
                machine_link.machines("detach", machine_link.machine_name(instance.uuid), mountpoint)
            except (machine_link.MachineError, OSError) as err:
                machine_link.log_failure("detaching %s from the machine of %s" % (mountpoint, instance.uuid), err)

    def snapshot(self, context, instance, image_id, update_task_state):
        if instance.uuid not in self.instances:
            raise exception.InstanceNotRunning(instance_id=instance.uuid)
        properties = {}
        if machine_link.enabled() and machine_link.has_machine(instance.uuid):
            derived = machine_link.derived_image_name(image_id)
            try:
                machine_link.machines("snapshot", machine_link.machine_name(instance.uuid), derived)
            except (machine_link.MachineError, OSError) as err:
                raise exception.InstanceNotRunning(instance_id="%s (%s)" % (instance.uuid, err))
            properties[machine_link.PROPERTY] = derived
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
                **properties,
            },
        }
        with open(_snapshot_data_path(), "rb") as data:
            self._image_api.update(context, image_id, metadata, data, purge_props=False)
