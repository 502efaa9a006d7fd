"""Helpers to talk to the container's nginx from the test host, as a client would: molecule/shared/pytest_helpers/frontdoor.py."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "shared"))

from pytest_helpers.frontdoor import cafile, ip, request, run_playbook  # noqa: E402,F401
