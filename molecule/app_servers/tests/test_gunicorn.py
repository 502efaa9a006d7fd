"""Gunicorn under systemd, as the converge left it: the live slot as nginx, an
attacker and an operator see it (the cases in
molecule/shared/pytest_helpers/app_serving.py, run again under supervisor by
test_supervisor.py), the hardened unit, and nginx switching between slots."""

from __future__ import annotations

import urllib.request

from pytest_helpers.app_serving import *  # noqa: F401,F403

from conftest import APP, exposure, unit_properties


def test_unit_is_hardened(host, live):
    exposure(host, f"{APP}@{live['slot']}.service")


def test_unit_waits_for_ready_and_stops_gracefully(host, live):
    props = unit_properties(host, f"{APP}@{live['slot']}.service")
    assert props["Type"] == "notify"
    assert props["Restart"] == "on-failure"
    assert props["ActiveState"] == "active"
    assert props["UnitFileState"] == "enabled"
    assert props["TimeoutStopUSec"] == "30s"  # graceful_timeout 20 + 10


def test_nginx_serves_the_live_release_from_outside(host, live, address):
    with urllib.request.urlopen(f"http://{address}/healthz", timeout=10) as response:
        assert response.status == 200
        assert live["release"] in response.read().decode()
    with urllib.request.urlopen(f"http://{address}/static/style.css", timeout=10) as response:
        assert response.status == 200
    # nginx's configuration never changed: the live socket link moved.
    assert host.file(f"/var/lib/flask-vps/{APP}/live.sock").linked_to == f"/run/{APP}/{live['slot']}.sock"
