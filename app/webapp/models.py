"""Database models. The schema comes from the migrations in
``webapp/migrations`` (``flask --app wsgi db upgrade``); a change to a model
needs a new migration (``flask --app webapp db migrate -m "..."``).
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from flask import current_app
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import DateTime, Integer, String, Text, select
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


db = SQLAlchemy(model_class=Base)


class InvalidNote(ValueError):
    """The submitted text cannot become a note; the message says why."""


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Note(db.Model):
    __tablename__ = "notes"

    id: Mapped[int] = mapped_column(primary_key=True)
    # The length limit is a setting (NOTE_MAX_LENGTH), checked on input,
    # so changing it needs no schema change.
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # The release that stored the note (migration 0002). Nullable: notes from
    # before it have none, and a release older than the column ignores it
    # while it serves beside a newer one (expand/contract).
    release: Mapped[str | None] = mapped_column(String(64), nullable=True)

    def to_dict(self) -> dict[str, Any]:
        created_at = self.created_at

        # SQLite keeps no time zone; every stored time is UTC.
        if created_at.tzinfo is None:
            created_at = created_at.replace(tzinfo=timezone.utc)

        return {"id": self.id, "text": self.text, "created_at": created_at.isoformat(), "release": self.release}


def add_note(text: Any) -> Note:
    """Validate ``text`` and store it as a new note."""
    if not isinstance(text, str) or not text.strip():
        raise InvalidNote("Text is required.")

    text = text.strip()
    max_length = current_app.config["NOTE_MAX_LENGTH"]

    if len(text) > max_length:
        raise InvalidNote(f"Text is longer than {max_length} characters.")

    note = Note(text=text, release=current_app.config["RELEASE_ID"])
    db.session.add(note)
    db.session.commit()
    return note


def all_notes() -> list[Note]:
    return list(db.session.scalars(select(Note).order_by(Note.id)))


def latest_notes(limit: int) -> list[Note]:
    return list(db.session.scalars(select(Note).order_by(Note.id.desc()).limit(limit)))


class Job(db.Model):
    """A background job: queued by the API, done by one ``flask worker``.

    ``processed_count`` counts how many times a worker completed it, so a test
    (or an operator) can see that a job ran exactly once.
    """

    __tablename__ = "jobs"

    id: Mapped[int] = mapped_column(primary_key=True)
    text: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="queued", index=True)
    result: Mapped[str | None] = mapped_column(Text, nullable=True)
    processed_by: Mapped[str | None] = mapped_column(String(128), nullable=True)
    processed_count: Mapped[int] = mapped_column(Integer, default=0)
    processed_release: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    processed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "text": self.text,
            "status": self.status,
            "result": self.result,
            "processed_by": self.processed_by,
            "processed_count": self.processed_count,
            "processed_release": self.processed_release,
            "created_at": iso_utc(self.created_at),
            "processed_at": iso_utc(self.processed_at),
        }


class Tick(db.Model):
    """One run of the scheduled ``flask tick``."""

    __tablename__ = "ticks"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    by: Mapped[str] = mapped_column(String(128))
    release: Mapped[str | None] = mapped_column(String(64), nullable=True)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "at": iso_utc(self.at), "by": self.by, "release": self.release}


def iso_utc(value: datetime | None) -> str | None:
    if value is None:
        return None

    # SQLite keeps no time zone; every stored time is UTC.
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)

    return value.isoformat()
