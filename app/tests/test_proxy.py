"""ProxyFix trusts exactly the configured number of proxies."""

from __future__ import annotations

import pytest
from flask import Flask, request, url_for

FORWARDED = {
    "X-Forwarded-For": "203.0.113.7",
    "X-Forwarded-Proto": "https",
    "X-Forwarded-Host": "www.example.com",
}


def add_echo_route(app: Flask) -> None:
    @app.get("/_echo")
    def echo() -> dict[str, str]:
        return {
            "remote_addr": request.remote_addr or "",
            "scheme": request.scheme,
            "host": request.host,
            "external_url": url_for("main.index", _external=True),
        }


def echo(app: Flask, headers: dict[str, str] | None = None) -> dict[str, str]:
    add_echo_route(app)
    # What gunicorn sees behind nginx: plain HTTP from the loopback address.
    response = app.test_client().get(
        "/_echo", base_url="http://localhost", headers=headers, environ_base={"REMOTE_ADDR": "127.0.0.1"}
    )
    assert response.status_code == 200
    return response.get_json()


def test_without_forwarded_headers(make_production_app) -> None:
    seen = echo(make_production_app())
    assert seen["remote_addr"] == "127.0.0.1"
    assert seen["scheme"] == "http"
    assert seen["host"] == "localhost"


def test_with_forwarded_headers(make_production_app) -> None:
    seen = echo(make_production_app(), FORWARDED)
    assert seen["remote_addr"] == "203.0.113.7"
    assert seen["scheme"] == "https"
    assert seen["host"] == "www.example.com"
    assert seen["external_url"] == "https://www.example.com/"


def test_client_supplied_values_are_ignored(make_production_app) -> None:
    # nginx appends the real address to whatever the client sent; with one
    # trusted proxy only the last value counts.
    headers = {**FORWARDED, "X-Forwarded-For": "198.51.100.66, 203.0.113.7"}
    assert echo(make_production_app(), headers)["remote_addr"] == "203.0.113.7"


def test_two_proxies(make_production_app) -> None:
    headers = {"X-Forwarded-For": "203.0.113.7, 10.0.0.2"}
    seen = echo(make_production_app(FLASK_PROXY_FIX_X_FOR="2"), headers)
    assert seen["remote_addr"] == "203.0.113.7"


def test_disabled(make_production_app) -> None:
    app = make_production_app(FLASK_PROXY_FIX_X_FOR="0", FLASK_PROXY_FIX_X_PROTO="0", FLASK_PROXY_FIX_X_HOST="0")
    seen = echo(app, FORWARDED)
    assert seen["remote_addr"] == "127.0.0.1"
    assert seen["scheme"] == "http"
    assert seen["host"] == "localhost"


@pytest.mark.parametrize("config_name", ["development", "testing"])
def test_off_outside_production(make_app, config_name: str) -> None:
    seen = echo(make_app(config_name), FORWARDED)
    assert seen["remote_addr"] == "127.0.0.1"


class TestTrustedHosts:
    def test_untrusted_host_is_refused(self, make_production_app) -> None:
        app = make_production_app(FLASK_TRUSTED_HOSTS='["www.example.com"]')
        response = app.test_client().get("/healthz", headers={"Host": "evil.example"})
        assert response.status_code == 400

    def test_trusted_host(self, make_production_app) -> None:
        app = make_production_app(FLASK_TRUSTED_HOSTS='["www.example.com"]')
        response = app.test_client().get("/healthz", headers={"Host": "www.example.com"})
        assert response.status_code == 200

    def test_forwarded_host_is_checked(self, make_production_app) -> None:
        app = make_production_app(FLASK_TRUSTED_HOSTS='["www.example.com"]')
        client = app.test_client()
        assert client.get("/healthz", headers={"X-Forwarded-Host": "www.example.com"}).status_code == 200
        assert client.get("/healthz", headers={"X-Forwarded-Host": "evil.example"}).status_code == 400
