"""Helpers to talk to the containers from the test host, as a client would: molecule/shared/pytest_helpers."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "shared"))

from pytest_helpers.frontdoor import request, run_playbook  # noqa: E402,F401
from pytest_helpers.network import ip  # noqa: E402,F401
