"""The database on a host of its own, seen from outside: web1 and web2 run the
app, worker1 its workers only, db1 is the one host of flask_vps_db, lb1 the front door, all converged by
site.yml. The tests run once, against db1; the other hosts are reached through
their own testinfra hosts. Run first (conftest.py): the verbose diff run at the
end must find the state the converge left."""

from __future__ import annotations

import json
import re
import shlex

import pytest
from pytest_helpers.fleet import APP_HOSTS, NAMES, WEB_HOSTS, WORK, get, host_url, node
from pytest_helpers.network import ansible_playbook, container_ip, port_answers, scenario_dir

testinfra_hosts = [host_url("db1")]
DB = NAMES["db1"]
APP = DATABASE = USER = "flaskapp"
ENV_FILE = f"/etc/flask-vps/{APP}.env"
CA_FILE = f"/etc/ssl/flask-vps/{APP}-database-ca.crt"


@pytest.fixture(scope="module")
def ips(host) -> dict[str, str]:
    return {"db1": container_ip(host), **{name: container_ip(node(name)) for name in ("lb1", *APP_HOSTS)}}


def database_url(web) -> str:
    env = web.check_output(f"cat {ENV_FILE}")
    value = next(line.split("=", 1)[1] for line in env.splitlines() if line.startswith("FLASK_DATABASE_URL="))
    return shlex.split(value)[0]  # the file quotes each value as a shell would


def connect_from(web, **params: str):
    """A libpq connection from an app host through the live release's psycopg
    (the app's own driver), with the given parameters; the output is the server's
    answer or the error, without the password (none is sent that matters)."""
    script = ("import sys, psycopg\n"
              "try:\n"
              f"    c = psycopg.connect(**{params!r}, connect_timeout=10)\n"
              "    print('connected', c.execute('SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()').fetchone()[0])\n"
              "except psycopg.OperationalError as e:\n"
              "    print('refused', e)\n")
    return web.check_output(f"/srv/{APP}/current/.venv/bin/python -c {shlex.quote(script)}")


@pytest.mark.parametrize("name", APP_HOSTS)
def test_the_apps_url_points_at_the_database_host_with_verify_full(name, ips):
    web = node(name)
    url = database_url(web)
    credentials, location = url.split("@", 1)
    # Checked without printing the password on failure.
    assert re.fullmatch(rf"postgresql\+psycopg://{USER}:[^:/@]+", credentials), "not the app role's credentials"
    assert location == f"{DB}:5432/{DATABASE}?hostaddr={ips['db1']}&sslmode=verify-full&sslrootcert={CA_FILE}"
    env = web.file(ENV_FILE)
    assert (env.user, env.group, env.mode) == ("root", APP, 0o640)
    ca = web.file(CA_FILE)
    assert (ca.user, ca.mode) == ("root", 0o644)
    assert "BEGIN CERTIFICATE" in ca.content_string


def test_healthz_through_the_balancer_reports_the_database_ok_over_tls_from_both_web_hosts(host, ips):
    served = set()
    for _ in range(10):
        answer = get(ips["lb1"])
        assert answer.status == 200 and json.loads(answer.body)["database"] == "ok", answer.body
        served.add(answer.headers["X-Served-By"])
    assert served == {NAMES[name] for name in WEB_HOSTS}, served
    # The app's connections (its pools and its workers), as the database host
    # sees them: TLS, from the two web hosts and the worker host, nowhere else.
    rows = host.check_output(
        "runuser -u postgres -- psql -XAtq -F ' ' -c \"SELECT a.client_addr, s.ssl, s.version FROM pg_stat_activity a "
        f"JOIN pg_stat_ssl s USING (pid) WHERE a.usename = '{USER}'\"").splitlines()
    assert rows, "no connection of the app on the database host"
    clients = set()
    for row in rows:
        client, ssl, version = row.split()
        assert ssl == "t" and version in ("TLSv1.2", "TLSv1.3"), rows
        clients.add(client)
    assert clients == {ips[name] for name in APP_HOSTS}, rows


def test_the_certificate_comes_from_the_own_ca_and_names_the_database_host(host):
    subject = host.check_output(f"openssl x509 -noout -subject -in /etc/ssl/flask-vps/{APP}-database/fullchain.pem")
    assert DB in subject
    verify = host.run(f"openssl verify -CAfile /etc/ssl/flask-vps/ca/ca.crt /etc/ssl/flask-vps/{APP}-database/fullchain.pem")
    assert verify.rc == 0, verify.stderr
    key = host.file(f"/etc/ssl/flask-vps/{APP}-database/privkey.pem")
    assert (key.user, key.mode) == ("root", 0o600)


def test_verify_full_rejects_a_name_the_certificate_does_not_hold(ips):
    answer = connect_from(node("web1"), host=ips["db1"], dbname=DATABASE, user=USER, password="x",
                          sslmode="verify-full", sslrootcert=CA_FILE)
    assert answer.startswith("refused") and "does not match host name" in answer, answer


@pytest.mark.parametrize("name", APP_HOSTS)
def test_a_plain_connection_from_an_app_host_is_refused(name, ips):
    answer = connect_from(node(name), host=ips["db1"], dbname=DATABASE, user=USER, password="x", sslmode="disable")
    assert answer.startswith("refused"), answer
    assert "pg_hba.conf rejects connection" in answer and "no encryption" in answer, answer


def test_a_host_that_is_not_an_app_host_is_refused_with_tls(host, ips):
    """The database host itself is no app host: its own TLS connection to the
    private address matches no hostssl line (the firewall lets local traffic in).
    The balancer, the other host that is none, does not even reach the port
    (test_cluster.py)."""
    result = host.run(f"env PGPASSWORD=x psql -XAtq 'host={ips['db1']} dbname={DATABASE} user={USER} sslmode=require' -c 'SELECT 1'")
    assert result.rc != 0
    assert f'pg_hba.conf rejects connection for host "{ips["db1"]}"' in result.stderr, result.stderr


def test_only_the_private_address_listens_with_ssl_on(host, ips):
    assert host.check_output("runuser -u postgres -- psql -XAtqc 'SHOW ssl'") == "on"
    listeners = [line.split()[3] for line in host.check_output("ss -Hltn").splitlines()
                 if line.split()[3].endswith(":5432")]
    assert listeners == [f"{ips['db1']}:5432"]
    methods = host.check_output("runuser -u postgres -- psql -XAtqc "
                                "'SELECT DISTINCT auth_method FROM pg_hba_file_rules ORDER BY 1'").split()
    assert methods == ["peer", "reject", "scram-sha-256"]


def test_the_firewall_opens_5432_to_the_app_hosts_only(host, ips):
    status = host.check_output("ufw status")
    assert sorted(re.findall(r"^5432/tcp\s+ALLOW\s+(\S+)", status, re.M)) == sorted(ips[name] for name in APP_HOSTS), status
    # No web server here: 80 and 443 stay closed.
    assert not re.search(r"^(80|443)(/tcp)?\s", status, re.M), status
    # From the test host (not an app host) the port does not even answer.
    assert not port_answers(ips["db1"], 5432)


def test_each_host_does_its_own_job(host):
    assert not host.file(f"/srv/{APP}").exists
    assert not host.package("nginx").is_installed
    for name in APP_HOSTS:
        web = node(name)
        assert not web.package("postgresql").is_installed, name
        assert web.file(f"/srv/{APP}/current").is_symlink, name
        # The node server on a web host; no web server on the worker host.
        assert web.service("nginx").is_running == (name in WEB_HOSTS), name
    lb = node("lb1")
    assert lb.service("nginx").is_running
    assert not lb.file(f"/srv/{APP}").exists
    assert not lb.package("postgresql").is_installed
    assert lb.run(f"systemctl list-units --all --plain --no-legend '{APP}*'").stdout.strip() == ""


def test_the_deploys_backup_was_taken_on_the_database_host(host):
    """site.yml built a release, and the backup before its migrations ran where the database is."""
    backups = host.check_output("ls /var/backups/postgresql").split()
    assert any(re.fullmatch(rf"{DATABASE}-.*\.dump", name) for name in backups), backups


def test_a_verbose_diff_run_changes_nothing_and_shows_no_secret(host):
    password = (WORK / "database_password").read_text().strip()
    result = ansible_playbook(scenario_dir() / "converge.yml", "--skip-tags", "host", "--diff", "-v",
                              ANSIBLE_PIPELINING="true")
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    assert password not in output
    assert "PRIVATE KEY" not in output
    recap = dict(re.findall(r"^(\S+)\s+:\s+(ok=.*)$", output.split("PLAY RECAP", 1)[-1], re.M))
    assert set(recap) >= set(NAMES.values()) and all("changed=0 " in line for line in recap.values()), recap
