"""Shared fixtures for the project's own test suite (run by `make test`)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = ROOT / ".venv" / "bin"
DISTROS = [d for d in os.environ.get("FLASK_VPS_DISTROS", "debian13,debian12").split(",") if d]


def run(cmd: list[str], **kwargs) -> subprocess.CompletedProcess[str]:
    """Run a command from the project root, capturing its output as text."""
    kwargs.setdefault("cwd", ROOT)
    return subprocess.run(cmd, capture_output=True, text=True, check=False, **kwargs)


@pytest.fixture(scope="session")
def apt_proxy() -> str:
    """The package cache the test containers share (scripts/apt-cache.sh), if any."""
    result = run(["scripts/apt-cache.sh"])
    if result.returncode != 0:
        pytest.fail(f"starting the shared package cache failed:\n{result.stderr[-4000:]}")
    return result.stdout.strip()


def image_for(distro: str) -> str:
    """Build (or reuse) the Debian test image for distro and return its tag."""
    result = run(["scripts/build-image.sh", distro])
    if result.returncode != 0:
        pytest.fail(f"building the {distro} image failed:\n{result.stderr[-4000:]}")
    return result.stdout.strip().splitlines()[-1]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The Molecule scenarios first, then the quick tests, so that in `make test` the
    parallel workers start the longest scenarios at once and the input matrix fills
    the gaps at the end. xdist (`--dist load --maxschedchunk 1`) hands each worker
    two consecutive tests to begin with: the two runs of the slowest scenario (site,
    first in test_molecule.py) each get one of the quickest beside them, so they
    start on two workers at once instead of one after the other."""
    molecule = [item for item in items if item.path.name == "test_molecule.py"]
    rest = [item for item in items if item.path.name != "test_molecule.py"]
    if len(molecule) >= 4:
        molecule = [molecule[0], molecule[-1], molecule[1], molecule[-2], *molecule[2:-2]]
    items[:] = molecule + rest
