"""supervisor with a server other than Gunicorn (Waitress on Debian 13, Uvicorn on
Debian 12): the switch to it under the strict load, then the live slot as nginx,
an attacker and an operator see it (the same cases as test_gunicorn.py), one
program per live slot with no secret in its config, the deploys of
molecule/shared/pytest_helpers/app_releases.py (the failing release on Debian 13,
new requirements on Debian 12), and a switch back to systemd that
leaves exactly one server running. Runs last (file order)."""

from __future__ import annotations

import json

from pytest_helpers.app_serving import app_masters

from conftest import (
    APP, DISTRO, SECRET, assert_strict_load_passed, choose, forget_source, get, live_state, run_playbook, under_load,
)

SERVER = {"debian13": "waitress", "debian12": "uvicorn"}.get(DISTRO, "waitress")


def test_switch_to_supervisor_under_load(host, address):
    before = live_state(host)
    # The app's own source: the shared release tests below start from it.
    forget_source()
    choose(server=SERVER, interface="wsgi", module="wsgi:app", manager="supervisor")
    result, load = under_load(address)
    assert result.returncode == 0, result.stdout[-6000:]
    assert SECRET not in result.stdout + result.stderr
    assert_strict_load_passed(load, 100)
    after = live_state(host)
    assert (after["manager"], after["server"]) == ("supervisor", SERVER) and after["slot"] != before["slot"], after
    assert host.run(f"systemctl is-active {APP}@{before['slot']}.service").stdout.strip() != "active"


# pytest runs a module's tests in the order they enter its namespace: the switch
# above first, then the shared state cases under supervisor, the program's own
# checks, the shared deploys, and the switch back to systemd last.
from pytest_helpers.app_serving import *  # noqa: E402,F401,F403


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
    assert f"/bin/{ {'waitress': 'python', 'uwsgi': 'uwsgi'}.get(SERVER, SERVER)} " in text
    assert conf.user == "root" and not conf.mode & 0o022


from pytest_helpers.app_releases import *  # noqa: E402,F401,F403


def test_switch_to_systemd_leaves_exactly_one_running(host):
    before = live_state(host)
    result = run_playbook({"gunicorn_process_manager": "systemd"})
    assert result.returncode == 0, result.stdout[-6000:]
    choose(manager="systemd")
    after = live_state(host)
    assert after["manager"] == "systemd" and after["slot"] != before["slot"]
    assert host.run("supervisorctl status | grep -q flaskapp").rc != 0
    assert host.service(f"{APP}@{after['slot']}.service").is_running
    status, body = get(host, "/healthz", f"/run/{APP}/{after['slot']}.sock")
    assert status == 200 and json.loads(body)["release"] == after["release"]
    assert len(app_masters(host)) == 1, app_masters(host)
