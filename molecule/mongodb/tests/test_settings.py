"""The files the role writes on both routes, before any package: mongod.conf, the confining drop-in of MongoDB's
unit, the course account's connection string (owner-only, outside the notebook folder), Jupyter's drop-in, and the
passwords recorded on the controller."""

import yaml

from conftest import ENV_FILE, EPHEMERAL, PORTS, USER, passwords


def machine(host):
    return host.backend.get_hostname()


def test_mongod_conf_listens_on_loopback_on_the_course_port_with_authorization(host):
    conf = host.file("/etc/mongod.conf")
    assert conf.user == "root" and conf.mode == 0o644
    settings = yaml.safe_load(conf.content_string)
    assert settings["net"] == {"port": PORTS[machine(host)], "bindIp": "127.0.0.1"}
    assert settings["storage"]["dbPath"] == "/var/lib/mongodb"
    assert settings["security"]["authorization"] == "enabled"


def test_the_drop_in_of_mongods_unit_is_valid_systemd(host):
    dropin = host.file("/etc/systemd/system/mongod.service.d/coursevm.conf")
    assert dropin.user == "root" and dropin.mode == 0o644
    assert "ProtectSystem=full" in dropin.content_string and "NoNewPrivileges=true" in dropin.content_string
    # No MongoDB unit here to verify it with: systemd-analyze checks the same lines under a stand-in unit.
    unit = "[Unit]\nDescription=stand-in\n[Service]\nExecStart=/bin/true\n"
    unit += dropin.content_string.split("[Service]", 1)[1]
    host.run_test("d=$(mktemp -d) && printf %%s %s > $d/standin.service && systemd-analyze verify $d/standin.service"
                  " && rm -r $d", unit)


def test_the_course_account_has_its_connection_string_owner_only(host):
    env = host.file(ENV_FILE)
    assert env.user == USER and env.mode == 0o600
    assert host.file(ENV_FILE.rsplit("/", 1)[0]).mode == 0o700
    assert "/notebooks/" not in ENV_FILE
    expected = "mongodb://course:%s@127.0.0.1:%d/course?authSource=course" % (
        passwords(machine(host))["course"], PORTS[machine(host)])
    assert "MONGODB_URI=%s" % expected in env.content_string.splitlines()


def test_a_login_shell_of_the_course_account_gets_mongodb_uri_and_others_do_not(host):
    mine = host.run("sudo -iu %s printenv MONGODB_URI" % USER)
    assert mine.rc == 0 and mine.stdout.strip().startswith("mongodb://course:"), mine.stderr
    other = host.run("sudo -iu vagrant printenv MONGODB_URI")
    assert other.rc != 0 and other.stdout.strip() == ""


def test_jupyter_reads_the_connection_string_from_the_owner_only_file(host):
    dropin = host.file("/etc/systemd/system/jupyter.service.d/coursevm-mongodb.conf")
    assert dropin.exists and dropin.mode == 0o644
    assert "EnvironmentFile=-%s" % ENV_FILE in dropin.content_string
    assert "mongodb://" not in dropin.content_string


def test_the_passwords_are_recorded_owner_only_on_the_controller(host):
    path = EPHEMERAL / "secrets" / "mongodb" / (machine(host) + ".yml")
    assert path.stat().st_mode & 0o777 == 0o600
    assert path.parent.stat().st_mode & 0o777 == 0o700
    assert sorted(passwords(machine(host))) == ["admin", "course"]
