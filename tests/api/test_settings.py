"""``/v1/settings``: defaults, validation naming the field, per-field scopes, sealed secrets."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from tests.support import KeyFactory

from sautikit import accounts
from sautikit.api.app import create_api
from sautikit.billing.authorisation import authorise_destination
from sautikit.config import Settings
from sautikit.crypto import CryptoError, decrypt_secret
from sautikit.db import Database, upgrade_database
from sautikit.db.models import Workspace
from sautikit.storage import open_store

EVERYTHING = ["calls.write", "recordings.write", "wallet.write", "settings.read"]


async def _workspace(database: Database, workspace_id: str) -> Workspace:
    async with database.transaction() as session:
        workspace = await session.get(Workspace, workspace_id)
    assert workspace is not None
    return workspace


async def test_reading_settings_needs_settings_read(
    client: httpx.AsyncClient, make_key: KeyFactory
) -> None:
    _, calls_only = await make_key(["calls.read", "calls.write"])
    for answer in (
        await client.get("/v1/settings", headers=calls_only),
        await client.patch("/v1/settings", json={"max_calls_per_second": 5}, headers=calls_only),
    ):
        assert answer.status_code == 403
        assert answer.json()["error"]["code"] == "api_key.scope_denied"
        assert "settings.read" in answer.json()["error"]["message"]
        assert "+254" not in answer.text


async def test_a_whole_access_key_made_before_settings_read_keeps_reading_settings(
    settings: Settings, empty_database: Database
) -> None:
    """Migration 0026: a key holding every scope SPEC §1 names (what ``--scopes all`` gave
    before settings.read and keys.manage existed) gains both; a narrower key gains nothing."""
    await upgrade_database(empty_database, "0025")  # the database as it was
    async with empty_database.transaction() as session:
        workspace = await accounts.create_workspace(session, "made before 0026")
        spec_scopes = sorted(accounts.SCOPES - {"settings.read", "keys.manage"})
        whole = await accounts.create_api_key(session, workspace.id, spec_scopes)
        narrow = await accounts.create_api_key(session, workspace.id, ["calls.read"])
    await upgrade_database(empty_database)  # what `sautikit db upgrade` runs
    app = create_api(settings, empty_database, open_store(settings))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://sautikit.test") as client:
        for created, expected in ((whole, 200), (narrow, 403)):
            key = {"Authorization": f"Bearer {created.secret}"}
            assert (await client.get("/v1/settings", headers=key)).status_code == expected
            assert (await client.get("/v1/keys", headers=key)).status_code == expected


async def test_a_settings_read_key_reads_the_defaults(
    client: httpx.AsyncClient, make_key: KeyFactory
) -> None:
    _, key = await make_key(["settings.read"])
    answer = await client.get("/v1/settings", headers=key)
    assert answer.status_code == 200
    assert answer.json() == {
        "destination_allowlist": ["+254"],
        "sip_host_allowlist": [],
        "play_host_allowlist": [],
        "max_concurrent_calls": 50,
        "max_calls_per_second": 10,
        "callback_encoding": "form",
        "srtp": "optional",
        "recording_format": "wav",
        "storage_url": None,
        "storage_credentials_set": False,
        "retention_days": 30,
        "low_balance_threshold_minor": 10_000,
        "currency": "KES",
    }


async def test_allow_lists_are_normalised_and_authorise_dials(
    client: httpx.AsyncClient, make_key: KeyFactory, database: Database
) -> None:
    workspace_id, key = await make_key(EVERYTHING)
    answer = await client.patch(
        "/v1/settings",
        json={
            "destination_allowlist": ["+254", " +2557 ", "+254"],
            "sip_host_allowlist": ["PBX.Example.com", "sip.carrier.example:5070"],
            "play_host_allowlist": ["cdn.example.com"],
            "recording_format": "mp3",
            "retention_days": 90,
            "low_balance_threshold_minor": 0,
            "max_concurrent_calls": 80,
            "max_calls_per_second": 5,
        },
        headers=key,
    )
    assert answer.status_code == 200, answer.text
    changed = answer.json()
    assert changed["destination_allowlist"] == ["+254", "+2557"]
    assert changed["sip_host_allowlist"] == ["pbx.example.com", "sip.carrier.example:5070"]
    assert (changed["recording_format"], changed["retention_days"]) == ("mp3", 90)
    assert (await client.get("/v1/settings", headers=key)).json() == changed

    workspace = await _workspace(database, workspace_id)
    assert authorise_destination(workspace, "+255712345678").kind == "e164"
    assert authorise_destination(workspace, "sip:ops@pbx.example.com").host == "pbx.example.com"

    # A PATCH leaves the fields it does not name alone.
    answer = await client.patch("/v1/settings", json={"retention_days": 7}, headers=key)
    assert answer.json() == {**changed, "retention_days": 7}


INVALID: list[tuple[dict[str, Any], str]] = [
    ({"destination_allowlist": ["+254", "254"]}, "destination_allowlist[1]"),
    ({"destination_allowlist": "+254"}, "destination_allowlist"),
    ({"destination_allowlist": None}, "destination_allowlist"),
    ({"destination_allowlist": ["+1"] * 101}, "destination_allowlist"),
    ({"sip_host_allowlist": ["user@pbx.example.com"]}, "sip_host_allowlist[0]"),
    ({"play_host_allowlist": ["cdn.example.com:http"]}, "play_host_allowlist[0]"),
    ({"recording_format": "ogg"}, "recording_format"),
    ({"retention_days": 0}, "retention_days"),
    ({"retention_days": 3651}, "retention_days"),
    ({"low_balance_threshold_minor": -1}, "low_balance_threshold_minor"),
    ({"low_balance_threshold_minor": 1.5}, "low_balance_threshold_minor"),
    ({"max_concurrent_calls": 0}, "max_concurrent_calls"),
    ({"max_calls_per_second": 1000}, "max_calls_per_second"),
    ({"storage_url": "https://bucket.example.com"}, "storage_url"),
    ({"storage_url": "s3://Bad_Bucket"}, "storage_url"),
    ({"storage_url": "s3://bucket?endpoint=http://169.254.169.254"}, "storage_url"),
    ({"storage_credentials": {"access_key": "a", "secret_key": "b"}}, "storage_credentials"),
    ({"storage_credentials": {"access_key": "a"}}, "storage_credentials.secret_key"),
    ({"recording_formats": "wav"}, "recording_formats"),
    ({"callback_encoding": "xml"}, "callback_encoding"),
]


async def test_invalid_values_name_the_field(
    client: httpx.AsyncClient, make_key: KeyFactory
) -> None:
    _, key = await make_key(EVERYTHING)
    before = (await client.get("/v1/settings", headers=key)).json()
    for body, field in INVALID:
        answer = await client.patch("/v1/settings", json=body, headers=key)
        assert answer.status_code == 400, (body, answer.text)
        error = answer.json()["error"]
        assert (error["code"], error["field"]) == ("validation.invalid_field", field), body
        assert error["message"].startswith(field), error
    assert (await client.get("/v1/settings", headers=key)).json() == before


async def test_each_field_needs_the_scope_it_governs(
    client: httpx.AsyncClient, make_key: KeyFactory
) -> None:
    _, calls_only = await make_key(["calls.write", "settings.read"])
    answer = await client.patch(
        "/v1/settings", json={"sip_host_allowlist": ["pbx.example.com"]}, headers=calls_only
    )
    assert answer.status_code == 200
    answer = await client.patch(
        "/v1/settings",
        json={"sip_host_allowlist": [], "retention_days": 5, "low_balance_threshold_minor": 1},
        headers=calls_only,
    )
    assert answer.status_code == 403
    error = answer.json()["error"]
    assert error["code"] == "api_key.scope_denied"
    assert "recordings.write" in error["message"] and "wallet.write" in error["message"]
    # Nothing was applied.
    assert (await client.get("/v1/settings", headers=calls_only)).json()["sip_host_allowlist"] == [
        "pbx.example.com"
    ]


async def test_bucket_credentials_are_sealed_and_never_answered(
    client: httpx.AsyncClient, make_key: KeyFactory, database: Database, settings: Settings
) -> None:
    workspace_id, key = await make_key(["recordings.write", "settings.read"])
    url = "s3://AKIAEXAMPLE:s3cr3t%2Fkey@recordings-bucket/calls?endpoint=https://s3.example.com"
    answer = await client.patch("/v1/settings", json={"storage_url": url}, headers=key)
    assert answer.status_code == 200, answer.text
    assert "s3cr3t" not in answer.text and "AKIAEXAMPLE" not in answer.text
    shown = answer.json()
    assert shown["storage_url"] == "s3://recordings-bucket/calls?endpoint=https://s3.example.com"
    assert shown["storage_credentials_set"] is True

    workspace = await _workspace(database, workspace_id)
    assert workspace.storage_credentials is not None
    assert "s3cr3t" not in workspace.storage_credentials
    opened = decrypt_secret(
        workspace.storage_credentials, settings.signing_key(), context=workspace_id
    )
    assert json.loads(opened) == {"access_key": "AKIAEXAMPLE", "secret_key": "s3cr3t/key"}
    with pytest.raises(CryptoError):  # bound to this workspace
        decrypt_secret(workspace.storage_credentials, settings.signing_key(), context="other")

    # Same bucket, new keys given apart from the URL.
    answer = await client.patch(
        "/v1/settings",
        json={"storage_credentials": {"access_key": "AK2", "secret_key": "SK2"}},
        headers=key,
    )
    assert answer.json()["storage_credentials_set"] is True
    assert "SK2" not in answer.text
    # Another bucket without keys: the old keys are not handed to it.
    answer = await client.patch(
        "/v1/settings", json={"storage_url": "s3://other-bucket?region=eu-west-1"}, headers=key
    )
    assert answer.json()["storage_credentials_set"] is False
    answer = await client.patch(
        "/v1/settings",
        json={
            "storage_url": "s3://a:b@other-bucket",
            "storage_credentials": {"access_key": "c", "secret_key": "d"},
        },
        headers=key,
    )
    assert answer.status_code == 400
    assert answer.json()["error"]["field"] == "storage_credentials"
    answer = await client.patch("/v1/settings", json={"storage_url": None}, headers=key)
    assert (answer.json()["storage_url"], answer.json()["storage_credentials_set"]) == (None, False)
