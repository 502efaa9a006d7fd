from __future__ import annotations

import logging

import pytest
from flask import Flask

SECRET_DETAIL = "database password is hunter2"


def add_failing_routes(app: Flask) -> None:
    @app.get("/boom")
    def boom() -> str:
        raise RuntimeError(SECRET_DETAIL)

    @app.get("/api/boom")
    def api_boom() -> str:
        raise RuntimeError(SECRET_DETAIL)


@pytest.fixture
def production_client(make_production_app):
    app = make_production_app()
    add_failing_routes(app)
    return app.test_client()


def test_404_page(production_client) -> None:
    response = production_client.get("/no-such-page")
    assert response.status_code == 404
    assert response.mimetype == "text/html"
    html = response.get_data(as_text=True)
    assert "404 Not Found" in html
    assert 'href="/static/style.css"' in html


def test_404_json_under_api(production_client) -> None:
    response = production_client.get("/api/no-such-thing")
    assert response.status_code == 404
    assert response.get_json()["error"] == "Not Found"


def test_405(production_client) -> None:
    response = production_client.delete("/")
    assert response.status_code == 405
    assert "405 Method Not Allowed" in response.get_data(as_text=True)


def test_500_page_leaks_nothing(production_client, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, logger="webapp"):
        response = production_client.get("/boom")

    assert response.status_code == 500
    html = response.get_data(as_text=True)
    assert "500 Internal Server Error" in html
    assert SECRET_DETAIL not in html
    assert "Traceback" not in html
    assert "RuntimeError" not in html
    # The operator still gets the details, in the log.
    assert SECRET_DETAIL in caplog.text


def test_500_json_under_api(production_client) -> None:
    response = production_client.get("/api/boom")
    assert response.status_code == 500
    body = response.get_json()
    assert body["error"] == "Internal Server Error"
    assert SECRET_DETAIL not in response.get_data(as_text=True)


def test_development_also_shows_the_template(make_app) -> None:
    response = make_app("development").test_client().get("/no-such-page")
    assert response.status_code == 404
    assert "404 Not Found" in response.get_data(as_text=True)
