"""The flask-vps demo application: a page, a guestbook, background jobs and a health check."""

from __future__ import annotations

from pathlib import Path

from flask import Flask
from flask_migrate import Migrate
from werkzeug.middleware.proxy_fix import ProxyFix

from . import config
from .api import bp as api_bp
from .csrf import csrf_token
from .errors import register_error_handlers
from .jobs import register_commands
from .logs import configure_logging
from .models import db
from .views import bp as main_bp

# Inside the package, so `flask db upgrade` finds them from any directory.
MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
migrate = Migrate(directory=str(MIGRATIONS_DIR))

# The deploy writes REVISION next to wsgi.py, one level above this package.
DEFAULT_REVISION_FILE = Path(__file__).resolve().parent.parent / "REVISION"


def create_app(config_name: str | None = None, instance_path: str | None = None) -> Flask:
    """Create the application.

    :param config_name: ``development``, ``testing`` or ``production``.
        Defaults to the ``FLASK_CONFIG`` environment variable, then to
        ``default`` (development).
    :param instance_path: Folder holding the optional ``config.py``.
        Defaults to Flask's ``instance`` folder next to the package.
    """
    name = config.resolve_config_name(config_name)
    app = Flask(__name__, instance_path=instance_path, instance_relative_config=True)

    config.load(app.config, name)
    config.finalize(app.config, name, app.instance_path)
    app.config["CONFIG_NAME"] = name
    app.config["RELEASE_ID"] = read_release_id(app)

    configure_logging(app)
    install_proxy_fix(app)

    db.init_app(app)
    migrate.init_app(app, db)
    app.register_blueprint(main_bp)
    app.register_blueprint(api_bp)
    register_error_handlers(app)
    register_commands(app)
    app.jinja_env.globals["csrf_token"] = csrf_token

    app.logger.info("Started: config=%s release=%s", name, app.config["RELEASE_ID"])
    return app


def read_release_id(app: Flask) -> str:
    """``RELEASE_ID`` if set, else the REVISION file, else ``unknown``.

    Read once at startup: a release's files do not change while it runs,
    and the health check should not touch the disk.
    """
    if app.config.get("RELEASE_ID"):
        return str(app.config["RELEASE_ID"])

    revision_file = Path(app.config.get("REVISION_FILE") or DEFAULT_REVISION_FILE)

    try:
        return revision_file.read_text(encoding="utf-8").strip() or "unknown"
    except OSError:
        return "unknown"


def install_proxy_fix(app: Flask) -> None:
    """Trust X-Forwarded-* only from as many proxies as configured.

    Each proxy must set (not pass through) every header it is trusted for,
    otherwise a client could supply its own.
    """
    counts = {
        "x_for": app.config["PROXY_FIX_X_FOR"],
        "x_proto": app.config["PROXY_FIX_X_PROTO"],
        "x_host": app.config["PROXY_FIX_X_HOST"],
    }

    if any(counts.values()):
        app.wsgi_app = ProxyFix(app.wsgi_app, **counts)  # type: ignore[method-assign]
