"""Remote mode, after the local-mode tests (pytest runs this file second): the role
converged again with postgresql_listen remote (remote.yml). The app host is the
container itself; the test host, over the Docker bridge, is a host that is not
listed."""

from __future__ import annotations

import re
import shlex
import socket
import ssl
import struct
from pathlib import Path

import pytest
from pytest_helpers.network import ansible_playbook

SCENARIO = Path(__file__).resolve().parents[1]
DATABASE = USER = "flaskapp"
PASSWORD = "molecule-only-password"  # converge.yml's and remote.yml's postgresql_password
CA = "/etc/ssl/flask-vps-test/ca.crt"
PLAYBOOK_ENV = {"ANSIBLE_PIPELINING": "true"}


@pytest.fixture(scope="module")
def remote(host):
    """remote.yml run twice: the second run must change nothing. The first runs with
    --diff and -v, and neither the password nor the private key may appear in its output."""
    for args in (["--diff", "-v"], []):
        result = ansible_playbook(SCENARIO / "remote.yml", *args, **PLAYBOOK_ENV)
        assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
        assert PASSWORD not in result.stdout + result.stderr
        assert "PRIVATE KEY" not in result.stdout + result.stderr
    assert re.search(r"changed=0\s", result.stdout), f"the second remote-mode run changed something:\n{result.stdout[-6000:]}"
    return host


def psql(machine, sql: str, password: str = PASSWORD, **params: str):
    """psql as the app role from inside the container (the listed app host) over TCP."""
    conninfo = " ".join(f"{k}={v}" for k, v in {"user": USER, "dbname": DATABASE, **params}.items())
    return machine.run(f"env PGPASSWORD={shlex.quote(password)} psql -XAtq -v ON_ERROR_STOP=1 "
                       f"{shlex.quote(conninfo)} -c {shlex.quote(sql)}")


def startup(address: str, *, tls: bool) -> str:
    """A StartupMessage for the app role from the test host; the server's first answer."""
    sock = socket.create_connection((address, 5432), 5)
    try:
        if tls:
            sock.sendall(struct.pack("!ii", 8, 80877103))  # SSLRequest
            assert sock.recv(1) == b"S"
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            sock = context.wrap_socket(sock)
        body = struct.pack("!i", 196608) + f"user\0{USER}\0database\0{DATABASE}\0\0".encode()
        sock.sendall(struct.pack("!i", len(body) + 4) + body)
        answer = b""
        while chunk := sock.recv(4096):
            answer += chunk
        return answer.decode(errors="replace")
    finally:
        sock.close()


def test_tls_with_verify_full_works_for_the_app_host(remote):
    hostname = remote.check_output("hostname")
    result = psql(remote, "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
                  host=hostname, sslmode="verify-full", sslrootcert=CA)
    assert result.rc == 0, result.stderr
    assert result.stdout.strip() == "t"


def test_ssl_is_on_and_only_the_private_address_listens(remote, address):
    assert remote.check_output("runuser -u postgres -- psql -XAtqc 'SHOW ssl'") == "on"
    listeners = [line.split()[3] for line in remote.check_output("ss -Hltn").splitlines()
                 if line.split()[3].endswith(":5432")]
    assert listeners == [f"{address}:5432"]


def test_verify_full_refuses_a_name_the_certificate_does_not_hold(remote, address):
    result = psql(remote, "SELECT 1", host=address, sslmode="verify-full", sslrootcert=CA)
    assert result.rc != 0
    assert "does not match host name" in result.stderr


def test_a_plain_connection_is_refused(remote, address):
    result = psql(remote, "SELECT 1", host=address, sslmode="disable")
    assert result.rc != 0
    assert "pg_hba.conf rejects connection" in result.stderr
    assert "no encryption" in result.stderr


def test_a_wrong_password_is_refused(remote):
    hostname = remote.check_output("hostname")
    result = psql(remote, "SELECT 1", password="not-the-password", host=hostname, sslmode="verify-full", sslrootcert=CA)
    assert result.rc != 0
    assert "password authentication failed" in result.stderr


@pytest.mark.parametrize("tls", [True, False], ids=["tls", "plain"])
def test_a_host_not_listed_is_rejected(remote, address, tls):
    answer = startup(address, tls=tls)
    assert answer.startswith("E"), answer
    assert "pg_hba.conf rejects connection for host" in answer


def test_pg_hba_still_has_no_trust_or_md5_lines(remote):
    methods = remote.check_output("runuser -u postgres -- psql -XAtqc "
                                  "'SELECT DISTINCT auth_method FROM pg_hba_file_rules ORDER BY 1'").split()
    assert methods == ["peer", "reject", "scram-sha-256"]
    types = remote.check_output("runuser -u postgres -- psql -XAtqc "
                                "\"SELECT DISTINCT type FROM pg_hba_file_rules WHERE auth_method <> 'reject' ORDER BY 1\"").split()
    assert types == ["hostssl", "local"]
