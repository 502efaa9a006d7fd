"""A deploy under strict load, as the cluster scenario runs it: a copy of the app
that makes a new release, loadgen's arguments and what a passing run must show."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from .network import PROJECT_DIR


def release_copy(work_dir: Path, wsgi_extra: str) -> Path:
    """A copy of app/ in work_dir whose wsgi.py ends with wsgi_extra: a new release id."""
    target = Path(tempfile.mkdtemp(dir=work_dir)) / "app"
    shutil.copytree(PROJECT_DIR / "app", target,
                    ignore=shutil.ignore_patterns(".venv", "__pycache__", "instance", ".pytest_cache", "tests"))
    with (target / "wsgi.py").open("a") as wsgi:
        wsgi.write(wsgi_extra)
    return target


def load_arguments(site: str, address: str, cafile: str) -> list[str]:
    """As the site scenario's: 4 keep-alive clients (at most 100 requests a second
    each) that never retry, and a writer whose acknowledged notes must all be stored."""
    return ["--url", f"https://{site}/healthz", "--connect", f"{address}:443", "--cacert", cafile,
            "--requests", "50000", "--seconds", "600", "--concurrency", "4", "--pause", "0.01",
            "--timeout", "30", "--strict", "--post-workers", "1", "--post-pause", "0.05"]


def assert_strict_load_passed(load: dict, minimum: int) -> None:
    assert load["sent"] >= minimum and load["failed"] == 0, (load, load["errors"])
    assert load["closed_by_server"] == 0 and load["retried"] == 0, load
    assert load["writes_failed"] == load["writes_missing"] == load["writes_unacknowledged_stored"] == 0, load["writes_problems"]
    assert load["writes_acknowledged"] == load["writes_sent"] > 0, load
