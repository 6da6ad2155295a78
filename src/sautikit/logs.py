"""Structured logging: human text by default, JSON lines on request.

Every line carries what an operator filters on across several nodes: the ``node_id``
(given to :func:`configure_logging`), the API ``request_id``, and for work done on a
call its ``call_id`` and ``workspace_id`` (:func:`bind_call`, set at the top of the task
that runs the call, so every task it starts inherits them). Lines are plain text:
colour escape codes (uvicorn adds them to its messages) are removed.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Literal, TextIO

__all__ = [
    "bind_call",
    "call_id_var",
    "configure_logging",
    "request_id_var",
    "set_node_id",
    "strip_escapes",
    "workspace_id_var",
]

request_id_var: ContextVar[str | None] = ContextVar("sautikit_request_id", default=None)
call_id_var: ContextVar[str | None] = ContextVar("sautikit_call_id", default=None)
workspace_id_var: ContextVar[str | None] = ContextVar("sautikit_workspace_id", default=None)

_CONTEXT_FIELDS = ("node_id", "request_id", "call_id", "workspace_id")
# Attributes every LogRecord has; anything else was passed through ``extra=`` and is logged.
# ``color_message`` is uvicorn's copy of its message with escape codes: never shown.
_RESERVED = (
    set(logging.makeLogRecord({}).__dict__)
    | {"message", "asctime", "color_message"}
    | set(_CONTEXT_FIELDS)
)
_ESCAPES = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def strip_escapes(text: str) -> str:
    """``text`` without ANSI escape sequences (colours, cursor moves)."""
    return _ESCAPES.sub("", text) if "\x1b" in text else text


_node_id: str | None = None


def set_node_id(node_id: str | None) -> None:
    """Name this process on every log line from now on (known once ``serve`` starts)."""
    global _node_id
    _node_id = node_id or None


def bind_call(call_id: str, workspace_id: str | None = None) -> None:
    """Label this task's log lines (and those of the tasks it starts) with a call."""
    call_id_var.set(call_id)
    if workspace_id is not None:
        workspace_id_var.set(workspace_id)


class _ContextFilter(logging.Filter):
    """Stamps the context fields on each record; a value passed with ``extra=`` wins."""

    def filter(self, record: logging.LogRecord) -> bool:
        found = {
            "node_id": _node_id,
            "request_id": request_id_var.get(),
            "call_id": call_id_var.get(),
            "workspace_id": workspace_id_var.get(),
        }
        for name, value in found.items():
            if getattr(record, name, None) is None:
                setattr(record, name, value)
        return True


def _context(record: logging.LogRecord) -> dict[str, object]:
    values = {name: getattr(record, name, None) for name in _CONTEXT_FIELDS}
    return {name: value for name, value in values.items() if value}


class JsonLinesFormatter(logging.Formatter):
    """One JSON object per line, with the ``extra=`` fields of the call merged in."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": strip_escapes(record.getMessage()),
        }
        entry.update(_context(record))
        for key, value in record.__dict__.items():
            if key not in _RESERVED:
                entry[key] = strip_escapes(value) if isinstance(value, str) else value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = strip_escapes(super().format(record))
        extras = " ".join(
            f"{key}={value}" for key, value in record.__dict__.items() if key not in _RESERVED
        )
        context = _context(record)
        context.pop("node_id", None)  # one node per stream: the text form leaves it out
        prefix = "".join(f"[{value}] " for value in context.values())
        return f"{prefix}{line}{' ' + strip_escapes(extras) if extras else ''}"


def configure_logging(
    level: str = "info",
    fmt: Literal["text", "json"] = "text",
    stream: TextIO = sys.stderr,
    *,
    node_id: str | None = None,
) -> None:
    """Install one handler on the root logger; calling again replaces it."""
    handler = logging.StreamHandler(stream)
    set_node_id(node_id)
    handler.addFilter(_ContextFilter())
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
