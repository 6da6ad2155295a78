"""Loading the example apps (their folders are not packages), and a loopback file server."""

from __future__ import annotations

import importlib.util
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType

import pytest

# The SDK's fixtures (a workspace, its inventory and wallet, the API over TCP), for the
# examples that call the real API.
from tests.client.conftest import fund, inventory, live_url, workspace  # noqa: F401

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def load_example(name: str) -> ModuleType:
    """``examples/<name>/app.py`` as a module."""
    spec = importlib.util.spec_from_file_location(
        f"example_{name.replace('-', '_')}", EXAMPLES / name / "app.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses and pydantic look their module up there
    spec.loader.exec_module(module)
    return module


class FileServer:
    """Serves ``files`` (path → (content type, bytes)) on 127.0.0.1; counts each fetch."""

    def __init__(self) -> None:
        self.files: dict[str, tuple[str, bytes]] = {}
        self.fetched: list[str] = []
        files, fetched = self.files, self.fetched

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                fetched.append(self.path)
                found = files.get(self.path)
                if found is None:
                    self.send_error(404)
                    return
                content_type, content = found
                self.send_response(200)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}"


@pytest.fixture
def file_server() -> Iterator[FileServer]:
    files = FileServer()
    thread = threading.Thread(target=files.server.serve_forever, daemon=True)
    thread.start()
    yield files
    files.server.shutdown()
    files.server.server_close()
    thread.join()
