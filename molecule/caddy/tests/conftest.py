"""Helpers to talk to the containers from the test host, as a client would: molecule/shared/pytest_helpers."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "shared"))

from pytest_helpers.frontdoor import request, run_playbook  # noqa: E402,F401
from pytest_helpers.network import ip  # noqa: E402,F401
# The release switch under load is Caddy's logic, not Debian's: deploy and rollback
# run on Debian 13, the failing deploy on Debian 12. The front-door switches (where
# Debian 12's systemd showed a race) run on both.
from pytest_helpers.sharing import pytest_collection_modifyitems, pytest_configure  # noqa: E402,F401
