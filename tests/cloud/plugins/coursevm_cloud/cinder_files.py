"""A Cinder backend that keeps each volume as a sparse raw file in one folder.

The real Cinder API, scheduler, database, quotas and state machine run on top; only the data path is
ours: a volume is <coursevm_volumes_dir>/volume-<id>, attached through os-brick's LOCAL protocol
({'driver_volume_type': 'local', 'data': {'device_path': file}}), which os-brick's LocalConnector on
the volume side (image copies) uses as is and Nova's fake driver hands to the machine harness.
LVM cannot work on these machines (no device-mapper in the kernel): docs/cinder-plan.md.
"""

import os

from oslo_concurrency import processutils
from oslo_config import cfg
from oslo_log import log as logging

from cinder import exception
from cinder import interface
from cinder.volume import driver
from cinder.volume import configuration

LOG = logging.getLogger(__name__)

OPTS = [
    cfg.StrOpt("coursevm_volumes_dir", default="$state_path/coursevm-volumes",
               help="Folder holding one sparse file per volume."),
    cfg.IntOpt("coursevm_capacity_gb", default=1000, help="Capacity reported to the scheduler."),
]
cfg.CONF.register_opts(OPTS, group=configuration.SHARED_CONF_GROUP)

GiB = 1024 ** 3


@interface.volumedriver
class FileVolumeDriver(driver.VolumeDriver):
    VERSION = "0.1"
    CI_WIKI_NAME = "none"  # @interface.volumedriver wants one

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.configuration.append_config_values(OPTS)
        self._dir = None

    # -- set-up ------------------------------------------------------------------------------------
    def do_setup(self, context):
        self._dir = self.configuration.coursevm_volumes_dir
        os.makedirs(self._dir, exist_ok=True)

    def check_for_setup_error(self):
        if not os.path.isdir(self._dir):
            raise exception.VolumeBackendAPIException(data="no folder %s" % self._dir)

    def _path(self, volume):
        return os.path.join(self._dir, "volume-%s" % volume.id)

    def _update_volume_stats(self):
        st = os.statvfs(self._dir)
        used = sum(os.stat(os.path.join(self._dir, f)).st_blocks * 512 for f in os.listdir(self._dir)) / GiB
        total = self.configuration.coursevm_capacity_gb
        self._stats = {
            "volume_backend_name": self.configuration.safe_get("volume_backend_name") or "coursevm-files",
            "vendor_name": "coursevm",
            "driver_version": self.VERSION,
            "storage_protocol": "local",
            "total_capacity_gb": total,
            "free_capacity_gb": max(0, min(total - used, st.f_bavail * st.f_frsize / GiB)),
            "reserved_percentage": 0,
            "thin_provisioning_support": True,
            "thick_provisioning_support": False,
            "max_over_subscription_ratio": 20.0,
            "multiattach": False,
        }

    # -- control path ------------------------------------------------------------------------------
    def create_volume(self, volume):
        with open(self._path(volume), "wb") as fh:
            fh.truncate(volume.size * GiB)  # sparse
        return {"provider_location": self._path(volume)}

    def delete_volume(self, volume):
        try:
            os.unlink(self._path(volume))
        except FileNotFoundError:
            pass

    def extend_volume(self, volume, new_size):
        with open(self._path(volume), "r+b") as fh:
            fh.truncate(new_size * GiB)

    def create_cloned_volume(self, volume, src_vref):
        self._copy(self._path(src_vref), self._path(volume))
        if volume.size > src_vref.size:
            self.extend_volume(volume, volume.size)
        return {"provider_location": self._path(volume)}

    @staticmethod
    def _copy(src, dest):
        """A copy that keeps the holes of a sparse file (a volume is mostly holes)."""
        processutils.execute("cp", "--sparse=always", src, dest)

    def _snap_path(self, snapshot):
        return os.path.join(self._dir, "snapshot-%s" % snapshot.id)

    def create_snapshot(self, snapshot):
        self._copy(self._path(snapshot.volume), self._snap_path(snapshot))

    def delete_snapshot(self, snapshot):
        try:
            os.unlink(self._snap_path(snapshot))
        except FileNotFoundError:
            pass

    def create_volume_from_snapshot(self, volume, snapshot):
        self._copy(self._snap_path(snapshot), self._path(volume))
        if volume.size > snapshot.volume_size:
            self.extend_volume(volume, volume.size)
        return {"provider_location": self._path(volume)}

    # -- images: cinder's generic code (os-brick LOCAL connector, qemu-img) does the work ----------
    def copy_image_to_volume(self, context, volume, image_service, image_id, disable_sparse=False):
        super().copy_image_to_volume(context, volume, image_service, image_id, disable_sparse=disable_sparse)
        # qemu-img convert to a regular file leaves it at the image's virtual size: give it the volume's size back.
        self.extend_volume(volume, volume.size)

    # -- exports and connections: the file itself is the 'device' ---------------------------------
    def create_export(self, context, volume, connector):
        pass

    def ensure_export(self, context, volume):
        pass

    def remove_export(self, context, volume):
        pass

    def initialize_connection(self, volume, connector):
        return {"driver_volume_type": "local",
                "data": {"device_path": self._path(volume), "volume_id": volume.id,
                         "access_mode": "rw"}}

    def terminate_connection(self, volume, connector, **kwargs):
        pass
