"""The console over HTTP: sign-in, cookies, CSRF, throttling, roles, tenant isolation."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr
from sqlalchemy import select

from sautikit import accounts
from sautikit.api import create_api
from sautikit.config import Settings
from sautikit.console.auth import create_member
from sautikit.db import Database
from sautikit.db.models import (
    ApiKey,
    Call,
    ConsoleUser,
    Number,
    SipCredential,
    Trunk,
    WebhookSubscription,
    Workspace,
)
from sautikit.voice.commands import LocalBus

PASSWORD = "correct horse battery"
OPERATOR_TOKEN = "op_" + "y" * 40


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path / "var",
        secret_key=SecretStr("test-secret"),
        operator_token=SecretStr(OPERATOR_TOKEN),
    )


@pytest.fixture
def api_app(settings: Settings, database: Database) -> FastAPI:
    return create_api(settings, database)


@pytest.fixture
async def browser(api_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=api_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://console.test") as http:
        yield http


async def member(
    database: Database, role: str = "owner", email: str = "wanjiru@example.co.ke"
) -> str:
    async with database.transaction() as session:
        workspace = await accounts.create_workspace(session, f"ws-{email}")
        await create_member(session, workspace.id, email, PASSWORD, role)
    return workspace.id


async def sign_in(http: httpx.AsyncClient, email: str = "wanjiru@example.co.ke") -> httpx.Response:
    return await http.post("/console/sign-in", data={"email": email, "password": PASSWORD})


def csrf(page: httpx.Response) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert found, "the page has a form with a CSRF token"
    return found.group(1)


async def test_pages_need_a_session(browser: httpx.AsyncClient) -> None:
    for path in ("/console", "/console/calls", "/console/wallet", "/console/operator"):
        response = await browser.get(path)
        assert response.status_code == 303 and response.headers["location"] == "/console/sign-in"
    page = await browser.get("/console/sign-in")
    assert page.status_code == 200 and '<label for="email">' in page.text
    assert (await browser.get("/console/static/htmx.min.js")).status_code == 200
    assert (await browser.get("/console/static/../auth.py")).status_code == 404


async def test_sign_in_sets_a_strict_http_only_cookie_and_sign_out_ends_it(
    browser: httpx.AsyncClient, database: Database
) -> None:
    await member(database)
    wrong = await browser.post(
        "/console/sign-in", data={"email": "wanjiru@example.co.ke", "password": "nope"}
    )
    assert wrong.status_code == 401 and "do not match" in wrong.text
    signed_in = await sign_in(browser)
    assert signed_in.status_code == 303
    cookie = signed_in.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "path=/console" in cookie
    overview = await browser.get("/console")
    assert overview.status_code == 200 and "Overview" in overview.text
    await browser.post("/console/sign-out", data={"csrf_token": csrf(overview)})
    assert (await browser.get("/console")).status_code == 303


async def test_sign_in_is_throttled_after_five_failures(
    browser: httpx.AsyncClient, database: Database
) -> None:
    await member(database)
    for _ in range(5):
        failed = await browser.post(
            "/console/sign-in", data={"email": "wanjiru@example.co.ke", "password": "guess"}
        )
        assert failed.status_code == 401
    blocked = await sign_in(browser)  # even the right password waits now
    assert blocked.status_code == 429 and "Too many" in blocked.text


async def test_changes_need_the_csrf_token_and_a_role_that_may_change(
    browser: httpx.AsyncClient, database: Database
) -> None:
    workspace_id = await member(database)
    await sign_in(browser)
    page = await browser.get("/console/keys")
    forged = await browser.post("/console/keys", data={"name": "ci"})
    assert forged.status_code == 403
    other_site = await browser.post(
        "/console/keys",
        data={"name": "ci", "csrf_token": csrf(page)},
        headers={"Origin": "https://evil.example"},
    )
    assert other_site.status_code == 403
    created = await browser.post(
        "/console/keys", data={"name": "ci", "csrf_token": csrf(page), "scopes": "calls.read"}
    )
    assert created.status_code == 201
    secret = re.search(r'value="(sk_live_[^"]+)"', created.text)
    assert secret is not None
    assert secret.group(1) not in (await browser.get("/console/keys")).text  # shown once
    async with database.transaction() as session:
        (key,) = (await session.scalars(select(ApiKey))).all()
    assert (key.workspace_id, key.scopes, key.name) == (workspace_id, ["calls.read"], "ci")

    async with database.transaction() as session:
        await create_member(session, workspace_id, "viewer@example.co.ke", PASSWORD, "viewer")
    browser.cookies.clear()
    await sign_in(browser, "viewer@example.co.ke")
    page = await browser.get("/console/keys")
    refused = await browser.post("/console/keys", data={"name": "x", "csrf_token": csrf(page)})
    assert refused.status_code == 403 and "Viewers" in refused.text


async def test_a_member_cannot_open_another_workspaces_call_by_url(
    browser: httpx.AsyncClient, database: Database
) -> None:
    mine = await member(database)
    theirs = await member(database, email="otieno@example.co.ke")
    async with database.transaction() as session:
        call_a = Call(
            workspace_id=mine,
            direction="outbound",
            from_number="+254700000001",
            to_number="+254711000001",
        )
        call_b = Call(
            workspace_id=theirs,
            direction="outbound",
            from_number="+254700000002",
            to_number="+254722000002",
        )
        session.add_all([call_a, call_b])
    await sign_in(browser)
    assert (await browser.get(f"/console/calls/{call_a.id}")).status_code == 200
    other = await browser.get(f"/console/calls/{call_b.id}")
    assert other.status_code == 404 and "+254722000002" not in other.text
    listed = await browser.get("/console/calls")
    assert call_a.id in listed.text and call_b.id not in listed.text
    assert (await browser.get(f"/console/recordings/{call_b.id}/audio")).status_code == 404


async def test_the_operator_signs_in_with_the_token_and_members_cannot_open_its_pages(
    browser: httpx.AsyncClient, database: Database
) -> None:
    await member(database)
    await sign_in(browser)
    assert (await browser.get("/console/operator")).status_code == 403
    browser.cookies.clear()
    wrong = await browser.post("/console/operator/sign-in", data={"token": "op_wrong"})
    assert wrong.status_code == 401
    right = await browser.post("/console/operator/sign-in", data={"token": OPERATOR_TOKEN})
    assert right.status_code == 303
    page = await browser.get("/console/operator")
    assert page.status_code == 200 and "ws-wanjiru@example.co.ke" in page.text
    assert (await browser.get("/console")).status_code == 303  # members' pages are not its


async def test_the_operator_sees_each_trunks_health_from_the_options_pings(
    browser: httpx.AsyncClient, database: Database
) -> None:
    async with database.transaction() as session:
        session.add(Trunk(name="safaricom-a", host="127.0.0.1", port=5070, health="up"))
        session.add(Trunk(name="safaricom-b", host="127.0.0.1", port=5071, health="down"))
    await browser.post("/console/operator/sign-in", data={"token": OPERATOR_TOKEN})
    page = await browser.get("/console/operator")
    rows = {
        match[0]: match[1]
        for match in re.findall(r"<tr><td>(safaricom-[ab])</td>.*?<td>(\w+)</td></tr>", page.text)
    }
    assert rows == {"safaricom-a": "up", "safaricom-b": "down"}


async def test_sip_logins_are_made_shown_once_rotated_and_revoked(
    browser: httpx.AsyncClient, database: Database
) -> None:
    mine = await member(database)
    theirs = await member(database, email="otieno@example.co.ke")
    async with database.transaction() as session:
        number = Number(
            e164="+254700000123", monthly_price_minor=0, status="active", workspace_id=mine
        )
        other = Number(
            e164="+254700000456", monthly_price_minor=0, status="active", workspace_id=theirs
        )
        session.add_all([number, other])
    await sign_in(browser)
    page = await browser.get(f"/console/numbers/{number.id}/sip")
    assert page.status_code == 200 and "No logins yet" in page.text
    created = await browser.post(
        f"/console/numbers/{number.id}/sip", data={"csrf_token": csrf(page)}
    )
    assert created.status_code == 201
    password = re.search(r'id="sip-password" readonly value="([^"]+)"', created.text)
    assert password is not None and f"<code>{mine}</code>" in created.text  # the realm
    assert password.group(1) not in (await browser.get(f"/console/numbers/{number.id}/sip")).text

    async with database.transaction() as session:
        (first,) = (await session.scalars(select(SipCredential))).all()
    rotated = await browser.post(
        f"/console/numbers/{number.id}/sip", data={"csrf_token": csrf(page), "rotate": first.id}
    )
    assert rotated.status_code == 201
    revoked = await browser.post(
        f"/console/numbers/{number.id}/sip", data={"csrf_token": csrf(page), "revoke": first.id}
    )
    assert revoked.status_code == 200
    async with database.transaction() as session:
        live = (
            await session.scalars(select(SipCredential).where(SipCredential.revoked_at.is_(None)))
        ).all()
    assert len(live) == 1 and live[0].id != first.id
    assert (await browser.get(f"/console/numbers/{other.id}/sip")).status_code == 404
    forged = await browser.post(f"/console/numbers/{other.id}/sip", data={"csrf_token": csrf(page)})
    assert forged.status_code == 404


async def test_an_owner_invites_a_member_who_joins_once_by_the_link(
    browser: httpx.AsyncClient, database: Database, api_app: FastAPI
) -> None:
    workspace_id = await member(database)
    await sign_in(browser)
    page = await browser.get("/console/members")
    invited = await browser.post(
        "/console/members/invite",
        data={"csrf_token": csrf(page), "email": "Akinyi@Example.co.ke", "role": "viewer"},
    )
    assert invited.status_code == 201
    found = re.search(
        r'id="invite-link" readonly value="[^"]*(/console/invite/[^"]+)"', invited.text
    )
    assert found is not None
    link = found.group(1)
    assert link not in (await browser.get("/console/members")).text  # shown once

    browser.cookies.clear()
    form = await browser.get(link)
    assert form.status_code == 200 and "akinyi@example.co.ke" in form.text
    differ = await browser.post(link, data={"password": PASSWORD, "repeat": PASSWORD + "x"})
    assert differ.status_code == 400 and "differ" in differ.text
    joined = await browser.post(link, data={"password": PASSWORD, "repeat": PASSWORD})
    assert joined.status_code == 303
    overview = await browser.get("/console")
    assert "akinyi@example.co.ke" in overview.text and "(viewer)" in overview.text
    browser.cookies.clear()
    again = await browser.post(link, data={"password": PASSWORD, "repeat": PASSWORD})
    assert again.status_code == 404
    assert (await sign_in(browser, "akinyi@example.co.ke")).status_code == 303

    # A viewer cannot invite; an owner's removal signs the member out.
    page = await browser.get("/console/members")
    assert "Invite a member" not in page.text
    refused = await browser.post(
        "/console/members/invite",
        data={"csrf_token": csrf(page), "email": "x@example.co.ke", "role": "owner"},
    )
    assert refused.status_code == 403
    async with database.transaction() as session:
        akinyi = await session.scalar(
            select(ConsoleUser).where(ConsoleUser.email == "akinyi@example.co.ke")
        )
    assert akinyi is not None and akinyi.workspace_id == workspace_id
    owner = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=api_app), base_url="http://console.test"
    )
    async with owner:
        await sign_in(owner)
        page = await owner.get("/console/members")
        removed = await owner.post(
            f"/console/members/{akinyi.id}/remove", data={"csrf_token": csrf(page)}
        )
        assert removed.status_code == 303
    assert (await browser.get("/console")).status_code == 303  # signed out


async def test_the_operator_hangs_up_a_live_call_of_any_workspace(
    database: Database, settings: Settings
) -> None:
    bus = LocalBus()
    heard: list[dict[str, object]] = []

    async def handler(message: dict[str, object]) -> None:
        heard.append(message)

    bus.subscribe(handler)
    app = create_api(settings, database, bus=bus)
    workspace_id = await member(database)
    async with database.transaction() as session:
        live = Call(
            workspace_id=workspace_id,
            direction="outbound",
            from_number="+254700000001",
            to_number="+254711000001",
            status="answered",
            owner="node-b",
        )
        session.add(live)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://console.test") as http:
        await http.post("/console/operator/sign-in", data={"token": OPERATOR_TOKEN})
        rows = await http.get("/console/calls/live")
        assert f'data-call-id="{live.id}"' in rows.text and "node-b" in rows.text
        page = await http.get("/console/operator")
        hung_up = await http.post(
            f"/console/calls/{live.id}/hangup", data={"csrf_token": csrf(page)}
        )
        assert hung_up.status_code == 303
    for _ in range(100):  # delivered after the commit, on the loop
        if heard:
            break
        await asyncio.sleep(0.05)
    await bus.close()
    assert heard == [{"type": "command", "call_id": live.id, "status": "completed"}]


async def test_owners_change_settings_by_the_api_s_rules(
    browser: httpx.AsyncClient, database: Database
) -> None:
    workspace_id = await member(database)
    await sign_in(browser)
    page = await browser.get("/console/settings")
    form = {
        "csrf_token": csrf(page),
        "destination_allowlist": "+254\n+255, +256",
        "sip_host_allowlist": "pbx.example.co.ke",
        "play_host_allowlist": "",
        "max_concurrent_calls": "20",
        "max_calls_per_second": "2",
        "recording_format": "mp3",
        "retention_days": "90",
        "low_balance_threshold_minor": "5000",
    }
    saved = await browser.post("/console/settings", data=form)
    assert saved.status_code == 200 and "Settings saved" in saved.text
    async with database.sessions() as session:
        workspace = await session.get_one(Workspace, workspace_id)
        assert workspace.destination_allowlist == ["+254", "+255", "+256"]
        assert (workspace.recording_format, workspace.retention_days) == ("mp3", 90)
    bad = await browser.post("/console/settings", data={**form, "max_concurrent_calls": "0"})
    assert bad.status_code == 400 and "max_concurrent_calls" in bad.text
    async with database.sessions() as session:
        workspace = await session.get_one(Workspace, workspace_id)
        assert workspace.max_concurrent_calls == 20  # nothing half-applied


async def test_owners_set_the_storage_bucket_with_sealed_credentials(
    browser: httpx.AsyncClient, database: Database
) -> None:
    workspace_id = await member(database)
    await sign_in(browser)
    page = await browser.get("/console/settings")
    assert '<label for="storage_url">' in page.text and '<label for="secret_key">' in page.text
    bucket = "s3://calls/kenya?endpoint=https://s3.example.co.ke"
    form = {"csrf_token": csrf(page), "storage_url": bucket}
    saved = await browser.post(
        "/console/settings/storage", data={**form, "access_key": "AKIA1", "secret_key": "s3cr3t"}
    )
    assert saved.status_code == 200 and "Storage bucket saved" in saved.text
    assert bucket in saved.text and "s3cr3t" not in saved.text
    async with database.sessions() as session:
        workspace = await session.get_one(Workspace, workspace_id)
    assert workspace.storage_url == bucket
    sealed = workspace.storage_credentials
    assert sealed is not None and "s3cr3t" not in sealed

    # Blank keys keep the stored ones for the same bucket.
    kept = await browser.post("/console/settings/storage", data=form)
    assert kept.status_code == 200 and "keep the stored one" in kept.text
    async with database.sessions() as session:
        assert (await session.get_one(Workspace, workspace_id)).storage_credentials == sealed

    # Refused whole, with the reason: nothing changes.
    for refused, reason in [
        ({**form, "storage_url": "ftp://nowhere"}, "storage_url"),
        ({**form, "storage_url": "s3://calls?endpoint=http://10.0.0.5:9000"}, "private address"),
        ({**form, "access_key": "AKIA2"}, "secret_key"),
        (
            {"csrf_token": csrf(page), "storage_url": "", "access_key": "A", "secret_key": "B"},
            "no storage_url",
        ),
    ]:
        answer = await browser.post("/console/settings/storage", data=refused)
        assert answer.status_code == 400, refused
        assert "The bucket was not changed" in answer.text and reason in answer.text
        async with database.sessions() as session:
            workspace = await session.get_one(Workspace, workspace_id)
        assert (workspace.storage_url, workspace.storage_credentials) == (bucket, sealed)

    # Empty: back to the deployment's store, and the keys are gone.
    cleared = await browser.post("/console/settings/storage", data={**form, "storage_url": ""})
    assert cleared.status_code == 200 and "the deployment&#39;s store" in cleared.text
    async with database.sessions() as session:
        workspace = await session.get_one(Workspace, workspace_id)
    assert (workspace.storage_url, workspace.storage_credentials) == (None, None)


async def test_only_owners_change_the_storage_bucket(
    browser: httpx.AsyncClient, database: Database
) -> None:
    workspace_id = await member(database, role="developer")
    await sign_in(browser)
    page = await browser.get("/console/settings")
    refused = await browser.post(
        "/console/settings/storage",
        data={"csrf_token": csrf(page), "storage_url": "s3://x?endpoint=https://s3.example.com"},
    )
    assert refused.status_code == 403
    forged = await browser.post("/console/settings/storage", data={"storage_url": ""})
    assert forged.status_code == 403
    async with database.sessions() as session:
        assert (await session.get_one(Workspace, workspace_id)).storage_url is None


async def test_webhooks_are_subscribed_with_the_secret_shown_once_and_unsubscribed(
    browser: httpx.AsyncClient, database: Database
) -> None:
    workspace_id = await member(database)
    await sign_in(browser)
    page = await browser.get("/console/webhooks")
    bad = await browser.post(
        "/console/webhooks", data={"csrf_token": csrf(page), "url": "not a url"}
    )
    assert bad.status_code == 400
    made = await browser.post(
        "/console/webhooks",
        data={
            "csrf_token": csrf(page),
            "url": "https://example.co.ke/events",
            "events": ["wallet.top_up", "call.completed"],
        },
    )
    assert made.status_code == 201
    secret = re.search(r'id="webhook-secret" readonly value="(whsec_[^"]+)"', made.text)
    assert secret is not None
    assert secret.group(1) not in (await browser.get("/console/webhooks")).text
    async with database.sessions() as session:
        (subscription,) = (await session.scalars(select(WebhookSubscription))).all()
    assert subscription.workspace_id == workspace_id
    assert subscription.events == ["call.completed", "wallet.top_up"]
    gone = await browser.post(
        f"/console/webhooks/{subscription.id}/delete", data={"csrf_token": csrf(page)}
    )
    assert gone.status_code == 303
    async with database.sessions() as session:
        assert (await session.scalars(select(WebhookSubscription))).all() == []


async def test_notices_come_only_from_the_console_not_from_the_url(
    browser: httpx.AsyncClient, database: Database
) -> None:
    await member(database)
    await sign_in(browser)
    spoof = "Your account is suspended, call +254700000666"
    for path in ("/console/wallet", "/console/numbers"):
        page = await browser.get(path, params={"notice": spoof})
        assert page.status_code == 200 and "+254700000666" not in page.text
    known = await browser.get("/console/wallet", params={"notice": "push-sent"})
    assert "enter your M-Pesa PIN" in known.text
    claimed = await browser.get("/console/numbers", params={"notice": "claimed-254700000099"})
    assert "Claimed +254700000099" in claimed.text
