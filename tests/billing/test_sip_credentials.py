"""Device credentials: only HA1 is kept, rotation is two-phase, the registrar's lookup."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from sautikit import accounts
from sautikit.billing import ledger
from sautikit.billing.numbers import claim_number, import_inventory, parse_inventory, release_number
from sautikit.billing.sip_credentials import (
    DeviceDirectory,
    InvalidUsername,
    UsernameTaken,
    create_credential,
    lookup_ha1,
    revoke_credential,
    rotate_credential,
)
from sautikit.db import Database
from sautikit.db.models import Number, SipCredential
from sautikit.sip.digest import DigestAuthenticator, build_authorization, parse_challenge

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


async def _held_number(session: AsyncSession, e164: str = "+254711000001") -> Number:
    workspace = await accounts.create_workspace(session, "w")
    await ledger.top_up(session, workspace.id, 10_000, idempotency_key=f"seed:{e164}")
    (line,) = parse_inventory(f"{e164},10000,voice\n".encode())
    await import_inventory(session, [line])
    number_id = await session.scalar(select(Number.id).where(Number.e164 == e164))
    assert number_id is not None
    return await claim_number(session, workspace_id=workspace.id, number_id=number_id, now=NOW)


async def _registers(
    session: AsyncSession, realm: str, username: str, password: str, algorithm: str = "SHA-256"
) -> bool:
    """A device's REGISTER answering the challenge, checked the way the registrar will."""
    authenticator = DigestAuthenticator(realm, b"nonce-secret")
    (challenge,) = authenticator.challenge((algorithm,))
    authorization = build_authorization(
        parse_challenge(challenge),
        method="REGISTER",
        uri=f"sip:{realm}",
        username=username,
        password=password,
    )
    found = await lookup_ha1(session, realm, username, algorithm)
    if found is None:
        return False
    ha1, _credential = found
    return authenticator.verify(authorization, "REGISTER", lambda *_: ha1).ok


async def test_only_digests_are_stored_and_the_device_registers(database: Database) -> None:
    async with database.transaction() as session:
        number = await _held_number(session)
        created = await create_credential(session, number)
        record = created.record
        assert record.username.startswith("254711000001.")
        assert len(created.password) >= 24
        stored = {
            column.name: getattr(record, column.name) for column in SipCredential.__table__.columns
        }
        assert created.password not in str(stored)
        assert number.workspace_id is not None
        for algorithm in ("MD5", "SHA-256"):
            assert await _registers(
                session, number.workspace_id, record.username, created.password, algorithm
            )
        assert not await _registers(session, number.workspace_id, record.username, "wrong password")
        # The realm must be the credential's workspace.
        assert await lookup_ha1(session, "another-workspace", record.username, "MD5") is None
        assert await lookup_ha1(session, number.workspace_id, record.username, "SHA-512") is None


async def test_rotation_keeps_the_old_login_until_it_is_revoked(database: Database) -> None:
    async with database.transaction() as session:
        number = await _held_number(session)
        realm = number.workspace_id
        assert realm is not None
        old = await create_credential(session, number, "front-desk")
        new = await rotate_credential(session, number, old.record)
        assert new.record.username != "front-desk" and new.password != old.password
        assert await _registers(session, realm, "front-desk", old.password)
        assert await _registers(session, realm, new.record.username, new.password)
        await revoke_credential(session, old.record, now=NOW)
        assert not await _registers(session, realm, "front-desk", old.password)
        assert await _registers(session, realm, new.record.username, new.password)


async def test_chosen_usernames_are_checked_and_unique(database: Database) -> None:
    async with database.transaction() as session:
        number = await _held_number(session)
        await create_credential(session, number, "reception_1")
        other = await _held_number(session, "+254711000002")
        with pytest.raises(UsernameTaken):
            await create_credential(session, other, "reception_1")
        for bad in ("ab", "has space", "-leading", "x" * 65, "ümlaut"):
            with pytest.raises(InvalidUsername):
                await create_credential(session, number, bad)


async def test_suspended_or_released_numbers_cannot_register(database: Database) -> None:
    async with database.transaction() as session:
        number = await _held_number(session)
        realm = number.workspace_id
        assert realm is not None
        created = await create_credential(session, number)
        number.status = "suspended"
        await session.flush()
        assert not await _registers(session, realm, created.record.username, created.password)
        number.status = "active"
        await session.flush()
        assert await _registers(session, realm, created.record.username, created.password)
        await release_number(session, number, now=NOW)
        await session.refresh(created.record)
        assert created.record.revoked_at == NOW
        assert not await _registers(session, realm, created.record.username, created.password)


async def test_the_device_directory_answers_the_user_agents_synchronous_lookup(
    database: Database,
) -> None:
    directory = DeviceDirectory()
    async with database.transaction() as session:
        number = await _held_number(session)
        realm = number.workspace_id
        assert realm is not None
        created = await create_credential(session, number, "desk-phone")
        await directory.reload(session)
    login = directory.login("desk-phone")
    assert login is not None and (login.number, login.number_id) == ("+254711000001", number.id)
    assert directory.realm_for("desk-phone") == realm
    assert created.password not in repr(login)

    authenticator = DigestAuthenticator(realm, b"nonce-secret")
    for algorithm in ("SHA-256", "MD5"):
        (challenge,) = authenticator.challenge((algorithm,))
        authorization = build_authorization(
            parse_challenge(challenge),
            method="REGISTER",
            uri=f"sip:{realm}",
            username="desk-phone",
            password=created.password,
        )
        assert authenticator.verify(authorization, "REGISTER", directory.lookup_ha1).ok
    assert directory.lookup_ha1("desk-phone", "another-realm", "MD5") is None
    assert directory.realm_for("nobody") is None

    async with database.transaction() as session:
        credential = await session.get(SipCredential, created.record.id)
        assert credential is not None
        await revoke_credential(session, credential, now=NOW)
        await directory.reload(session)
    assert directory.login("desk-phone") is None
    assert directory.lookup_ha1("desk-phone", realm, "MD5") is None
