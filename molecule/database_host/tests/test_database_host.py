"""The database on a host of its own, seen from outside: `web` (the app host) and
`db` (the one host of flask_vps_db), both converged by site.yml. The tests run
once, against db; web is reached through its own testinfra host."""

from __future__ import annotations

import json
import os
import re
import shlex

import pytest
import testinfra
from pytest_helpers.network import PROJECT_DIR, ansible_playbook, container_ip, port_answers, scenario_dir

INVENTORY = os.environ["MOLECULE_INVENTORY_FILE"]
DISTRO = os.environ.get("MOLECULE_DISTRO", "debian13")
SUFFIX = os.environ.get("FLASK_VPS_NAME_SUFFIX", "")
WEB = f"fv-database_host-web-{DISTRO}{SUFFIX}"
DB = f"fv-database_host-db-{DISTRO}{SUFFIX}"
testinfra_hosts = [f"ansible://{DB}?ansible_inventory={INVENTORY}"]
APP = DATABASE = USER = "flaskapp"
SITE = "flask-vps.localhost"
ENV_FILE = f"/etc/flask-vps/{APP}.env"
CA_FILE = f"/etc/ssl/flask-vps/{APP}-database-ca.crt"
WORK_DIR = PROJECT_DIR / ".cache" / f"molecule-database_host{SUFFIX}"


@pytest.fixture(scope="module")
def web():
    return testinfra.get_host(f"ansible://{WEB}?ansible_inventory={INVENTORY}")


@pytest.fixture(scope="module")
def db_ip(host) -> str:
    return container_ip(host)


@pytest.fixture(scope="module")
def web_ip(web) -> str:
    return container_ip(web)


def database_url(web) -> str:
    env = web.check_output(f"cat {ENV_FILE}")
    # KEY="value" lines (the quoting systemd's EnvironmentFile= reads).
    return next(line.split("=", 1)[1].strip('"') for line in env.splitlines() if line.startswith("FLASK_DATABASE_URL="))


def connect_from_web(web, **params: str):
    """A libpq connection from the app host through the live release's psycopg
    (the app's own driver), with the given parameters; the output is the server's
    answer or the error, without the password (none is sent that matters)."""
    script = ("import sys, psycopg\n"
              "try:\n"
              f"    c = psycopg.connect(**{params!r}, connect_timeout=10)\n"
              "    print('connected', c.execute('SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()').fetchone()[0])\n"
              "except psycopg.OperationalError as e:\n"
              "    print('refused', e)\n")
    return web.check_output(f"/srv/{APP}/current/.venv/bin/python -c {shlex.quote(script)}")


def test_the_apps_url_points_at_the_database_host_with_verify_full(web, db_ip):
    url = database_url(web)
    assert url.startswith(f"postgresql+psycopg://{USER}:")
    location = url.split("@", 1)[1]
    assert location == f"{DB}:5432/{DATABASE}?hostaddr={db_ip}&sslmode=verify-full&sslrootcert={CA_FILE}"
    env = web.file(ENV_FILE)
    assert (env.user, env.group, env.mode) == ("root", APP, 0o640)
    ca = web.file(CA_FILE)
    assert (ca.user, ca.mode) == ("root", 0o644)
    assert "BEGIN CERTIFICATE" in ca.content_string


def test_healthz_reports_the_database_ok_over_tls_from_the_app_host(host, web, web_ip):
    answer = web.check_output(f"curl -sk --resolve {SITE}:443:127.0.0.1 https://{SITE}/healthz")
    assert json.loads(answer)["database"] == "ok", answer
    # The app's pooled connections, as the database host sees them: TLS, from web.
    rows = host.check_output(
        "runuser -u postgres -- psql -XAtq -F ' ' -c \"SELECT a.client_addr, s.ssl, s.version FROM pg_stat_activity a "
        f"JOIN pg_stat_ssl s USING (pid) WHERE a.usename = '{USER}'\"").splitlines()
    assert rows, "no connection of the app on the database host"
    for row in rows:
        client, ssl, version = row.split()
        assert (client, ssl) == (web_ip, "t") and version in ("TLSv1.2", "TLSv1.3"), rows


def test_the_certificate_comes_from_the_own_ca_and_names_the_database_host(host):
    subject = host.check_output(f"openssl x509 -noout -subject -in /etc/ssl/flask-vps/{APP}-database/fullchain.pem")
    assert DB in subject
    verify = host.run(f"openssl verify -CAfile /etc/ssl/flask-vps/ca/ca.crt /etc/ssl/flask-vps/{APP}-database/fullchain.pem")
    assert verify.rc == 0, verify.stderr
    key = host.file(f"/etc/ssl/flask-vps/{APP}-database/privkey.pem")
    assert (key.user, key.mode) == ("root", 0o600)


def test_verify_full_rejects_a_name_the_certificate_does_not_hold(web, db_ip):
    answer = connect_from_web(web, host=db_ip, dbname=DATABASE, user=USER, password="x",
                              sslmode="verify-full", sslrootcert=CA_FILE)
    assert answer.startswith("refused") and "does not match host name" in answer, answer


def test_a_plain_connection_from_the_app_host_is_refused(web, db_ip):
    answer = connect_from_web(web, host=db_ip, dbname=DATABASE, user=USER, password="x", sslmode="disable")
    assert answer.startswith("refused"), answer
    assert "pg_hba.conf rejects connection" in answer and "no encryption" in answer, answer


def test_a_host_that_is_not_an_app_host_is_refused_with_tls(host, db_ip):
    """The database host itself is no app host: its own TLS connection to the
    private address matches no hostssl line (the firewall lets local traffic in)."""
    result = host.run(f"env PGPASSWORD=x psql -XAtq 'host={db_ip} dbname={DATABASE} user={USER} sslmode=require' -c 'SELECT 1'")
    assert result.rc != 0
    assert f'pg_hba.conf rejects connection for host "{db_ip}"' in result.stderr, result.stderr


def test_only_the_private_address_listens_with_ssl_on(host, db_ip):
    assert host.check_output("runuser -u postgres -- psql -XAtqc 'SHOW ssl'") == "on"
    listeners = [line.split()[3] for line in host.check_output("ss -Hltn").splitlines()
                 if line.split()[3].endswith(":5432")]
    assert listeners == [f"{db_ip}:5432"]
    methods = host.check_output("runuser -u postgres -- psql -XAtqc "
                                "'SELECT DISTINCT auth_method FROM pg_hba_file_rules ORDER BY 1'").split()
    assert methods == ["peer", "reject", "scram-sha-256"]


def test_the_firewall_opens_5432_to_the_app_host_only(host, db_ip, web_ip):
    status = host.check_output("ufw status")
    assert re.findall(r"^5432/tcp\s+ALLOW\s+(\S+)", status, re.M) == [web_ip], status
    # No web server here: 80 and 443 stay closed.
    assert not re.search(r"^(80|443)(/tcp)?\s", status, re.M), status
    # From the test host (not an app host) the port does not even answer.
    assert not port_answers(db_ip, 5432)


def test_each_host_does_its_own_job(host, web):
    assert not host.file(f"/srv/{APP}").exists
    assert not host.package("nginx").is_installed
    assert not web.package("postgresql").is_installed
    assert web.service("nginx").is_running


def test_the_deploys_backup_was_taken_on_the_database_host(host):
    """site.yml built a release, and the backup before its migrations ran where the database is."""
    backups = host.check_output(f"ls /var/backups/postgresql").split()
    assert any(re.fullmatch(rf"{DATABASE}-.*\.dump", name) for name in backups), backups


def test_a_verbose_diff_run_changes_nothing_and_shows_no_secret(host):
    password = (WORK_DIR / "database_password").read_text().strip()
    result = ansible_playbook(scenario_dir() / "converge.yml", "--skip-tags", "host", "--diff", "-v",
                              ANSIBLE_PIPELINING="true")
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    assert password not in output
    assert "PRIVATE KEY" not in output
    recap = dict(re.findall(r"^(\S+)\s+:\s+(ok=.*)$", output.split("PLAY RECAP", 1)[-1], re.M))
    assert set(recap) >= {WEB, DB} and all("changed=0 " in line for line in recap.values()), recap
