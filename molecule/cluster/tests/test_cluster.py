"""Several hosts, seen from outside: lb1 is the only front door (HTTPS with the CA
that site.yml fetched), web1 and web2 serve the app behind it, db1 holds the
data. The tests run against lb1, in file order, building on each other like an
operator's day: the spread over both web hosts, the ports each host answers, a
rolling deploy and a broken release under strict keep-alive load with checked
writes, then a fleet rollback."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import testinfra
from pytest_helpers.frontdoor import request
from pytest_helpers.network import PROJECT_DIR, ansible_playbook_command, container_ip, port_answers

INVENTORY = os.environ["MOLECULE_INVENTORY_FILE"]
DISTRO = os.environ.get("MOLECULE_DISTRO", "debian13")
SUFFIX = os.environ.get("FLASK_VPS_NAME_SUFFIX", "")
NAMES = {role: f"fv-cluster-{role}-{DISTRO}{SUFFIX}" for role in ("lb1", "web1", "web2", "db1")}
testinfra_hosts = [f"ansible://{NAMES['lb1']}?ansible_inventory={INVENTORY}"]
APP = "flaskapp"
SITE = "flask-vps.localhost"
WORK = PROJECT_DIR / ".cache" / f"molecule-cluster{SUFFIX}"
CA_FILE = WORK / "ca.crt"
sys.path.insert(0, str(PROJECT_DIR / "scripts"))
import loadgen  # noqa: E402  (scripts/loadgen.py)

STATE: dict[str, str] = {}


def node(name: str):
    return testinfra.get_host(f"ansible://{NAMES[name]}?ansible_inventory={INVENTORY}")


@pytest.fixture(scope="module")
def ips(host) -> dict[str, str]:
    return {"lb1": container_ip(host), **{name: container_ip(node(name)) for name in ("web1", "web2", "db1")}}


def get(lb: str, path: str = "/healthz", headers: dict[str, str] | None = None):
    return request(lb, SITE, path, cafile=str(CA_FILE), headers=headers)


def live_release(name: str) -> str:
    return node(name).check_output(f"readlink /srv/{APP}/current").rstrip("/").split("/")[-1]


def app_copy(wsgi_extra: str) -> Path:
    """A copy of the app whose wsgi.py ends with wsgi_extra: a new release id."""
    target = Path(tempfile.mkdtemp(dir=WORK)) / "app"
    shutil.copytree(PROJECT_DIR / "app", target,
                    ignore=shutil.ignore_patterns(".venv", "__pycache__", "instance", ".pytest_cache", "tests"))
    with (target / "wsgi.py").open("a") as wsgi:
        wsgi.write(wsgi_extra)
    return target


def load_arguments(lb: str) -> list[str]:
    # As the site scenario's: 4 keep-alive clients that never retry, and a writer
    # whose acknowledged notes must all be stored.
    return ["--url", f"https://{SITE}/healthz", "--connect", f"{lb}:443", "--cacert", str(CA_FILE),
            "--requests", "50000", "--seconds", "600", "--concurrency", "4", "--pause", "0.01",
            "--timeout", "30", "--strict", "--post-workers", "1", "--post-pause", "0.05"]


def under_load(lb: str, playbook: str, *args: str) -> tuple[subprocess.CompletedProcess[str], dict]:
    command, environ = ansible_playbook_command(PROJECT_DIR / "playbooks" / playbook, *args)
    result, load, _ = loadgen.during(command, load_arguments(lb), timeout=900, env=environ, cwd=PROJECT_DIR)
    return result, load


def assert_strict_load_passed(load: dict, minimum: int) -> None:
    assert load["sent"] >= minimum and load["failed"] == 0, (load, load["errors"])
    assert load["closed_by_server"] == 0 and load["retried"] == 0, load
    assert load["writes_failed"] == load["writes_missing"] == load["writes_unacknowledged_stored"] == 0, load["writes_problems"]
    assert load["writes_acknowledged"] == load["writes_sent"] > 0, load


def rotation_rules(host) -> str:
    return host.check_output("iptables -S OUTPUT | grep -c 'out of rotation' || true")


def test_requests_are_spread_over_both_web_hosts(ips):
    served = [get(ips["lb1"]).headers["X-Served-By"] for _ in range(20)]
    assert set(served) == {NAMES["web1"], NAMES["web2"]}, served
    body = json.loads(get(ips["lb1"]).body)
    assert body["status"] == "ok" and body["database"] == "ok", body
    STATE["release"] = body["release"]
    assert live_release("web1") == live_release("web2") == body["release"]


def test_only_the_load_balancer_is_a_front_door(ips):
    assert port_answers(ips["lb1"], 443) and port_answers(ips["lb1"], 80)
    for name in ("web1", "web2", "db1"):
        for port in (80, 443, 8080, 5432):
            assert not port_answers(ips[name], port, timeout=3), f"{name}:{port} answers the test host"


def http_from(host, url: str) -> dict:
    """A GET from inside a container (python3, as no curl is installed there) by
    the site's name: its status, X-Served-By and body, or the error."""
    script = ("import json, urllib.request\n"
              f"request = urllib.request.Request({url!r}, headers={{'Host': {SITE!r}}})\n"
              "try:\n"
              "    with urllib.request.urlopen(request, timeout=5) as r:\n"
              "        print(json.dumps({'status': r.status, 'served_by': r.headers['X-Served-By'], 'body': r.read().decode()}))\n"
              "except Exception as e:\n"
              "    print(json.dumps({'error': repr(e)}))\n")
    return json.loads(host.check_output(f"python3 -c {shlex.quote(script)}"))


def test_a_node_server_answers_the_load_balancer_only(host, ips):
    for name in ("web1", "web2"):
        # From the balancer: the app's health, and the node's name in X-Served-By.
        answer = http_from(host, f"http://{ips[name]}:8080/healthz")
        assert answer.get("status") == 200 and answer["served_by"] == NAMES[name], answer
        assert json.loads(answer["body"])["status"] == "ok"
    # From the other web host: the firewall drops it.
    other = http_from(node("web2"), f"http://{ips['web1']}:8080/healthz")
    assert "error" in other and ("timed out" in other["error"] or "refused" in other["error"]), other
    # Only the balancer's address is let through by ufw.
    status = node("web1").check_output("ufw status")
    assert re.findall(r"^8080/tcp\s+ALLOW\s+(\S+)", status, re.M) == [ips["lb1"]], status
    assert not re.search(r"^(80|443)(/tcp)?\s", status, re.M), status


def test_forwarded_headers_count_two_proxies(host):
    """The balancer sets X-Forwarded-For to the client it saw (a forged value is
    dropped), the node server adds the balancer, and the app's ProxyFix counts two
    hops (FLASK_PROXY_FIX_X_FOR=2; app/tests/test_proxy.py::test_two_proxies shows
    what the app then takes for the client)."""
    assert "proxy_set_header X-Forwarded-For $remote_addr;" in host.check_output("nginx -T 2>/dev/null")
    web1 = node("web1")
    node_config = web1.check_output("nginx -T 2>/dev/null")
    assert "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;" in node_config
    assert "proxy_set_header X-Forwarded-Proto $http_x_forwarded_proto;" in node_config
    assert web1.check_output(f"grep -c '^FLASK_PROXY_FIX_X_FOR=.*2' /etc/flask-vps/{APP}.env") == "1"


def test_the_database_admits_the_web_hosts_only_over_tls(host, ips):
    # From the balancer (no web host): 5432 does not even answer.
    closed = host.run(f"timeout 5 bash -c 'exec 3<>/dev/tcp/{ips['db1']}/5432'")
    assert closed.rc != 0
    rules = node("db1").check_output("runuser -u postgres -- psql -XAtqc \"SELECT type, address, auth_method "
                                     "FROM pg_hba_file_rules WHERE type LIKE 'host%'\"").split()
    assert sorted(rules) == sorted([f"hostssl|{ips['web1']}|scram-sha-256", f"hostssl|{ips['web2']}|scram-sha-256",
                                    "host|0.0.0.0|reject", "host|::|reject"]), rules


def test_a_rolling_deploy_under_strict_load_fails_no_request(host, ips):
    before = STATE["release"]
    source = app_copy(f"\n# cluster scenario, rolling deploy {os.getpid()}\n")
    result, load = under_load(ips["lb1"], "deploy.yml", "-e", f"flask_vps_app_source_dir={source}")
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    assert_strict_load_passed(load, 200)
    after = json.loads(get(ips["lb1"]).body)["release"]
    assert after != before and load["releases"] == [before, after], load["releases"]
    assert live_release("web1") == live_release("web2") == after
    # web1 was switched before web2 started: the roll went one host at a time.
    order = [m.group(1) for m in re.finditer(r"^TASK \[Switch the live socket.*\n(?:.*\n)*?(?:changed|ok): \[(fv-cluster-\S+)\]",
                                             output, re.M)]
    assert order[:2] == [NAMES["web1"], NAMES["web2"]], order
    assert rotation_rules(host) == "0"
    STATE.update(previous=before, release=after, source=str(source))


def test_a_broken_release_stops_at_the_first_web_host(host, ips):
    broken = app_copy("")
    (broken / "wsgi.py").write_text('raise RuntimeError("broken on purpose by the test")\n')
    result, load = under_load(ips["lb1"], "deploy.yml", "-e", json.dumps(
        {"flask_vps_app_source_dir": str(broken), "flask_app_pre_hooks": [], "gunicorn_healthcheck_retries": 5}))
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert f"The deploy stopped at {NAMES['web1']}" in output, output[-6000:]
    assert f"{NAMES['web2']} were not touched" in output, output[-6000:]
    assert_strict_load_passed(load, 100)
    assert load["releases"] == [STATE["release"]], load["releases"]
    assert live_release("web1") == live_release("web2") == STATE["release"]
    # web1 is back in rotation, and web2 never started the broken release.
    assert rotation_rules(host) == "0"
    assert {get(ips["lb1"]).headers["X-Served-By"] for _ in range(20)} == {NAMES["web1"], NAMES["web2"]}
    assert node("web2").run(f"ls /srv/{APP}/releases/*/.unfinished").rc == 0  # built, never started
    assert "broken on purpose" not in node("web2").check_output(f"journalctl -u '{APP}@*' --no-pager -o cat | tail -n 100")


def test_a_fleet_rollback_goes_back_on_every_web_host(host, ips):
    result, load = under_load(ips["lb1"], "rollback.yml")
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    assert_strict_load_passed(load, 100)
    assert live_release("web1") == live_release("web2") == STATE["previous"]
    assert json.loads(get(ips["lb1"]).body)["release"] == STATE["previous"]
    assert rotation_rules(host) == "0"
