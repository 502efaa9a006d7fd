"""The WSGI callable is ``storefront.server:application``.

Settings come from the app's own environment names, not Flask's: the signing key
from ``SHOP_SIGNING_KEY`` and the writable directory from ``SHOP_STATE_DIR``.
"""

from __future__ import annotations

import os
from pathlib import Path

from flask import Flask, jsonify

RELEASE_FILE = Path(__file__).resolve().parent.parent / "REVISION"


def create() -> Flask:
    key = os.environ.get("SHOP_SIGNING_KEY", "")
    if len(key) < 32:
        raise RuntimeError("SHOP_SIGNING_KEY must hold at least 32 characters")
    state_dir = Path(os.environ["SHOP_STATE_DIR"])
    app = Flask(__name__, static_folder="assets", static_url_path="/static")
    app.config["SECRET_KEY"] = key
    release = RELEASE_FILE.read_text().strip() if RELEASE_FILE.exists() else "unknown"

    @app.get("/status/ready")
    def ready():
        return jsonify(ready=True, release=release)

    @app.post("/visits")
    def visit():
        counter = state_dir / "visits"
        count = int(counter.read_text()) + 1 if counter.exists() else 1
        counter.write_text(str(count))
        return jsonify(visits=count), 201

    return app


application = create()
