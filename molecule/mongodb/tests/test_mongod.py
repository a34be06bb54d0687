"""mongod itself, as the course account, a notebook and an outsider meet it. Only where MongoDB's .deb files were
given (COURSEVM_MONGODB_DEBS): otherwise every check here is skipped with the reason, which the test summary
shows — nothing stands in for mongod."""

import socket

import pytest

from conftest import GIVEN_DEBS, MONGOD_NOT_STARTED, USER, passwords

testinfra_hosts = ["cvm-mongo-debs"]
MACHINE = "cvm-mongo-debs"


@pytest.fixture(autouse=True)
def mongod_given():
    if not GIVEN_DEBS:
        pytest.skip(MONGOD_NOT_STARTED)


def mongosh(host, script, uri="\"$MONGODB_URI\"", user=USER):
    """mongosh as a login shell of `user` (so with its MONGODB_URI); the CommandResult."""
    return host.run("cd /tmp && sudo -iu %s mongosh --quiet %s --eval %s" % (user, uri, "'%s'" % script))


@pytest.fixture(scope="module")
def address(host):
    return host.backend.get_variables()["ansible_host"]


def test_mongod_runs_and_starts_at_boot(host):
    service = host.service("mongod")
    assert service.is_running and service.is_enabled


def test_mongod_listens_on_loopback_only(host, address):
    listening = host.check_output("ss -Htln 'sport = :27017'")
    assert [line.split()[3] for line in listening.splitlines()] == ["127.0.0.1:27017"], listening
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((address, 27017), timeout=10).close()


def test_the_course_account_writes_and_reads_the_course_database_with_no_settings(host):
    result = mongosh(host, "db.scratch.insertOne({x: 1}); print(db.scratch.countDocuments({x: 1}) >= 1);"
                           " db.scratch.drop()")
    assert result.rc == 0, result.stderr
    assert "true" in result.stdout


def test_a_wrong_password_is_refused(host):
    result = mongosh(host, "db.runCommand({ping: 1})",
                     uri="mongodb://course:not-the-password@127.0.0.1:27017/course?authSource=course")
    assert result.rc != 0


def test_without_credentials_nothing_is_readable(host):
    result = mongosh(host, "db.getMongo().getDBNames()", uri="mongodb://127.0.0.1:27017/course", user="vagrant")
    assert result.rc != 0


def test_admin_logs_in_with_its_recorded_password(host):
    uri = "mongodb://admin:%s@127.0.0.1:27017/admin" % passwords(MACHINE)["admin"]
    result = host.run("mongosh --quiet '%s' --eval 'print(db.runCommand({connectionStatus: 1}).ok)'" % uri)
    assert result.rc == 0, result.stderr
    assert result.stdout.strip().endswith("1")
