"""Deploys run from the test as an operator would: the failing release, shared with
the other Gunicorn scenario (molecule/shared/pytest_helpers/gunicorn_releases.py,
which says why the release with new requirements runs in the supervisor scenario
only). Runs after the state tests (pytest collects this file after test_serving.py)."""

from pytest_helpers.gunicorn_releases import test_release_failing_its_health_check_leaves_the_old_one_serving  # noqa: F401
