"""Fixtures and helpers of this scenario's tests: molecule/shared/pytest_helpers/appslots.py."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "shared"))

from pytest_helpers.appslots import APP, SECRET, app_copy, env_file, get, live, live_state, run_playbook  # noqa: E402,F401
