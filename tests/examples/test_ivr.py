"""examples/ivr (Python) and examples/ivr-node (Node, @sautikit/sdk): the menu, each
branch, and the Swahili menu, the same answers from both."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from types import ModuleType

import httpx
import pytest
from tests.examples.conftest import EXAMPLES, load_example
from tests.examples.seed_node_rig import NodeApp
from tests.sdk.node_package import install_packed_sdk

from sautikit.voice.actions import Dial, GetDigits, Hangup, Record, Redirect, Say, parse_actions
from sautikit.voice.callbacks import CallbackEncoding, encode_fields
from sautikit_sdk.signing import SIGNATURE_HEADER, sign

SECRET = "whsec_ivr"

ivr: ModuleType = load_example("ivr")


PUBLIC_URL = "https://ivr.example.com"
MESSAGE_URL = "https://voicemail.example.com/voicemail/recording"
needs_npm = pytest.mark.skipif(shutil.which("npm") is None, reason="Node and npm are not installed")


@pytest.fixture(params=["python", pytest.param("node", marks=needs_npm)])
async def app_client(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[httpx.AsyncClient]:
    if request.param == "node":
        folder = tmp_path / "ivr-node"
        install_packed_sdk(folder)
        shutil.copy(EXAMPLES / "ivr-node" / "app.mjs", folder / "app.mjs")
        (folder / "package.json").write_text('{"private": true, "type": "module"}')
        env = {
            "IVR_PUBLIC_URL": PUBLIC_URL,
            "IVR_MESSAGE_URL": MESSAGE_URL,
            "SAUTIKIT_SIGNING_SECRET": SECRET,
        }
        app = NodeApp(folder, "app.mjs", env)
        async with app, httpx.AsyncClient(base_url=app.url) as client:
            yield client
        return
    settings = ivr.IvrSettings(
        public_url=PUBLIC_URL, message_url=MESSAGE_URL, signing_secret=SECRET
    )
    transport = httpx.ASGITransport(app=ivr.create_app(settings))
    async with httpx.AsyncClient(transport=transport, base_url="http://app.test") as client:
        yield client


async def _post(client: httpx.AsyncClient, path: str, **fields: str) -> list[object]:
    raw, content_type = encode_fields(
        {"CallId": "c1", "From": "+254722999000", **fields}, CallbackEncoding.FORM
    )
    answer = await client.post(
        path,
        content=raw,
        headers={"Content-Type": content_type, SIGNATURE_HEADER: sign(SECRET, raw)},
    )
    assert answer.status_code == 200, answer.text
    return list(parse_actions(answer.json()))


async def test_the_welcome_waits_for_one_key_over_the_menu(app_client: httpx.AsyncClient) -> None:
    menu, goodbye = await _post(app_client, "/ivr/welcome")
    assert isinstance(menu, GetDigits)
    assert (menu.num_digits, menu.action) == (1, "https://ivr.example.com/ivr/menu?lang=en")
    (prompt,) = menu.nested
    assert isinstance(prompt, Say) and prompt.language == "en-US" and "press 1" in prompt.text
    assert isinstance(goodbye, Say)  # runs only when no key came


async def test_each_key_takes_its_branch(app_client: httpx.AsyncClient) -> None:
    hours, end = await _post(app_client, "/ivr/menu?lang=en", Digits="1")
    assert isinstance(hours, Say) and "Monday" in hours.text and isinstance(end, Hangup)
    _, agent = await _post(app_client, "/ivr/menu?lang=en", Digits="2")
    assert isinstance(agent, Dial)
    assert (agent.number, agent.caller_id) == (("+254720000001",), "+254722999000")
    _, message = await _post(app_client, "/ivr/menu?lang=en", Digits="3")
    assert isinstance(message, Record)
    assert message.action == "https://voicemail.example.com/voicemail/recording"
    sorry, again = await _post(app_client, "/ivr/menu?lang=en", Digits="7")
    assert isinstance(sorry, Say) and isinstance(again, Redirect)
    assert again.url == "https://ivr.example.com/ivr/welcome?lang=en"


async def test_nine_gives_the_menu_in_swahili(app_client: httpx.AsyncClient) -> None:
    menu, goodbye = await _post(app_client, "/ivr/menu?lang=en", Digits="9")
    assert isinstance(menu, GetDigits)
    assert menu.action == "https://ivr.example.com/ivr/menu?lang=sw"
    (prompt,) = menu.nested
    assert isinstance(prompt, Say) and prompt.language == "sw"
    assert prompt.text.startswith("Karibu")
    assert isinstance(goodbye, Say) and goodbye.language == "sw"
    hours, _ = await _post(app_client, "/ivr/menu?lang=sw", Digits="1")
    assert isinstance(hours, Say) and hours.language == "sw" and "Jumatatu" in hours.text


async def test_an_unsigned_request_is_refused(app_client: httpx.AsyncClient) -> None:
    answer = await app_client.post("/ivr/welcome", json={"CallId": "c1"})
    assert answer.status_code == 401
