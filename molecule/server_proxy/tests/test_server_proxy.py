"""OpenRefine and nbdime behind Jupyter's login, as a student's browser and an operator see them (testinfra)."""

import json
import re
import urllib.parse
from pathlib import Path

import pytest

USER = "oustudent"
PASSWORD = "molecule-jupyter-pw"
BASE = "http://127.0.0.1:8888/"
VENV = "/opt/jupyter"
NOTEBOOKS = "/home/oustudent/notebooks"
# The name a browser reaches the VM by, which nginx passes on as Host; the apps behind see 127.0.0.1:<port>.
PUBLIC_HOST = "course.example.org"
BROWSER = (Path(__file__).resolve().parent / "browser.py").read_text()


def browse(host, requests, password=PASSWORD, host_header=""):
    out = host.check_output("python3 -c %s %s %s %s %s", BROWSER, BASE, password, host_header, json.dumps(requests))
    result = json.loads(out)
    if password:
        assert result["login_ok"], "could not log in to Jupyter"
    return result["responses"]


def get(host, *paths, **kwargs):
    return browse(host, [{"path": path} for path in paths], **kwargs)


def assets(page, base_path):
    """The scripts and stylesheets a page loads, as paths below Jupyter's root."""
    links = re.findall(r'<script[^>]*\ssrc="([^"]+)"', page) + re.findall(r'<link[^>]*\shref="([^"]+)"', page)
    paths = [urllib.parse.urljoin(base_path, link) for link in links if not link.startswith(("http:", "https:"))]
    return [p for p in paths if re.search(r"\.(js|css|less)(\?|$)", p)]


def version_tuple(text):
    return tuple(int(part) for part in re.findall(r"\d+", text)[:3])


def test_jupyter_server_proxy_has_the_2024_security_fixes(host):
    installed = host.check_output("%s/bin/python -c %s", VENV,
                                  "import importlib.metadata as m; print(m.version('jupyter-server-proxy'))")
    assert version_tuple(installed) >= (4, 2, 0), installed


@pytest.mark.parametrize("path", ["proxy/3334/", "proxy/8899/", "proxy/3334", "proxy/8899",
                                  "proxy/3334/command/core/get-version", "proxy/8899/static/nbdime.js"])
def test_without_login_the_apps_are_refused_or_sent_to_login(host, path):
    for host_header in ("", PUBLIC_HOST):
        answer = get(host, path, password="", host_header=host_header)[0]
        assert answer["status"] in (302, 403), answer
        if answer["status"] == 302:
            assert urllib.parse.urlparse(answer["location"]).path == "/login", answer
        assert "OpenRefine" not in answer["body"] and "nbdime" not in answer["body"]


def test_without_login_posts_are_refused(host):
    answer = browse(host, [{"path": "proxy/8899/api/diff", "method": "POST", "body": "{}"}], password="")[0]
    assert answer["status"] == 403


def html_page(host, path, title, host_header):
    """The page at `path` through the proxy: an HTML answer (200) whose title starts with `title`."""
    page = get(host, path, host_header=host_header)[0]
    assert page["status"] == 200, page
    assert page["content_type"].startswith("text/html")
    assert "<title>" + title in page["body"]
    return page


@pytest.mark.parametrize("host_header", ["", PUBLIC_HOST])
def test_openrefine_page_and_its_scripts_and_styles_load(host, host_header):
    page = html_page(host, "proxy/3334/", "OpenRefine</title>", host_header)
    wanted = assets(page["body"], "/proxy/3334/")
    scripts = [p for p in wanted if re.search(r"\.js(\?|$)", p)]
    styles = [p for p in wanted if re.search(r"\.(css|less)(\?|$)", p)]
    assert scripts and styles, wanted
    # Relative links resolve below /proxy/3334/, so OpenRefine (not Jupyter) serves them.
    assert all(p.startswith("/proxy/3334/") for p in scripts + styles), wanted
    for path, answer in zip(scripts + styles, get(host, *(scripts + styles), host_header=host_header)):
        assert answer["status"] == 200 and answer["length"] > 0, (path, answer)
        assert not answer["body"].lstrip().startswith("<"), (path, answer)
        kind = "javascript" if re.search(r"\.js(\?|$)", path) else "text/css"
        assert kind in answer["content_type"], (path, answer)


def test_openrefine_commands_answer_through_the_proxy(host):
    answer = get(host, "proxy/3334/command/core/get-version", host_header=PUBLIC_HOST)[0]
    assert answer["status"] == 200 and "json" in answer["content_type"], answer
    assert json.loads(answer["body"])["version"].startswith("3.")


def test_openrefine_creates_a_project_and_its_redirect_stays_behind_the_proxy(host):
    token = json.loads(get(host, "proxy/3334/command/core/get-csrf-token", host_header=PUBLIC_HOST)[0]["body"])
    boundary = "molecule-boundary"
    form = ('--{b}\r\nContent-Disposition: form-data; name="project-name"\r\n\r\nmolecule\r\n'
            '--{b}\r\nContent-Disposition: form-data; name="project-file"; filename="t.csv"\r\n'
            'Content-Type: text/csv\r\n\r\nfruit,count\napple,3\npear,5\n\r\n--{b}--\r\n').format(b=boundary)
    path = "proxy/3334/command/core/create-project-from-upload?csrf_token=" + token["token"]
    answer = browse(host, [{"path": path, "method": "POST", "body": form,
                            "headers": {"Content-Type": "multipart/form-data; boundary=" + boundary}}],
                    host_header=PUBLIC_HOST)[0]
    # Jetty's redirect named http://127.0.0.1:3334/project?project=ID; the proxy config makes it relative.
    assert answer["status"] == 302, answer
    assert not urllib.parse.urlsplit(answer["location"]).netloc, answer
    project = urllib.parse.urljoin("/" + path, answer["location"])
    assert re.fullmatch(r"/proxy/3334/project\?project=\d+", project), project
    page = get(host, project, host_header=PUBLIC_HOST)[0]
    assert page["status"] == 200 and "<title>OpenRefine</title>" in page["body"]
    projects = json.loads(get(host, "proxy/3334/command/core/get-all-project-metadata")[0]["body"])["projects"]
    assert any(p["name"] == "molecule" for p in projects.values()), projects


@pytest.mark.parametrize("host_header", ["", PUBLIC_HOST])
def test_nbdime_page_and_its_static_files_load(host, host_header):
    page = html_page(host, "proxy/8899/", "nbdime", host_header)
    config = json.loads(re.search(r"id='nbdime-config-data'[^>]*>(.*?)</script>", page["body"], re.S).group(1))
    assert config["baseUrl"] == "/proxy/8899/"
    scripts = [p for p in assets(page["body"], "/proxy/8899/") if re.search(r"\.js(\?|$)", p)]
    assert scripts and all(p.startswith("/proxy/8899/static/") for p in scripts), scripts
    answer = get(host, scripts[0], host_header=host_header)[0]
    assert answer["status"] == 200 and "javascript" in answer["content_type"], answer
    assert answer["length"] > 100000


def test_nbdime_diffs_notebooks_behind_a_public_name(host):
    # Two notebooks in the student's folder; the page's script posts to api/diff with the _xsrf cookie.
    for name, source in (("before.ipynb", "x = 1"), ("after.ipynb", "x = 2")):
        notebook = {"cells": [{"cell_type": "code", "execution_count": None, "id": "c1", "metadata": {},
                               "outputs": [], "source": source}],
                    "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
        host.run_test("install -d -o %s -g users %s", USER, NOTEBOOKS)
        host.run_test("sudo -u %s python3 -c %s %s %s", USER,
                      "import sys; open(sys.argv[1], 'w').write(sys.argv[2])",
                      "%s/%s" % (NOTEBOOKS, name), json.dumps(notebook))
    answer = browse(host, [{"path": "proxy/8899/api/diff", "method": "POST", "xsrf": True,
                            "headers": {"Origin": "http://" + PUBLIC_HOST, "Content-Type": "application/json"},
                            "body": json.dumps({"base": "before.ipynb", "remote": "after.ipynb"})}],
                    host_header=PUBLIC_HOST)[0]
    assert answer["status"] == 200, answer
    diff = json.loads(answer["body"])
    assert diff["base"]["cells"][0]["source"] == "x = 1"
    assert diff["diff"], diff


@pytest.mark.parametrize("port", [3334, 8899])
def test_the_url_without_its_slash_redirects(host, port):
    for host_header in ("", PUBLIC_HOST):
        answer = get(host, "proxy/%d" % port, "proxy/%d?a=1" % port, host_header=host_header)
        assert answer[0]["status"] in (301, 302) and answer[0]["location"] == "/proxy/%d/" % port, answer[0]
        assert answer[1]["status"] in (301, 302) and answer[1]["location"] == "/proxy/%d/?a=1" % port, answer[1]


def test_jupyterlab_launcher_lists_both_apps(host):
    answer = get(host, "server-proxy/servers-info")[0]
    assert answer["status"] == 200
    entries = {s["launcher_entry"]["title"]: s["launcher_entry"]["path_info"]
               for s in json.loads(answer["body"])["server_processes"]}
    assert entries == {"OpenRefine": "proxy/3334/", "nbdime": "proxy/8899/"}


@pytest.mark.parametrize("unit,port", [("jupyter", 8888), ("openrefine", 3334), ("nbdime", 8899)])
def test_every_service_runs_as_the_course_user_on_loopback_only(host, unit, port):
    assert host.service(unit).is_running and host.service(unit).is_enabled
    processes = [line.split() for line in host.check_output("ps -e -o pid=,unit=,user=").splitlines()]
    mine = {pid: user for pid, owner_unit, user in processes if owner_unit == unit + ".service"}
    assert mine and set(mine.values()) == {USER}, processes
    sockets = host.check_output("ss -Hltnp")
    listening = [line.split()[3] for line in sockets.splitlines()
                 if any("pid=%s," % pid in line for pid in mine)]
    assert "127.0.0.1:%d" % port in listening, sockets
    assert all(addr.startswith("127.0.0.1:") for addr in listening), listening


def test_proxy_config_is_owned_by_root(host):
    config = host.file("/etc/jupyter/jupyter_config.py")
    assert config.user == "root" and config.mode == 0o644
    assert '"proxy/3334"' in config.content_string and '"proxy/8899"' in config.content_string


@pytest.mark.parametrize("setting", ["NoNewPrivileges=yes", "ProtectSystem=strict", "PrivateTmp=yes",
                                     "Restart=on-failure", "User=oustudent"])
def test_nbdime_unit_is_hardened(host, setting):
    key, value = setting.split("=")
    assert host.check_output("systemctl show -p %s --value nbdime", key) == value
