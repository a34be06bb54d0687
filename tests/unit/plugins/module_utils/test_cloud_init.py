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
    assert drop_in["content"] == cloud_init.SSHD_KEY_ONLY


def effective(*files):
    """sshd's reading of drop-ins in order: the first value of each keyword wins (keywords case-insensitive)."""
    settings = {}
    for text in files:
        for line in text.splitlines():
            words = line.split()
            if words and not words[0].startswith("#"):
                settings.setdefault(words[0].lower(), words[1].lower())
    return settings


# What a course image may ship in a later drop-in (or sshd_config's own lines) to let passwords in.
IMAGE_DROP_IN = "PasswordAuthentication yes\nKbdInteractiveAuthentication yes\nPermitRootLogin yes\nPermitEmptyPasswords yes\n"


def test_the_first_boot_drop_in_wins_over_a_later_one_that_allows_passwords():
    [drop_in] = yaml.safe_load(cloud_init.user_data("tm351", "ab12", [STUDENT]))["write_files"]
    settings = effective(drop_in["content"], IMAGE_DROP_IN)
    assert settings == {"passwordauthentication": "no", "kbdinteractiveauthentication": "no",
                        "permitrootlogin": "no", "permitemptypasswords": "no"}


def test_permit_empty_passwords_is_no_on_a_vm_the_credentials_role_never_reached():
    # The case that used to slip through: the first-boot drop-in left PermitEmptyPasswords unset (only the
    # credentials role's file said no), so a VM known only to cloud-init took an image's "yes".
    [drop_in] = yaml.safe_load(cloud_init.user_data("tm351", "ab12", [STUDENT]))["write_files"]
    assert effective(drop_in["content"], "PermitEmptyPasswords yes\n")["permitemptypasswords"] == "no"
