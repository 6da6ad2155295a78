"""Structured logging: human text by default, JSON lines on request, request id on every line."""

from __future__ import annotations

import json
import logging
import sys
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Literal, TextIO

__all__ = ["configure_logging", "request_id_var"]

request_id_var: ContextVar[str | None] = ContextVar("sautikit_request_id", default=None)

# Attributes every LogRecord has; anything else was passed through ``extra=`` and is logged.
_RESERVED = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "request_id"}


class _RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        return True


class JsonLinesFormatter(logging.Formatter):
    """One JSON object per line, with the ``extra=`` fields of the call merged in."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = getattr(record, "request_id", None)  # set by _RequestIdFilter
        if request_id:
            entry["request_id"] = request_id
        for key, value in record.__dict__.items():
            if key not in _RESERVED:
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        extras = " ".join(
            f"{key}={value}" for key, value in record.__dict__.items() if key not in _RESERVED
        )
        request_id = getattr(record, "request_id", None)
        prefix = f"[{request_id}] " if request_id else ""
        return f"{prefix}{line}{' ' + extras if extras else ''}"


def configure_logging(
    level: str = "info", fmt: Literal["text", "json"] = "text", stream: TextIO = sys.stderr
) -> None:
    """Install one handler on the root logger; calling again replaces it."""
    handler = logging.StreamHandler(stream)
    handler.addFilter(_RequestIdFilter())
    if fmt == "json":
        handler.setFormatter(JsonLinesFormatter())
    else:
        handler.setFormatter(TextFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    # uvicorn's own access log would repeat ours without the request id.
    logging.getLogger("uvicorn.access").disabled = True
