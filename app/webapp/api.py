"""JSON API for notes, background jobs and the scheduled job's ticks.

POST accepts only ``Content-Type: application/json``. A browser will not
send that type to another origin without a CORS preflight, which this app
never answers, so a hostile page cannot forge the request with the user's
cookies. That is why the API needs no CSRF token while the HTML form does.
"""

from __future__ import annotations

from flask import Blueprint, abort, request, url_for

from .jobs import enqueue_job, recent_jobs, tick_summary
from .models import InvalidNote, Job, Note, add_note, all_notes, db

bp = Blueprint("api", __name__, url_prefix="/api")


@bp.get("/notes")
def list_notes() -> dict[str, list]:
    return {"notes": [note.to_dict() for note in all_notes()]}


@bp.get("/notes/<int:note_id>")
def get_note(note_id: int) -> dict:
    return db.get_or_404(Note, note_id).to_dict()


@bp.post("/notes")
def create_note() -> tuple[dict, int, dict[str, str]]:
    if request.mimetype != "application/json":
        abort(415, description="Send the note as application/json.")

    payload = request.get_json(silent=True)

    if not isinstance(payload, dict):
        abort(400, description='Expected a JSON object like {"text": "..."}.')

    try:
        note = add_note(payload.get("text"))
    except InvalidNote as e:
        abort(400, description=str(e))

    location = url_for("api.get_note", note_id=note.id)
    return note.to_dict(), 201, {"Location": location}


@bp.post("/jobs")
def create_job() -> tuple[dict, int, dict[str, str]]:
    """Queue a job for the workers (``flask worker``); 202: it is done later."""
    if request.mimetype != "application/json":
        abort(415, description="Send the job as application/json.")

    payload = request.get_json(silent=True)

    if not isinstance(payload, dict):
        abort(400, description='Expected a JSON object like {"text": "..."}.')

    try:
        job = enqueue_job(payload.get("text"))
    except InvalidNote as e:
        abort(400, description=str(e))

    return job.to_dict(), 202, {"Location": url_for("api.get_job", job_id=job.id)}


@bp.get("/jobs")
def list_jobs() -> dict[str, list]:
    return {"jobs": [job.to_dict() for job in recent_jobs()]}


@bp.get("/jobs/<int:job_id>")
def get_job(job_id: int) -> dict:
    return db.get_or_404(Job, job_id).to_dict()


@bp.get("/ticks")
def list_ticks() -> dict:
    """What the scheduled ``flask tick`` recorded: how often, and the latest runs."""
    return tick_summary()
