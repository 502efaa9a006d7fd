"""The site scenario runs on Debian 13 and on Debian 12. A few costly tests whose
subject is the project's own logic, not the Debian underneath (deploys killed at
each step, the deploy lock, the --check runs, the back-to-back runs over SSH,
the failing migration and the release failing its health check),
are shared out between the two: molecule/shared/pytest_helpers/sharing.py."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "shared"))

from pytest_helpers.sharing import pytest_collection_modifyitems, pytest_configure  # noqa: E402,F401
