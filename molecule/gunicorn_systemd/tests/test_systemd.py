"""systemd specifics: the hardened unit, and nginx switching between slots."""

from __future__ import annotations

import re
import urllib.request

from conftest import APP


def test_unit_is_hardened(host, live):
    unit = f"{APP}@{live['slot']}.service"
    out = host.check_output(f"systemd-analyze security --no-pager {unit}")
    exposure = float(re.search(r"Overall exposure level for \S+: ([0-9.]+)", out).group(1))
    print(f"systemd-analyze security {unit}: {exposure}")
    assert exposure <= 1.5, out[-3000:]


def test_unit_waits_for_ready_and_stops_gracefully(host, live):
    unit = f"{APP}@{live['slot']}.service"
    props = dict(
        line.split("=", 1)
        for line in host.check_output(f"systemctl show {unit} -p Type -p Restart -p TimeoutStopUSec -p ActiveState -p UnitFileState").splitlines()
    )
    assert props["Type"] == "notify"
    assert props["Restart"] == "on-failure"
    assert props["ActiveState"] == "active"
    assert props["UnitFileState"] == "enabled"
    assert props["TimeoutStopUSec"] == "30s"  # graceful_timeout 20 + 10


def container_ip(host) -> str:
    return host.interface("eth0").addresses[0]


def test_nginx_serves_the_live_release_from_outside(host, live):
    ip = container_ip(host)
    with urllib.request.urlopen(f"http://{ip}/healthz", timeout=10) as response:
        assert response.status == 200
        assert live["release"] in response.read().decode()
    with urllib.request.urlopen(f"http://{ip}/static/style.css", timeout=10) as response:
        assert response.status == 200
    # nginx's configuration never changed: the live socket link moved.
    assert host.file(f"/var/lib/flask-vps/{APP}/live.sock").linked_to == f"/run/{APP}/{live['slot']}.sock"
