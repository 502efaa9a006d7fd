"""The background workers and the scheduled job (roles/workers), seen as a user and
an operator see them: on `web`, the app host (the sandbox's settings: worker
`jobs` with 2 processes, timer `tick`), through the front door over HTTPS. Run
after test_database_host.py (file order), so the deploys here come last."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import time
from pathlib import Path

import pytest
import testinfra
from pytest_helpers.network import PROJECT_DIR, ansible_playbook

INVENTORY = os.environ["MOLECULE_INVENTORY_FILE"]
DISTRO = os.environ.get("MOLECULE_DISTRO", "debian13")
SUFFIX = os.environ.get("FLASK_VPS_NAME_SUFFIX", "")
WEB = f"fv-database_host-web-{DISTRO}{SUFFIX}"
DB = f"fv-database_host-db-{DISTRO}{SUFFIX}"
APP = "flaskapp"
SITE = "flask-vps.localhost"
ENV_FILE = f"/etc/flask-vps/{APP}.env"
testinfra_hosts = [f"ansible://{WEB}?ansible_inventory={INVENTORY}"]
WORKERS = [f"{APP}-worker-jobs@1.service", f"{APP}-worker-jobs@2.service"]
TIMER = f"{APP}-timer-tick"
STATE: dict[str, object] = {}


def https(host, path: str, body: dict | None = None) -> dict:
    """The site's answer through nginx on the host, by its name, as JSON."""
    command = f"curl -sk --max-time 20 --resolve {SITE}:443:127.0.0.1"
    if body is not None:
        command += f" -X POST -H 'Content-Type: application/json' --data {shlex.quote(json.dumps(body))}"
    return json.loads(host.check_output(f"{command} https://{SITE}{path}"))


def main_pids(host) -> list[int]:
    return [int(host.check_output(f"systemctl show -p MainPID --value {unit}")) for unit in WORKERS]


def live_release(host) -> str:
    return host.check_output(f"readlink /srv/{APP}/current")


def env_value(host, name: str) -> str:
    """A value of the live environment file (root reads it; the test never prints it)."""
    for line in host.check_output(f"cat {ENV_FILE}").splitlines():
        if line.startswith(f"{name}="):
            return line.split("=", 1)[1].strip('"')
    raise AssertionError(f"{name} not in {ENV_FILE}")


def wait_done(host, job_ids: list[int], timeout: float = 90) -> list[dict]:
    deadline = time.monotonic() + timeout
    while True:
        jobs = [https(host, f"/api/jobs/{job_id}") for job_id in job_ids]
        if all(job["status"] == "done" for job in jobs) or time.monotonic() > deadline:
            return jobs
        time.sleep(1)


def deploy(*args: str) -> str:
    result = ansible_playbook(PROJECT_DIR / "playbooks" / "deploy.yml", *args)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    return output


def test_the_worker_processes_and_the_timer_run_on_the_app_host_only(host):
    for unit in WORKERS:
        service = host.service(unit)
        assert service.is_running and service.is_enabled, unit
    assert host.check_output(f"systemctl is-active {TIMER}.timer") == "active"
    assert host.check_output(f"systemctl is-enabled {TIMER}.timer") == "enabled"
    db = testinfra.get_host(f"ansible://{DB}?ansible_inventory={INVENTORY}")
    assert db.run(f"ls /etc/systemd/system/ | grep -E -- '^{APP}-(worker|timer)-'").stdout == ""


def test_a_job_queued_over_https_is_done_exactly_once(host):
    queued = [https(host, "/api/jobs", {"text": f"job {n}"}) for n in range(20)]
    assert all(job["status"] == "queued" for job in queued), queued
    jobs = wait_done(host, [job["id"] for job in queued])
    assert all(job["status"] == "done" for job in jobs), jobs
    assert [job["processed_count"] for job in jobs] == [1] * 20
    assert [job["result"] for job in jobs] == [f"JOB {n}" for n in range(20)]
    # Done by the two worker processes (hostname/pid), nobody else.
    workers = {f"web/{pid}" for pid in main_pids(host)}
    assert {job["processed_by"] for job in jobs} <= workers, (jobs, workers)
    release = https(host, "/healthz")["release"]
    assert {job["processed_release"] for job in jobs} == {release}


def test_the_timer_runs_on_its_schedule_and_its_tick_shows_through_the_app(host):
    calendar = host.check_output(f"systemctl show -p TimersCalendar --value {TIMER}.timer")
    assert "OnCalendar=*-*-* *:00/15:00" in calendar, calendar
    before = https(host, "/api/ticks")["count"]
    # What the timer starts, now (a oneshot: returns once the tick is recorded).
    host.check_output(f"systemctl start {TIMER}.service")
    ticks = https(host, "/api/ticks")
    assert ticks["count"] == before + 1, ticks
    assert ticks["ticks"][0]["by"].startswith("web/")
    assert ticks["ticks"][0]["release"] == https(host, "/healthz")["release"]
    result = host.check_output(f"systemctl show -p Result --value {TIMER}.service")
    assert result == "success"


def test_the_secrets_are_in_the_workers_environment_not_in_argv_or_logs(host):
    secret = env_value(host, "FLASK_SECRET_KEY")
    database_url = env_value(host, "FLASK_DATABASE_URL")
    password = database_url.split("://", 1)[1].split("@", 1)[0].split(":", 1)[1]
    assert len(secret) >= 32 and len(password) >= 16
    for pid in main_pids(host):
        environ = host.check_output(f"tr '\\0' '\\n' < /proc/{pid}/environ")
        assert f"FLASK_SECRET_KEY={secret}" in environ.splitlines()
        cmdline = host.check_output(f"tr '\\0' ' ' < /proc/{pid}/cmdline")
        assert "/.venv/bin/flask --app wsgi worker" in cmdline, cmdline
        assert secret not in cmdline and password not in cmdline
        # The app's user, not root.
        assert host.check_output(f"stat -c %U /proc/{pid}") == APP
    every_argv = host.check_output("ps -eo args")
    assert secret not in every_argv and password not in every_argv
    journal = host.check_output(f"journalctl --no-pager -u '{APP}-worker-*' -u '{TIMER}.*'")
    assert "Worker web/" in journal
    assert secret not in journal and password not in journal
    for unit in (f"{APP}-worker-jobs@.service", f"{TIMER}.service", f"{TIMER}.timer"):
        unit_file = host.file(f"/etc/systemd/system/{unit}")
        assert (unit_file.user, unit_file.mode) == ("root", 0o644)
        assert secret not in unit_file.content_string and password not in unit_file.content_string


def exposure(host, unit: str) -> float:
    output = host.check_output(f"systemd-analyze security --no-pager {unit}")
    match = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", output)
    assert match, output[-2000:]
    return float(match.group(1))


def test_the_workers_sandbox_is_as_tight_as_the_apps(host):
    app_unit = host.check_output(f"systemctl list-units --plain --no-legend --state=running '{APP}@*.service'").split()[0]
    app_score = exposure(host, app_unit)
    for unit in (WORKERS[0], f"{TIMER}.service"):
        assert exposure(host, unit) <= app_score, (unit, app_unit)


def app_copy(tmp_path: Path) -> Path:
    """app/ with one harmless change: a release of its own."""
    copy = tmp_path / "app"
    shutil.copytree(PROJECT_DIR / "app", copy, ignore=shutil.ignore_patterns(
        ".venv*", "__pycache__", ".pytest_cache", ".coverage", "instance", "REVISION"))
    with (copy / "wsgi.py").open("a") as wsgi:
        wsgi.write(f"\n# test_workers.py release {time.time()}\n")
    return copy


def test_a_deploy_restarts_the_workers_onto_the_new_release(host, tmp_path):
    before_release, before_pids = live_release(host), main_pids(host)
    deploy("-e", f"flask_vps_app_source_dir={app_copy(tmp_path)}")
    after_release, after_pids = live_release(host), main_pids(host)
    assert after_release != before_release
    assert set(after_pids).isdisjoint(before_pids) and 0 not in after_pids
    # Each process now running started on the new release and stayed up.
    release_id = https(host, "/healthz")["release"]
    deadline = time.monotonic() + 90
    while True:
        journal = host.check_output(f"journalctl --no-pager -u '{APP}-worker-jobs@*'")
        started = [f"Worker web/{pid} started: release={release_id}" in journal for pid in main_pids(host)]
        if all(started) or time.monotonic() > deadline:
            break
        time.sleep(2)
    restarts = [host.check_output(f"systemctl show -p NRestarts --value {unit}") for unit in WORKERS]
    assert all(started) and restarts == ["0", "0"], (restarts, after_pids, main_pids(host), journal[-4000:])
    assert after_release in host.file(f"/etc/systemd/system/{APP}-worker-jobs@.service").content_string
    assert after_release in host.file(f"/etc/systemd/system/{TIMER}.service").content_string
    # The old processes stopped on SIGTERM, cleanly (not killed).
    journal = host.check_output(f"journalctl --no-pager -u '{APP}-worker-jobs@*'")
    for pid in before_pids:
        assert re.search(rf"Worker web/{pid} stopped after \d+ jobs", journal), journal[-3000:]
    assert "SIGKILL" not in journal
    job = https(host, "/api/jobs", {"text": "after the deploy"})
    [done] = wait_done(host, [job["id"]])
    assert done["processed_count"] == 1
    assert done["processed_release"] == https(host, "/healthz")["release"] != ""
    STATE["releases"] = (before_release, after_release)


def test_a_rollback_puts_the_workers_back_on_the_release_before(host):
    if "releases" not in STATE:
        pytest.skip("the deploy before it failed")
    before_release, after_release = STATE["releases"]
    pids = main_pids(host)
    result = ansible_playbook(PROJECT_DIR / "playbooks" / "rollback.yml")
    assert result.returncode == 0, (result.stdout + result.stderr)[-6000:]
    assert live_release(host) == before_release
    assert set(main_pids(host)).isdisjoint(pids)
    for unit in (f"{APP}-worker-jobs@.service", f"{TIMER}.service"):
        assert f"WorkingDirectory={before_release}\n" in host.file(f"/etc/systemd/system/{unit}").content_string
    job = https(host, "/api/jobs", {"text": "after the rollback"})
    [done] = wait_done(host, [job["id"]])
    assert done["processed_count"] == 1
    assert done["processed_release"] == https(host, "/healthz")["release"]


def test_workers_and_timers_taken_off_the_lists_are_removed_then_come_back(host):
    deploy("-e", json.dumps({"flask_vps_workers": [], "flask_vps_timers": []}))
    assert not host.file(f"/etc/systemd/system/{APP}-worker-jobs@.service").exists
    assert not host.file(f"/etc/systemd/system/{TIMER}.timer").exists
    assert not host.file(f"/etc/systemd/system/{TIMER}.service").exists
    assert host.run(f"ls /etc/systemd/system/multi-user.target.wants/ | grep -- {APP}-worker").stdout == ""
    assert host.run(f"pgrep -u {APP} -f 'wsgi worker'").rc == 1
    deploy()
    for unit in WORKERS:
        assert host.service(unit).is_running
    assert host.check_output(f"systemctl is-active {TIMER}.timer") == "active"
