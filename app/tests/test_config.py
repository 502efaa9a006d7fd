from __future__ import annotations

from pathlib import Path

import pytest

from webapp import config
from webapp.config import (
    Config,
    ConfigError,
    DevelopmentConfig,
    ProductionConfig,
    TestingConfig,
    config_by_name,
)


class TestClasses:
    def test_base_is_safe(self) -> None:
        assert Config.DEBUG is False
        assert Config.TESTING is False
        assert Config.SECRET_KEY is None
        assert Config.SESSION_COOKIE_HTTPONLY is True
        assert Config.SESSION_COOKIE_SAMESITE == "Lax"
        # Without a proxy in front, forwarded headers come from clients.
        assert (Config.PROXY_FIX_X_FOR, Config.PROXY_FIX_X_PROTO, Config.PROXY_FIX_X_HOST) == (0, 0, 0)
        assert Config.LOG_FORMAT == "plain"

    def test_development(self) -> None:
        assert DevelopmentConfig.DEBUG is True
        assert DevelopmentConfig.SESSION_COOKIE_SECURE is False

    def test_testing(self) -> None:
        assert TestingConfig.TESTING is True
        assert TestingConfig.DEBUG is False
        assert TestingConfig.SECRET_KEY

    def test_production(self) -> None:
        assert ProductionConfig.DEBUG is False
        assert ProductionConfig.SESSION_COOKIE_SECURE is True
        assert ProductionConfig.SESSION_COOKIE_HTTPONLY is True
        assert ProductionConfig.SESSION_COOKIE_SAMESITE == "Lax"
        assert ProductionConfig.PREFERRED_URL_SCHEME == "https"
        assert ProductionConfig.SECRET_KEY is None
        assert (ProductionConfig.PROXY_FIX_X_FOR, ProductionConfig.PROXY_FIX_X_PROTO, ProductionConfig.PROXY_FIX_X_HOST) == (1, 1, 1)

    def test_mapping(self) -> None:
        assert config_by_name["development"] is DevelopmentConfig
        assert config_by_name["testing"] is TestingConfig
        assert config_by_name["production"] is ProductionConfig
        assert config_by_name["default"] is DevelopmentConfig


class TestConfigName:
    def test_argument_wins_over_environment(self, make_app) -> None:
        app = make_app("testing", FLASK_CONFIG="development")
        assert app.config["CONFIG_NAME"] == "testing"
        assert app.testing

    def test_environment_when_no_argument(self, make_app) -> None:
        app = make_app(None, FLASK_CONFIG="testing")
        assert app.config["CONFIG_NAME"] == "testing"

    def test_default_is_development(self, make_app) -> None:
        app = make_app(None)
        assert app.config["CONFIG_NAME"] == "default"
        assert app.debug

    def test_unknown_name_is_an_error(self, make_app) -> None:
        with pytest.raises(ConfigError, match="FLASK_CONFIG.*development, production, testing"):
            make_app("staging")

    def test_production_app(self, make_production_app) -> None:
        app = make_production_app()
        assert app.debug is False
        assert app.config["SESSION_COOKIE_SECURE"] is True
        assert app.config["SESSION_COOKIE_HTTPONLY"] is True
        assert app.config["SESSION_COOKIE_SAMESITE"] == "Lax"
        assert app.config["PREFERRED_URL_SCHEME"] == "https"


class TestSources:
    """Class < instance config.py < FLASK_SETTINGS_FILE < JSON file < FLASK_* variables."""

    @pytest.fixture
    def instance_file(self, instance_path: Path) -> Path:
        instance_path.mkdir()
        return instance_path / "config.py"

    @pytest.fixture
    def settings_file(self, tmp_path: Path) -> Path:
        return tmp_path / "settings.py"

    def test_class_alone(self, make_app) -> None:
        assert make_app("testing").config["NOTE_MAX_LENGTH"] == Config.NOTE_MAX_LENGTH

    def test_missing_instance_file_is_silent(self, make_app, instance_path: Path) -> None:
        assert not instance_path.exists()
        make_app("testing")

    def test_instance_file_overrides_class(self, make_app, instance_file: Path) -> None:
        instance_file.write_text("NOTE_MAX_LENGTH = 10\n")
        assert make_app("testing").config["NOTE_MAX_LENGTH"] == 10

    def test_settings_file_overrides_instance_file(self, make_app, instance_file: Path, settings_file: Path) -> None:
        instance_file.write_text("NOTE_MAX_LENGTH = 10\n")
        settings_file.write_text("NOTE_MAX_LENGTH = 20\n")
        app = make_app("testing", FLASK_SETTINGS_FILE=str(settings_file))
        assert app.config["NOTE_MAX_LENGTH"] == 20

    def test_environment_overrides_settings_file(self, make_app, settings_file: Path) -> None:
        settings_file.write_text("NOTE_MAX_LENGTH = 20\n")
        app = make_app("testing", FLASK_SETTINGS_FILE=str(settings_file), FLASK_NOTE_MAX_LENGTH="30")
        assert app.config["NOTE_MAX_LENGTH"] == 30

    def test_each_source_contributes(self, make_app, instance_file: Path, settings_file: Path) -> None:
        instance_file.write_text("FROM_INSTANCE = 'instance'\nSHARED = 'instance'\n")
        settings_file.write_text("FROM_SETTINGS = 'settings'\nSHARED = 'settings'\n")
        app = make_app("testing", FLASK_SETTINGS_FILE=str(settings_file), FLASK_SHARED="environment")

        assert app.config["TESTING"] is True
        assert app.config["FROM_INSTANCE"] == "instance"
        assert app.config["FROM_SETTINGS"] == "settings"
        assert app.config["SHARED"] == "environment"

    def test_json_file_overrides_settings_file(self, make_app, settings_file: Path, tmp_path: Path) -> None:
        settings_file.write_text("NOTE_MAX_LENGTH = 20\nFROM_SETTINGS = 'settings'\n")
        json_file = tmp_path / "settings.json"
        json_file.write_text('{"NOTE_MAX_LENGTH": 40, "TRUSTED_HOSTS": ["a.example"]}')
        app = make_app("testing", FLASK_SETTINGS_FILE=str(settings_file), FLASK_SETTINGS_JSON=str(json_file))
        assert app.config["NOTE_MAX_LENGTH"] == 40
        assert app.config["FROM_SETTINGS"] == "settings"
        assert app.config["TRUSTED_HOSTS"] == ["a.example"]

    def test_environment_overrides_json_file(self, make_app, tmp_path: Path) -> None:
        json_file = tmp_path / "settings.json"
        json_file.write_text('{"NOTE_MAX_LENGTH": 40}')
        app = make_app("testing", FLASK_SETTINGS_JSON=str(json_file), FLASK_NOTE_MAX_LENGTH="50")
        assert app.config["NOTE_MAX_LENGTH"] == 50

    def test_instance_json_file_is_read_when_present(self, make_app, instance_file: Path) -> None:
        instance_file.write_text("NOTE_MAX_LENGTH = 10\n")
        (instance_file.parent / "settings.json").write_text('{"NOTE_MAX_LENGTH": 15}')
        assert make_app("testing").config["NOTE_MAX_LENGTH"] == 15

    def test_named_json_file_must_exist(self, make_app, tmp_path: Path) -> None:
        with pytest.raises(OSError, match="missing.json"):
            make_app("testing", FLASK_SETTINGS_JSON=str(tmp_path / "missing.json"))

    def test_json_file_must_be_json(self, make_app, tmp_path: Path) -> None:
        json_file = tmp_path / "settings.json"
        json_file.write_text("NOTE_MAX_LENGTH = 40\n")
        with pytest.raises(ValueError):
            make_app("testing", FLASK_SETTINGS_JSON=str(json_file))

    def test_named_settings_file_must_exist(self, make_app, tmp_path: Path) -> None:
        with pytest.raises(OSError, match="missing.py"):
            make_app("testing", FLASK_SETTINGS_FILE=str(tmp_path / "missing.py"))

    def test_environment_values_are_json_decoded(self, make_app) -> None:
        app = make_app("testing", FLASK_NOTE_MAX_LENGTH="42", FLASK_FEATURES='{"a": true}')
        assert app.config["NOTE_MAX_LENGTH"] == 42
        assert app.config["FEATURES"] == {"a": True}

    def test_string_settings_stay_strings(self, make_app, data_dir: Path) -> None:
        digits = "1" * 64
        app = make_app("production", FLASK_SECRET_KEY=digits, FLASK_RELEASE_ID="20240101", FLASK_DATA_DIR=str(data_dir))
        assert app.config["SECRET_KEY"] == digits
        assert app.config["RELEASE_ID"] == "20240101"


class TestDatabase:
    def test_database_url(self, make_app) -> None:
        app = make_app("testing", FLASK_DATABASE_URL="sqlite:////srv/db.sqlite3")
        assert app.config["SQLALCHEMY_DATABASE_URI"] == "sqlite:////srv/db.sqlite3"

    def test_data_dir_holds_sqlite_file(self, make_app, data_dir: Path) -> None:
        app = make_app("testing", FLASK_DATA_DIR=str(data_dir))
        assert app.config["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{data_dir / 'app.sqlite3'}"

    def test_database_url_wins_over_data_dir(self, make_app, data_dir: Path) -> None:
        app = make_app("testing", FLASK_DATA_DIR=str(data_dir), FLASK_DATABASE_URL="sqlite://")
        assert app.config["SQLALCHEMY_DATABASE_URI"] == "sqlite://"

    def test_data_dir_must_exist(self, make_app, tmp_path: Path) -> None:
        with pytest.raises(ConfigError, match="FLASK_DATA_DIR=.*not an existing directory"):
            make_app("testing", FLASK_DATA_DIR=str(tmp_path / "nowhere"))

    def test_production_requires_data_dir(self, make_app) -> None:
        with pytest.raises(ConfigError, match="FLASK_DATA_DIR"):
            make_app("production", FLASK_SECRET_KEY="x" * 64)

    def test_production_accepts_database_url_alone(self, make_app) -> None:
        app = make_app("production", FLASK_SECRET_KEY="x" * 64, FLASK_DATABASE_URL="sqlite://")
        assert app.config["SQLALCHEMY_DATABASE_URI"] == "sqlite://"

    def test_testing_defaults_to_memory(self, make_app) -> None:
        assert make_app("testing").config["SQLALCHEMY_DATABASE_URI"] == "sqlite://"

    def test_development_defaults_to_instance_folder(self, make_app, instance_path: Path) -> None:
        app = make_app("development")
        assert app.config["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{instance_path / 'app.sqlite3'}"
        assert instance_path.is_dir()


class TestValidation:
    def test_trusted_hosts_json_list(self, make_app) -> None:
        app = make_app("testing", FLASK_TRUSTED_HOSTS='["example.com", "www.example.com"]')
        assert app.config["TRUSTED_HOSTS"] == ["example.com", "www.example.com"]

    def test_trusted_hosts_comma_separated(self, make_app) -> None:
        app = make_app("testing", FLASK_TRUSTED_HOSTS="example.com, www.example.com")
        assert app.config["TRUSTED_HOSTS"] == ["example.com", "www.example.com"]

    def test_trusted_hosts_unset(self, make_app) -> None:
        assert make_app("testing").config["TRUSTED_HOSTS"] is None

    def test_trusted_hosts_wrong_type(self, make_app) -> None:
        with pytest.raises(ConfigError, match="FLASK_TRUSTED_HOSTS"):
            make_app("testing", FLASK_TRUSTED_HOSTS="42")

    @pytest.mark.parametrize("value", ["-1", "true", '"one"', "1.5"])
    def test_proxy_counts_are_whole_numbers(self, make_app, value: str) -> None:
        with pytest.raises(ConfigError, match="FLASK_PROXY_FIX_X_FOR"):
            make_app("testing", FLASK_PROXY_FIX_X_FOR=value)

    def test_log_format(self, make_app) -> None:
        with pytest.raises(ConfigError, match="FLASK_LOG_FORMAT"):
            make_app("testing", FLASK_LOG_FORMAT="xml")

    def test_no_debug_in_production(self, make_production_app) -> None:
        with pytest.raises(ConfigError, match="FLASK_DEBUG"):
            make_production_app(FLASK_DEBUG="1")


def test_placeholder_detection() -> None:
    assert config.is_placeholder_secret(" Change-Me ")
    assert config.is_placeholder_secret("REPLACE_ME_with_a_real_secret_of_64_characters_please_do_it")
    assert not config.is_placeholder_secret("a-real-secret-that-mentions-change-me-inside")
