"""MongoDB's apt repository as the role leaves it: a keyring trusted for that repository only, a signed-by source,
and nothing fetched or installed (the machine has no route out; apt update is never run here)."""

from pathlib import Path

from conftest import SCENARIO

testinfra_hosts = ["cvm-mongo-repo"]

KEYRING = "/etc/apt/keyrings/mongodb-server-8.0.asc"
SOURCES = "/etc/apt/sources.list.d/mongodb-org-8.0.list"


def test_the_keyring_is_the_given_key_readable_by_apt_and_owned_by_root(host):
    keyring = host.file(KEYRING)
    assert keyring.user == "root" and keyring.group == "root" and keyring.mode == 0o644
    assert keyring.content_string == (SCENARIO / "files" / "test-signing-key.asc").read_text()


def test_the_source_is_signed_by_that_keyring_only(host):
    sources = host.file(SOURCES)
    assert sources.user == "root" and sources.mode == 0o644
    lines = [line for line in sources.content_string.splitlines() if line and not line.startswith("#")]
    assert lines == ["deb [ signed-by=%s ] https://repo.mongodb.org/apt/debian bookworm/mongodb-org/8.0 main"
                     % KEYRING]
    # Not trusted for every source: nothing of MongoDB's among apt's global keys.
    trusted = host.file("/etc/apt/trusted.gpg.d")
    assert not any("mongodb" in name.lower() for name in (trusted.listdir() if trusted.exists else []))


def test_apt_parses_the_source(host):
    # apt-get's own reading of the source (no network: it only prints what `update` would fetch).
    uris = host.run("apt-get update --print-uris -o Debug::NoLocking=1")
    assert uris.rc == 0, uris.stderr
    assert "https://repo.mongodb.org/apt/debian/dists/bookworm/mongodb-org/8.0/" in uris.stdout


def test_nothing_was_fetched_or_installed(host):
    assert not any("mongodb" in name for name in host.check_output("ls -A /var/lib/apt/lists/").split())
    assert host.run("dpkg-query -W mongodb-org-server").rc != 0
    assert not host.exists("mongod")


def test_no_file_repository_here(host):
    assert not any(Path(name).name.startswith("coursevm-wheelhouse-")
                   for name in host.check_output("ls -A /etc/apt/sources.list.d/").split())
