"""A session-bound CSRF token for the HTML form.

The token is random, kept in the signed session cookie, and must come back
in the form. Another site can make a browser submit the form, but cannot
read the page to learn the token.
"""

from __future__ import annotations

import hmac
import secrets

from flask import abort, request, session

SESSION_KEY = "csrf_token"
FORM_FIELD = "csrf_token"


def csrf_token() -> str:
    """Return the session's token, creating it on first use."""
    if SESSION_KEY not in session:
        session[SESSION_KEY] = secrets.token_urlsafe(32)

    return session[SESSION_KEY]


def check_csrf() -> None:
    """Abort with 400 unless the submitted token matches the session's."""
    expected = session.get(SESSION_KEY)
    submitted = request.form.get(FORM_FIELD, "")

    if not expected or not hmac.compare_digest(expected.encode(), submitted.encode()):
        abort(400, description="The form has expired or was not sent by this site. Reload the page and try again.")
