"""Sharing a scenario's costly cases out between the two Debians.

A scenario runs on Debian 13 and on Debian 12. Most of its tests run on both; a
few costly ones whose subject is the project's own logic, not the Debian
underneath, are marked `only_on("debian13")` or `only_on("debian12")`, so
together the two runs prove each of them once. Run for one Debian alone
(FLASK_VPS_DISTROS=debian13, as `make test` does when that is the only Debian
asked for), the scenario runs them all. A scenario's conftest.py takes the two
hooks below by importing them."""

from __future__ import annotations

import os

import pytest

DISTRO = os.environ.get("MOLECULE_DISTRO", "debian13")
DISTROS = [d for d in os.environ.get("FLASK_VPS_DISTROS", "debian13,debian12").split(",") if d]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "only_on(distro): run on this Debian when the suite runs on several")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if len(DISTROS) < 2:
        return
    kept, elsewhere = [], []
    for item in items:
        marker = item.get_closest_marker("only_on")
        (elsewhere if marker and DISTRO not in marker.args else kept).append(item)
    if elsewhere:
        config.hook.pytest_deselected(items=elsewhere)
        items[:] = kept
