"""Run ``daraja-mock`` (PyPI, a Flask stand-in for Safaricom's Daraja) as its own process.

The mock is someone else's code: OAuth, STK push and STK query with a result code set by
``DarajaMock.set_stk_result``. As a separate process it needs a way to be told that code,
so the small server below serves the mock's Flask app on an ephemeral loopback port and
adds one route of ours, ``POST /_control/stk-result``, that calls ``set_stk_result``.
It sends no callbacks; tests post Daraja-shaped ones themselves.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass

import httpx

__all__ = ["DarajaMockProcess", "running_daraja_mock"]

_SERVER = """
import sys
from flask import request, jsonify
from werkzeug.serving import make_server
from daraja_mock import DarajaMock

mock = DarajaMock()

@mock.app.route("/_control/stk-result", methods=["POST"])
def _set_stk_result():
    mock.set_stk_result(int(request.get_json()["code"]))
    return jsonify({"ok": True})

@mock.app.route("/_control/log")
def _log():
    return jsonify(mock.request_log())

server = make_server("127.0.0.1", 0, mock.app, threaded=True)
print(server.server_port, flush=True)
server.serve_forever()
"""


@dataclass
class DarajaMockProcess:
    base_url: str

    async def set_stk_result(self, code: int) -> None:
        async with httpx.AsyncClient() as http:
            response = await http.post(f"{self.base_url}/_control/stk-result", json={"code": code})
            response.raise_for_status()

    async def requests(self) -> list[dict[str, object]]:
        """What the mock received: ``method``, ``path``, ``body`` of each request."""
        async with httpx.AsyncClient() as http:
            response = await http.get(f"{self.base_url}/_control/log")
            logged: list[dict[str, object]] = response.json()
        return [entry for entry in logged if not str(entry["path"]).startswith("/_control")]


@contextlib.contextmanager
def running_daraja_mock() -> Iterator[DarajaMockProcess]:
    """The mock on an ephemeral loopback port, killed on the way out."""
    process = subprocess.Popen(
        [sys.executable, "-c", _SERVER],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()  # the port, once it listens; "" if it died
        if not line.strip().isdigit():
            raise RuntimeError("daraja-mock did not start")
        yield DarajaMockProcess(f"http://127.0.0.1:{int(line)}")
    finally:
        process.kill()
        process.wait()
