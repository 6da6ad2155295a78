"""``/v1/numbers/{id}/sip-credentials``: shown once, kept as HA1, rotated in two phases."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import select
from tests.support import KeyFactory

from sautikit.billing import ledger
from sautikit.billing.numbers import import_inventory, parse_inventory
from sautikit.billing.sip_credentials import lookup_ha1
from sautikit.db import Database
from sautikit.db.models import Number, SipCredential
from sautikit.pbx.registrations import RegistrationStore
from sautikit.sip.digest import DigestAuthenticator, build_authorization, parse_challenge
from sautikit.sip.registrar import Binding, Source


@pytest.fixture
async def owned(
    client: httpx.AsyncClient, make_key: KeyFactory, database: Database
) -> tuple[str, str, dict[str, str]]:
    """(workspace id, number id, headers) for a claimed number and a sip.manage key."""
    async with database.transaction() as session:
        await import_inventory(session, parse_inventory(b"+254711000001,10000,voice\n"))
        number_id = await session.scalar(select(Number.id))
    assert number_id is not None
    workspace_id, key = await make_key(["numbers.write", "sip.manage"])
    async with database.transaction() as session:
        await ledger.top_up(session, workspace_id, 10_000, idempotency_key="t")
    assert (await client.post(f"/v1/numbers/{number_id}/claim", headers=key)).status_code == 200
    return workspace_id, number_id, key


async def _registers(database: Database, realm: str, username: str, password: str) -> bool:
    authenticator = DigestAuthenticator(realm, b"nonce-secret")
    (challenge,) = authenticator.challenge(("MD5",))
    authorization = build_authorization(
        parse_challenge(challenge),
        method="REGISTER",
        uri=f"sip:{realm}",
        username=username,
        password=password,
    )
    async with database.transaction() as session:
        found = await lookup_ha1(session, realm, username, "MD5")
    return (
        found is not None
        and authenticator.verify(authorization, "REGISTER", lambda *_: found[0]).ok
    )


async def test_create_list_rotate_delete(
    client: httpx.AsyncClient, database: Database, owned: tuple[str, str, dict[str, str]]
) -> None:
    realm, number_id, key = owned
    base = f"/v1/numbers/{number_id}/sip-credentials"

    answer = await client.post(base, json={"username": "front-desk"}, headers=key)
    assert answer.status_code == 201, answer.text
    first = answer.json()
    assert (first["username"], first["realm"], first["status"]) == ("front-desk", realm, "active")
    # What a phone needs, from the server's own settings (defaults here).
    assert first["registrar"] == {
        "host": "127.0.0.1",
        "port": 5080,
        "transports": ["udp", "tcp"],
        "tls_port": None,  # no certificate is set
        "digest_algorithms": ["MD5"],
    }
    assert first["identity"] == "sip:front-desk@127.0.0.1"
    password = first["password"]
    async with database.transaction() as session:
        stored = await session.get(SipCredential, first["id"])
        assert stored is not None
        assert password not in (stored.ha1_md5, stored.ha1_sha256, stored.username)
    assert await _registers(database, realm, "front-desk", password)

    listing = (await client.get(base, headers=key)).json()
    assert [item["id"] for item in listing["data"]] == [first["id"]]
    assert listing["data"][0]["identity"] == first["identity"]
    assert listing["data"][0]["registrar"] == first["registrar"]
    assert password not in str(listing) and "password" not in listing["data"][0]
    assert "password" not in (await client.get(f"{base}/{first['id']}", headers=key)).json()

    answer = await client.post(f"{base}/{first['id']}/rotate", headers=key)
    assert answer.status_code == 201, answer.text
    second = answer.json()
    assert second["replaces"] == first["id"] and second["password"] != password
    # Phase one: both logins work while devices move over.
    assert await _registers(database, realm, "front-desk", password)
    assert await _registers(database, realm, second["username"], second["password"])

    assert (await client.delete(f"{base}/{first['id']}", headers=key)).status_code == 204
    assert (await client.delete(f"{base}/{first['id']}", headers=key)).status_code == 204
    assert not await _registers(database, realm, "front-desk", password)
    assert await _registers(database, realm, second["username"], second["password"])
    statuses = {
        item["id"]: item["status"] for item in (await client.get(base, headers=key)).json()["data"]
    }
    assert statuses == {first["id"]: "revoked", second["id"]: "active"}
    answer = await client.post(f"{base}/{first['id']}/rotate", headers=key)
    assert answer.status_code == 409
    assert answer.json()["error"]["code"] == "sip_credentials.revoked"


async def test_usernames_are_validated_and_unique(
    client: httpx.AsyncClient, owned: tuple[str, str, dict[str, str]]
) -> None:
    _, number_id, key = owned
    base = f"/v1/numbers/{number_id}/sip-credentials"
    generated = (await client.post(base, headers=key)).json()
    assert generated["username"].startswith("254711000001.")
    taken = await client.post(base, json={"username": generated["username"]}, headers=key)
    assert taken.status_code == 409
    assert taken.json()["error"]["code"] == "sip_credentials.username_taken"
    bad = await client.post(base, json={"username": "no spaces"}, headers=key)
    assert bad.status_code == 400
    assert bad.json()["error"]["field"] == "username"


async def test_credentials_of_another_number_answer_404(
    client: httpx.AsyncClient, make_key: KeyFactory, owned: tuple[str, str, dict[str, str]]
) -> None:
    workspace_id, number_id, key = owned
    base = f"/v1/numbers/{number_id}/sip-credentials"
    created = (await client.post(base, headers=key)).json()
    answer = await client.delete(f"{base}/not-a-credential", headers=key)
    assert answer.status_code == 404
    assert answer.json()["error"]["code"] == "sip_credentials.not_found"
    _, reader = await make_key(["numbers.read"], workspace_id=workspace_id)
    answer = await client.get(base, headers=reader)
    assert answer.status_code == 403
    assert created["password"] not in answer.text


async def test_a_credential_may_name_its_own_digest_algorithms(
    client: httpx.AsyncClient, owned: tuple[str, str, dict[str, str]]
) -> None:
    _, number_id, key = owned
    base = f"/v1/numbers/{number_id}/sip-credentials"
    body = {"username": "desk-phone", "digest_algorithms": ["sha-256", "MD5"]}
    answer = await client.post(base, json=body, headers=key)
    assert answer.status_code == 201, answer.text
    created = answer.json()
    assert created["registrar"]["digest_algorithms"] == ["SHA-256", "MD5"]  # canonical
    shown = (await client.get(f"{base}/{created['id']}", headers=key)).json()
    assert shown["registrar"]["digest_algorithms"] == ["SHA-256", "MD5"]
    rotated = (await client.post(f"{base}/{created['id']}/rotate", headers=key)).json()
    assert rotated["registrar"]["digest_algorithms"] == ["SHA-256", "MD5"]
    for wrong in ([], ["SHA-512-256"], ["AKAv1-MD5"]):
        bad = await client.post(base, json={"digest_algorithms": wrong}, headers=key)
        assert bad.status_code == 400, bad.text
        assert bad.json()["error"]["field"] == "digest_algorithms"


async def test_a_credentials_registrations_show_the_contact_and_where_it_was_received(
    client: httpx.AsyncClient, database: Database, owned: tuple[str, str, dict[str, str]]
) -> None:
    _, number_id, key = owned
    base = f"/v1/numbers/{number_id}/sip-credentials"
    created = (await client.post(base, json={"username": "desk"}, headers=key)).json()
    assert created["registrations"] == []
    store = RegistrationStore(database, node="n1", clock=lambda: 1000.0)
    natted = Binding(
        aor="sip:desk",
        contact="sip:desk@192.168.1.20:5060",
        expires_at=1300.0,
        registered_at=1000.0,
        call_id="c1",
        cseq=1,
        source=Source("198.51.100.7", 40123, "udp"),
    )
    await store.save("sip:desk", [natted], 1000.0)

    shown = (await client.get(f"{base}/{created['id']}", headers=key)).json()
    (registration,) = shown["registrations"]
    assert registration["contact"] == "sip:desk@192.168.1.20:5060"  # kept as sent
    assert registration["received"] == {"transport": "udp", "host": "198.51.100.7", "port": 40123}
    assert registration["behind_nat"] is True and registration["path"] == []
    (listed,) = (await client.get(base, headers=key)).json()["data"]
    assert listed["registrations"] == shown["registrations"]

    assert (await client.delete(f"{base}/{created['id']}", headers=key)).status_code == 204
    (revoked,) = (await client.get(base, headers=key)).json()["data"]
    assert revoked["registrations"] == []
