from __future__ import annotations

import json
import logging
import sys

from webapp.logs import JSONFormatter, PlainFormatter, StderrHandler


def make_record(exc: bool = False) -> logging.LogRecord:
    exc_info = None

    if exc:
        try:
            raise ValueError("bad\nthing")
        except ValueError:
            exc_info = sys.exc_info()

    return logging.LogRecord("webapp", logging.ERROR, __file__, 1, "it %s", ("failed",), exc_info)


def test_plain_is_one_line() -> None:
    line = PlainFormatter().format(make_record(exc=True))
    assert "\n" not in line
    assert "ERROR webapp: it failed" in line
    assert "Traceback" in line


def test_json_is_one_object_per_line() -> None:
    line = JSONFormatter().format(make_record(exc=True))
    assert "\n" not in line
    entry = json.loads(line)
    assert entry["level"] == "ERROR"
    assert entry["logger"] == "webapp"
    assert entry["message"] == "it failed"
    assert "ValueError: bad" in entry["exception"]
    assert entry["time"].endswith("+00:00")


def test_json_without_exception() -> None:
    assert "exception" not in json.loads(JSONFormatter().format(make_record()))


def stderr_handlers(app) -> list[logging.Handler]:
    return [h for h in app.logger.handlers if isinstance(h, StderrHandler)]


def test_plain_by_default(make_app) -> None:
    (handler,) = stderr_handlers(make_app("testing"))
    assert isinstance(handler.formatter, PlainFormatter)


def test_json_when_asked(make_production_app) -> None:
    (handler,) = stderr_handlers(make_production_app(FLASK_LOG_FORMAT="json"))
    assert isinstance(handler.formatter, JSONFormatter)


def test_level_from_config(make_app) -> None:
    assert make_app("testing", FLASK_LOG_LEVEL="WARNING").logger.level == logging.WARNING


def test_records_go_to_stderr(make_app, capfd) -> None:
    app = make_app("testing", FLASK_LOG_FORMAT="json")
    app.logger.warning("hello journald")
    err = capfd.readouterr().err.strip().splitlines()
    assert json.loads(err[-1])["message"] == "hello journald"
