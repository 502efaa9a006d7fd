"""The schema comes from the migrations (``flask db upgrade``), on SQLite
and, when ``FLASK_VPS_TEST_DATABASE_URL`` names one, on a real PostgreSQL.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask import Flask
from sqlalchemy import create_engine, inspect, text

from webapp import MIGRATIONS_DIR
from webapp.models import Note, db

APP_DIR = Path(__file__).resolve().parent.parent
POSTGRESQL_URL_VAR = "FLASK_VPS_TEST_DATABASE_URL"
# Read at import: conftest.py's autouse fixture removes every FLASK_* variable
# before each test, this one included.
POSTGRESQL_URL = os.environ.get(POSTGRESQL_URL_VAR)
HEAD = "0003"


def reset(url: str) -> None:
    """An empty database: the suite owns the one it is given."""
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(text("DROP TABLE IF EXISTS notes"))
        connection.execute(text("DROP TABLE IF EXISTS jobs"))
        connection.execute(text("DROP TABLE IF EXISTS ticks"))
        connection.execute(text("DROP TABLE IF EXISTS alembic_version"))
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'migrations.sqlite3'}"
        return

    url = POSTGRESQL_URL
    if not url:
        pytest.skip(f"{POSTGRESQL_URL_VAR} is not set (a PostgreSQL URL the suite may empty)")

    reset(url)
    yield url
    reset(url)


def upgrade(app: Flask, revision: str = "head") -> str:
    result = app.test_cli_runner().invoke(args=["db", "upgrade", revision])
    assert result.exit_code == 0, result.output
    return result.output


def current_revision(app: Flask) -> str | None:
    with app.app_context(), db.engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def columns(app: Flask) -> set[str]:
    with app.app_context():
        return {column["name"] for column in inspect(db.engine).get_columns("notes")}


def test_upgrade_makes_the_models_schema_and_is_idempotent(make_app, database_url: str) -> None:
    app = make_app("testing", FLASK_DATABASE_URL=database_url)
    upgrade(app)
    upgrade(app)
    assert current_revision(app) == HEAD

    # Nothing in the models that a migration does not make.
    with app.app_context(), db.engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), db.metadata) == []


def test_the_old_release_keeps_working_on_the_new_schema(make_app, database_url: str) -> None:
    """Expand/contract: 0001's code (no release column) writes and reads on 0002's schema."""
    app = make_app("testing", FLASK_DATABASE_URL=database_url, FLASK_RELEASE_ID="new-release")
    upgrade(app, "0001")
    assert "release" not in columns(app)

    upgrade(app)
    assert "release" in columns(app)

    with app.app_context(), db.engine.begin() as connection:
        # What the old release's model sends: no release column.
        connection.execute(text("INSERT INTO notes (text, created_at) VALUES ('old', CURRENT_TIMESTAMP)"))

    client = app.test_client()
    assert client.post("/api/notes", json={"text": "new"}).status_code == 201
    notes = client.get("/api/notes").get_json()["notes"]
    assert [(note["text"], note["release"]) for note in notes] == [("old", None), ("new", "new-release")]


def test_a_database_made_by_create_all_is_adopted(make_app, database_url: str) -> None:
    """Servers that ran the former ``init-db`` keep their notes."""
    app = make_app("testing", FLASK_DATABASE_URL=database_url)

    with app.app_context():
        Note.__table__.create(db.engine, checkfirst=True)
        db.session.execute(text("ALTER TABLE notes DROP COLUMN release"))
        db.session.execute(text("INSERT INTO notes (text, created_at) VALUES ('kept', CURRENT_TIMESTAMP)"))
        db.session.commit()

    upgrade(app)
    assert current_revision(app) == HEAD
    assert [note["text"] for note in app.test_client().get("/api/notes").get_json()["notes"]] == ["kept"]


def test_downgrade_to_the_first_revision(make_app, database_url: str) -> None:
    app = make_app("testing", FLASK_DATABASE_URL=database_url)
    upgrade(app)
    result = app.test_cli_runner().invoke(args=["db", "downgrade", "0001"])
    assert result.exit_code == 0, result.output
    assert current_revision(app) == "0001"
    assert "release" not in columns(app)


def test_migrations_live_in_the_package() -> None:
    # A release's copy of the app finds them whatever the working directory.
    assert MIGRATIONS_DIR == APP_DIR / "webapp" / "migrations"
    assert sorted(path.name for path in (MIGRATIONS_DIR / "versions").glob("0*.py")) == [
        "0001_notes.py", "0002_notes_release.py", "0003_jobs.py"]


def test_deploy_command_line(data_dir: Path, tmp_path: Path) -> None:
    """Exactly what the deploy runs, from another directory's copy of wsgi.py, twice."""
    environ = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONDONTWRITEBYTECODE": "1",
        "FLASK_SECRET_KEY": "f" * 64,
        "FLASK_DATA_DIR": str(data_dir),
    }
    command = [sys.executable, "-m", "flask", "--app", "wsgi", "db", "upgrade"]

    for _ in range(2):
        result = subprocess.run(command, cwd=APP_DIR, env=environ, capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr

    assert (data_dir / "app.sqlite3").is_file()
    engine = create_engine(f"sqlite:///{data_dir / 'app.sqlite3'}")
    with engine.connect() as connection:
        assert connection.execute(text("SELECT version_num FROM alembic_version")).scalar_one() == HEAD
    engine.dispose()


def test_a_failing_upgrade_exits_non_zero(make_app, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'missing-dir' / 'app.sqlite3'}"
    result = make_app("testing", FLASK_DATABASE_URL=url).test_cli_runner().invoke(args=["db", "upgrade"])
    assert result.exit_code != 0
