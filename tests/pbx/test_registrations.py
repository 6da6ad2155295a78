"""Registrations in the database: a restarted process, or another one, finds the phone."""

from __future__ import annotations

from sqlalchemy import select
from tests.sip.test_server_auth import client_on, close
from tests.sip.test_useragent import FAST, REALM, lookup_ha1, register

from sautikit.db import Database
from sautikit.db.models import SipRegistration
from sautikit.pbx.registrations import RegistrationStore
from sautikit.sip import UserAgent


async def agent_with(store: RegistrationStore) -> UserAgent:
    return await UserAgent.listen(
        "127.0.0.1",
        0,
        tcp=False,
        timers=FAST,
        lookup_ha1=lookup_ha1,
        realm_for=lambda r: REALM,
        persist_bindings=store.save,
    )


async def test_a_registration_outlives_its_process_and_is_seen_by_another(
    database: Database,
) -> None:
    first_store = RegistrationStore(database, node="node-a")
    first = await agent_with(first_store)
    phone = await client_on("127.0.0.1")
    try:
        ok = await register(phone, first, "alice", "s3cret", algorithm="MD5")
        assert ok.status == 200  # answered once the row is written
        async with database.sessions() as session:
            (row,) = (await session.scalars(select(SipRegistration))).all()
        assert (row.aor, row.source_host, row.source_port) == (
            "sip:alice",
            "127.0.0.1",
            phone.transport.port,
        )
        await first.close()  # the process stops; a new one (or another node) starts

        second_store = RegistrationStore(database, node="node-b")
        second = await agent_with(second_store)
        try:
            assert second.lookup("sip:alice@anywhere") == []
            assert second.registrar_service is not None
            second.registrar_service.reload(await second_store.load())
            (binding,) = second.lookup("sip:alice@anywhere")
            assert binding.source is not None and binding.source.port == phone.transport.port
            assert 290 <= binding.expires_in(second_store._clock()) <= 300

            # The phone unregisters through the new process: the row goes too.
            gone = await register(
                phone, second, "alice", "s3cret", algorithm="MD5", cseq=5, expires=0
            )
            assert gone.status == 200
            async with database.sessions() as session:
                assert (await session.scalars(select(SipRegistration))).all() == []
            assert await first_store.load() == []
        finally:
            await second.close()
    finally:
        await close(phone)
