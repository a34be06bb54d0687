"""The credentials role and cloud-init write one sshd drop-in: the lookup gives the role what user_data embeds."""

import pytest
import yaml
from ansible.errors import AnsibleError

from ansible_collections.coursevm.openstack.plugins.lookup.course_sshd import LookupModule
from ansible_collections.coursevm.openstack.plugins.module_utils import cloud_init


def test_path_and_content_are_those_of_the_first_boot_drop_in():
    path, content, former = LookupModule().run(["path", "content", "former_paths"])
    [drop_in] = yaml.safe_load(cloud_init.user_data("tm351", "ab12", []))["write_files"]
    assert (path, content) == (drop_in["path"], drop_in["content"])
    assert path not in former and all(name.startswith("/etc/ssh/sshd_config.d/") for name in former)


@pytest.mark.parametrize("terms", [["contents"], []])
def test_an_unknown_term_is_refused(terms):
    with pytest.raises(AnsibleError, match="path, content or former_paths"):
        LookupModule().run(terms)
