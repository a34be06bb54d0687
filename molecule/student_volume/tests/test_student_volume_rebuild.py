"""A rebuilt (re-imaged) VM gets the student's work back: the same volume, attached again under another device
name to a root disk that knows nothing of it, is mounted as it is, neither formatted nor seeded again.

The "re-image": the services stop, the mounts and their fstab entries go (a fresh image has none), a newer
image's notebook appears at the notebook path on the root disk, and the volume is detached and attached again as
/dev/vdd. It changes the machine for good, so it comes after test_student_volume.py (file order); the refusals
use another device and hold either way.
"""

import volume
from volume import MOUNT, NOTEBOOKS, USER, WORKSPACE, fstab_lines, probe

THE_STUDENTS_WORK = NOTEBOOKS + "/my-work.ipynb"
NEW_IMAGE_NOTEBOOK = "new-in-this-image.ipynb"


def test_the_same_volume_after_a_rebuild_keeps_the_students_work_and_is_not_formatted_again(host):
    hostname = volume.hostname(host)
    uuid = probe(host, "/dev/vdb")["UUID"]
    host.run_test("sudo -u %s sh -c 'echo my-own-work > %s'", USER, THE_STUDENTS_WORK)

    host.run_test("systemctl stop jupyter.service openrefine.service")
    host.run_test("umount %s %s %s", NOTEBOOKS, WORKSPACE, MOUNT)
    host.run_test("sed -i '\\#%s#d' /etc/fstab", MOUNT)
    host.run_test("systemctl daemon-reload")
    host.run_test("install -o %s -m 0644 /dev/null %s/%s", USER, NOTEBOOKS, NEW_IMAGE_NOTEBOOK)
    volume.machines("detach", hostname, "/dev/vdb")
    volume.machines("attach", hostname, str(volume.volume_file(hostname)), "/dev/vdd")
    host.run_test("systemctl start jupyter.service openrefine.service")

    rc, output, changed = volume.converge(hostname, student_volume_device="/dev/vdd")
    assert rc == 0, output[-3000:]
    assert changed and changed > 0, output[-3000:]

    # Not formatted (the same file system), not seeded again (the newer image's notebook stays on the root disk).
    assert probe(host, "/dev/vdd")["UUID"] == uuid
    assert host.file(THE_STUDENTS_WORK).content_string == "my-own-work\n"
    assert host.file(MOUNT + "/notebooks/welcome.ipynb").exists
    assert not host.file("%s/notebooks/%s" % (MOUNT, NEW_IMAGE_NOTEBOOK)).exists
    assert not host.file("%s/%s" % (NOTEBOOKS, NEW_IMAGE_NOTEBOOK)).exists
    assert fstab_lines(host, MOUNT) == ["UUID=%s %s ext4 defaults,nofail 0 0" % (uuid, MOUNT)]
    assert host.check_output("findmnt -n -o SOURCE --mountpoint %s", NOTEBOOKS) == "/dev/vdd[/notebooks]"
    for unit in ("jupyter.service", "openrefine.service"):
        assert host.service(unit).is_running, unit
