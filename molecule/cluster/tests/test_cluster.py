"""Several hosts, seen from outside: lb1 is the only front door (HTTPS with the CA
that site.yml fetched), web1 and web2 serve the app behind it, worker1 runs the
workers only (web2 runs them too), db1 holds the data. The tests run against
lb1, in file order, building on each other like an operator's day: the spread
over both web hosts, the ports each host answers, a rolling deploy and a broken
release under strict keep-alive load with checked writes, then a fleet rollback.
Run after test_workers.py (conftest.py), which took the workers and the timer off
the lists: the rolling deploy brings them back on its release and the rollback
restarts them onto the release before, both checked here, so the workers need no
deploy of their own."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys

import pytest
from pytest_helpers.fleet import (APP, APP_HOSTS, CA_FILE, NAMES, SITE, TIMER_HOST, WORK, WORKER_HOSTS, api, get, host_url,
                                  live_release, node, served_by, served_by_all)
from pytest_helpers.network import PROJECT_DIR, ansible_playbook, ansible_playbook_command, container_ip, port_answers
from pytest_helpers.strict_load import assert_strict_load_passed, load_arguments, release_copy
from pytest_helpers.workers import TIMER, WORKER_UNIT, WORKERS, main_pids, stopped_cleanly, wait_done, wait_started

testinfra_hosts = [host_url("lb1")]
sys.path.insert(0, str(PROJECT_DIR / "scripts"))
import loadgen  # noqa: E402  (scripts/loadgen.py)

STATE: dict = {}


@pytest.fixture(scope="module")
def ips(host) -> dict[str, str]:
    return {"lb1": container_ip(host), **{name: container_ip(node(name)) for name in ("web1", "web2", "worker1", "db1")}}


def app_copy(wsgi_extra: str):
    return release_copy(WORK, wsgi_extra)


def under_load(lb: str, playbook: str, *args: str) -> tuple[subprocess.CompletedProcess[str], dict]:
    command, environ = ansible_playbook_command(PROJECT_DIR / "playbooks" / playbook, *args)
    result, load, _ = loadgen.during(command, load_arguments(SITE, lb, str(CA_FILE)), timeout=900, env=environ,
                                     cwd=PROJECT_DIR)
    return result, load


def rotation_rules(host) -> str:
    return host.check_output("iptables -S OUTPUT | grep -c 'out of rotation' || true")


def test_requests_are_spread_over_both_web_hosts(ips):
    served = [get(ips["lb1"]).headers["X-Served-By"] for _ in range(20)]
    assert set(served) == {NAMES["web1"], NAMES["web2"]}, served
    body = json.loads(get(ips["lb1"]).body)
    assert body["status"] == "ok" and body["database"] == "ok", body
    STATE["release"] = body["release"]
    assert {live_release(name) for name in APP_HOSTS} == {body["release"]}


def test_only_the_load_balancer_is_a_front_door(ips):
    assert port_answers(ips["lb1"], 443) and port_answers(ips["lb1"], 80)
    for name in ("web1", "web2", "worker1", "db1"):
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


def test_the_database_admits_the_app_hosts_only_over_tls(host, ips):
    # From the balancer (no web host): 5432 does not even answer.
    closed = host.run(f"timeout 5 bash -c 'exec 3<>/dev/tcp/{ips['db1']}/5432'")
    assert closed.rc != 0
    rules = node("db1").check_output("runuser -u postgres -- psql -XAtqc \"SELECT type, address, auth_method "
                                     "FROM pg_hba_file_rules WHERE type LIKE 'host%'\"").split()
    assert sorted(rules) == sorted([f"hostssl|{ips[name]}|scram-sha-256" for name in APP_HOSTS]
                                   + ["host|0.0.0.0|reject", "host|::|reject"]), rules


def test_a_rolling_deploy_under_strict_load_fails_no_request(host, ips):
    before = STATE["release"]
    source = app_copy(f"\n# cluster scenario, rolling deploy {os.getpid()}\n")
    result, load = under_load(ips["lb1"], "deploy.yml", "-e", f"flask_vps_app_source_dir={source}")
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    assert_strict_load_passed(load, 200)
    after = json.loads(get(ips["lb1"]).body)["release"]
    assert after != before and load["releases"] == [before, after], load["releases"]
    assert {live_release(name) for name in APP_HOSTS} == {after}
    # web1 was switched before web2 started: the roll went one host at a time.
    order = [m.group(1) for m in re.finditer(r"^TASK \[Switch the live socket.*\n(?:.*\n)*?(?:changed|ok): \[(fv-cluster-\S+)\]",
                                             output, re.M)]
    assert order[:2] == [NAMES["web1"], NAMES["web2"]], order
    assert rotation_rules(host) == "0"
    STATE.update(previous=before, release=after, source=str(source))


def started_once_on(web, name: str, release: str) -> tuple[list[int], str]:
    """The worker processes of a worker host, each started on release and never
    restarted by systemd; with the journal that says so."""
    pids, journal = wait_started(web, name, release)
    restarts = [web.check_output(f"systemctl show -p NRestarts --value {unit}") for unit in WORKERS]
    assert 0 not in pids and all(f"Worker {name}/{pid} started: release={release}" in journal for pid in pids) \
        and restarts == ["0", "0"], (name, pids, restarts, journal[-4000:])
    return pids, journal


def test_the_deploy_brought_the_workers_back_on_its_release_and_the_timer_on_one_host(ips):
    """test_workers.py's last test took them off the lists; this deploy ships them again."""
    release = STATE["release"]
    STATE["workers"] = {}
    for name in WORKER_HOSTS:
        web = node(name)
        pids, journal = started_once_on(web, name, release)
        for unit in WORKERS:
            assert web.service(unit).is_enabled, (name, unit)
        assert f"WorkingDirectory=/srv/{APP}/releases/{release}\n" in web.file(f"/etc/systemd/system/{WORKER_UNIT}").content_string
        timer = web.file(f"/etc/systemd/system/{TIMER}.timer")
        assert timer.exists == (name == TIMER_HOST), name
        STATE["workers"][name] = pids
    timer_host = node(TIMER_HOST)
    assert timer_host.check_output(f"systemctl is-enabled {TIMER}.timer") == "enabled"
    assert timer_host.check_output(f"systemctl is-active {TIMER}.timer") == "active"
    assert f"WorkingDirectory=/srv/{APP}/releases/{release}\n" in timer_host.file(f"/etc/systemd/system/{TIMER}.service").content_string


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
    assert {live_release(name) for name in APP_HOSTS} == {STATE["release"]}
    # web1 is back in rotation, and web2 never started the broken release.
    assert rotation_rules(host) == "0"
    assert served_by(ips["lb1"]) == {NAMES["web1"], NAMES["web2"]}
    for name in ("web2", "worker1"):  # built, never started
        assert node(name).run(f"ls /srv/{APP}/releases/*/.unfinished").rc == 0, name
    assert "broken on purpose" not in node("web2").check_output(f"journalctl -u '{APP}@*' --no-pager -o cat | tail -n 100")
    # The workers never left the live release: the same processes on both hosts.
    assert {name: main_pids(node(name)) for name in WORKER_HOSTS} == STATE["workers"]


def test_a_fleet_rollback_goes_back_on_every_app_host(host, ips):
    """With web2 drained by an operator (playbooks/rotation.yml): web1, the only
    web host left in rotation, switches in it, under the strict load; web2
    switches drained and stays drained until the operator puts it back."""
    web2 = NAMES["web2"]
    drain = ansible_playbook(PROJECT_DIR / "playbooks" / "rotation.yml", "-e", f"host={web2}", "-e", "rotation=out")
    assert drain.returncode == 0, (drain.stdout + drain.stderr)[-6000:]
    result, load = under_load(ips["lb1"], "rollback.yml")
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    assert_strict_load_passed(load, 100)
    assert {live_release(name) for name in APP_HOSTS} == {STATE["previous"]}
    assert json.loads(get(ips["lb1"]).body)["release"] == STATE["previous"]
    # Neither host left the rotation for the rollback (no rule set, none changed);
    # web2 is still drained.
    rule_tasks = [block for block in output.split("\nTASK [")[1:] if block.startswith("Set the rotation rule")]
    assert rule_tasks and not any("\nchanged:" in block for block in rule_tasks), rule_tasks
    assert rotation_rules(host) == "0"
    assert served_by(ips["lb1"], 10) == {NAMES["web1"]}
    back = ansible_playbook(PROJECT_DIR / "playbooks" / "rotation.yml", "-e", f"host={web2}", "-e", "rotation=in")
    assert back.returncode == 0, (back.stdout + back.stderr)[-6000:]
    assert served_by_all(ips["lb1"], {NAMES["web1"], web2}) == {NAMES["web1"], web2}


def test_the_rollback_restarted_the_workers_onto_the_release_before(ips):
    """A restart, not a start: the processes of the deploy's release stop on
    SIGTERM, cleanly, and new ones start on the release before, which a job queued
    through lb1 then meets."""
    release = STATE["previous"]
    for name in WORKER_HOSTS:
        web = node(name)
        pids, journal = started_once_on(web, name, release)
        assert set(pids).isdisjoint(STATE["workers"][name]), (name, pids)
        for pid in STATE["workers"][name]:
            assert stopped_cleanly(journal, name, pid), (name, pid, journal[-3000:])
        assert "SIGKILL" not in journal
        units = [WORKER_UNIT] + ([f"{TIMER}.service"] if name == TIMER_HOST else [])
        for unit in units:
            assert f"WorkingDirectory=/srv/{APP}/releases/{release}\n" in web.file(f"/etc/systemd/system/{unit}").content_string, unit
    job = api(ips["lb1"], "/api/jobs", {"text": "after the rollback"})
    [done] = wait_done(ips["lb1"], [job["id"]])
    assert done["processed_count"] == 1 and done["result"] == "AFTER THE ROLLBACK", done
    assert done["processed_release"] == release == api(ips["lb1"], "/healthz")["release"]
