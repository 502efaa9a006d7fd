"""What the network sees of a host the firewall role has converged: the test host
connects to the container's address over the Docker bridge."""

from __future__ import annotations

import socket
import time

import pytest

OPEN = [2222, 80, 443, 8443]
CLOSED = [8080, 9000, 5432]


@pytest.fixture(scope="module")
def listeners(host):
    """A TCP listener inside the container on every port the tests look at."""
    ports = OPEN + CLOSED
    for port in ports:
        host.run(f"systemd-run --unit=fv-probe-{port} python3 -m http.server {port}")
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


def test_ssh_port_is_rate_limited(listeners, address):
    # ufw's limit: the 6th new connection within 30 s from one address is dropped.
    results = [reachable(address, 2222, timeout=1) for _ in range(10)]
    assert results[0]
    assert not all(results), results


def test_ipv6_is_filtered_too(host):
    assert "IPV6=yes" in host.file("/etc/default/ufw").content_string
    assert "-P INPUT DROP" in host.check_output("ip6tables -S INPUT")
    rules = host.check_output("ip6tables -S ufw6-user-input")
    assert "--dport 2222" in rules
    assert "--dport 443" in rules
