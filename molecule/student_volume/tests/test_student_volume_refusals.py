"""A device that carries another file system is never the student's volume: the role refuses it, naming the
options to check, and changes nothing on it or on the machine (a config drive, or someone else's disk).

A small ext4 file system labelled `someones-disk` is made on the controller and attached as /dev/vdc; converge.yml
then runs with it as the student's device.
"""

import hashlib
import subprocess

import volume

FOREIGN_DEVICE = "/dev/vdc"


def sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as data:
        for block in iter(lambda: data.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def machine_state(host):
    """What a refused run must leave as it was: fstab, the mounts, the units' drop-ins."""
    return {"fstab": host.file("/etc/fstab").content_string,
            "mounts": host.check_output("findmnt -rn -o TARGET,SOURCE,FSTYPE,OPTIONS"),
            "drop-ins": host.check_output("cat /etc/systemd/system/*.service.d/coursevm-student-volume.conf")}


def test_a_device_with_a_foreign_file_system_is_refused_and_left_untouched(host):
    hostname = volume.hostname(host)
    foreign = volume.EPHEMERAL / "foreign-disk.img"
    with open(foreign, "wb") as disk:
        disk.truncate(16 << 20)
    subprocess.run(["mkfs.ext4", "-q", "-F", "-L", "someones-disk", str(foreign)], check=True, capture_output=True)
    volume.machines("attach", hostname, str(foreign), FOREIGN_DEVICE)
    try:
        before, checksum = machine_state(host), sha256(foreign)
        rc, output, changed = volume.converge(hostname, student_volume_device=FOREIGN_DEVICE,
                                              student_volume_id="0d9e8f7a-1b2c-4d3e-8f4a-5b6c7d8e9f00")
        assert rc != 0, output[-3000:]
        assert changed == 0, output[-3000:]
        assert "is not the student's volume" in output and "'someones-disk'" in output.replace('"', "'"), output[-3000:]
        for option in ("student_volume_label", "student_volume_id", "student_volume_device"):
            assert option in output, option
        assert "Format the blank volume" not in output
        assert machine_state(host) == before
        assert volume.probe(host, FOREIGN_DEVICE).get("LABEL") == "someones-disk"
    finally:
        volume.machines("detach", hostname, FOREIGN_DEVICE)
    assert sha256(foreign) == checksum
