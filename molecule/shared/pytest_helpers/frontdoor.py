"""Helpers to talk to the container's nginx from the test host, as a client would
(the nginx, tls_acme and tls_selfsigned scenarios)."""

from __future__ import annotations

import http.client
import os
import socket
import ssl
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from .network import ansible_playbook, ip, scenario_dir  # noqa: F401  (ip: the fixture, for the conftests)


@dataclass
class Response:
    status: int
    headers: http.client.HTTPMessage
    body: bytes


def request(ip: str, host: str, path: str = "/", *, tls: bool = True, cafile: str | None = None,
            method: str = "GET", headers: dict[str, str] | None = None, body: bytes | None = None,
            port: int | None = None) -> Response:
    """Send one HTTP/1.1 request to ip with the given Host header (and SNI)."""
    port = port or (443 if tls else 80)
    sock = socket.create_connection((ip, port), timeout=10)
    if tls:
        context = ssl.create_default_context(cafile=cafile)
        sock = context.wrap_socket(sock, server_hostname=host)
    conn = http.client.HTTPConnection(ip, port, timeout=10)
    conn.sock = sock
    conn.request(method, path, body=body, headers={"Host": host, **(headers or {})})
    response = conn.getresponse()
    result = Response(response.status, response.headers, response.read())
    conn.close()
    return result


def run_playbook(playbook: str, *extra: str, scenario: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run a playbook of the scenario under test (or of scenario) against its container, from the scenario's folder."""
    scenario = scenario or scenario_dir()
    return ansible_playbook(scenario / playbook, *extra, cwd=scenario)


@pytest.fixture(scope="module")
def cafile() -> str:
    path = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / "ca.crt"
    assert path.is_file(), f"the CA certificate was not fetched to {path}"
    return str(path)
