"""gixy (PyPI `gixy-ng`, the nginx configuration analyzer) over the configuration a test machine's nginx runs with.

`nginx -T` on the target prints every file nginx reads, nginx.conf and each include, each after a
`# configuration file <path>:` line. gixy reads such a dump as the whole tree, with the target's own paths, so
there is no copy of /etc/nginx to make on the controller (where Debian's absolute includes would point at the
controller's /etc/nginx, and gixy would skip them with a mere warning).

Import from a scenario's tests with:
    sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "tests" / "support"))
    import nginx_gixy
"""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

FILE_MARK = "# configuration file "


def gixy_command():
    """The gixy of the Python running the tests (its venv's bin), else the one on PATH."""
    beside = Path(sys.executable).with_name("gixy")
    if beside.exists():
        return str(beside)
    found = shutil.which("gixy")
    if not found:
        pytest.fail("gixy is not installed on the controller: pip install -r tests/requirements.txt (gixy-ng)")
    return found


def nginx_dump(host):
    """`nginx -T` on the target (as root): the configuration as nginx reads it, every file after its mark."""
    result = host.run("nginx -T")
    assert result.rc == 0, "nginx -T failed on the target: %s" % result.stderr
    assert FILE_MARK + "/etc/nginx/nginx.conf:" in result.stdout, result.stdout[:500]
    return result.stdout


def dumped_files(dump):
    """The paths of the files in an `nginx -T` dump."""
    return [line[len(FILE_MARK):].rstrip(":") for line in dump.splitlines() if line.startswith(FILE_MARK)]


def findings(dump, folder):
    """gixy's findings (dicts with severity, plugin, summary, reason, file, line) on an `nginx -T` dump, all
    severities. The dump is written to `folder` (on the controller) for gixy to read."""
    path = Path(folder) / "nginx-T.conf"
    path.write_text(dump)
    # No --nginx-version: Debian backports security fixes without changing nginx's version, so gixy's
    # version-based CVE check would report fixed bugs.
    proc = subprocess.run([gixy_command(), "--format", "json", str(path)], capture_output=True, text=True,
                          timeout=300, check=False)
    # gixy exits 1 when it finds something; anything but a JSON list on stdout means it could not run.
    try:
        report = json.loads(proc.stdout)
    except ValueError:
        pytest.fail("gixy gave no report (exit %d): %s %s"
                    % (proc.returncode, proc.stdout[-500:], proc.stderr[-1000:]))
    assert isinstance(report, list), report
    return report


def describe(report):
    fields = ("severity", "plugin", "summary", "reason", "file", "line")
    return "\n".join("%s [%s] %s: %s (%s:%s)" % tuple(f.get(name) for name in fields) for f in report)


def assert_no_findings(host, folder, expect_files=()):
    """gixy finds nothing, of any severity, in the target's running configuration; the dump it read holds
    nginx.conf and every path of `expect_files` (so gixy saw the files that matter)."""
    dump = nginx_dump(host)
    files = dumped_files(dump)
    missing = [path for path in expect_files if path not in files]
    assert not missing, "not in nginx -T: %s (it holds %s)" % (missing, files)
    report = findings(dump, folder)
    assert report == [], "gixy found:\n" + describe(report)
