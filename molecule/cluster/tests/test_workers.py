"""The background workers and the scheduled job (roles/workers), seen as a user and
an operator see them across the fleet (the sandbox's settings: worker `jobs` with
2 processes on each worker host, web2 and worker1, which runs no app server; timer
`tick` on web2 only), through the front door lb1 over HTTPS. Run before test_cluster.py (conftest.py): the last test here takes
the workers and the timer off the lists, test_cluster.py's rolling deploy brings
them back and its fleet rollback restarts them, each checked there."""

from __future__ import annotations

import json
import re
import time

import pytest
from pytest_helpers.fleet import APP, NAMES, TIMER_HOST, WORKER_HOSTS, api, host_url, live_release, node
from pytest_helpers.network import PROJECT_DIR, ansible_playbook, container_ip
from pytest_helpers.workers import TIMER, WORKER_UNIT, WORKERS, main_pids, wait_done, worker_journal

testinfra_hosts = [host_url("lb1")]
ENV_FILE = f"/etc/flask-vps/{APP}.env"
UNIT_FILES = f"ls /etc/systemd/system/ | grep -E -- '^{APP}-(worker|timer)-' || true"


@pytest.fixture(scope="module")
def lb(host) -> str:
    return container_ip(host)


def env_value(host, name: str) -> str:
    """A value of the live environment file (root reads it; the test never prints it)."""
    for line in host.check_output(f"cat {ENV_FILE}").splitlines():
        if line.startswith(f"{name}="):
            return line.split("=", 1)[1].strip('"')
    raise AssertionError(f"{name} not in {ENV_FILE}")


def test_the_workers_run_on_both_worker_hosts_and_the_timer_on_exactly_one(host):
    for name in WORKER_HOSTS:
        web = node(name)
        for unit in WORKERS:
            service = web.service(unit)
            assert service.is_running and service.is_enabled, (name, unit)
    with_timer = [name for name in NAMES if node(name).file(f"/etc/systemd/system/{TIMER}.timer").exists]
    assert with_timer == [TIMER_HOST], with_timer
    assert node(TIMER_HOST).check_output(f"systemctl is-enabled {TIMER}.timer") == "enabled"
    assert node(TIMER_HOST).check_output(f"systemctl is-active {TIMER}.timer") == "active"
    # No timer unit of any kind on the other worker host; nothing of the role on
    # lb1, db1 and web1 (a web host outside flask_vps_worker).
    assert node("worker1").check_output(UNIT_FILES).split() == [WORKER_UNIT]
    for name in ("lb1", "db1", "web1"):
        assert node(name).check_output(UNIT_FILES) == "", name


def test_jobs_queued_through_the_balancer_are_each_done_exactly_once_by_the_four_workers(lb):
    # Paced over about 3 s: each of the 4 processes (2 per worker host, polling every
    # second when idle) wakes several times while jobs keep arriving, so they
    # compete for the same queue in the one database.
    queued = []
    for n in range(40):
        queued.append(api(lb, "/api/jobs", {"text": f"job {n}"}))
        time.sleep(0.05)
    # Accepted (202, api() checks); a worker may already have taken a job between
    # its commit and the answer, which then says done.
    assert all(job["status"] in ("queued", "done") for job in queued), queued
    assert len({job["id"] for job in queued}) == 40
    jobs = wait_done(lb, [job["id"] for job in queued])
    assert all(job["status"] == "done" for job in jobs), jobs
    assert [job["processed_count"] for job in jobs] == [1] * 40
    assert [job["result"] for job in jobs] == [f"JOB {n}" for n in range(40)]
    # Done by the four worker processes (hostname/pid), nobody else, on both hosts.
    workers = {f"{name}/{pid}" for name in WORKER_HOSTS for pid in main_pids(node(name))}
    assert len(workers) == 4
    by = [job["processed_by"] for job in jobs]
    assert set(by) <= workers, (by, workers)
    assert {worker.split("/")[0] for worker in by} == set(WORKER_HOSTS), {w: by.count(w) for w in set(by)}
    release = api(lb, "/healthz")["release"]
    assert {job["processed_release"] for job in jobs} == {release}
    # Each job once in the journals too: one "did job" line per job across the fleet.
    ids = [int(found) for name in WORKER_HOSTS for found in re.findall(r"Worker \S+ did job (\d+)\b", worker_journal(node(name)))]
    assert all(ids.count(job["id"]) == 1 for job in jobs), sorted(ids)


def test_the_timer_runs_on_its_schedule_and_its_tick_shows_through_the_app(lb):
    timer_host = node(TIMER_HOST)
    calendar = timer_host.check_output(f"systemctl show -p TimersCalendar --value {TIMER}.timer")
    assert "OnCalendar=*-*-* *:00/15:00" in calendar, calendar
    before = api(lb, "/api/ticks")["count"]
    # What the timer starts, now (a oneshot: returns once the tick is recorded).
    timer_host.check_output(f"systemctl start {TIMER}.service")
    ticks = api(lb, "/api/ticks")
    assert ticks["count"] == before + 1, ticks
    assert ticks["ticks"][0]["by"].startswith(f"{TIMER_HOST}/")
    assert ticks["ticks"][0]["release"] == api(lb, "/healthz")["release"]
    assert timer_host.check_output(f"systemctl show -p Result --value {TIMER}.service") == "success"
    # Every tick so far came from the timer host alone.
    assert {tick["by"].split("/")[0] for tick in ticks["ticks"]} == {TIMER_HOST}, ticks


def test_the_worker_host_runs_the_release_and_no_server(lb):
    """worker1 (flask_vps_worker only) got the release every web host serves, and
    none of a web host's parts: no app server, no front door, no open port."""
    worker = node("worker1")
    assert live_release("worker1") == api(lb, "/healthz")["release"]
    assert worker.file(f"/srv/{APP}/current/.venv/bin/flask").exists
    assert worker.run(f"systemctl list-units --all --plain --no-legend '{APP}@*'").stdout.strip() == ""
    assert not worker.file(f"/var/lib/flask-vps/{APP}/live.sock").exists
    for package in ("nginx", "caddy", "postgresql", "supervisor"):
        assert not worker.package(package).is_installed, package
    # Nothing listens beyond loopback but sshd, and ufw lets in nothing else.
    listeners = {line.split()[3] for line in worker.check_output("ss -Hltn").splitlines()}
    assert {address.rsplit(":", 1)[1] for address in listeners
            if not address.startswith(("127.", "[::1]"))} <= {"22"}, listeners
    status = worker.check_output("ufw status")
    assert "Status: active" in status
    opened = re.findall(r"^(\S+)(?: \(v6\))?\s+(?:ALLOW|LIMIT)\b", status, re.M)
    assert opened and set(opened) <= {"22/tcp", "22"}, status


@pytest.mark.parametrize("name", WORKER_HOSTS)
def test_the_secrets_are_in_the_workers_environment_not_in_argv_or_logs(name):
    web = node(name)
    secret = env_value(web, "FLASK_SECRET_KEY")
    database_url = env_value(web, "FLASK_DATABASE_URL")
    password = database_url.split("://", 1)[1].split("@", 1)[0].split(":", 1)[1]
    assert len(secret) >= 32 and len(password) >= 16
    for pid in main_pids(web):
        environ = web.check_output(f"tr '\\0' '\\n' < /proc/{pid}/environ")
        assert f"FLASK_SECRET_KEY={secret}" in environ.splitlines()
        cmdline = web.check_output(f"tr '\\0' ' ' < /proc/{pid}/cmdline")
        assert "/.venv/bin/flask --app wsgi worker" in cmdline, cmdline
        assert secret not in cmdline and password not in cmdline
        # The app's user, not root.
        assert web.check_output(f"stat -c %U /proc/{pid}") == APP
    every_argv = web.check_output("ps -eo args")
    assert secret not in every_argv and password not in every_argv
    journal = web.check_output(f"journalctl --no-pager -u '{APP}-worker-*' -u '{TIMER}.*'")
    assert f"Worker {name}/" in journal
    assert secret not in journal and password not in journal
    units = [WORKER_UNIT] + ([f"{TIMER}.service", f"{TIMER}.timer"] if name == TIMER_HOST else [])
    for unit in units:
        unit_file = web.file(f"/etc/systemd/system/{unit}")
        assert (unit_file.user, unit_file.mode) == ("root", 0o644)
        assert secret not in unit_file.content_string and password not in unit_file.content_string


def exposure(host, unit: str) -> float:
    output = host.check_output(f"systemd-analyze security --no-pager {unit}")
    match = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", output)
    assert match, output[-2000:]
    return float(match.group(1))


def test_the_workers_sandbox_is_as_tight_as_the_apps():
    web = node(TIMER_HOST)
    app_unit = web.check_output(f"systemctl list-units --plain --no-legend --state=running '{APP}@*.service'").split()[0]
    app_score = exposure(web, app_unit)
    for unit in (WORKERS[0], f"{TIMER}.service"):
        assert exposure(web, unit) <= app_score, (unit, app_unit)


def test_workers_and_timers_taken_off_the_lists_are_removed():
    """Brought back by test_cluster.py's rolling deploy, which ships the lists again."""
    pids = {name: main_pids(node(name)) for name in WORKER_HOSTS}
    result = ansible_playbook(PROJECT_DIR / "playbooks" / "deploy.yml",
                              "-e", json.dumps({"flask_vps_workers": [], "flask_vps_timers": []}))
    assert result.returncode == 0, (result.stdout + result.stderr)[-6000:]
    for name in WORKER_HOSTS:
        web = node(name)
        assert web.check_output(UNIT_FILES) == "", name
        assert web.run(f"ls /etc/systemd/system/*.wants/ | grep -- '{APP}-\\(worker\\|timer\\)'").stdout == "", name
        assert web.run(f"pgrep -u {APP} -f 'wsgi worker'").rc == 1, name
        # Stopped gracefully: each finished its job at hand and exited on SIGTERM.
        journal = worker_journal(web)
        for pid in pids[name]:
            assert re.search(rf"Worker {name}/{pid} stopped after \d+ jobs", journal), journal[-3000:]
