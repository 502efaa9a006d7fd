"""The database as its users see it: the app role over the Unix socket, another
host over the network, an operator taking and restoring backups with the role's
entry points (ansible-playbook against the scenario's container)."""

from __future__ import annotations

import re
import shlex
import socket
import uuid
from pathlib import Path

import pytest
from pytest_helpers.network import ansible_playbook

SCENARIO = Path(__file__).resolve().parents[1]
DATABASE = "flaskapp"
USER = "flaskapp"
PASSWORD = "molecule-only-password"  # converge.yml's postgresql_password
BACKUP_DIR = "/var/backups/postgresql"
# Become (sudo to postgres) needs pipelining with the linear strategy.
PLAYBOOK_ENV = {"ANSIBLE_PIPELINING": "true"}


def as_postgres(host, sql: str) -> str:
    """One SQL statement as the superuser (peer login over the socket); its rows, unaligned."""
    return host.check_output(f"runuser -u postgres -- psql -XAtq -v ON_ERROR_STOP=1 -c {shlex.quote(sql)}")


def as_app(host, sql: str, password: str = PASSWORD):
    """One SQL statement as the app role over the Unix socket, with its password."""
    return host.run(f"env PGPASSWORD={shlex.quote(password)} psql -XAtq -v ON_ERROR_STOP=1 "
                    f"-h /var/run/postgresql -U {USER} -d {DATABASE} -c {shlex.quote(sql)}")


@pytest.fixture(scope="module")
def version(host) -> str:
    return {"12": "15", "13": "17"}[host.system_info.release.split(".")[0]]


def test_the_server_runs_debians_postgresql(host, version):
    assert host.service(f"postgresql@{version}-main").is_running
    assert host.service(f"postgresql@{version}-main").is_enabled
    assert as_postgres(host, "SHOW server_version").startswith(f"{version}.")


def test_no_tcp_listener_on_a_non_loopback_address(host, address):
    listeners = host.check_output("ss -Hltn")
    for line in listeners.splitlines():
        local = line.split()[3]
        if local.endswith(":5432"):
            assert re.match(r"^(127\.|\[::1\]|::1)", local), line
    with pytest.raises(OSError):
        socket.create_connection((address, 5432), 2).close()


def test_the_app_role_connects_over_the_socket_and_writes(host):
    result = as_app(host, "CREATE TABLE IF NOT EXISTS notes (body text); INSERT INTO notes VALUES ('hello'); "
                          "SELECT count(*) > 0 FROM notes")
    assert result.rc == 0, result.stderr
    assert result.stdout.strip().endswith("t")


def test_a_wrong_password_is_refused(host):
    result = as_app(host, "SELECT 1", password="not-the-password")
    assert result.rc != 0
    assert "password authentication failed" in result.stderr


def test_the_app_role_owns_its_database_and_no_power(host):
    assert as_postgres(host, f"SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = '{DATABASE}'") == USER
    flags = as_postgres(host, f"SELECT rolsuper, rolcreatedb, rolcreaterole FROM pg_roles WHERE rolname = '{USER}'")
    assert flags == "f|f|f"
    # Another database on the server: the app role may not even connect to it.
    result = host.run(f"env PGPASSWORD={PASSWORD} psql -XAtq -h /var/run/postgresql -U {USER} -d postgres -c 'SELECT 1'")
    assert result.rc != 0


def test_public_has_no_connect_on_the_app_database(host):
    assert as_postgres(host, f"SELECT has_database_privilege('public', '{DATABASE}', 'CONNECT')") == "f"


def test_pg_hba_has_no_trust_or_md5_lines(host):
    methods = as_postgres(host, "SELECT DISTINCT auth_method FROM pg_hba_file_rules ORDER BY 1").split()
    assert methods == ["peer", "reject", "scram-sha-256"]
    assert as_postgres(host, "SELECT count(*) FROM pg_hba_file_rules WHERE error IS NOT NULL") == "0"
    hba = as_postgres(host, "SHOW hba_file")
    lines = [line.split("#")[0].split() for line in host.file(hba).content_string.splitlines()]
    assert not [line for line in lines if line and line[-1] in ("trust", "md5", "password")]


def test_the_password_is_stored_as_scram(host):
    stored = as_postgres(host, f"SELECT rolpassword FROM pg_authid WHERE rolname = '{USER}'")
    assert stored.startswith("SCRAM-SHA-256$")
    assert as_postgres(host, "SHOW password_encryption") == "scram-sha-256"


def test_the_password_is_in_no_file_or_log(host):
    # Text files only (-I): the data directory's binary files hold the SCRAM verifier.
    found = host.run(f"grep -rIl --exclude-dir=proc -e {PASSWORD} /etc /var/log /var/backups /var/lib/postgresql /root /tmp")
    assert found.rc == 1, found.stdout
    assert PASSWORD not in host.check_output("journalctl --no-pager -o cat")


def test_the_backup_timer_is_scheduled(host):
    assert host.service("flask-vps-postgresql-backup.timer").is_enabled
    assert host.service("flask-vps-postgresql-backup.timer").is_running


def backup(host) -> str:
    result = ansible_playbook(SCENARIO / "backup.yml", **PLAYBOOK_ENV)
    assert result.returncode == 0, result.stdout[-4000:]
    name = re.search(r"restore it with -e backup=(\S+\.dump)", result.stdout)
    assert name, result.stdout[-4000:]
    return name.group(1)


def restore(name: str, *, confirm: bool):
    extra = ['-e', '{"postgresql_restore_confirm": true}'] if confirm else []
    return ansible_playbook(SCENARIO / "restore.yml", "-e", f"backup={name}", *extra, **PLAYBOOK_ENV)


@pytest.fixture(scope="module")
def taken_backup(host) -> tuple[str, str]:
    """A row with a fresh marker, then a backup with tasks_from backup: (file name, marker)."""
    marker = uuid.uuid4().hex
    assert as_app(host, f"CREATE TABLE IF NOT EXISTS notes (body text); INSERT INTO notes VALUES ('{marker}')").rc == 0
    return backup(host), marker


def test_restore_without_confirmation_is_refused(host, taken_backup):
    name, _ = taken_backup
    marker = uuid.uuid4().hex
    assert as_app(host, f"INSERT INTO notes VALUES ('{marker}')").rc == 0
    result = restore(name, confirm=False)
    assert result.returncode != 0
    assert "Set postgresql_restore_confirm=true to go on" in result.stdout + result.stderr
    # Nothing was replaced: the row written after the backup is still there.
    assert as_app(host, f"SELECT count(*) FROM notes WHERE body = '{marker}'").stdout.strip() == "1"


def test_backup_drop_restore_brings_the_data_back(host, taken_backup):
    name, marker = taken_backup
    assert host.file(f"{BACKUP_DIR}/{name}").is_file
    as_postgres(host, f"DROP DATABASE {DATABASE} WITH (FORCE)")
    assert as_app(host, "SELECT 1").rc != 0

    result = restore(name, confirm=True)
    assert result.returncode == 0, result.stdout[-4000:]

    found = as_app(host, f"SELECT count(*) FROM notes WHERE body = '{marker}'")
    assert found.rc == 0, found.stderr
    assert found.stdout.strip() == "1"
    # Owner and privileges come back with the data.
    assert as_postgres(host, f"SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = '{DATABASE}'") == USER
    assert as_postgres(host, f"SELECT has_database_privilege('public', '{DATABASE}', 'CONNECT')") == "f"


def test_backups_are_readable_by_root_and_postgres_only(host, taken_backup):
    directory = host.file(BACKUP_DIR)
    assert (directory.user, directory.group, directory.mode) == ("postgres", "root", 0o750)
    files = host.check_output(f"find {BACKUP_DIR} -type f -printf '%u %g %m %f\\n'").splitlines()
    assert taken_backup[0] in [line.split()[-1] for line in files]
    for line in files:
        user, _, mode, _ = line.split()
        assert (user, mode) == ("postgres", "600"), line
    assert host.run(f"runuser -u nobody -- ls {BACKUP_DIR}").rc != 0
    assert host.run(f"runuser -u nobody -- cat {BACKUP_DIR}/*.dump").rc != 0
