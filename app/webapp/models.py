"""Database models. The schema is created by ``flask init-db``."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from flask import current_app
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import DateTime, Text, select
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

    def to_dict(self) -> dict[str, Any]:
        created_at = self.created_at

        # SQLite keeps no time zone; every stored time is UTC.
        if created_at.tzinfo is None:
            created_at = created_at.replace(tzinfo=timezone.utc)

        return {"id": self.id, "text": self.text, "created_at": created_at.isoformat()}


def add_note(text: Any) -> Note:
    """Validate ``text`` and store it as a new note."""
    if not isinstance(text, str) or not text.strip():
        raise InvalidNote("Text is required.")

    text = text.strip()
    max_length = current_app.config["NOTE_MAX_LENGTH"]

    if len(text) > max_length:
        raise InvalidNote(f"Text is longer than {max_length} characters.")

    note = Note(text=text)
    db.session.add(note)
    db.session.commit()
    return note


def all_notes() -> list[Note]:
    return list(db.session.scalars(select(Note).order_by(Note.id)))


def latest_notes(limit: int) -> list[Note]:
    return list(db.session.scalars(select(Note).order_by(Note.id.desc()).limit(limit)))
