"""The live slot as nginx, an attacker and an operator see it: the cases shared with
the other Gunicorn scenario, in molecule/shared/pytest_helpers/gunicorn_serving.py."""

from pytest_helpers.gunicorn_serving import *  # noqa: F401,F403
