"""The HTML page, its form, and the health check."""

from __future__ import annotations

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.wrappers import Response

from .csrf import check_csrf
from .models import InvalidNote, add_note, db, latest_notes

bp = Blueprint("main", __name__)

NOTES_ON_PAGE = 20


@bp.get("/")
def index() -> str:
    return render_template("index.html", notes=latest_notes(NOTES_ON_PAGE))


@bp.post("/notes")
def create_note() -> Response:
    check_csrf()

    try:
        add_note(request.form.get("text"))
    except InvalidNote as e:
        flash(str(e), "error")
    else:
        flash("Note saved.", "success")

    # 303 so that reloading the page after posting does not post again.
    return redirect(url_for("main.index"), code=303)


@bp.get("/healthz")
def healthz() -> tuple[dict[str, str], int, dict[str, str]]:
    release = current_app.config["RELEASE_ID"]

    try:
        db.session.execute(text("SELECT 1"))
    except SQLAlchemyError as e:
        # One line, no traceback: a probe may repeat this every few seconds.
        current_app.logger.warning("Health check: database round trip failed: %s", e)
        body = {"status": "error", "release": release, "database": "error"}
        status = 503
    else:
        body = {"status": "ok", "release": release, "database": "ok"}
        status = 200

    return body, status, {"Cache-Control": "no-store"}
