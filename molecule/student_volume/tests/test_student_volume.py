"""The student's volume as the course VM meets it after converge and idempotence: formatted once with the
student's label, mounted by UUID, its folders seeded with the image's notebooks and bind-mounted where Jupyter
and OpenRefine (stand-ins here) look, and those services unable to start without it (testinfra over ssh)."""

from volume import GROUP, MOUNT, NOTEBOOKS, USER, WORKSPACE, fstab_lines, probe

FOLDERS = {NOTEBOOKS: "notebooks", WORKSPACE: "openrefine"}


def test_the_volume_carries_an_ext4_file_system_with_the_students_label(host):
    found = probe(host, "/dev/vdb")
    assert found.get("TYPE") == "ext4", found
    assert found.get("LABEL") == "coursevm-data", found


def test_the_volume_is_mounted_by_uuid_and_a_vm_without_it_still_boots(host):
    uuid = probe(host, "/dev/vdb")["UUID"]
    assert fstab_lines(host, MOUNT) == ["UUID=%s %s ext4 defaults,nofail 0 0" % (uuid, MOUNT)]
    assert host.check_output("findmnt -n -o SOURCE,FSTYPE --mountpoint %s", MOUNT).split() == ["/dev/vdb", "ext4"]


def test_each_folder_of_the_volume_is_bind_mounted_onto_its_path(host):
    for path, name in FOLDERS.items():
        source = host.check_output("findmnt -n -o SOURCE --mountpoint %s", path)
        assert source == "/dev/vdb[/%s]" % name, (path, source)
        (entry,) = fstab_lines(host, path)
        assert entry.split()[0] == "%s/%s" % (MOUNT, name)
        assert set(entry.split()[3].split(",")) >= {"bind", "nofail"}, entry


def test_the_folders_belong_to_the_course_account(host):
    for name in FOLDERS.values():
        folder = host.file("%s/%s" % (MOUNT, name))
        assert folder.is_directory and folder.user == USER and folder.group == GROUP and folder.mode == 0o750


def test_the_image_notebooks_were_seeded_with_their_owners_and_modes(host):
    expected = {"notebooks/welcome.ipynb": 0o640, "notebooks/week1": 0o700, "notebooks/week1/exercise.ipynb": 0o600,
                "openrefine/workspace.json": 0o640}
    for name, mode in expected.items():
        seeded = host.file("%s/%s" % (MOUNT, name))
        assert seeded.exists, name
        assert (seeded.user, seeded.group, seeded.mode) == (USER, GROUP, mode), name
    assert '"course": "welcome"' in host.file(MOUNT + "/notebooks/welcome.ipynb").content_string


def test_what_the_student_writes_at_the_folders_paths_lands_on_the_volume(host):
    for path, name in FOLDERS.items():
        host.run_test("sudo -u %s sh -c 'echo kept > %s/written-by-the-student.txt'", USER, path)
        on_volume = host.file("%s/%s/written-by-the-student.txt" % (MOUNT, name))
        assert on_volume.content_string == "kept\n" and on_volume.user == USER
        # The same file system as the volume's mount (its device), not the root disk's.
        assert host.check_output("stat -c %%d %s/written-by-the-student.txt", path) == \
            host.check_output("stat -c %%d %s", MOUNT)


def test_services_hardened_like_jupyters_and_openrefines_units_write_to_the_volume(host):
    # The real units make everything read-only but their own paths (ProtectSystem=strict, ReadWritePaths=): the
    # bind mounts under those paths stay writable for them.
    for path, name, sandbox in (
            (NOTEBOOKS, "notebooks", "-p ReadWritePaths=/home/%s" % USER),
            (WORKSPACE, "openrefine", "-p ReadWritePaths=%s -p ProtectHome=read-only" % WORKSPACE)):
        host.run_test("systemd-run --wait --quiet --uid=%s --gid=%s -p ProtectSystem=strict -p PrivateTmp=yes %s "
                      "/usr/bin/touch %s/written-by-a-hardened-service" % (USER, GROUP, sandbox, path))
        assert host.file("%s/%s/written-by-a-hardened-service" % (MOUNT, name)).user == USER


def test_the_units_need_the_folders_mounted_to_start(host):
    for unit in ("jupyter.service", "openrefine.service"):
        drop_in = host.file("/etc/systemd/system/%s.d/coursevm-student-volume.conf" % unit)
        assert drop_in.user == "root" and drop_in.mode == 0o644
        assert "Ansible managed" in drop_in.content_string
        needs = host.check_output("systemctl show -p RequiresMountsFor --value %s", unit).split()
        assert set(needs) >= set(FOLDERS), (unit, needs)


def test_the_running_units_were_restarted_onto_the_volume(host):
    for unit, path in (("jupyter.service", NOTEBOOKS), ("openrefine.service", WORKSPACE)):
        assert host.service(unit).is_running, unit
        mount_unit = host.check_output("systemd-escape --path --suffix=mount %s", path)
        started = int(host.check_output("systemctl show -p ActiveEnterTimestampMonotonic --value %s", unit))
        mounted = int(host.check_output("systemctl show -p ActiveEnterTimestampMonotonic --value %s", mount_unit))
        assert started > mounted > 0, (unit, started, mounted)
    # The stand-in Jupyter serves the volume's notebooks.
    served = host.run("python3 -c %s", "import urllib.request as u; "
                      "print(u.urlopen('http://127.0.0.1:8888/welcome.ipynb', timeout=10).read().decode())")
    assert served.rc == 0 and '"course": "welcome"' in served.stdout, served.stderr
