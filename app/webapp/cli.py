"""``flask init-db``: run by the deploy before a release takes traffic."""

from __future__ import annotations

import click
from flask.cli import with_appcontext
from sqlalchemy import inspect
from sqlalchemy.exc import SQLAlchemyError

from .models import db


@click.command("init-db")
@with_appcontext
def init_db_command() -> None:
    """Create missing tables. Safe to run on every deploy: existing tables
    and their rows are left untouched.
    """
    url = db.engine.url.render_as_string(hide_password=True)

    try:
        existing = set(inspect(db.engine).get_table_names())
        db.create_all()
    except SQLAlchemyError as e:
        raise click.ClickException(f"cannot initialise the database at {url}: {e}") from e

    created = sorted(set(db.metadata.tables) - existing)

    if created:
        click.echo(f"Database {url}: created tables {', '.join(created)}.")
    else:
        click.echo(f"Database {url}: schema up to date, nothing to do.")
