"""Fixtures of this scenario's tests: molecule/shared/pytest_helpers/network.py."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "shared"))
