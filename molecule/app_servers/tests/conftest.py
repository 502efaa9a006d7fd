"""Fixtures and helpers of the app_servers tests: molecule/shared/pytest_helpers/
(appslots.py for the slots, sharing.py for the costly cases that Debian 13 and
Debian 12 share out), and the strict load (scripts/loadgen.py) through the
stand-in nginx while a playbook runs."""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[2] / "shared"
sys.path.insert(0, str(SHARED))
sys.path.insert(0, str(SHARED.parents[1] / "scripts"))

import loadgen  # noqa: E402  (scripts/loadgen.py: the load and its during())
from pytest_helpers.appslots import (  # noqa: E402,F401
    APP, SECRET, app_copy, env_file, get, live, live_state, playbook_command, run_playbook,
)
from pytest_helpers.network import address, container_ip  # noqa: E402,F401
from pytest_helpers.sharing import DISTRO, pytest_collection_modifyitems, pytest_configure  # noqa: E402,F401

EPHEMERAL = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"])
SITE = "app-servers.localhost"
# What converge.yml reads when a run names no server or process manager.
CHOICE_FILE = EPHEMERAL / "app-servers.json"


def choose(**choice: str) -> None:
    """Make the next runs of converge.yml use this server / process manager."""
    current = json.loads(CHOICE_FILE.read_text()) if CHOICE_FILE.exists() else {}
    CHOICE_FILE.write_text(json.dumps({**current, **choice}))


def chosen() -> dict:
    return json.loads(CHOICE_FILE.read_text()) if CHOICE_FILE.exists() else {}


def forget_source() -> None:
    """Make the next runs ship app/ itself."""
    CHOICE_FILE.write_text(json.dumps({k: v for k, v in chosen().items() if k != "source"}))


def load_arguments(address: str) -> list[str]:
    return ["--url", f"https://{SITE}/healthz", "--connect", f"{address}:443", "--cacert", str(EPHEMERAL / "ca.crt"),
            # Constant, not saturating (4 clients, each at most 100 requests a
            # second): the machine runs other scenarios beside this one.
            "--requests", "50000", "--seconds", "600", "--concurrency", "4", "--pause", "0.01",
            "--timeout", "30",
            # Strict: no retry of any kind (a request on a kept-alive connection
            # that the server closes counts as failed), and a writer whose every
            # acknowledged note must be stored afterwards, and nothing else.
            "--strict", "--post-workers", "1", "--post-pause", "0.05"]


def under_load(address: str, extra_vars: dict | None = None, playbook: str = "converge.yml"):
    """Run a playbook of this scenario while the strict load runs through nginx."""
    command, environ = playbook_command(extra_vars, playbook)
    result, load, _ = loadgen.during(command, load_arguments(address), timeout=900, env=environ)
    return result, load


def assert_strict_load_passed(load: dict, minimum: int) -> None:
    assert load["sent"] >= minimum and load["failed"] == 0, (load, load["errors"])
    assert load["closed_by_server"] == 0 and load["retried"] == 0, load
    assert load["writes_failed"] == load["writes_missing"] == load["writes_unacknowledged_stored"] == 0, load["writes_problems"]
    assert load["writes_acknowledged"] == load["writes_sent"] > 0, load


def exposure(host, unit: str) -> float:
    out = host.check_output(f"systemd-analyze security --no-pager {unit}")
    score = float(re.search(r"Overall exposure level for \S+: ([0-9.]+)", out).group(1))
    print(f"systemd-analyze security {unit}: {score}")
    assert score <= 1.5, out[-3000:]
    return score


def unit_properties(host, unit: str) -> dict[str, str]:
    return dict(
        line.split("=", 1)
        for line in host.check_output(f"systemctl show {unit} -p Type -p Restart -p TimeoutStopUSec -p ActiveState -p UnitFileState").splitlines()
    )


@pytest.fixture(scope="session", autouse=True)
def fresh_choice():
    """Each verify starts from the converge's choice: Gunicorn under systemd."""
    CHOICE_FILE.unlink(missing_ok=True)
    yield
