"""The app under real Gunicorn, as the roles run it, on loopback only."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

APP_DIR = Path(__file__).resolve().parent.parent
STARTUP_TIMEOUT = 30
# Gunicorn 25.1+ otherwise opens a control socket under $HOME/.gunicorn.
GUNICORN_OPTIONS = ["--no-control-socket"]


def free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def wait_for(url: str, process: subprocess.Popen) -> tuple[int, bytes]:
    deadline = time.monotonic() + STARTUP_TIMEOUT

    while time.monotonic() < deadline:
        assert process.poll() is None, "gunicorn exited early"

        try:
            return get(url)
        except OSError:
            time.sleep(0.2)

    raise AssertionError(f"gunicorn did not answer {url} within {STARTUP_TIMEOUT}s")


def test_healthz_under_gunicorn(data_dir: Path, tmp_path: Path) -> None:
    port = free_loopback_port()
    base_url = f"http://127.0.0.1:{port}"
    environ = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONDONTWRITEBYTECODE": "1",
        "FLASK_SECRET_KEY": "g" * 64,
        "FLASK_DATA_DIR": str(data_dir),
        "FLASK_RELEASE_ID": "gunicorn-test",
        "FLASK_LOG_FORMAT": "json",
    }
    stderr_path = tmp_path / "gunicorn.stderr"

    with stderr_path.open("wb") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "--workers", "2", *GUNICORN_OPTIONS, "wsgi:app"],
            cwd=APP_DIR,
            env=environ,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )

        try:
            status, body = wait_for(f"{base_url}/healthz", process)
            assert status == 200, body
            assert json.loads(body) == {"status": "ok", "release": "gunicorn-test", "database": "ok"}

            status, body = get(f"{base_url}/static/style.css")
            assert status == 200
            assert b"default-src 'self'" in body
        finally:
            process.terminate()

            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    log = stderr_path.read_text()
    assert '"message": "Started: config=production release=gunicorn-test"' in log, log
