"""sdk/python: ``sautikit-sdk`` is its own distribution. Its wheel holds only the SDK and
declares only httpx and pydantic; installed alone in a fresh venv it imports without the
server, and the IVR example's webhook, run from that venv, answers a real call that a SIPp
caller places through ``sautikit serve``."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import subprocess
import time
import zipfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from tests.examples.seed_node_rig import Server, free_port, running
from tests.sdk.python_package import REPOSITORY, InstalledSdk, install_sdk
from tests.sipp import Sipp, requires_sipp

NUMBER = "+254201000001"
CALLER = REPOSITORY / "tests" / "pbx" / "scenarios" / "caller_speaks_and_keys.xml"
IVR = REPOSITORY / "examples" / "ivr"


@pytest.fixture(scope="module")
def sdk(tmp_path_factory: pytest.TempPathFactory) -> InstalledSdk:
    return install_sdk(tmp_path_factory.mktemp("sautikit-sdk"), "fastapi", "uvicorn")


def test_the_wheel_holds_only_the_sdk_and_needs_only_httpx_and_pydantic(
    sdk: InstalledSdk,
) -> None:
    with zipfile.ZipFile(sdk.wheel) as archive:
        packages = {name.split("/")[0] for name in archive.namelist()}
    assert packages == {"sautikit_sdk", sdk.wheel.name.split("-py3")[0] + ".dist-info"}
    assert sorted(requirement.name for requirement in sdk.requires()) == ["httpx", "pydantic"]


def test_the_sdk_imports_in_a_venv_without_the_server(sdk: InstalledSdk) -> None:
    probe = (
        "import importlib.util, sautikit_sdk, sautikit_sdk.actions, sautikit_sdk.webhooks\n"
        "print(sautikit_sdk.__version__, sautikit_sdk.Sautikit.__name__)\n"
        "heavy = ['sautikit', 'numpy', 'boto3', 'faster_whisper', 'sqlalchemy', 'pocketsphinx']\n"
        "print([name for name in heavy if importlib.util.find_spec(name)])\n"
    )
    shown = subprocess.run(
        [str(sdk.python), "-c", probe],
        capture_output=True,
        text=True,
        timeout=60,
        cwd="/",
        env=sdk.env(),
    )
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.splitlines() == ["0.1.0 Sautikit", "[]"]


@contextlib.contextmanager
def _ivr_app(sdk: InstalledSdk, signing_secret: str, log: Path) -> Iterator[str]:
    """``python examples/ivr/app.py`` with the SDK venv's interpreter, as a developer runs it."""
    port = free_port()
    env = sdk.env(PORT=str(port), SAUTIKIT_SIGNING_SECRET=signing_secret)
    with log.open("wb") as output:
        app = subprocess.Popen(
            [str(sdk.python), str(IVR / "app.py")],
            cwd=log.parent,  # not the checkout: nothing of src/ is on the path
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            assert app.poll() is None, log.read_text()
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port)):
                break
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        yield f"http://127.0.0.1:{port}"
    finally:
        app.terminate()
        try:
            app.wait(timeout=10)
        except subprocess.TimeoutExpired:
            app.kill()
            app.wait()


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[Server]:
    rig = Server(tmp_path / "var", storage_url="")
    rig.data_dir.mkdir()
    rig.cli(
        "trunks", "add", "carrier", "--host", "127.0.0.1", "--port", str(free_port()),
        "--prefix", "+254", "--inbound", "127.0.0.1",
    )  # fmt: skip
    workspace = rig.cli("workspaces", "create", "Acme Corp")
    rig.key = rig.cli("keys", "create", "--workspace", workspace, "--scopes", "all")
    inventory = tmp_path / "numbers.csv"
    inventory.write_text(f"number,monthly_price_minor,capabilities\n{NUMBER},10000,voice\n")
    rig.cli("numbers", "import", str(inventory))
    rig.cli("wallet", "credit", workspace, "100000", "--reference", "sdk test")
    async with running(rig):
        yield rig


@requires_sipp
async def test_the_ivr_webhook_from_the_sdk_venv_answers_a_real_call(
    sdk: InstalledSdk, server: Server, tmp_path: Path
) -> None:
    headers = {"Authorization": f"Bearer {server.key}"}
    async with httpx.AsyncClient(base_url=server.url, headers=headers) as api:
        secret = (await api.get("/v1/workspace")).json()["signing_secret"]
        (number,) = (await api.get("/v1/numbers/available")).json()["data"]
        assert (await api.post(f"/v1/numbers/{number['id']}/claim")).status_code == 200
        log = tmp_path / "ivr.log"
        with _ivr_app(sdk, secret, log) as app_url:
            routed = await api.patch(
                f"/v1/numbers/{number['id']}/routing", json={"voice_url": f"{app_url}/ivr/welcome"}
            )
            assert routed.status_code == 200, routed.text
            caller = Sipp(
                scenario=CALLER, remote=("127.0.0.1", server.sip_port), service=NUMBER, timeout=60
            )
            await caller.run()
            calls = (await api.get("/v1/calls")).json()["data"]
            (call,) = calls
            for _ in range(100):
                if call["status"] in ("completed", "failed"):
                    break
                await asyncio.sleep(0.2)
                call = (await api.get(f"/v1/calls/{call['id']}")).json()
        served = log.read_text()
    # The menu was asked for and the caller's "1" reached it; every request's signature
    # checked out with the SDK's verify (a refused one answers 401).
    assert '"POST /ivr/welcome HTTP/1.1" 200' in served, served + server.log()
    assert '"POST /ivr/menu?lang=en HTTP/1.1" 200' in served, served + server.log()
    assert " 401 " not in served
    assert call["status"] == "completed", call
