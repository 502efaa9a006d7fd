from __future__ import annotations

import re
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from webapp.config import Config
from webapp.models import db


def post_json(client: FlaskClient, body: object):
    return client.post("/api/notes", json=body)


class TestApi:
    def test_empty_list(self, client) -> None:
        response = client.get("/api/notes")
        assert response.status_code == 200
        assert response.get_json() == {"notes": []}

    def test_create_and_read(self, client) -> None:
        response = post_json(client, {"text": "  hello from the test  "})
        assert response.status_code == 201
        note = response.get_json()
        assert note["text"] == "hello from the test"
        assert note["created_at"].endswith("+00:00")
        assert response.headers["Location"] == f"/api/notes/{note['id']}"

        assert client.get(response.headers["Location"]).get_json() == note
        assert client.get("/api/notes").get_json() == {"notes": [note]}

    def test_list_is_in_creation_order(self, client) -> None:
        for text in ("first", "second", "third"):
            post_json(client, {"text": text})

        texts = [note["text"] for note in client.get("/api/notes").get_json()["notes"]]
        assert texts == ["first", "second", "third"]

    def test_unknown_note(self, client) -> None:
        response = client.get("/api/notes/999")
        assert response.status_code == 404
        assert response.get_json()["error"] == "Not Found"

    @pytest.mark.parametrize(
        "body",
        [{}, {"text": ""}, {"text": "   "}, {"text": 42}, {"text": None}, ["text"], "text"],
    )
    def test_invalid_body(self, client, body: object) -> None:
        response = post_json(client, body)
        assert response.status_code == 400
        assert response.get_json()["error"] == "Bad Request"

    def test_too_long(self, client) -> None:
        response = post_json(client, {"text": "x" * (Config.NOTE_MAX_LENGTH + 1)})
        assert response.status_code == 400
        assert "longer than" in response.get_json()["message"]

    def test_longest_allowed(self, client) -> None:
        assert post_json(client, {"text": "x" * Config.NOTE_MAX_LENGTH}).status_code == 201

    def test_malformed_json(self, client) -> None:
        response = client.post("/api/notes", data="{not json", content_type="application/json")
        assert response.status_code == 400

    @pytest.mark.parametrize(
        "content_type",
        ["application/x-www-form-urlencoded", "multipart/form-data", "text/plain", "application/merge-patch+json"],
    )
    def test_only_json_is_accepted(self, client, content_type: str) -> None:
        # The types a cross-site form can send, and one that merely looks like JSON.
        response = client.post("/api/notes", data='{"text": "forged"}', content_type=content_type)
        assert response.status_code == 415
        assert client.get("/api/notes").get_json() == {"notes": []}

    def test_oversized_body(self, client) -> None:
        response = post_json(client, {"text": "x" * (Config.MAX_CONTENT_LENGTH + 1)})
        assert response.status_code == 413


class TestPersistence:
    def test_notes_survive_a_new_release(self, make_production_app, data_dir: Path) -> None:
        """A deploy starts a new app on the same data directory."""
        old = make_production_app(FLASK_RELEASE_ID="old")
        with old.app_context():
            db.create_all()
        created = old.test_client().post("/api/notes", json={"text": "keep me"}).get_json()

        new = make_production_app(FLASK_RELEASE_ID="new")
        assert new.test_client().get("/api/notes").get_json() == {"notes": [created]}
        assert (data_dir / "app.sqlite3").is_file()


def csrf_token_from(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "form has no CSRF token"
    return match.group(1)


class TestPage:
    def test_index(self, make_app) -> None:
        app = make_app("testing", FLASK_RELEASE_ID="abc123")
        with app.app_context():
            db.create_all()
        html = app.test_client().get("/").get_data(as_text=True)
        assert '<span id="release">abc123</span>' in html
        assert 'href="/static/style.css"' in html
        assert 'src="/static/logo.svg"' in html
        assert "No notes yet." in html

    def test_no_inline_scripts_or_styles(self, client) -> None:
        html = client.get("/").get_data(as_text=True)
        assert "<script" not in html
        assert "<style" not in html
        assert "style=" not in html

    @pytest.mark.parametrize(("filename", "mimetype"), [("style.css", "text/css"), ("logo.svg", "image/svg+xml")])
    def test_static_files(self, client, filename: str, mimetype: str) -> None:
        response = client.get(f"/static/{filename}")
        assert response.status_code == 200
        assert response.mimetype == mimetype
        response.close()

    def test_form_posts_a_note(self, client) -> None:
        token = csrf_token_from(client.get("/").get_data(as_text=True))
        response = client.post("/notes", data={"text": "<b>from the form</b>", "csrf_token": token})
        assert response.status_code == 303
        assert response.headers["Location"] == "/"

        html = client.get("/").get_data(as_text=True)
        assert "Note saved." in html
        assert "&lt;b&gt;from the form&lt;/b&gt;" in html
        assert client.get("/api/notes").get_json()["notes"][0]["text"] == "<b>from the form</b>"

    def test_form_reports_invalid_text(self, client) -> None:
        token = csrf_token_from(client.get("/").get_data(as_text=True))
        response = client.post("/notes", data={"text": " ", "csrf_token": token}, follow_redirects=True)
        assert "Text is required." in response.get_data(as_text=True)
        assert client.get("/api/notes").get_json() == {"notes": []}

    def test_token_is_stable_within_a_session(self, client) -> None:
        first = csrf_token_from(client.get("/").get_data(as_text=True))
        assert csrf_token_from(client.get("/").get_data(as_text=True)) == first

    @pytest.mark.parametrize("token", [None, "", "forged"])
    def test_form_requires_the_session_token(self, client, token: str | None) -> None:
        client.get("/")
        data = {"text": "forged"} if token is None else {"text": "forged", "csrf_token": token}
        response = client.post("/notes", data=data)
        assert response.status_code == 400
        assert "Reload the page" in response.get_data(as_text=True)
        assert client.get("/api/notes").get_json() == {"notes": []}

    def test_form_without_a_session(self, app) -> None:
        response = app.test_client().post("/notes", data={"text": "x", "csrf_token": "x"})
        assert response.status_code == 400

    def test_token_from_another_session(self, app) -> None:
        victim_token = csrf_token_from(app.test_client().get("/").get_data(as_text=True))
        attacker = app.test_client()
        attacker.get("/")
        response = attacker.post("/notes", data={"text": "x", "csrf_token": victim_token})
        assert response.status_code == 400

    def test_page_lists_latest_notes_first(self, client) -> None:
        for text in ("older", "newer"):
            client.post("/api/notes", json={"text": text})

        html = client.get("/").get_data(as_text=True)
        assert html.index("newer") < html.index("older")
