"""Structured logs: JSON lines carry the request id and the fields passed with the call."""

import io
import json
import logging

from sautikit.logs import configure_logging, request_id_var


def test_json_lines_carry_the_request_id() -> None:
    stream = io.StringIO()
    configure_logging("info", "json", stream=stream)
    token = request_id_var.set("req_abc")
    try:
        logging.getLogger("sautikit.test").info("answered", extra={"status": 201})
    finally:
        request_id_var.reset(token)
        configure_logging("warning", "text")
    entry = json.loads(stream.getvalue().splitlines()[-1])
    assert entry["message"] == "answered"
    assert entry["request_id"] == "req_abc"
    assert entry["status"] == 201
    assert entry["level"] == "info"


def test_text_lines_carry_the_request_id() -> None:
    stream = io.StringIO()
    configure_logging("info", "text", stream=stream)
    token = request_id_var.set("req_xyz")
    try:
        logging.getLogger("sautikit.test").warning("slow answer")
    finally:
        request_id_var.reset(token)
        configure_logging("warning", "text")
    assert "[req_xyz]" in stream.getvalue() and "slow answer" in stream.getvalue()
