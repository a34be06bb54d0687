"""Log in to a Jupyter Server the way a browser does: a thin command line over the collection's
plugins/module_utils/jupyter_probe.py, which holds the logic (standard library only, plus websocket-client for
CODE).

    python3 jupyter_login.py BASE_URL PASSWORD [CODE]
prints one JSON object: {"anonymous_api_status": int, "login_status": int, "api_status": int, "login_ok": bool}
and, with CODE, "result": the text/plain result of CODE run in a new kernel.

Tests also import it (login, run_code, run_in_terminal, _NoRedirect). Tests that run the probe on a course VM
send the text of jupyter_probe.py itself (`python3 -c`), which prints the same JSON.
"""

import importlib.util
import json
import sys
from pathlib import Path

# By file path: this runs without the collection being installed as ansible_collections.coursevm.openstack.
_PROBE_FILE = Path(__file__).resolve().parents[2] / "plugins" / "module_utils" / "jupyter_probe.py"
_spec = importlib.util.spec_from_file_location("coursevm_jupyter_probe", _PROBE_FILE)
jupyter_probe = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(jupyter_probe)

login = jupyter_probe.login
run_code = jupyter_probe.run_code
run_in_terminal = jupyter_probe.run_in_terminal
_NoRedirect = jupyter_probe._NoRedirect  # pylint: disable=protected-access  # molecule/nginx_proxy's openers

if __name__ == "__main__":
    print(json.dumps(jupyter_probe.cli(sys.argv[1:])))
