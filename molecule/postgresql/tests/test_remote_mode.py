"""Remote mode, after the local-mode tests (pytest runs this file second): the role
converged again with postgresql_listen remote (remote.yml). The app host is the
container itself; the test host, over the Docker bridge, is a host that is not
listed."""

from __future__ import annotations

import json
import os
import re
import shlex
import socket
import ssl
import struct
import subprocess
from pathlib import Path

import pytest
from pytest_helpers.network import PROJECT_DIR, ansible_playbook, port_answers

SCENARIO = Path(__file__).resolve().parents[1]
DATABASE = USER = "flaskapp"
PASSWORD = "molecule-only-password"  # converge.yml's and remote.yml's postgresql_password
CA = "/etc/ssl/flask-vps-test/ca.crt"
PLAYBOOK_ENV = {"ANSIBLE_PIPELINING": "true"}


def remote_run(*args: str):
    """remote.yml with args: it must pass, and neither the password nor the private
    key may appear in its output."""
    result = ansible_playbook(SCENARIO / "remote.yml", *args, **PLAYBOOK_ENV)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert PASSWORD not in result.stdout + result.stderr
    assert "PRIVATE KEY" not in result.stdout + result.stderr
    return result


@pytest.fixture(scope="module")
def remote(host):
    """remote.yml run twice: the second run must change nothing. The first runs with
    --diff and -v, and neither the password nor the private key may appear in its output."""
    for args in (["--diff", "-v"], []):
        result = remote_run(*args)
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


def test_the_firewall_opens_5432_to_the_app_hosts_only(remote, address):
    """As a database host's wiring sets it: ufw on, 5432 allowed from the app hosts
    (here the container itself), so the test host no longer even reaches pg_hba."""
    assert port_answers(address, 5432)
    remote_run("-e", '{"remote_firewall": true}')
    assert not port_answers(address, 5432)
    status = remote.check_output("ufw status")
    assert re.findall(r"^5432/tcp\s+ALLOW\s+(\S+)", status, re.M) == [address], status


def test_the_apps_own_suite_passes_against_this_server(remote, address, tmp_path):
    """app/tests/test_migrations.py's PostgreSQL cases (the schema from the migrations,
    the old release on the new schema) from the test host, listed now as an app host,
    over TLS with verify-full against the server's name."""
    gateway = remote.check_output("ip -4 route show default").split()[2]
    remote_run("-e", json.dumps({"remote_firewall": True, "remote_extra_app_hosts": [gateway]}))
    assert port_answers(address, 5432)
    (tmp_path / "ca.crt").write_bytes(remote.file(CA).content)
    subprocess.run(["make", "--no-print-directory", "app-venv"], cwd=PROJECT_DIR, check=True,
                   capture_output=True, timeout=900)
    hostname = remote.check_output("hostname")
    url = (f"postgresql+psycopg://{USER}:{PASSWORD}@{hostname}/{DATABASE}"
           f"?hostaddr={address}&sslmode=verify-full&sslrootcert={tmp_path / 'ca.crt'}")
    result = subprocess.run(
        [str(PROJECT_DIR / ".venv-app" / "bin" / "python"), "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs",
         "tests/test_migrations.py", "-k", "postgresql"],
        cwd=PROJECT_DIR / "app", env=dict(os.environ, FLASK_VPS_TEST_DATABASE_URL=url),
        capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert re.search(r"\b[1-9]\d* passed\b", result.stdout) and "skipped" not in result.stdout, result.stdout
