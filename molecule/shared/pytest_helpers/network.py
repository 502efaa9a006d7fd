"""The container as the test host reaches it: over the Docker bridge, and through
ansible-playbook with Molecule's inventory."""

from __future__ import annotations

import ipaddress
import os
import socket
import subprocess
from pathlib import Path

import pytest

PROJECT_DIR = Path(__file__).resolve().parents[3]


def scenario_dir() -> Path:
    """The scenario whose tests run: Molecule's verifier sets MOLECULE_SCENARIO_DIRECTORY."""
    return Path(os.environ["MOLECULE_SCENARIO_DIRECTORY"])


def ansible_playbook_command(playbook: Path, *args: str, **env: str) -> tuple[list[str], dict[str, str]]:
    """The command line and environment that run one playbook against the scenario's
    container (Molecule's inventory) with the project's venv and roles; env adds
    ANSIBLE_* settings."""
    environ = dict(os.environ, ANSIBLE_ROLES_PATH=str(PROJECT_DIR / "roles"), ANSIBLE_FORCE_COLOR="false", **env)
    command = [str(PROJECT_DIR / ".venv" / "bin" / "ansible-playbook"), "-i", os.environ["MOLECULE_INVENTORY_FILE"],
               str(playbook), *args]
    return command, environ


def ansible_playbook(playbook: Path, *args: str, cwd: Path | None = None,
                     **env: str) -> subprocess.CompletedProcess[str]:
    """Run one playbook against the scenario's container, as an operator would."""
    command, environ = ansible_playbook_command(playbook, *args, **env)
    return subprocess.run(command, capture_output=True, text=True, env=environ, cwd=cwd, check=False, timeout=900)


def port_answers(address: str, port: int, timeout: float = 5.0) -> bool:
    """Whether a TCP connection to address:port opens from the test host."""
    try:
        socket.create_connection((address, port), timeout).close()
        return True
    except OSError:
        return False


def container_ip(host) -> str:
    for address in host.interface("eth0").addresses:
        if ipaddress.ip_address(address).version == 4:
            return address
    raise AssertionError("the container has no IPv4 address on eth0")


@pytest.fixture(scope="module")
def address(host) -> str:
    """The container's IPv4 address on the Docker bridge."""
    return container_ip(host)


@pytest.fixture(scope="module")
def ip(host) -> str:
    return container_ip(host)
