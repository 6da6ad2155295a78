"""Structured logs: JSON lines carry the request id and the fields passed with the call."""

import asyncio
import io
import json
import logging

from sautikit.logs import bind_call, configure_logging, request_id_var


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


async def test_json_lines_name_the_node_and_the_call_of_the_task() -> None:
    stream = io.StringIO()
    configure_logging("info", "json", stream=stream, node_id="node-a")

    async def run_call() -> None:
        bind_call("CA1", "WS1")
        await asyncio.create_task(child())  # a task the call starts inherits its labels

    async def child() -> None:
        logging.getLogger("sautikit.test").info("dialling")

    try:
        await asyncio.create_task(run_call())
        logging.getLogger("sautikit.test").info("outside any call")
    finally:
        configure_logging("warning", "text")
    inside, outside = (json.loads(line) for line in stream.getvalue().splitlines())
    labels = (inside["call_id"], inside["workspace_id"], inside["node_id"])
    assert labels == ("CA1", "WS1", "node-a")
    assert "call_id" not in outside and outside["node_id"] == "node-a"


def test_uvicorn_colour_codes_never_reach_the_log() -> None:
    stream = io.StringIO()
    configure_logging("info", "json", stream=stream)
    try:
        # What uvicorn logs: its message, and the same with colours as an extra.
        logging.getLogger("sautikit.test.uvicorn").info(
            "Started server process [%d]",
            42,
            extra={"color_message": "Started server process [\x1b[36m%d\x1b[0m]"},
        )
        logging.getLogger("sautikit.test").info("\x1b[32mgreen\x1b[0m text")
    finally:
        configure_logging("warning", "text")
    text = stream.getvalue()
    assert "\x1b" not in text and "\\u001b" not in text
    first, second = (json.loads(line) for line in text.splitlines())
    assert first["message"] == "Started server process [42]" and "color_message" not in first
    assert second["message"] == "green text"
