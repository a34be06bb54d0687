"""The credentials role writes the key-only sshd drop-in cloud-init writes at first boot: the same file name and,
after the role's ansible_managed header, the same settings."""

import textwrap
from pathlib import Path

import yaml

import role_check  # tests/support, on sys.path via conftest

ROLE = Path(__file__).resolve().parents[2] / "roles" / "credentials"


def test_the_roles_drop_in_is_the_first_boot_one(tmp_path):
    rendered = tmp_path / "drop-in.conf"
    play = tmp_path / "play.yml"
    # The role's own template and file name (its vars), and the first boot's user data (filter course_user_data).
    play.write_text(textwrap.dedent("""\
        - hosts: localhost
          gather_facts: false
          vars_files: [%s]
          tasks:
            - ansible.builtin.template:
                src: %s
                dest: %s
                mode: "0644"
            - ansible.builtin.copy:
                content: "{{ credentials__sshd_drop_in }}"
                dest: %s
                mode: "0644"
            - ansible.builtin.copy:
                content: "{{ [] | coursevm.openstack.course_user_data('tm351', 'ab12') }}"
                dest: %s
                mode: "0644"
        """ % (ROLE / "vars" / "main.yml", ROLE / "templates" / "etc" / "ssh" / "sshd_config.d" / "00-coursevm.conf.j2",
               rendered, tmp_path / "path", tmp_path / "user-data")))
    result = role_check.run_playbook(play, {})
    assert result.returncode == 0, result.stdout + result.stderr

    [first_boot] = yaml.safe_load((tmp_path / "user-data").read_text())["write_files"]
    assert (tmp_path / "path").read_text() == first_boot["path"]
    text = rendered.read_text()
    header = [line for line in text.splitlines(keepends=True) if line.startswith("#")]
    body = text[len("".join(header[:3])):]  # the ansible_managed comment block is three lines
    assert body == first_boot["content"]
