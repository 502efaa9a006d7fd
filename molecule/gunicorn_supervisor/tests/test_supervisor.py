"""supervisor specifics: one program per live slot, no secret in its config, and a
switch to systemd leaves exactly one Gunicorn running. Runs last (file order)."""

from __future__ import annotations

import json

from conftest import APP, SECRET, get, live_state, run_playbook


def test_one_program_runs_for_the_live_slot(host, live):
    status = host.check_output("supervisorctl status")
    assert f"{APP}-{live['slot']}" in status and "RUNNING" in status
    assert len([line for line in status.splitlines() if line.startswith(APP)]) == 1


def test_program_config_stops_the_group_and_holds_no_secret(host, live):
    conf = host.file(f"/etc/supervisor/conf.d/{APP}-{live['slot']}.conf")
    text = conf.content_string
    assert SECRET not in text and "FLASK_SECRET_KEY" not in text
    for line in ["stopasgroup=true", "killasgroup=true", "stopwaitsecs=30", "autorestart=true", f"user={APP}"]:
        assert line in text
    assert conf.user == "root" and not conf.mode & 0o022


def test_switch_to_systemd_leaves_exactly_one_running(host):
    before = live_state(host)
    result = run_playbook({"gunicorn_process_manager": "systemd"})
    assert result.returncode == 0, result.stdout[-6000:]
    after = live_state(host)
    assert after["manager"] == "systemd" and after["slot"] != before["slot"]
    assert host.run("supervisorctl status | grep -q flaskapp").rc != 0
    assert host.service(f"{APP}@{after['slot']}.service").is_running
    status, body = get(host, "/healthz", f"/run/{APP}/{after['slot']}.sock")
    assert status == 200 and json.loads(body)["release"] == after["release"]
    rows = [line.split(None, 2) for line in host.check_output("ps -eo pid=,ppid=,args=").splitlines()]
    gunicorns = {pid: ppid for pid, ppid, args in rows if "bin/gunicorn" in args}
    assert len([pid for pid, ppid in gunicorns.items() if ppid not in gunicorns]) == 1
