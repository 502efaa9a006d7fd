"""What the network sees of a host the firewall role has converged: the test host
connects to the container's address over the Docker bridge."""

from __future__ import annotations

import socket
import time

import pytest

OPEN = [2222, 80, 443, 8443]
# A listener that never accepts: the kernel completes each handshake into a long
# backlog, so 40 quick connections are refused only by the firewall (http.server's
# backlog of 5 dropped some on a busy machine).
LISTENER = ("import socket, time; s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); "
            "s.bind(('', {port})); s.listen(1024); time.sleep(86400)")
CLOSED = [8080, 9000, 5432]


@pytest.fixture(scope="module")
def listeners(host):
    """A TCP listener inside the container on every port the tests look at."""
    ports = OPEN + CLOSED
    for port in ports:
        host.run(f"systemd-run --unit=fv-probe-{port} python3 -c \"{LISTENER.format(port=port)}\"")
    for port in ports:
        for _ in range(50):
            if host.run(f"python3 -c \"import socket; socket.create_connection(('127.0.0.1', {port}), 1)\"").rc == 0:
                break
            time.sleep(0.1)
        else:
            raise AssertionError(f"the probe listener on {port} did not start")
    yield ports
    for port in ports:
        host.run(f"systemctl stop fv-probe-{port}")


def reachable(address: str, port: int, timeout: float = 2) -> bool:
    try:
        socket.create_connection((address, port), timeout).close()
    except OSError:
        return False
    return True


def test_ufw_is_active_with_deny_by_default(host):
    status = host.check_output("ufw status verbose")
    assert "Status: active" in status
    assert "Default: deny (incoming), allow (outgoing), deny (routed)" in status


@pytest.mark.parametrize("port", [2222, 80, 443, 8443])
def test_allowed_ports_answer_from_outside(listeners, address, port):
    assert reachable(address, port)


@pytest.mark.parametrize("port", CLOSED)
def test_other_ports_do_not_answer_from_outside(host, listeners, address, port):
    # The listener is there (it answers inside), the firewall keeps the outside out.
    assert host.run(f"python3 -c \"import socket; socket.create_connection(('127.0.0.1', {port}), 1)\"").rc == 0
    assert not reachable(address, port)


def test_the_absent_rule_is_gone_and_the_source_rule_is_there(host):
    added = host.check_output("ufw show added")
    assert "9000" not in added
    assert "ufw allow from 192.0.2.0/24 to any port 5432 proto tcp" in added


def test_ssh_port_is_rate_limited_per_address_after_a_burst(host, listeners, address):
    # nftables meter (its own table): 30 new connections at once, then 10 a minute.
    host.run("nft flush set inet flaskvps_ssh meter4")
    results = [reachable(address, 2222, timeout=1) for _ in range(40)]
    assert all(results[:30]), results
    assert not all(results[30:]), results
    # The web ports are not limited.
    assert all(reachable(address, 443, timeout=1) for _ in range(40))
    host.run("nft flush set inet flaskvps_ssh meter4")


def test_ssh_rule_is_a_plain_allow_and_the_limit_survives_a_reboot(host):
    assert "ufw allow 2222/tcp comment 'ssh'" in host.check_output("ufw show added")
    unit = host.service("flask-vps-ssh-ratelimit")
    assert unit.is_enabled and unit.is_running
    assert "flush ruleset" not in host.file("/etc/flask-vps-ssh-ratelimit.nft").content_string


def test_ipv6_is_filtered_too(host):
    assert "IPV6=yes" in host.file("/etc/default/ufw").content_string
    assert "-P INPUT DROP" in host.check_output("ip6tables -S INPUT")
    rules = host.check_output("ip6tables -S ufw6-user-input")
    assert "--dport 2222" in rules
    assert "--dport 443" in rules
