"""The API docs in headless Chromium with the network cut (api.docs).

The API is served by uvicorn on loopback; every request the browser makes to any other
address is aborted and remembered, and the test fails if there was one. Swagger UI at
``/docs`` must list every operation of ``/openapi.json``, and its "Try it out" must send
the key given to Authorize as ``Authorization: Bearer``; Redoc at ``/reference`` must list
every operation too.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from playwright.async_api import Browser, BrowserContext, Route, async_playwright, expect
from tests.support import KeyFactory

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
METHODS = ("get", "put", "post", "patch", "delete")

pytestmark = [
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian chromium"),
    pytest.mark.parametrize("empty_database", ["sqlite"], indirect=True),
]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
async def base_url(api_app: FastAPI) -> AsyncIterator[str]:
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(api_app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    serving = asyncio.ensure_future(server.serve())
    for _ in range(100):
        if server.started:
            break
        await asyncio.sleep(0.05)
    assert server.started, "uvicorn did not start"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        with contextlib.suppress(Exception):
            await asyncio.wait_for(serving, 10)


@pytest.fixture
async def chromium() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        try:
            yield browser
        finally:
            await browser.close()


class OfflineContext:
    """A browser context where only ``base_url`` answers: anything else is aborted."""

    def __init__(self, context: BrowserContext, base_url: str) -> None:
        self.context = context
        self.base_url = base_url
        self.outside: list[str] = []

    async def cut(self) -> None:
        async def guard(route: Route) -> None:
            url = route.request.url
            if url.startswith(self.base_url + "/") or url == self.base_url:
                await route.continue_()
            else:
                self.outside.append(url)
                await route.abort("internetdisconnected")

        await self.context.route("**/*", guard)


@pytest.fixture
async def offline(chromium: Browser, base_url: str) -> AsyncIterator[OfflineContext]:
    context = await chromium.new_context(base_url=base_url)
    guarded = OfflineContext(context, base_url)
    await guarded.cut()
    try:
        yield guarded
    finally:
        await context.close()


async def _operations(base_url: str) -> set[tuple[str, str]]:
    """Every operation, and every webhook (which both pages list beside them)."""
    async with httpx.AsyncClient(base_url=base_url) as http:
        document = (await http.get("/openapi.json")).json()
    return {
        (method.upper(), path)
        for section in ("paths", "webhooks")
        for path, item in document.get(section, {}).items()
        for method in item
        if method in METHODS
    }


async def test_swagger_ui_lists_every_operation_and_sends_the_key(
    offline: OfflineContext, base_url: str, make_key: KeyFactory
) -> None:
    _, headers = await make_key(["calls.read"])
    key = headers["Authorization"].removeprefix("Bearer ")
    expected = await _operations(base_url)
    page = await offline.context.new_page()
    await page.goto("/docs")
    await expect(page.locator(".opblock").first).to_be_visible(timeout=20_000)
    shown = await page.eval_on_selector_all(
        ".opblock",
        """blocks => blocks.map(b => [
            b.querySelector('.opblock-summary-method').textContent.trim(),
            b.querySelector('.opblock-summary-path').getAttribute('data-path')])""",
    )
    assert {(method, path) for method, path in shown} == expected
    assert len(shown) == len(expected)

    await page.locator("button.authorize").first.click()
    bearer = page.locator(".auth-container").filter(has_text="bearer").first
    await bearer.locator("input").fill(key)
    await bearer.locator("button.authorize").click()
    await expect(bearer.locator("button", has_text="Logout")).to_be_visible()
    await page.locator(".modal-ux .close-modal").click()

    operation = page.locator("#operations-calls-list_calls_v1_calls_get")
    await operation.locator(".opblock-summary").first.click()
    await operation.get_by_role("button", name="Try it out").click()
    async with page.expect_request(
        lambda request: request.url.startswith(f"{base_url}/v1/calls")
    ) as sent:
        await operation.get_by_role("button", name="Execute").click()
    request = await sent.value
    assert request.headers.get("authorization") == f"Bearer {key}"
    answer = await request.response()
    assert answer is not None and answer.status == 200
    shown_status = operation.locator(".live-responses-table tbody .response-col_status")
    await expect(shown_status.first).to_have_text("200")
    assert offline.outside == []


async def test_the_reference_lists_every_operation(offline: OfflineContext, base_url: str) -> None:
    async with httpx.AsyncClient(base_url=base_url) as http:
        document = (await http.get("/openapi.json")).json()
    expected = {
        operation["operationId"]
        for section in ("paths", "webhooks")
        for item in document.get(section, {}).values()
        for method, operation in item.items()
        if method in METHODS
    }
    page = await offline.context.new_page()
    await page.goto("/reference")
    operations = page.locator("[data-section-id*='/operation/']")
    await expect(operations.first).to_be_attached(timeout=30_000)
    sections = await operations.evaluate_all(
        "found => found.map(s => s.getAttribute('data-section-id'))"
    )
    assert {section.split("/operation/", 1)[1] for section in sections} == expected
    assert offline.outside == []
