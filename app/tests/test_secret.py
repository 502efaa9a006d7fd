from __future__ import annotations

import pytest

from webapp.config import ConfigError, TestingConfig

HINT = "python3 -c 'import secrets; print(secrets.token_hex(32))'"


def assert_refused(make_production_app, secret: str | None, reason: str) -> None:
    environ = {} if secret is None else {"FLASK_SECRET_KEY": secret}

    with pytest.raises(ConfigError) as info:
        make_production_app(**environ)

    message = str(info.value)
    assert "FLASK_SECRET_KEY" in message
    assert HINT in message
    assert reason in message


class TestProduction:
    @pytest.fixture
    def make_production_app(self, make_app, data_dir):
        # Deliberately without the secret from production_environ.
        return lambda **environ: make_app("production", FLASK_DATA_DIR=str(data_dir), **environ)

    def test_missing(self, make_production_app) -> None:
        assert_refused(make_production_app, None, "is not set")

    def test_empty(self, make_production_app) -> None:
        assert_refused(make_production_app, "", "is not set")

    def test_too_short(self, make_production_app) -> None:
        assert_refused(make_production_app, "a" * 31, "shorter than 32 characters")

    @pytest.mark.parametrize(
        "placeholder",
        [
            "change-me",
            "changeme",
            "CHANGE_ME",
            "secret",
            "dev",
            "REPLACE_ME",
            "REPLACE_ME_with_the_output_of_token_hex_32_xxxxxxxxxx",
            "example-secret-key-for-the-documentation-only-xxxxxx",
        ],
    )
    def test_placeholder(self, make_production_app, placeholder: str) -> None:
        assert_refused(make_production_app, placeholder, "placeholder")

    def test_accepted(self, make_production_app) -> None:
        secret = "0123456789abcdef" * 2
        assert make_production_app(FLASK_SECRET_KEY=secret).secret_key == secret

    def test_from_settings_file(self, make_production_app, tmp_path) -> None:
        settings = tmp_path / "settings.py"
        settings.write_text("SECRET_KEY = 'too-short'\n")
        assert_refused(
            lambda **environ: make_production_app(FLASK_SETTINGS_FILE=str(settings), **environ),
            None,
            "shorter than 32",
        )

    def test_must_be_a_string(self, make_production_app, tmp_path) -> None:
        settings = tmp_path / "settings.py"
        settings.write_text("SECRET_KEY = 1234\n")
        assert_refused(
            lambda **environ: make_production_app(FLASK_SETTINGS_FILE=str(settings), **environ),
            None,
            "must be a string",
        )


class TestOutsideProduction:
    def test_development_generates_a_key(self, make_app) -> None:
        first = make_app("development").secret_key
        second = make_app("development").secret_key
        assert len(first) == 64
        assert first != second

    def test_development_keeps_a_given_key(self, make_app) -> None:
        # Short or placeholder keys are fine where nothing is at stake.
        assert make_app("development", FLASK_SECRET_KEY="dev").secret_key == "dev"

    def test_testing_uses_its_fixed_key(self, make_app) -> None:
        assert make_app("testing").secret_key == TestingConfig.SECRET_KEY
