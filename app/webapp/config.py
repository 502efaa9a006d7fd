"""Configuration classes and the rules that turn raw settings into a
working configuration.

Settings are loaded in this order, later sources overriding earlier ones
(see :func:`webapp.create_app`):

1. the class picked by name (``FLASK_CONFIG`` or the factory argument),
2. ``config.py`` in the instance folder, if it exists,
3. the Python file named by ``FLASK_SETTINGS_FILE``, if that variable is set,
4. a JSON file (``from_file(..., load=json.load)``): the one named by
   ``FLASK_SETTINGS_JSON``, which must then exist, else ``settings.json``
   in the instance folder if it exists. Flask's docs place data files
   after the Python files and before the environment; so does this,
5. every ``FLASK_*`` environment variable, prefix removed.

After loading, :func:`finalize` derives the database URI and checks the
values that would make production unsafe.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import Any

from flask import Config as FlaskConfig

ENV_PREFIX = "FLASK"
CONFIG_NAME_VAR = "FLASK_CONFIG"
SETTINGS_FILE_VAR = "FLASK_SETTINGS_FILE"
SETTINGS_JSON_VAR = "FLASK_SETTINGS_JSON"
SQLITE_FILENAME = "app.sqlite3"

# from_prefixed_env() json-decodes every value it can. These settings are
# always strings, and a secret or a release id made only of digits must not
# silently turn into a number, so they are re-read verbatim.
STRING_SETTINGS = ("SECRET_KEY", "DATABASE_URL", "DATA_DIR", "RELEASE_ID", "LOG_FORMAT")

PROXY_FIX_SETTINGS = ("PROXY_FIX_X_FOR", "PROXY_FIX_X_PROTO", "PROXY_FIX_X_HOST")

MIN_SECRET_KEY_LENGTH = 32
PLACEHOLDER_SECRET_KEYS = frozenset({"change-me", "changeme", "change_me", "secret", "dev"})
PLACEHOLDER_SECRET_PREFIXES = ("replace_me", "example-")
SECRET_KEY_HINT = (
    "Generate one with: python3 -c 'import secrets; print(secrets.token_hex(32))'"
)

LOG_FORMATS = ("plain", "json")


class ConfigError(RuntimeError):
    """The configuration is unusable; the message says which variable to fix."""


class Config:
    """Base settings: safe whatever the environment."""

    DEBUG = False
    TESTING = False

    SECRET_KEY: str | None = None

    # Either a full SQLAlchemy URL, or a directory that will hold the
    # SQLite file. The directory lives outside the release so that data
    # survives deploys and rollbacks.
    DATABASE_URL: str | None = None
    DATA_DIR: str | None = None
    # Always derived from the two above by finalize().
    SQLALCHEMY_DATABASE_URI: str | None = None
    # A restore or a restart of PostgreSQL closes pooled connections; test
    # each before use rather than failing the next request.
    SQLALCHEMY_ENGINE_OPTIONS = {"pool_pre_ping": True}

    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    SESSION_COOKIE_SECURE = False

    # None accepts any Host header; production sets it from the environment.
    TRUSTED_HOSTS: list[str] | None = None

    # Number of proxies in front of the app that set each X-Forwarded-*
    # header. 0 ignores the header: trusting it without a proxy that
    # overwrites it would let any client pick its own address or scheme.
    PROXY_FIX_X_FOR = 0
    PROXY_FIX_X_PROTO = 0
    PROXY_FIX_X_HOST = 0

    LOG_FORMAT = "plain"
    LOG_LEVEL = "INFO"

    RELEASE_ID: str | None = None
    # Defaults to REVISION next to wsgi.py, written by the deploy.
    REVISION_FILE: str | None = None

    NOTE_MAX_LENGTH = 500
    # Notes are short; refuse large bodies before reading them.
    MAX_CONTENT_LENGTH = 64 * 1024


class DevelopmentConfig(Config):
    DEBUG = True


class TestingConfig(Config):
    TESTING = True
    # Harmless and fixed so that tests can sign sessions.
    SECRET_KEY = "testing-only-not-a-secret"


class ProductionConfig(Config):
    SESSION_COOKIE_SECURE = True
    PREFERRED_URL_SCHEME = "https"

    # One nginx in front, setting X-Forwarded-For, -Proto and -Host.
    PROXY_FIX_X_FOR = 1
    PROXY_FIX_X_PROTO = 1
    PROXY_FIX_X_HOST = 1


config_by_name: dict[str, type[Config]] = {
    "development": DevelopmentConfig,
    "testing": TestingConfig,
    "production": ProductionConfig,
    # The factory on its own is for local work; wsgi.py asks for production.
    "default": DevelopmentConfig,
}


def resolve_config_name(config_name: str | None) -> str:
    """Return the name to use: the argument, else ``FLASK_CONFIG``, else
    ``default``. Unknown names are an error rather than a silent fallback.
    """
    name = config_name or os.environ.get(CONFIG_NAME_VAR) or "default"

    if name not in config_by_name:
        valid = ", ".join(sorted(config_by_name))
        raise ConfigError(f"Unknown configuration {name!r} ({CONFIG_NAME_VAR}); use one of: {valid}.")

    return name


def load(config: FlaskConfig, config_name: str) -> None:
    """Load every source into ``config``, later ones overriding earlier."""
    config.from_object(config_by_name[config_name])
    config.from_pyfile("config.py", silent=True)

    # Only consulted when set, and then a missing file is an error: a typo
    # in the path must not quietly drop the operator's settings.
    if os.environ.get(SETTINGS_FILE_VAR):
        config.from_envvar(SETTINGS_FILE_VAR)

    # The same rule for the JSON file: silent only when nobody named one.
    settings_json = os.environ.get(SETTINGS_JSON_VAR)
    config.from_file(settings_json or "settings.json", load=json.load, silent=not settings_json)

    config.from_prefixed_env(ENV_PREFIX)

    for key in STRING_SETTINGS:
        raw = os.environ.get(f"{ENV_PREFIX}_{key}")

        if raw is not None:
            config[key] = raw


def finalize(config: FlaskConfig, config_name: str, instance_path: str) -> None:
    """Derive computed settings and refuse unsafe ones."""
    production = config_name == "production"

    if production and config.get("DEBUG"):
        raise ConfigError(f"Debug mode must stay off in production; unset {ENV_PREFIX}_DEBUG.")

    config["SECRET_KEY"] = _secret_key(config.get("SECRET_KEY"), production)
    config["SQLALCHEMY_DATABASE_URI"] = _database_uri(config, production, instance_path)
    config["TRUSTED_HOSTS"] = _trusted_hosts(config.get("TRUSTED_HOSTS"))

    for key in PROXY_FIX_SETTINGS:
        config[key] = _proxy_count(key, config.get(key))

    if config["LOG_FORMAT"] not in LOG_FORMATS:
        raise ConfigError(
            f"{ENV_PREFIX}_LOG_FORMAT must be one of {', '.join(LOG_FORMATS)},"
            f" not {config['LOG_FORMAT']!r}."
        )


def is_placeholder_secret(value: str) -> bool:
    lowered = value.strip().lower()
    return lowered in PLACEHOLDER_SECRET_KEYS or lowered.startswith(PLACEHOLDER_SECRET_PREFIXES)


def _secret_key(value: Any, production: bool) -> str:
    if not production:
        # A fresh random key per process: sessions do not survive a
        # restart, which is fine outside production.
        return value or secrets.token_hex(32)

    var = f"{ENV_PREFIX}_SECRET_KEY"

    if not value:
        problem = "is not set"
    elif not isinstance(value, str):
        problem = "must be a string"
    elif is_placeholder_secret(value):
        problem = "is a placeholder value"
    elif len(value) < MIN_SECRET_KEY_LENGTH:
        problem = f"is shorter than {MIN_SECRET_KEY_LENGTH} characters"
    else:
        return value

    raise ConfigError(f"{var} {problem}; production refuses to start. {SECRET_KEY_HINT}")


def _database_uri(config: FlaskConfig, production: bool, instance_path: str) -> str:
    if config.get("DATABASE_URL"):
        return config["DATABASE_URL"]

    data_dir = config.get("DATA_DIR")

    if data_dir:
        path = Path(data_dir).resolve()

        # The app never creates directories outside its instance folder:
        # the data directory belongs to whoever provisions the server.
        if not path.is_dir():
            raise ConfigError(f"{ENV_PREFIX}_DATA_DIR={data_dir} is not an existing directory.")
    elif production:
        raise ConfigError(
            f"Set {ENV_PREFIX}_DATA_DIR to a writable directory outside the release"
            f" (or {ENV_PREFIX}_DATABASE_URL); production will not guess where data lives."
        )
    elif config.get("TESTING"):
        return "sqlite://"
    else:
        path = Path(instance_path)
        path.mkdir(parents=True, exist_ok=True)

    return f"sqlite:///{path / SQLITE_FILENAME}"


def _trusted_hosts(value: Any) -> list[str] | None:
    if value is None or value == "":
        return None

    # Accept "a.example,b.example" as well as the JSON list form, since a
    # bare string would otherwise be read character by character.
    if isinstance(value, str):
        return [host.strip() for host in value.split(",") if host.strip()]

    if isinstance(value, (list, tuple)) and all(isinstance(host, str) for host in value):
        return list(value)

    raise ConfigError(f'{ENV_PREFIX}_TRUSTED_HOSTS must be a JSON list of host names, e.g. \'["example.com"]\'.')


def _proxy_count(key: str, value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value

    raise ConfigError(f"{ENV_PREFIX}_{key} must be a whole number of proxies (0 disables it), not {value!r}.")
