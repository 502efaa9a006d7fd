"""Background jobs and the scheduled tick, for ``flask worker`` and ``flask tick``.

A job is claimed and completed in one transaction. On PostgreSQL the claim
locks the row with ``FOR UPDATE SKIP LOCKED``, so several workers take
different jobs without waiting for each other; the completing UPDATE is also
conditional on the job still being queued, which keeps SQLite (which has no
row locks and ignores the clause) to exactly once as well.
"""

from __future__ import annotations

import os
import signal
import socket
import threading
from types import FrameType
from typing import Any

import click
from flask import Flask, current_app
from flask.cli import with_appcontext
from sqlalchemy import func, select, update
from sqlalchemy.exc import SQLAlchemyError

from .models import InvalidNote, Job, Tick, db, utcnow

MAX_JOB_TEXT = 1000


def worker_name() -> str:
    return f"{socket.gethostname()}/{os.getpid()}"


def enqueue_job(text: Any) -> Job:
    if not isinstance(text, str) or not text.strip():
        raise InvalidNote("Text is required.")

    text = text.strip()

    if len(text) > MAX_JOB_TEXT:
        raise InvalidNote(f"Text is longer than {MAX_JOB_TEXT} characters.")

    job = Job(text=text, status="queued", processed_count=0)
    db.session.add(job)
    db.session.commit()
    return job


def work(text: str) -> str:
    """The demo job's work: what a real one would do (send a mail, resize an image)."""
    return text.upper()


def process_one(name: str) -> Job | None:
    """Claim the oldest queued job, do it and mark it done; None when none is queued."""
    query = select(Job).where(Job.status == "queued").order_by(Job.id).limit(1).with_for_update(skip_locked=True)
    job = db.session.scalars(query).first()

    if job is None:
        db.session.rollback()
        return None

    done = db.session.execute(
        update(Job)
        .where(Job.id == job.id, Job.status == "queued")
        .values(
            status="done",
            result=work(job.text),
            processed_by=name,
            processed_count=Job.processed_count + 1,
            processed_release=current_app.config["RELEASE_ID"],
            processed_at=utcnow(),
        )
        .execution_options(synchronize_session=False)
    )
    db.session.commit()

    if done.rowcount != 1:
        # Another worker completed it between the read and the update (SQLite).
        return None

    return db.session.get(Job, job.id, populate_existing=True)


def run_worker(stop: threading.Event, poll_interval: float, once: bool = False) -> int:
    """Process jobs until ``stop`` is set (SIGTERM); return how many were done."""
    name = worker_name()
    processed = 0
    current_app.logger.info("Worker %s started: release=%s", name, current_app.config["RELEASE_ID"])

    while not stop.is_set():
        try:
            job = process_one(name)
        except SQLAlchemyError:
            # The database restarting, a restore, a network blip: the job's
            # transaction rolled back, so it is still queued; try again shortly
            # rather than exit (and lose the process's place to a restart loop).
            current_app.logger.exception("Worker %s could not take a job; retrying", name)
            db.session.rollback()
            stop.wait(poll_interval)
            continue

        if job is not None:
            processed += 1
            current_app.logger.info("Worker %s did job %s", name, job.id)
            continue

        if once:
            break

        stop.wait(poll_interval)

    current_app.logger.info("Worker %s stopped after %s jobs", name, processed)
    return processed


def record_tick() -> Tick:
    tick = Tick(by=worker_name(), release=current_app.config["RELEASE_ID"])
    db.session.add(tick)
    db.session.commit()
    return tick


def recent_jobs(limit: int = 100) -> list[Job]:
    return list(db.session.scalars(select(Job).order_by(Job.id.desc()).limit(limit)))


def tick_summary(limit: int = 20) -> dict[str, Any]:
    count = db.session.scalar(select(func.count()).select_from(Tick)) or 0
    latest = db.session.scalars(select(Tick).order_by(Tick.id.desc()).limit(limit))
    return {"count": count, "ticks": [tick.to_dict() for tick in latest]}


@click.command("worker")
@with_appcontext
@click.option("--poll-interval", default=1.0, show_default=True, help="Seconds to wait when no job is queued.")
@click.option("--once", is_flag=True, help="Stop when the queue is empty.")
def worker_command(poll_interval: float, once: bool) -> None:
    """Process queued jobs until SIGTERM (or INT); the job at hand is finished first."""
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    processed = run_worker(stop, poll_interval, once=once)
    click.echo(f"processed {processed} jobs")


@click.command("tick")
@with_appcontext
def tick_command() -> None:
    """Record one tick (run by the scheduled timer)."""
    tick = record_tick()
    click.echo(f"tick {tick.id}")


def register_commands(app: Flask) -> None:
    app.cli.add_command(worker_command)
    app.cli.add_command(tick_command)
