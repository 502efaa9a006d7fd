"""Background jobs (``flask worker``) and the scheduled tick (``flask tick``)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from flask import Flask
from sqlalchemy.exc import OperationalError

from webapp import jobs
from webapp.models import Job, db

APP_DIR = Path(__file__).resolve().parent.parent


def enqueue(client, text: str = "hello") -> dict:
    response = client.post("/api/jobs", json={"text": text})
    assert response.status_code == 202, response.get_data(as_text=True)
    return response.get_json()


class TestApi:
    def test_enqueue_and_read(self, client) -> None:
        response = client.post("/api/jobs", json={"text": "  resize me  "})
        assert response.status_code == 202
        job = response.get_json()
        assert job["text"] == "resize me"
        assert job["status"] == "queued"
        assert job["processed_count"] == 0
        assert job["processed_at"] is None
        assert job["created_at"].endswith("+00:00")
        assert response.headers["Location"] == f"/api/jobs/{job['id']}"
        assert client.get(response.headers["Location"]).get_json() == job
        assert client.get("/api/jobs").get_json() == {"jobs": [job]}

    def test_refuses_other_content_types(self, client) -> None:
        assert client.post("/api/jobs", data="text=x").status_code == 415

    def test_refuses_bad_payloads(self, client) -> None:
        for body in ([], {"text": ""}, {"text": 3}, {"text": "x" * (jobs.MAX_JOB_TEXT + 1)}):
            assert client.post("/api/jobs", json=body).status_code == 400

    def test_unknown_job(self, client) -> None:
        assert client.get("/api/jobs/999").status_code == 404

    def test_no_ticks_yet(self, client) -> None:
        assert client.get("/api/ticks").get_json() == {"count": 0, "ticks": []}


class TestWorker:
    def test_processes_each_job_once(self, app: Flask, client) -> None:
        queued = [enqueue(client, f"job {n}") for n in range(3)]

        with app.app_context():
            assert jobs.run_worker(threading.Event(), 0.01, once=True) == 3
            assert jobs.run_worker(threading.Event(), 0.01, once=True) == 0

        for job in queued:
            done = client.get(f"/api/jobs/{job['id']}").get_json()
            assert done["status"] == "done"
            assert done["result"] == job["text"].upper()
            assert done["processed_count"] == 1
            assert done["processed_by"] == jobs.worker_name()
            assert done["processed_at"].endswith("+00:00")

    def test_a_job_another_worker_completed_is_not_done_again(self, app: Flask, client) -> None:
        job = enqueue(client)

        with app.app_context():
            real_execute = db.session.execute

            def complete_first(statement, *args, **kwargs):
                # The other worker wins the race between this one's read and update.
                if statement.is_dml:
                    db.session.query(Job).filter_by(id=job["id"]).update({"status": "done", "processed_count": 1})
                return real_execute(statement, *args, **kwargs)

            db.session.execute = complete_first
            try:
                assert jobs.process_one("late") is None
            finally:
                del db.session.execute

        assert client.get(f"/api/jobs/{job['id']}").get_json()["processed_count"] == 1

    def test_stops_when_asked(self, app: Flask) -> None:
        stop = threading.Event()

        with app.app_context():
            timer = threading.Timer(0.2, stop.set)
            timer.start()
            started = time.monotonic()
            assert jobs.run_worker(stop, 5.0) == 0

        assert time.monotonic() - started < 2
        timer.join()

    def test_a_database_error_is_retried(self, app: Flask, client, monkeypatch) -> None:
        enqueue(client)
        calls = []
        real_process_one = jobs.process_one

        def flaky(name: str):
            calls.append(name)
            if len(calls) == 1:
                raise OperationalError("SELECT", {}, Exception("server closed the connection"))
            return real_process_one(name)

        monkeypatch.setattr(jobs, "process_one", flaky)

        with app.app_context():
            assert jobs.run_worker(threading.Event(), 0.01, once=True) == 1

        assert len(calls) == 3

    def test_cli_once(self, app: Flask, client) -> None:
        enqueue(client)
        result = app.test_cli_runner().invoke(args=["worker", "--once", "--poll-interval", "0.01"])
        assert result.exit_code == 0, result.output
        assert "processed 1 jobs" in result.output


def test_tick_cli(app: Flask, client) -> None:
    for expected in (1, 2):
        result = app.test_cli_runner().invoke(args=["tick"])
        assert result.exit_code == 0, result.output
        assert result.output.strip() == f"tick {expected}"

    ticks = client.get("/api/ticks").get_json()
    assert ticks["count"] == 2
    assert [tick["id"] for tick in ticks["ticks"]] == [2, 1]
    assert ticks["ticks"][0]["by"] == jobs.worker_name()
    assert ticks["ticks"][0]["at"].endswith("+00:00")


def test_worker_exits_cleanly_on_sigterm(data_dir: Path) -> None:
    """What systemd's stop sends: the worker finishes and exits 0."""
    environ = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONDONTWRITEBYTECODE": "1",
        "FLASK_SECRET_KEY": "f" * 64,
        "FLASK_DATA_DIR": str(data_dir),
    }
    flask = [sys.executable, "-m", "flask", "--app", "wsgi"]
    subprocess.run([*flask, "db", "upgrade"], cwd=APP_DIR, env=environ, check=True, capture_output=True, timeout=60)
    worker = subprocess.Popen([*flask, "worker", "--poll-interval", "0.1"], cwd=APP_DIR, env=environ,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(2)
        worker.send_signal(signal.SIGTERM)
        stdout, stderr = worker.communicate(timeout=20)
    finally:
        worker.kill()

    assert worker.returncode == 0, stderr
    assert "processed 0 jobs" in stdout
