"""The jupyter-server-proxy floor (4.2.0: CVE-2024-28179, CVE-2024-35225) holds for every entry that names the
package, however it is spelled and whatever list it is in: filters requirements_naming and
requirements_allowing_below."""

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.coursevm.openstack.plugins.filter.requirements import (
    requirements_allowing_below, requirements_naming)

NAME = "jupyter-server-proxy"
FLOOR = "4.2.0"

# Entries that install, or may install, a release below 4.2.0.
BELOW = [
    "jupyter-server-proxy",
    "jupyter-server-proxy==4.1.0",
    "jupyter-server-proxy===4.1.2",
    "jupyter_server_proxy<4",
    "Jupyter.Server_Proxy<=4.2",
    "jupyter-server-proxy~=3.2",
    "jupyter-server-proxy~=4.1",
    "jupyter-server-proxy>=4.1",
    "jupyter-server-proxy>4.1.9",
    "jupyter-server-proxy>=4.2.0rc1",
    "jupyter-server-proxy!=4.1.0",
    "jupyter-server-proxy==4.*",
    "jupyter-server-proxy>=3,<5",
    "jupyter-server-proxy[extra]>=4.0 ; python_version >= '3.8'",
    "jupyter-server-proxy @ https://files.example.org/jupyter_server_proxy-4.1.0-py3-none-any.whl",
    "jupyter-server-proxy @ git+https://github.com/jupyterhub/jupyter-server-proxy@v4.2.0",
    "https://files.example.org/jupyter_server_proxy-4.1.0-py3-none-any.whl",
    "/srv/wheels/jupyter_server_proxy-4.1.2-py3-none-any.whl",
    "./dist/jupyter-server-proxy-4.1.0.tar.gz",
    "git+https://github.com/jupyterhub/jupyter-server-proxy@v4.2.0#egg=jupyter-server-proxy",
    "-e git+https://github.com/jupyterhub/jupyter-server-proxy#egg=jupyter_server_proxy",
    "JUPYTER-SERVER-PROXY>=4.1",
]

# Entries that can only install 4.2.0 or later.
AT_OR_ABOVE = [
    "jupyter-server-proxy>=4.2.0",
    "jupyter-server-proxy>=4.2",
    "jupyter_server_proxy>=4.2,<5",
    "jupyter-server-proxy==4.2.1",
    "jupyter-server-proxy===4.3.0",
    "jupyter-server-proxy~=4.2",
    "jupyter-server-proxy~=4.4.0",
    "jupyter-server-proxy>4.2",
    "jupyter-server-proxy==4.2.*",
    "jupyter-server-proxy==5.*",
    "jupyter-server-proxy>=4.2,!=4.3.0",
    "jupyter-server-proxy<4,>=4.2",
    "jupyter-server-proxy[extra]>=4.2 ; python_version >= '3.8'",
    "jupyter-server-proxy @ https://files.example.org/jupyter_server_proxy-4.2.1-py3-none-any.whl",
    "/srv/wheels/jupyter_server_proxy-4.2.0-py3-none-any.whl",
    "./dist/jupyter_server_proxy-4.3.0.tar.gz",
]

OTHERS = ["nbdime>=4,<5", "jupyter-server>=2.14,<3", "jupyter-server-proxy-extra==0.1", "my-jupyter-server-proxy",
          "jupyterlab-server-proxy==1.0", "notebook>=7.2,<8", "--index-url=https://pypi.example.org/simple",
          "https://files.example.org/nbdime-4.0.0-py3-none-any.whl"]


@pytest.mark.parametrize("entry", BELOW)
def test_entries_that_allow_a_release_below_the_floor(entry):
    assert requirements_allowing_below([entry], NAME, FLOOR) == [entry]
    assert requirements_naming([entry], NAME) == [entry]


@pytest.mark.parametrize("entry", AT_OR_ABOVE)
def test_entries_at_or_above_the_floor(entry):
    assert requirements_allowing_below([entry], NAME, FLOOR) == []
    assert requirements_naming([entry], NAME) == [entry]


@pytest.mark.parametrize("entry", OTHERS)
def test_entries_for_other_packages_are_left_alone(entry):
    assert requirements_allowing_below([entry], NAME, FLOOR) == []
    assert requirements_naming([entry], NAME) == []


def test_one_bad_entry_among_good_ones_is_found():
    entries = ["jupyter-server-proxy>=4.2.0", "nbdime>=4,<5", "jupyter_server_proxy==4.1.0"]
    assert requirements_allowing_below(entries, NAME, FLOOR) == ["jupyter_server_proxy==4.1.0"]


def test_the_name_is_normalised_too():
    assert requirements_allowing_below(["jupyter-server-proxy==4.1.0"], "Jupyter_Server.Proxy", "4.2") == [
        "jupyter-server-proxy==4.1.0"]


@pytest.mark.parametrize("bad", [None, "jupyter-server-proxy", [1]])
def test_a_list_of_strings_is_required(bad):
    with pytest.raises(AnsibleFilterError):
        requirements_allowing_below(bad, NAME, FLOOR)
