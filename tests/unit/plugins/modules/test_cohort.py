"""The cohort module's pure parts: the students' check (every problem at once, no key ever echoed) and the
plan of what a student still needs. The module itself runs against the local cloud in
tests/cloud_integration/test_cohort_module.py."""

import subprocess

import pytest

from ansible_collections.coursevm.openstack.plugins.modules import cohort


@pytest.fixture(scope="module")
def key(tmp_path_factory):
    path = tmp_path_factory.mktemp("k") / "k"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)
    return path.with_suffix(".pub").read_text().strip(), path.read_text()


def test_good_students_have_no_problem(key):
    public, unused = key
    students = [{"id": "ab12", "ssh_public_key": public}, {"id": "cd34"}]
    assert cohort.check_students(students, [public], "present") == []


def test_every_problem_is_reported_at_once_and_no_key_is_echoed(key):
    public, private = key
    students = [{"id": "ab12", "ssh_public_key": private}, {"id": "AB_1"}, {"id": "cd34"}, {"id": "cd34"},
                {"name": "no id"}, "just a string"]
    problems = cohort.check_students(students, [], "present")
    assert len(problems) == 7, problems  # cd34 twice: a duplicate, and without a key both times
    assert any("'ab12'" in p and "private key" in p for p in problems)
    assert any("'AB_1'" in p for p in problems)
    assert any("'cd34' is given twice" in p for p in problems)
    assert any("'cd34' has no SSH public key" in p for p in problems)
    assert all(private.strip() not in p and public.split()[1] not in p for p in problems)


def test_removal_needs_only_ids(key):
    assert cohort.check_students([{"id": "ab12"}, {"id": "cd34"}], [], "absent") == []


def test_a_broken_team_key_is_refused_by_position(key):
    problems = cohort.check_students([{"id": "ab12"}], ["ssh-ed25519 AAAA"], "present")
    assert problems and problems[0].startswith("admin_public_keys[1] ")


def test_plan_creates_only_what_is_missing():
    everything = {"keypair": object(), "port": object(), "floating_ip": object(), "server": {"status": "ACTIVE"}}
    assert cohort.plan_student("ab12", {}, everything) == []
    assert cohort.plan_student("ab12", {}, {}) == ["create keypair", "create port", "create floating ip",
                                                   "create server"]
    no_fip = dict(everything, floating_ip=None)
    assert cohort.plan_student("ab12", {}, no_fip) == ["create floating ip"]
    broken = dict(everything, server={"status": "error"})
    assert cohort.plan_student("ab12", {}, broken) == ["replace server in ERROR"]


def test_diff_state_says_which_resources_exist():
    assert cohort.state_of({"keypair": 1, "port": None, "server": None, "floating_ip": None}) == {
        "keypair": "present", "port": "absent", "server": "absent", "floating_ip": "absent"}


def volume_params(**given):
    return dict({"boot_from_volume": False, "volume_size": None, "volume_type": None, "student_volume_size": 0,
                 "student_volume_type": None}, **given)


def test_volume_options_need_boot_from_volume_and_a_positive_size():
    assert cohort.volume_option_problems(volume_params()) == []
    assert cohort.volume_option_problems(volume_params(boot_from_volume=True, volume_size=20)) == []
    assert len(cohort.volume_option_problems(volume_params(volume_size=20))) == 1
    assert len(cohort.volume_option_problems(volume_params(volume_type="ssd"))) == 1
    assert len(cohort.volume_option_problems(volume_params(boot_from_volume=True, volume_size=0))) == 1


def test_data_volume_options_need_a_size_that_is_not_negative():
    assert cohort.volume_option_problems(volume_params(student_volume_size=5, student_volume_type="ssd")) == []
    [negative] = cohort.volume_option_problems(volume_params(student_volume_size=-1))
    assert negative.startswith("student_volume_size")
    [orphan_type] = cohort.volume_option_problems(volume_params(student_volume_type="ssd"))
    assert orphan_type.startswith("student_volume_type")


class FakeImage(object):
    id = "image-id"


def boot_source(**params):
    module = cohort.CohortModule.__new__(cohort.CohortModule)
    module.params = dict(volume_params(**params), terminate_volume=params.get("terminate_volume", True))
    module.volume_gb = 12
    return module.boot_source(FakeImage())


def test_the_server_boots_from_the_image_or_from_a_volume_made_of_it():
    assert boot_source() == {"image_id": "image-id"}
    [mapping] = boot_source(boot_from_volume=True)["block_device_mapping"]
    assert mapping == {"boot_index": 0, "uuid": "image-id", "source_type": "image", "destination_type": "volume",
                       "volume_size": 12, "delete_on_termination": True}
    [kept] = boot_source(boot_from_volume=True, volume_type="ssd", terminate_volume=False)["block_device_mapping"]
    assert kept["volume_type"] == "ssd" and kept["delete_on_termination"] is False


def test_the_boot_volume_is_the_first_attached():
    assert cohort.CohortModule.boot_volume_of(None) is None
    server = type("Server", (), {"attached_volumes": [{"id": "v1", "delete_on_termination": True}, {"id": "v2"}]})
    assert cohort.CohortModule.boot_volume_of(server()) == "v1"
    assert cohort.CohortModule.boot_volume_of(type("Server", (), {"attached_volumes": []})()) is None


def test_a_server_booted_from_an_image_has_no_boot_volume_only_data_volumes():
    server = type("Server", (), {"image": {"id": "image-id"}, "attached_volumes": [{"id": "data"}]})
    assert cohort.CohortModule.boot_volume_of(server()) is None
    from_volume = type("Server", (), {"image": {"id": ""}, "attached_volumes": [{"id": "boot"}, {"id": "data"}]})
    assert cohort.CohortModule.boot_volume_of(from_volume()) == "boot"


class Volume(object):
    def __init__(self, vid, server_ids=(), size=5, status=None):
        self.id, self.name, self.size, self.created_at = vid, "c1-ab12-data", size, ""
        self.attachments = [{"server_id": s, "device": "/dev/vdb"} for s in server_ids]
        self.status = status or ("in-use" if server_ids else "available")


def data_module(check_mode=False):
    module = cohort.CohortModule.__new__(cohort.CohortModule)
    module.params = {"course": "c1", "topology": "shared", "student_volume_size": 5, "student_volume_type": None,
                     "timeout": 5}
    module.check_mode = check_mode
    module.warnings = []
    module.warn = module.warnings.append
    return module


def test_check_mode_plans_the_data_volume_from_what_exists():
    module = data_module(check_mode=True)
    plans = []
    for volumes, server_id in (([], None), ([Volume("v")], "s1"), ([Volume("v", ["s1"])], "s1")):
        result = {"actions": [], "changed": False, "server_id": server_id}
        module.plan_data_volume(volumes, result)
        plans.append((result["actions"], result["changed"]))
    assert plans == [(["create data volume", "attach data volume"], True), (["attach data volume"], True),
                     ([], False)]


def test_a_data_volume_attached_to_another_server_is_the_students_error_and_nothing_is_done():
    module = data_module()

    class Untouchable(object):
        def __getattr__(self, name):
            raise AssertionError("the cloud was asked to %s" % name)

    module.conn = type("Conn", (), {"block_storage": Untouchable(), "compute": Untouchable()})()
    result = {"actions": [], "changed": False, "server_id": "new", "server": "c1-ab12", "error": None,
              "data_volume": None}
    module.data_volume("ab12", [Volume("v", ["old"])], result)
    assert result["error"]["kind"] == "data_volume" and result["changed"] is False
    assert result["data_volume"] is None


def test_an_attached_data_volume_is_reported_with_its_device_and_a_smaller_one_is_warned_about():
    module = data_module()
    module.params["student_volume_size"] = 8
    result = {"actions": [], "changed": False, "server_id": "s1", "server": "c1-ab12", "error": None,
              "data_volume": None}
    module.data_volume("ab12", [Volume("v", ["s1"], size=5)], result)
    assert result["data_volume"] == {"id": "v", "name": "c1-ab12-data", "size": 5, "device": "/dev/vdb"}
    assert result["changed"] is False and result["error"] is None
    assert len(module.warnings) == 1
