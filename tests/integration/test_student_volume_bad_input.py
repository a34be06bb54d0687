"""Bad values for the student_volume role stop the play at the role's checks, before the device is even looked
for, and the refusal names the option to fix; a volume that is not attached is refused before anything is
written to any device.

The role runs against the controller itself in check mode, as in test_postgresql_bad_input.py.
"""

import pytest

import role_check  # tests/support, on sys.path via conftest

# Its cases run in one ansible-playbook per playbook (role_check.Batch): the role checks one host at a time.
BATCHED = True

# Task names as the play output shows them (the checks compare whole names).
ROLE = "coursevm.openstack.student_volume : "
FIRST_LOOK = ROLE + "Look for the volume under /dev/disk/by-id and at the device Nova reported"
FIRST_CHANGE = ROLE + "Format the blank volume with the student's label"
NOT_ATTACHED = ROLE + "Check the volume is attached"
VOLUME_ID = "5f0c6a2e-8d3b-4e7a-9b1c-2a4d6e8f0b13"


def folder(name, path, **more):
    return dict(name=name, path=path, **more)


NOTEBOOKS = folder("notebooks", "/home/oustudent/notebooks")
# overrides: the options the refusal must name
CASES = {
    "an empty volume id": ({"student_volume_id": ""}, ["student_volume_id"]),
    "a volume id that climbs out of /dev/disk/by-id": ({"student_volume_id": "../../sda"}, ["student_volume_id"]),
    "a relative device": ({"student_volume_device": "vdb"}, ["student_volume_device"]),
    "a device outside /dev": ({"student_volume_device": "/tmp/disk.img"}, ["student_volume_device"]),
    "a label longer than 16 characters": ({"student_volume_label": "coursevm-student-data"}, ["student_volume_label"]),
    "a label with a space": ({"student_volume_label": "course data"}, ["student_volume_label"]),
    "an empty label": ({"student_volume_label": ""}, ["student_volume_label"]),
    "a label longer than xfs takes": ({"student_volume_fstype": "xfs", "student_volume_label": "coursevm-data"},
                                      ["student_volume_label", "student_volume_fstype"]),
    "a file system the role does not make": ({"student_volume_fstype": "btrfs"}, ["student_volume_fstype"]),
    "a relative mount point": ({"student_volume_mount": "srv/coursevm-student"}, ["student_volume_mount"]),
    "the root as the mount point": ({"student_volume_mount": "/"}, ["student_volume_mount"]),
    "a mount point that climbs": ({"student_volume_mount": "/srv/../etc"}, ["student_volume_mount"]),
    "a mount point with a trailing slash": ({"student_volume_mount": "/srv/coursevm-student/"},
                                            ["student_volume_mount"]),
    "an owner that is no Linux name": ({"student_volume_owner": "Ou Student"}, ["student_volume_owner"]),
    "a group that is no Linux name": ({"student_volume_group": "all users"}, ["student_volume_group"]),
    "no folders": ({"student_volume_folders": []}, ["student_volume_folders"]),
    "a folder name with a slash": ({"student_volume_folders": [folder("work/notebooks", "/srv/work")]},
                                   ["student_volume_folders[0].name"]),
    "a folder named ..": ({"student_volume_folders": [NOTEBOOKS, folder("..", "/srv/work")]},
                          ["student_volume_folders[1].name"]),
    "a folder name given twice": ({"student_volume_folders": [NOTEBOOKS, folder("notebooks", "/srv/work")]},
                                  ["student_volume_folders[1].name"]),
    "a relative folder path": ({"student_volume_folders": [folder("notebooks", "notebooks")]},
                               ["student_volume_folders[0].path"]),
    "a folder path that climbs": ({"student_volume_folders": [folder("notebooks", "/home/oustudent/../../etc")]},
                                  ["student_volume_folders[0].path"]),
    "a folder path given twice": ({"student_volume_folders": [NOTEBOOKS, folder("more", NOTEBOOKS["path"])]},
                                  ["student_volume_folders[1].path"]),
    "a folder path inside the mount point": (
        {"student_volume_folders": [folder("notebooks", "/srv/coursevm-student/notebooks")]},
        ["student_volume_folders[0].path", "student_volume_mount"]),
    "a folder path that holds the mount point": ({"student_volume_folders": [folder("srv", "/srv")]},
                                                 ["student_volume_folders[0].path", "student_volume_mount"]),
    "a folder path that holds another": ({"student_volume_folders": [folder("home", "/home/oustudent"), NOTEBOOKS]},
                                         ["student_volume_folders[0].path"]),
    "a folder owner that is no Linux name": (
        {"student_volume_folders": [folder("notebooks", "/home/oustudent/notebooks", owner="Ou Student")]},
        ["student_volume_folders[0].owner"]),
    "a folder without a path": ({"student_volume_folders": [{"name": "notebooks"}]},
                                ["student_volume_folders", "path"]),
    "a unit without its type": ({"student_volume_units": ["jupyter"]}, ["student_volume_units"]),
}


playbook = role_check.role_playbook("coursevm.openstack.student_volume")


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_value_is_refused_before_the_device_is_looked_for_naming_the_option(playbook, case):
    overrides, options = CASES[case]
    role_check.assert_refused_naming(playbook, dict({"student_volume_id": VOLUME_ID}, **overrides), options,
                                     FIRST_LOOK)


def test_an_unset_volume_id_is_refused_by_the_argument_spec(playbook):
    _task, message = role_check.refusal(playbook, {}, FIRST_LOOK)
    assert "missing required arguments: student_volume_id" in message, message


def test_a_volume_that_is_not_attached_is_refused_before_any_device_is_touched(playbook):
    task, message = role_check.refusal(playbook, {"student_volume_id": VOLUME_ID,
                                                  "student_volume_device": "/dev/vdz-not-attached"}, FIRST_CHANGE)
    assert task == NOT_ATTACHED, (task, message)
    for named in ("student_volume_id", "student_volume_device", "/dev/disk/by-id/virtio-" + VOLUME_ID[:20],
                  "/dev/vdz-not-attached"):
        assert named in message, message


def test_no_device_at_all_is_refused_naming_both_options(playbook):
    task, message = role_check.refusal(playbook, {"student_volume_id": VOLUME_ID}, FIRST_CHANGE)
    assert task == NOT_ATTACHED, (task, message)
    assert "student_volume_device is empty" in message and "student_volume_id" in message, message


# A play that runs only the role's checks: the good cases pass them and the run ends there.
checks_only = role_check.role_playbook("coursevm.openstack.student_volume", ["validate.yml"], "checks_only")

GOOD = {
    "the defaults": {},
    "a device Nova reported": {"student_volume_device": "/dev/vdb"},
    "xfs with a short label": {"student_volume_fstype": "xfs", "student_volume_label": "cvm-data"},
    "a 16-character ext4 label": {"student_volume_label": "coursevm-student"},
    "the paths the playbooks pass, an owner of its own": {
        "student_volume_mount": "/mnt/student",
        "student_volume_folders": [folder("notebooks", "/home/tm351/TM351VCE/notebooks"),
                                   folder("openrefine", "/var/lib/openrefine", owner="refine")],
        "student_volume_units": ["jupyter.service", "openrefine.service", "nbdime@tm351.service"]},
    "sibling paths with a common prefix": {
        "student_volume_folders": [folder("a", "/srv/work"), folder("b", "/srv/work2")]},
}


@pytest.mark.parametrize("case", sorted(GOOD))
def test_good_values_pass_the_checks(checks_only, case):
    result = role_check.run_check(checks_only, dict({"student_volume_id": VOLUME_ID}, **GOOD[case]))
    assert result.returncode == 0, result.stdout + result.stderr
