"""``POST /v1/sip/token``: a short-lived HS256 JWT for a browser client identity."""

from __future__ import annotations

import base64
from datetime import datetime
from pathlib import Path

import httpx
import jwt
import pytest
from pydantic import SecretStr
from tests.support import KeyFactory, active_number

from sautikit.calls.clients import client_tokens
from sautikit.config import Settings
from sautikit.db import Database
from sautikit.sip.token_auth import ISSUER, TokenError, client_sip_user


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    # Nothing listens in these tests: the ports only shape the answer's URLs.
    return Settings(
        data_dir=tmp_path / "var",
        secret_key=SecretStr("test-secret"),
        sip_advertised_host="203.0.113.5",
        sip_ws_port=24080,
    )


async def test_a_token_names_the_identity_its_workspace_and_lives_at_most_300_s(
    client: httpx.AsyncClient, make_key: KeyFactory, database: Database, settings: Settings
) -> None:
    workspace_id, key = await make_key(["sip.manage"])
    async with database.transaction() as session:
        session.add(active_number("+254711000001", workspace_id))
    answer = await client.post(
        "/v1/sip/token", json={"identity": "alice", "caller_id": "+254711000001"}, headers=key
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    user = client_sip_user(workspace_id, "alice")
    assert body["identity"] == "alice"
    assert body["sip_uri"] == f"sip:{user}@203.0.113.5"
    assert body["ws_url"] == "ws://203.0.113.5:24080" and body["wss_url"] is None
    claims = jwt.decode(body["token"], options={"verify_signature": False})
    assert claims["iss"] == ISSUER and claims["sub"] == "alice"
    assert claims["wid"] == workspace_id and claims["cid"] == "+254711000001"
    assert claims["exp"] - claims["iat"] == 300
    assert datetime.fromisoformat(body["expires_at"]).timestamp() == claims["exp"]
    verified = client_tokens(settings).verify(body["token"])
    assert verified.sip_user == user and verified.caller_id == "+254711000001"
    shorter = await client.post("/v1/sip/token", json={"identity": "bob", "ttl": 60}, headers=key)
    short_claims = jwt.decode(shorter.json()["token"], options={"verify_signature": False})
    assert short_claims["exp"] - short_claims["iat"] == 60 and "cid" not in short_claims


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"identity": "alice", "ttl": 301}, "ttl"),
        ({"identity": "alice", "ttl": 0}, "ttl"),
        ({"identity": "al ice"}, "identity"),
        ({"identity": "client~x~y"}, "identity"),
        ({"identity": "x" * 65}, "identity"),
        ({}, "identity"),
        ({"identity": "alice", "scope": "all"}, "scope"),
    ],
)
async def test_a_bad_request_is_refused_with_the_field_named(
    client: httpx.AsyncClient, make_key: KeyFactory, body: dict[str, object], field: str
) -> None:
    _, key = await make_key(["sip.manage"])
    answer = await client.post("/v1/sip/token", json=body, headers=key)
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert error["code"] == "validation.invalid_field" and field in error["message"]


async def test_a_caller_id_must_be_an_active_number_of_the_workspace(
    client: httpx.AsyncClient, make_key: KeyFactory, database: Database
) -> None:
    other, _ = await make_key(["sip.manage"])
    _, key = await make_key(["sip.manage"])
    async with database.transaction() as session:
        session.add(active_number("+254711000002", other))
    for number in ("+254711000002", "+254799999999"):
        answer = await client.post(
            "/v1/sip/token", json={"identity": "alice", "caller_id": number}, headers=key
        )
        assert answer.status_code == 404
        assert answer.json()["error"]["code"] == "numbers.not_owned"


async def test_the_scope_is_sip_manage(client: httpx.AsyncClient, make_key: KeyFactory) -> None:
    _, key = await make_key(["calls.write"])
    answer = await client.post("/v1/sip/token", json={"identity": "alice"}, headers=key)
    assert answer.status_code == 403
    assert answer.json()["error"]["code"] == "api_key.scope_denied"
    assert (await client.post("/v1/sip/token", json={"identity": "a"})).status_code == 401


async def test_the_operation_is_typed_in_openapi(client: httpx.AsyncClient) -> None:
    document = (await client.get("/openapi.json")).json()
    operation = document["paths"]["/v1/sip/token"]["post"]
    answer = operation["responses"]["200"]["content"]["application/json"]["schema"]
    name = answer["$ref"].rsplit("/", 1)[1]
    fields = document["components"]["schemas"][name]["properties"]
    assert {"token", "expires_at", "identity", "sip_uri", "ws_url", "wss_url"} <= set(fields)


def test_tokens_of_another_key_expired_or_too_long_are_refused(settings: Settings) -> None:
    tokens = client_tokens(settings)
    token, _ = tokens.issue("ws-1", "alice", ttl=60)
    assert tokens.verify(token).identity == "alice"
    other = client_tokens(
        Settings(data_dir=settings.data_dir, secret_key=SecretStr("another-secret"))
    )
    with pytest.raises(TokenError, match="signature") as forged:
        other.verify(token)
    assert forged.value.forged
    past = type(tokens)(tokens._key, clock=lambda: 1_000_000.0)
    old, _ = past.issue("ws-1", "alice", ttl=60)
    with pytest.raises(TokenError, match="expired") as expired:
        tokens.verify(old)
    assert not expired.value.forged
    forever = jwt.encode(
        {"iss": ISSUER, "sub": "alice", "wid": "ws-1", "iat": 1, "exp": 4_000_000_000},
        tokens._key,
        algorithm="HS256",
    )
    with pytest.raises(TokenError, match="longer than 300"):
        tokens.verify(forever)
    header = base64.urlsafe_b64encode(b'{"alg":"none","typ":"JWT"}').rstrip(b"=").decode()
    claims = base64.urlsafe_b64encode(
        f'{{"iss":"{ISSUER}","sub":"a","wid":"w","iat":1,"exp":4000000000}}'.encode()
    )
    unsigned = f"{header}.{claims.rstrip(b'=').decode()}."
    with pytest.raises(TokenError):
        tokens.verify(unsigned)
