from __future__ import annotations

import logging
from pathlib import Path

import pytest

from conftest import REAL_DEFAULT_REVISION_FILE


def test_healthy(client) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok", "release": "unknown", "database": "ok"}
    assert response.headers["Cache-Control"] == "no-store"


def test_database_unreachable(make_app, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    url = f"sqlite:///{tmp_path / 'missing-dir' / 'app.sqlite3'}"
    app = make_app("testing", FLASK_DATABASE_URL=url, FLASK_RELEASE_ID="r42")

    with caplog.at_level(logging.WARNING, logger="webapp"):
        response = app.test_client().get("/healthz")

    assert response.status_code == 503
    assert response.get_json() == {"status": "error", "release": "r42", "database": "error"}
    assert "database round trip failed" in caplog.text


def test_production_health_needs_no_schema(make_production_app) -> None:
    # The deploy may probe before db upgrade; SELECT 1 needs no tables.
    response = make_production_app().test_client().get("/healthz")
    assert response.status_code == 200


class TestReleaseId:
    def test_from_environment(self, make_app) -> None:
        response = make_app("testing", FLASK_RELEASE_ID="abc123").test_client().get("/healthz")
        assert response.get_json()["release"] == "abc123"

    def test_from_revision_file(self, make_app, tmp_path: Path) -> None:
        revision = tmp_path / "REVISION"
        revision.write_text("0a1b2c3\n")
        app = make_app("testing", FLASK_REVISION_FILE=str(revision))
        assert app.test_client().get("/healthz").get_json()["release"] == "0a1b2c3"

    def test_default_revision_file_is_next_to_wsgi(self, make_app, tmp_path: Path, monkeypatch) -> None:
        import webapp

        revision = tmp_path / "REVISION"
        revision.write_text("from-default-location")
        monkeypatch.setattr(webapp, "DEFAULT_REVISION_FILE", revision)
        assert make_app("testing").config["RELEASE_ID"] == "from-default-location"

    def test_real_default_location(self) -> None:
        app_dir = Path(__file__).resolve().parent.parent
        assert REAL_DEFAULT_REVISION_FILE == app_dir / "REVISION"
        assert (app_dir / "wsgi.py").is_file()

    def test_environment_wins_over_file(self, make_app, tmp_path: Path) -> None:
        revision = tmp_path / "REVISION"
        revision.write_text("from-file")
        app = make_app("testing", FLASK_REVISION_FILE=str(revision), FLASK_RELEASE_ID="from-env")
        assert app.config["RELEASE_ID"] == "from-env"

    def test_empty_revision_file(self, make_app, tmp_path: Path) -> None:
        revision = tmp_path / "REVISION"
        revision.write_text("\n")
        assert make_app("testing", FLASK_REVISION_FILE=str(revision)).config["RELEASE_ID"] == "unknown"
