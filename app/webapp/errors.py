"""Error pages that say what went wrong without showing how.

Tracebacks go to the log, never to the client.
"""

from __future__ import annotations

from flask import Flask, jsonify, render_template, request
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import HTTPException, InternalServerError, SecurityError


def handle_http_error(e: HTTPException) -> ResponseReturnValue:
    code = e.code or 500

    if request.path.startswith("/api/"):
        return jsonify(error=e.name, message=e.description), code

    # An untrusted Host header leaves Flask unable to build URLs, which the
    # page layout needs; answer in plain text instead.
    if isinstance(e, SecurityError):
        return f"{code} {e.name}\n", code, {"Content-Type": "text/plain; charset=utf-8"}

    return render_template("error.html", code=code, name=e.name, description=e.description), code


def handle_internal_error(e: InternalServerError) -> ResponseReturnValue:
    # Flask has already logged the original exception. A fresh error
    # replaces it so that none of its details reach the response.
    return handle_http_error(InternalServerError())


def register_error_handlers(app: Flask) -> None:
    app.register_error_handler(HTTPException, handle_http_error)
    app.register_error_handler(InternalServerError, handle_internal_error)
