"""WSGI entry point: ``gunicorn wsgi:app``, ``flask --app wsgi db upgrade``.

Production unless ``FLASK_CONFIG`` names another configuration.
"""

import os

from webapp import create_app

app = create_app(os.environ.get("FLASK_CONFIG") or "production")
