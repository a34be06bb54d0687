"""The course's PostgreSQL as the course account, a notebook and an outsider meet it (testinfra over ssh)."""

import os
import shlex
import socket
from pathlib import Path

import pytest
import yaml

EPHEMERAL = Path(os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY", "/nonexistent"))
MACHINE = "cvm-pg-1"
USER = "oustudent"
HBA = "/etc/postgresql/15/main/pg_hba.conf"


def passwords():
    record = yaml.safe_load((EPHEMERAL / "secrets" / "postgresql" / (MACHINE + ".yml")).read_text())
    return record["passwords"]


def psql(host, sql, user=USER, options="", login=False, password=None):
    """Run psql as the Linux account `user` (a login shell with `login`); the CommandResult."""
    env = "PGPASSWORD=%s " % shlex.quote(password) if password is not None else ""
    sudo = "sudo -iu %s" % user if login else "sudo -u %s" % user
    return host.run("cd /tmp && %s env PGCONNECT_TIMEOUT=10 %spsql -X -w -tA %s -c %s" % (
        sudo, env, options, shlex.quote(sql)))


@pytest.fixture(scope="module")
def address(host):
    return host.backend.get_variables()["ansible_host"]


def test_the_course_account_logs_in_by_peer_with_no_password(host):
    result = psql(host, "select current_user, 1", options="-d course")
    assert result.rc == 0, result.stderr
    assert result.stdout.strip() == "%s|1" % USER


def test_a_login_shell_of_the_course_account_lands_in_the_course_database(host):
    result = psql(host, "select current_database() || ' ' || current_user", login=True)
    assert result.rc == 0, result.stderr
    assert result.stdout.strip() == "course %s" % USER


def test_the_course_account_can_create_tables_in_the_course_database(host):
    result = psql(host, "create table scratch (x int); insert into scratch values (1); drop table scratch;",
                  options="-d course")
    assert result.rc == 0, result.stderr


def test_the_course_role_logs_in_with_its_password_over_tcp_on_loopback(host):
    result = psql(host, "select current_user", user="vagrant", password=passwords()["course"],
                  options="-h 127.0.0.1 -U course -d course")
    assert result.rc == 0, result.stderr
    assert result.stdout.strip() == "course"


def test_a_wrong_password_is_refused(host):
    result = psql(host, "select 1", user="vagrant", password="not-the-password",
                  options="-h 127.0.0.1 -U course -d course")
    assert result.rc != 0
    assert "password authentication failed" in result.stderr


def test_the_course_accounts_pgpass_gives_the_course_role_with_no_prompt(host):
    pgpass = host.file("/home/%s/.pgpass" % USER)
    assert pgpass.user == USER and pgpass.mode == 0o600
    result = psql(host, "select current_user", options="-h 127.0.0.1 -U course -d course")
    assert result.rc == 0, result.stderr
    assert result.stdout.strip() == "course"


def test_admin_is_a_superuser_with_a_password(host):
    result = psql(host, "select rolsuper from pg_roles where rolname = current_user", user="vagrant",
                  password=passwords()["admin"], options="-h 127.0.0.1 -U admin -d course")
    assert result.rc == 0, result.stderr
    assert result.stdout.strip() == "t"


def test_a_role_with_a_password_cannot_log_in_by_peer_and_a_stranger_not_at_all(host):
    # vagrant has no role; the course role over the socket needs its password.
    assert psql(host, "select 1", user="vagrant", options="-d course").rc != 0
    assert psql(host, "select 1", user="vagrant", options="-U course -d course").rc != 0


def test_postgresql_listens_on_loopback_only(host, address):
    listening = host.check_output("ss -Htln 'sport = :5432'")
    # State, Recv-Q, Send-Q, the local address, the peer: only the local addresses matter.
    assert [line.split()[3] for line in listening.splitlines()] == ["127.0.0.1:5432"], listening
    # From the machine itself to its own non-loopback address, and from the controller: refused.
    result = psql(host, "select 1", user="vagrant", password=passwords()["course"],
                  options="-h %s -U course -d course" % address)
    assert result.rc != 0 and "refused" in result.stderr, result.stderr
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((address, 5432), timeout=10).close()


def test_the_seed_was_loaded_once(host):
    # The idempotence run came after converge: a second load would have failed (primary key) or doubled the rows.
    result = psql(host, "select count(*) from modules", options="-d course")
    assert result.rc == 0, result.stderr
    assert result.stdout.strip() == "3"
    owner = psql(host, "select tableowner from pg_tables where tablename = 'modules'", options="-d course")
    assert owner.stdout.strip() == "course"
    assert host.file("/var/lib/postgresql/coursevm-seeded-course").exists


def test_pg_hba_conf_is_the_roles_own_and_private_to_postgres(host):
    hba = host.file(HBA)
    assert hba.user == "postgres" and hba.group == "postgres" and hba.mode == 0o640
    assert "Ansible managed" in hba.content_string
    errors = psql(host, "select count(*) from pg_hba_file_rules where error is not null", user="postgres")
    assert errors.stdout.strip() == "0", errors.stderr


def test_jupyter_gets_the_database_settings(host):
    dropin = host.file("/etc/systemd/system/jupyter.service.d/coursevm-postgresql.conf")
    assert dropin.exists
    assert "Environment=PGDATABASE=course" in dropin.content_string
    assert "Environment=PGHOST=/var/run/postgresql" in dropin.content_string


def test_the_passwords_are_recorded_owner_only_on_the_controller():
    path = EPHEMERAL / "secrets" / "postgresql" / (MACHINE + ".yml")
    assert path.stat().st_mode & 0o777 == 0o600
    assert path.parent.stat().st_mode & 0o777 == 0o700
    assert sorted(passwords()) == ["admin", "course"]
