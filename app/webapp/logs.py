"""Log records as single lines on stderr, where journald or supervisor
collect them. A multi-line traceback would otherwise be split into
unrelated entries.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import datetime, timezone

from flask import Flask
from flask.logging import default_handler


class PlainFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        return super().format(record).replace("\n", "\\n")


class JSONFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }

        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)

        return json.dumps(entry)


class StderrHandler(logging.StreamHandler):
    """Marks the handler this module installed, so a second app created in
    the same process (tests, the CLI) replaces it instead of doubling lines.
    """

    def __init__(self) -> None:
        super().__init__(sys.stderr)


def configure_logging(app: Flask) -> None:
    handler = StderrHandler()
    formatter_class = JSONFormatter if app.config["LOG_FORMAT"] == "json" else PlainFormatter
    handler.setFormatter(formatter_class())

    logger = app.logger
    logger.removeHandler(default_handler)

    for old in [h for h in logger.handlers if isinstance(h, StderrHandler)]:
        logger.removeHandler(old)

    logger.addHandler(handler)
    logger.setLevel(app.config["LOG_LEVEL"])
