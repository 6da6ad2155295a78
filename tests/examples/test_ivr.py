"""examples/ivr: the menu, each branch, and the Swahili menu."""

from __future__ import annotations

from collections.abc import AsyncIterator
from types import ModuleType

import httpx
import pytest
from tests.examples.conftest import load_example

from sautikit.events.signing import SIGNATURE_HEADER, sign
from sautikit.voice.actions import Dial, GetDigits, Hangup, Record, Redirect, Say, parse_actions
from sautikit.voice.callbacks import CallbackEncoding, encode_fields

SECRET = "whsec_ivr"

ivr: ModuleType = load_example("ivr")


@pytest.fixture
async def app_client() -> AsyncIterator[httpx.AsyncClient]:
    settings = ivr.IvrSettings(
        public_url="https://ivr.example.com",
        message_url="https://voicemail.example.com/voicemail/recording",
        signing_secret=SECRET,
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
