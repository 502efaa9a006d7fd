from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from sqlalchemy import inspect

from webapp.models import db

APP_DIR = Path(__file__).resolve().parent.parent


def test_init_db_is_idempotent(make_app, data_dir: Path) -> None:
    app = make_app("testing", FLASK_DATA_DIR=str(data_dir))
    runner = app.test_cli_runner()

    first = runner.invoke(args=["init-db"])
    assert first.exit_code == 0, first.output
    assert "created tables notes" in first.output

    with app.app_context():
        assert "notes" in inspect(db.engine).get_table_names()

    app.test_client().post("/api/notes", json={"text": "survives init-db"})

    second = runner.invoke(args=["init-db"])
    assert second.exit_code == 0, second.output
    assert "schema up to date" in second.output
    assert second.output.count("\n") == 1

    notes = app.test_client().get("/api/notes").get_json()["notes"]
    assert [note["text"] for note in notes] == ["survives init-db"]


def test_init_db_reports_an_unusable_database(make_app, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'missing-dir' / 'app.sqlite3'}"
    result = make_app("testing", FLASK_DATABASE_URL=url).test_cli_runner().invoke(args=["init-db"])
    assert result.exit_code == 1
    assert "cannot initialise the database" in result.output


def test_deploy_command_line(data_dir: Path) -> None:
    """Exactly what the deploy runs, from the app directory, twice."""
    environ = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONDONTWRITEBYTECODE": "1",
        "FLASK_SECRET_KEY": "f" * 64,
        "FLASK_DATA_DIR": str(data_dir),
    }
    command = [sys.executable, "-m", "flask", "--app", "wsgi", "init-db"]

    outputs = []
    for _ in range(2):
        result = subprocess.run(command, cwd=APP_DIR, env=environ, capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        outputs.append(result.stdout)

    assert "created tables notes" in outputs[0]
    assert "schema up to date" in outputs[1]
    assert (data_dir / "app.sqlite3").is_file()
