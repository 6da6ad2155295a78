"""Registrations in the database: a restarted process, or another one, finds the phone."""

from __future__ import annotations

from sqlalchemy import select
from tests.sip.test_server_auth import client_on, close
from tests.sip.test_useragent import FAST, REALM, lookup_ha1, register

from sautikit.db import Database
from sautikit.db.models import SipRegistration
from sautikit.pbx.registrations import RegistrationStore, reach
from sautikit.sip import UserAgent
from sautikit.sip.registrar import ContactRequest, Registrar, Source
from sautikit.sip.registrar_service import RegistrarService
from sautikit.sip.server_auth import ServerAuth
from sautikit.sip.transport import Peer


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


def test_a_device_is_reached_through_its_path_else_its_nat_source() -> None:
    registrar = Registrar()
    behind_proxy = registrar.register(
        "sip:alice",
        [ContactRequest("sip:alice@192.168.1.2:5060")],
        call_id="a",
        cseq=1,
        now=0.0,
        source=Source("10.0.0.1", 5060),
        path=["<sip:edge@10.0.0.1:5062;transport=tcp;lr>", "<sip:lb@10.0.0.9;lr>"],
    ).bindings[0]
    natted = registrar.register(
        "sip:bob",
        [ContactRequest("sip:bob@192.168.1.3:5060")],
        call_id="b",
        cseq=1,
        now=0.0,
        source=Source("203.0.113.9", 40000),
    ).bindings[0]
    proxied = reach(behind_proxy)
    assert proxied.contact == "sip:alice@192.168.1.2:5060"  # the Request-URI stays
    assert proxied.destination == Peer("tcp", "10.0.0.1", 5062)  # the first proxy
    assert proxied.route == behind_proxy.path
    direct = reach(natted)
    assert direct.destination == Peer("udp", "203.0.113.9", 40000) and direct.route == ()
    # Only the phone without a proxy in front gets Sautikit's NAT keep-alive.
    service = RegistrarService(registrar, ServerAuth(None), clock=lambda: 1.0)
    assert service.natted() == [natted]
