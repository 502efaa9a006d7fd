from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

import webapp
from webapp import create_app
from webapp.models import db

AppFactory = Callable[..., Flask]

# Saved before the autouse fixture below replaces it.
REAL_DEFAULT_REVISION_FILE = webapp.DEFAULT_REVISION_FILE


@pytest.fixture(autouse=True)
def isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Each test starts without FLASK_* variables from the shell running it,
    and without a REVISION file that a developer may have left in app/.
    """
    for key in list(os.environ):
        if key.startswith("FLASK_"):
            monkeypatch.delenv(key)

    monkeypatch.setattr(webapp, "DEFAULT_REVISION_FILE", tmp_path / "no-such-REVISION")


@pytest.fixture
def instance_path(tmp_path: Path) -> Path:
    return tmp_path / "instance"


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    path = tmp_path / "data"
    path.mkdir()
    return path


@pytest.fixture
def make_app(monkeypatch: pytest.MonkeyPatch, instance_path: Path) -> Iterator[AppFactory]:
    """Create an app after setting the given environment variables."""
    apps: list[Flask] = []

    def make(config_name: str | None = "testing", **environ: str) -> Flask:
        for key, value in environ.items():
            monkeypatch.setenv(key, value)

        app = create_app(config_name, instance_path=str(instance_path))
        apps.append(app)
        return app

    yield make

    # Close pooled SQLite connections now rather than at garbage
    # collection, which Python 3.13 reports as a ResourceWarning.
    for app in apps:
        with app.app_context():
            for engine in db.engines.values():
                engine.dispose()


@pytest.fixture
def production_environ(data_dir: Path) -> dict[str, str]:
    """The least a production start needs, as the roles provide it."""
    return {"FLASK_SECRET_KEY": secrets.token_hex(32), "FLASK_DATA_DIR": str(data_dir)}


@pytest.fixture
def make_production_app(make_app: AppFactory, production_environ: dict[str, str]) -> AppFactory:
    def make(**environ: str) -> Flask:
        return make_app("production", **{**production_environ, **environ})

    return make


@pytest.fixture
def app(make_app: AppFactory) -> Iterator[Flask]:
    app = make_app("testing")

    with app.app_context():
        db.create_all()

    yield app


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()
