"""Deploys run from the test as an operator would: the failing release under
Gunicorn and systemd (molecule/shared/pytest_helpers/app_releases.py; the release
with new requirements runs under supervisor, in test_supervisor.py). Runs after the
state tests (pytest collects this file after test_gunicorn.py and test_python.py).

On Debian 13 only when both Debians run (sharing.py): Debian 12 proves the same
case under supervisor (test_supervisor.py) and Gunicorn's failing deploy under
load (test_servers.py)."""

import pytest

from pytest_helpers import app_releases


# A wrapper, not a mark on the shared function: test_supervisor.py collects that
# one on both Debians.
@pytest.mark.only_on("debian13")
def test_release_failing_its_health_check_leaves_the_old_one_serving(host, tmp_path):
    app_releases.test_release_failing_its_health_check_leaves_the_old_one_serving(host, tmp_path)
