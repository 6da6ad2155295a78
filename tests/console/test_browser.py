"""The console in real headless Chromium (Debian ``chromium``, driven by Playwright).

One journey through a real ``sautikit serve`` process (tests/serve_process.py), configured
through ``SAUTIKIT_*`` variables as an operator would: a member signs in with the keyboard,
claims a number, creates an API key, places a call with it that a SIPp callee answers,
watches it appear live, hangs it up, plays its recording, tops up by M-Pesa (daraja-mock
as Daraja, the test posting Safaricom's callback) and sees the balance change without a
reload. Along the way: accessibility basics on every page, and tenant isolation by URL.

Set ``SAUTIKIT_CONSOLE_SCREENSHOTS=DIR`` to keep screenshots of the main pages in DIR
(docs/console.md shows them).
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, Page, async_playwright, expect
from pydantic import SecretStr
from sqlalchemy import select
from tests.daraja import DarajaMockProcess
from tests.mpesa_payloads import stk_callback
from tests.serve_process import CALLEE, NUMBER, ServeProcess, seed
from tests.sipp import Sipp, requires_sipp
from tests.voice.voice_rig import AppServer, document, serve_app

from sautikit import accounts
from sautikit.billing import ledger
from sautikit.billing.ledger import format_kes
from sautikit.billing.mpesa.topups import callback_token
from sautikit.config import Settings
from sautikit.console.auth import create_member
from sautikit.db import Database
from sautikit.db.models import Call, Number, Recording, TopUp, Transcription

pytestmark = [pytest.mark.sipp, requires_sipp]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
PBX_SCENARIOS = Path(__file__).parent.parent / "pbx" / "scenarios"
EMAIL = "wanjiru@example.co.ke"
PASSWORD = "correct horse battery"
SPARE_NUMBER = "+254700000099"
PHONE = "+254708374149"
OPERATOR_TOKEN = "op_" + "z" * 40
SCREENSHOTS = os.environ.get("SAUTIKIT_CONSOLE_SCREENSHOTS")
if SCREENSHOTS:
    Path(SCREENSHOTS).mkdir(parents=True, exist_ok=True)

# Every form control has a label, every button a name, the page a language and one h1.
A11Y_PROBLEMS = """() => {
  const problems = [];
  if (!document.documentElement.lang) problems.push('no lang on <html>');
  if (document.querySelectorAll('h1').length !== 1) problems.push('not exactly one h1');
  for (const el of document.querySelectorAll('input, select, textarea')) {
    if (el.type === 'hidden') continue;
    const named = el.labels.length > 0 || el.getAttribute('aria-label')
      || el.getAttribute('aria-labelledby');
    if (!named) problems.push('unlabelled ' + el.outerHTML.slice(0, 80));
  }
  for (const el of document.querySelectorAll('button, a')) {
    const name = (el.getAttribute('aria-label') || el.textContent || '').trim();
    if (!name) problems.push('nameless ' + el.outerHTML.slice(0, 80));
  }
  return problems;
}"""


@pytest.fixture(scope="module")
def app_server() -> Iterator[AppServer]:
    with serve_app() as server:
        yield server


@pytest.fixture
async def chromium() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        try:
            yield browser
        finally:
            await browser.close()


def free_tcp_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def until(check: Callable[[], Awaitable[Any]], what: str, seconds: float = 60.0) -> Any:
    for _ in range(int(seconds / 0.1)):
        found = await check()
        if found:
            return found
        await asyncio.sleep(0.1)
    raise AssertionError(f"never happened: {what}")


async def visit(page: Page, path: str, shot: str | None = None) -> None:
    response = await page.goto(path)
    assert response is not None and response.ok, path
    assert await page.evaluate(A11Y_PROBLEMS) == [], path
    if SCREENSHOTS and shot:
        await page.screenshot(path=str(Path(SCREENSHOTS) / f"{shot}.png"), full_page=True)


async def test_a_member_s_day_in_the_console(
    served_database: tuple[str, Database],
    app_server: AppServer,
    daraja_mock: DarajaMockProcess,
    chromium: Browser,
    tmp_path: Path,
) -> None:
    url, database = served_database
    app_server.reset()
    answered = app_server.route(
        "/answered",
        document(
            {
                "record": {
                    "action": app_server.url("/recorded"),
                    "timeout": 30,
                    "maxLength": 120,
                    "playBeep": False,
                    "transcribe": True,
                }
            }
        ),
    )
    app_server.route("/recorded", document({"hangup": {}}))
    await daraja_mock.set_stk_result(0)

    async with Sipp(scenario=PBX_SCENARIOS / "callee_answers_and_speaks.xml", timeout=90) as callee:
        seeded = await seed(database, voice_url=app_server.url("/voice"), trunk_port=callee.port)
        async with database.transaction() as session:
            await create_member(session, seeded.workspace_id, EMAIL, PASSWORD, "owner")
            session.add(Number(e164=SPARE_NUMBER, monthly_price_minor=10_000))
            stranger = await accounts.create_workspace(session, "Stranger Ltd")
            # An ended call: a queued one would be placed when serve starts (young queued
            # calls are dialled at once) and take the SIPp callee this test's call needs.
            their_call = Call(
                workspace_id=stranger.id,
                direction="outbound",
                from_number="+254700000777",
                to_number="+254733000777",
                status="completed",
            )
            session.add(their_call)
        env = {
            "SAUTIKIT_HTTP_PORT": str(free_tcp_port()),
            "SAUTIKIT_OPERATOR_TOKEN": OPERATOR_TOKEN,
            "SAUTIKIT_DARAJA_CONSUMER_KEY": "test_key",
            "SAUTIKIT_DARAJA_CONSUMER_SECRET": "test_secret",
            "SAUTIKIT_DARAJA_SHORTCODE": "174379",
            "SAUTIKIT_DARAJA_PASSKEY": "test-passkey",
            "SAUTIKIT_DARAJA_BASE_URL": daraja_mock.base_url,
        }
        async with ServeProcess(tmp_path / "var", url, env=env) as serve:
            context = await chromium.new_context(base_url=serve.base_url)
            page = await context.new_page()
            browser_errors: list[str] = []
            page.on(
                "console",
                lambda message: (
                    browser_errors.append(message.text) if message.type == "error" else None
                ),
            )

            # Sign in with the keyboard alone: skip link, e-mail, password, Enter.
            await visit(page, "/console/sign-in", "sign-in")
            await page.keyboard.press("Tab")
            assert await page.evaluate("document.activeElement.className") == "skip"
            await page.keyboard.press("Tab")
            assert await page.evaluate("document.activeElement.id") == "email"
            await page.keyboard.type(EMAIL)
            await page.keyboard.press("Tab")
            await page.keyboard.type(PASSWORD)
            await page.keyboard.press("Enter")
            await expect(page.get_by_role("heading", name="Overview")).to_be_visible()

            await visit(page, "/console/numbers")
            await page.get_by_role("button", name=f"Claim {SPARE_NUMBER}").click()
            await expect(page.get_by_role("status")).to_have_text(f"Claimed {SPARE_NUMBER}")
            await expect(page.get_by_role("table", name="Your numbers")).to_contain_text(
                SPARE_NUMBER
            )
            await visit(page, "/console/numbers", "numbers")

            await visit(page, "/console/keys")
            await page.get_by_label("Name").fill("from the console")
            await page.get_by_role("button", name="Create key").click()
            secret = await page.get_by_label("New API key").input_value()
            assert secret.startswith("sk_live_")
            await visit(page, "/console/keys", "keys")
            assert secret not in await page.content()

            # The overview is open before the call exists: the call shows up live.
            await visit(page, "/console")
            async with serve.api({"Authorization": f"Bearer {secret}"}) as api:
                placed = await api.post(
                    "/v1/calls", json={"to": CALLEE, "from": NUMBER, "action_url": answered}
                )
            assert placed.status_code == 201, placed.text
            call_id = placed.json()["id"]
            live_row = page.locator(f'#live-calls tr[data-call-id="{call_id}"]')
            await expect(live_row.locator(".status")).to_have_text("answered", timeout=30_000)
            if SCREENSHOTS:
                await page.screenshot(path=str(Path(SCREENSHOTS) / "overview.png"))

            await live_row.get_by_role("link").click()
            await expect(page.locator("#call-status")).to_have_text("answered")
            await asyncio.sleep(2)  # some of the callee's speech is recorded
            await page.get_by_role("button", name="Hang up").click()
            result = await callee.wait()
            assert result.returncode == 0, result.explain()  # the callee got our BYE

            async def transcribed() -> bool:
                async with database.sessions() as session:
                    done = await session.scalar(
                        select(Transcription.status).where(
                            Transcription.status.in_(["completed", "failed"])
                        )
                    )
                    return done is not None

            await until(transcribed, "the recording stored and transcribed", seconds=120)
            async with database.sessions() as session:
                recording = await session.scalar(select(Recording))
                transcript = await session.scalar(select(Transcription))
            assert recording is not None and recording.status == "ready"
            assert transcript is not None

            # The player: the audio element follows our redirect to the presigned URL.
            media: list[str] = []
            page.on(
                "response",
                lambda response: (
                    media.append(response.url)
                    if "/console/" not in response.url and response.status in (200, 206)
                    else None
                ),
            )
            await visit(page, f"/console/calls/{call_id}", "call")
            await expect(page.locator("#call-status")).to_have_text("completed")
            await page.wait_for_function(
                "() => document.querySelector('audio').readyState >= 1", timeout=30_000
            )
            duration = await page.evaluate("document.querySelector('audio').duration")
            assert duration > 1
            assert any("signature=" in link or "Signature=" in link for link in media), media
            waveform = page.get_by_role("img", name="Waveform of each channel")
            await expect(waveform).to_be_visible()
            assert await waveform.evaluate("image => image.naturalWidth") > 0
            transcript_box = page.get_by_label("Transcript")
            if transcript.status == "completed" and transcript.text:
                await expect(transcript_box).to_contain_text(transcript.text[:20])
            await page.evaluate("document.querySelector('audio').play()")
            await page.wait_for_function(
                "() => document.querySelector('audio').currentTime > 0", timeout=30_000
            )

            # Top up by M-Pesa and watch the balance change with no reload.
            await visit(page, "/console/wallet")
            async with database.sessions() as session:
                before = await ledger.balance(session, seeded.workspace_id)
            balance = page.locator("#wallet-balance")
            await expect(balance).to_have_text(format_kes(before))
            await page.get_by_label("Amount (KES)").fill("50")
            await page.get_by_label("M-Pesa phone number").fill(PHONE)
            await page.get_by_role("button", name="Send payment request").click()
            await expect(page.get_by_role("status")).to_contain_text("M-Pesa PIN")

            async def pushed() -> str | None:
                async with database.sessions() as session:
                    return await session.scalar(
                        select(TopUp.checkout_request_id).where(
                            TopUp.checkout_request_id.is_not(None)
                        )
                    )

            checkout_id = await until(pushed, "the STK push sent to Daraja")
            token = callback_token(Settings(secret_key=SecretStr("test-secret")))
            async with httpx.AsyncClient(base_url=serve.base_url) as safaricom:
                answer = await safaricom.post(
                    f"/v1/topups/daraja/stk/{token}",
                    json=stk_callback(
                        checkout_id, amount_kes=50, receipt="QKX9CONSOLE", phone=254708374149
                    ),
                )
            assert answer.json() == {"ResultCode": 0, "ResultDesc": "Accepted"}
            await expect(balance).to_have_text(format_kes(before + 5_000), timeout=15_000)
            await page.reload()
            await expect(page.get_by_role("table", name="Top-ups")).to_contain_text("QKX9CONSOLE")
            if SCREENSHOTS:
                await page.screenshot(path=str(Path(SCREENSHOTS) / "wallet.png"), full_page=True)

            for path, shot in [
                ("/console/calls", "calls"),
                ("/console/webhooks", "webhooks"),
                ("/console/settings", "settings"),
                ("/console/members", "members"),
            ]:
                await visit(page, path, shot)

            # The workspace's own bucket, by keyboard-reachable labelled fields.
            await visit(page, "/console/settings")
            bucket = "s3://calls?endpoint=https://s3.example.co.ke"
            await page.get_by_label("Bucket URL").fill(bucket)
            await page.get_by_label("Access key").fill("AKIACONSOLE")
            await page.get_by_label("Secret key").fill("console-secret")
            await page.get_by_role("button", name="Save bucket").click()
            await expect(page.get_by_role("status")).to_have_text("Storage bucket saved.")
            await expect(page.locator("#storage-now")).to_have_text(bucket)
            assert "console-secret" not in await page.content()
            assert await page.evaluate(A11Y_PROBLEMS) == []

            # A device login for the number, with the phone settings to copy.
            await visit(page, "/console/numbers")
            await page.get_by_role("link", name=f"SIP devices for {NUMBER}").click()
            await page.get_by_role("button", name="Create a login").click()
            await expect(page.locator("#phone-settings")).to_contain_text(str(serve.sip_port))
            assert len(await page.get_by_role("textbox", name="Password").input_value()) >= 16
            assert await page.evaluate(A11Y_PROBLEMS) == []
            if SCREENSHOTS:
                await page.screenshot(path=str(Path(SCREENSHOTS) / "sip.png"), full_page=True)

            # Another workspace's call is not there, by URL either.
            response = await page.goto(f"/console/calls/{their_call.id}")
            assert response is not None and response.status == 404
            await expect(page.get_by_role("heading", name="Not found")).to_be_visible()
            assert "+254733000777" not in await page.content()

            # Nothing the pages do breaks their own Content-Security-Policy.
            assert not [text for text in browser_errors if "Content Security" in text]

            # The operator sees every workspace.
            operator = await (await chromium.new_context(base_url=serve.base_url)).new_page()
            await operator.goto("/console/sign-in")
            await operator.get_by_label("Operator token").fill(OPERATOR_TOKEN)
            await operator.get_by_role("button", name="Sign in as operator").click()
            await expect(operator.get_by_role("heading", name="Operator")).to_be_visible()
            await expect(operator.get_by_role("table", name="Workspaces")).to_contain_text(
                "Stranger Ltd"
            )
            assert await operator.evaluate(A11Y_PROBLEMS) == []
            if SCREENSHOTS:
                await operator.screenshot(
                    path=str(Path(SCREENSHOTS) / "operator.png"), full_page=True
                )
            await context.close()
