"""Fixtures and order of this scenario's tests: molecule/shared/pytest_helpers/
(fleet.py names the hosts, workers.py the workers and the timer)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "shared"))

# The files run in this order, not alphabetically; the tests of each in file
# order. The database host's verbose diff run must find the state the converge
# left (the broken release test_cluster.py leaves on the web hosts would be
# cleaned up by it); the operator commands and the workers read that state too;
# test_workers.py ends by taking the workers and the timer off the lists, and
# test_cluster.py's rolling deploy (under load) brings them back, so that one
# fleet deploy serves both, then its rollback restarts them.
ORDER = ["test_database_host.py", "test_operator_commands.py", "test_workers.py", "test_cluster.py"]


def pytest_collection_modifyitems(items) -> None:
    items.sort(key=lambda item: ORDER.index(item.path.name) if item.path.name in ORDER else len(ORDER))
