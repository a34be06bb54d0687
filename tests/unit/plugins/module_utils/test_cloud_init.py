"""The first-boot cloud-config every course server gets, parsed as cloud-init would parse it."""

import yaml

from ansible_collections.coursevm.openstack.plugins.module_utils import cloud_init

STUDENT = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGxbVn5QpQ9o9pWz5d0q0qXkX0c0bW2tJgYQx3kQbq5a ada@laptop"
TEAM = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB0nqsI2Ht9H3Z8i3Vp6w0dTCg1Ht8Gm1Kp2b4u1d5cD team: \"ops\" #1"


def test_keys_are_the_students_first_then_the_teams_each_once():
    assert cloud_init.authorized_keys(" %s " % STUDENT, [TEAM, "", TEAM, STUDENT]) == [STUDENT, TEAM]
    assert cloud_init.authorized_keys(None, [TEAM]) == [TEAM]


def test_user_data_installs_the_keys_and_turns_passwords_and_root_off():
    text = cloud_init.user_data("tm351", "ab12", [STUDENT, TEAM])
    assert text.startswith("#cloud-config\n")
    config = yaml.safe_load(text)
    assert config["ssh_authorized_keys"] == [STUDENT, TEAM]  # a comment with quotes and '#' survives
    assert config["ssh_pwauth"] is False and config["disable_root"] is True
    assert config["chpasswd"] == {"expire": False}
    [drop_in] = config["write_files"]
    assert drop_in["path"] == "/etc/ssh/sshd_config.d/00-coursevm.conf" and drop_in["permissions"] == "0644"
    lines = drop_in["content"].splitlines()
    assert {"PasswordAuthentication no", "KbdInteractiveAuthentication no", "PermitRootLogin no"} <= set(lines)
