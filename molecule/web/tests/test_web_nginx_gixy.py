"""gixy, the nginx analyzer, finds nothing in the configuration the course VM's nginx runs with after
playbooks/configure.yml (issue 14); tests/support/nginx_gixy.py reads it with `nginx -T` on the VM."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "tests" / "support"))
import nginx_gixy  # noqa: E402


def test_gixy_finds_nothing_in_the_running_nginx_configuration(host, tmp_path):
    nginx_gixy.assert_no_findings(host, tmp_path, expect_files=[
        "/etc/nginx/nginx.conf", "/etc/nginx/conf.d/coursevm_websocket.conf",
        "/etc/nginx/sites-enabled/coursevm.conf"])
