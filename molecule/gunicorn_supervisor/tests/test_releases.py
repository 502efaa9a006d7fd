"""Deploys run from the test as an operator would: the cases shared with the other
Gunicorn scenario, in molecule/shared/pytest_helpers/gunicorn_releases.py. Runs after
the state tests (pytest collects this file after test_serving.py)."""

from pytest_helpers.gunicorn_releases import *  # noqa: F401,F403
