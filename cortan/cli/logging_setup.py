"""Logging, set up once per process: where log lines go, in what shape, and redacted.

Layer: cli (the one place that configures the ``logging`` module; everything else only
calls ``logging.getLogger(__name__)``).

* Off by default: a root ``NullHandler`` keeps every logger, cortan's and the client
  libraries', away from Python's last-resort handler, so a logged error never reaches
  stderr as a traceback next to the one-sentence error.
* ``--debug`` (level DEBUG) or ``CORTAN_LOG_LEVEL`` (``debug``, ``info``, ``warning``,
  ``error``, ``critical``) turns it on: one line per record on stderr, for cortan and
  the libraries below it (httpx, openai, ollama). Tracebacks are shown at DEBUG only;
  at other levels an exception is summed up on the record's own line.
* ``CORTAN_LOG_FORMAT=json`` writes one JSON object per line instead (``time``,
  ``level``, ``logger``, ``message``, and ``exception`` when there is one).
* Every line is redacted (:func:`cortan.engine.secrets.redact`): anything that looks
  like a key, a bearer token or a ``password=`` value is replaced by ``[redacted]``
  before it is written, whoever logged it. Text lines are sanitised too (they quote
  server text, which may hold escape sequences); JSON escapes control characters itself.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TextIO

LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40, "critical": 50}
TEXT_FORMAT = "cortan: %(levelname)s %(name)s: %(message)s"
HANDLER_NAME = "cortan-stderr"


class RedactingFormatter(logging.Formatter):
    """One text line per record, keys masked; the traceback only when ``tracebacks``."""

    def __init__(self, *, tracebacks: bool) -> None:
        super().__init__(TEXT_FORMAT)
        self._tracebacks = tracebacks

    def format(self, record: logging.LogRecord) -> str:
        from cortan.render.sanitize import sanitize  # log lines quote server text too

        return sanitize(redact(super().format(_summarised(record, self._tracebacks))))


class JsonFormatter(logging.Formatter):
    """One JSON object per record (for log collectors), keys masked in every field."""

    def __init__(self, *, tracebacks: bool) -> None:
        super().__init__()
        self._tracebacks = tracebacks

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": redact(record.getMessage()),
        }
        if record.exc_info and record.exc_info[1] is not None:
            text = self.formatException(record.exc_info) if self._tracebacks else None
            entry["exception"] = redact(text or _one_line(record.exc_info[1]))
        return json.dumps(entry, ensure_ascii=True)


def _summarised(record: logging.LogRecord, tracebacks: bool) -> logging.LogRecord:
    """Without tracebacks, the exception is named on the record's own line."""
    if tracebacks or not record.exc_info or record.exc_info[1] is None:
        return record
    summary = logging.makeLogRecord(record.__dict__)
    summary.msg, summary.args = f"{record.getMessage()} ({_one_line(record.exc_info[1])})", None
    summary.exc_info = summary.exc_text = None
    return summary


def redact(text: str) -> str:
    # Imported on the first log line: the patterns cost start-up time when logs are off.
    from cortan.engine.secrets import redact

    return redact(text)


def _one_line(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}".splitlines()[0]


def get_level(debug: bool, environ: Mapping[str, str]) -> int | None:
    """The level asked for, or None when logging stays off; a bad name means WARNING."""
    if debug:
        return logging.DEBUG
    name = environ.get("CORTAN_LOG_LEVEL", "").strip().lower()
    if not name:
        return None
    return LEVELS.get(name, logging.WARNING)


def setup_logging(debug: bool, *, stream: TextIO | None = None) -> None:
    """Configure the root logger for this process (calling it again replaces the setup)."""
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == HANDLER_NAME]:
        root.removeHandler(old)
    level = get_level(debug, os.environ)
    handler: logging.Handler
    if level is None:
        handler = logging.NullHandler()
    else:
        handler = logging.StreamHandler(stream or sys.stderr)
        tracebacks = level <= logging.DEBUG
        as_json = os.environ.get("CORTAN_LOG_FORMAT", "").strip().lower() == "json"
        kind = JsonFormatter if as_json else RedactingFormatter
        handler.setFormatter(kind(tracebacks=tracebacks))
        root.setLevel(level)
    handler.set_name(HANDLER_NAME)
    root.addHandler(handler)
    _warn_about_level(level, stream or sys.stderr)


def _warn_about_level(level: int | None, stream: TextIO) -> None:
    name = os.environ.get("CORTAN_LOG_LEVEL", "").strip().lower()
    if level is not None and name and name not in LEVELS:
        stream.write(
            f"cortan: warning: CORTAN_LOG_LEVEL={name[:20]!r} is not one of "
            f"{', '.join(LEVELS)}; using warning\n"
        )
    form = os.environ.get("CORTAN_LOG_FORMAT", "").strip().lower()
    if level is not None and form not in ("", "json", "text"):  # was taken as text, unsaid
        stream.write(
            f"cortan: warning: CORTAN_LOG_FORMAT={form[:20]!r} is neither json nor text; "
            "using text\n"
        )
