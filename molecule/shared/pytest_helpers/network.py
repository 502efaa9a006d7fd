"""The container as the test host reaches it over the Docker bridge."""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path

import pytest

PROJECT_DIR = Path(__file__).resolve().parents[3]


def scenario_dir() -> Path:
    """The scenario whose tests run: Molecule's verifier sets MOLECULE_SCENARIO_DIRECTORY."""
    return Path(os.environ["MOLECULE_SCENARIO_DIRECTORY"])


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
