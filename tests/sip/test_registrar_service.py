"""The registrar service keeps NATed phones reachable with OPTIONS keep-alives."""

from __future__ import annotations

import asyncio

from tests.sip.test_useragent import FAST, REALM, lookup_ha1, register

from sautikit.sip import UserAgent
from sautikit.sip.message import Request, Response
from sautikit.sip.transaction import ServerTransaction, TransactionLayer
from sautikit.sip.transport import Peer, SipTransportLayer


class Phone:
    """A transaction user that answers OPTIONS 200 and remembers them."""

    def __init__(self) -> None:
        self.options: asyncio.Queue[Request] = asyncio.Queue()

    def on_request(self, transaction: ServerTransaction) -> None:
        self.options.put_nowait(transaction.request)
        transaction.respond(transaction.request.create_response(200, to_tag="p"))

    def on_ack(self, ack: Request, source: Peer) -> None:
        """Nothing to acknowledge."""

    def on_stray_response(self, response: Response, source: Peer) -> None:
        """Nothing is waiting for it."""


async def test_a_phone_behind_nat_gets_keepalives_and_one_on_its_own_address_does_not() -> None:
    agent = await UserAgent.listen(
        "127.0.0.1",
        0,
        tcp=False,
        timers=FAST,
        lookup_ha1=lookup_ha1,
        realm_for=lambda r: REALM,
        nat_keepalive=0.2,
    )
    layers = []
    phones = []
    try:
        for _ in range(2):
            transport = SipTransportLayer()
            await transport.start("127.0.0.1", 0, tcp=False)
            phone = Phone()
            layers.append(TransactionLayer(transport, phone, FAST))
            phones.append(phone)
        natted, direct = layers
        # The NATed phone's Contact names its LAN address; the other's is where it is.
        contact = f"<sip:alice@192.168.1.20:{natted.transport.port}>"
        assert (
            await register(natted, agent, "alice", "s3cret", algorithm="MD5", contact=contact)
        ).status == 200
        direct_contact = f"<sip:bob@127.0.0.1:{direct.transport.port}>"
        assert (
            await register(direct, agent, "bob", "hunter2", algorithm="MD5", contact=direct_contact)
        ).status == 200
        ping = await asyncio.wait_for(phones[0].options.get(), 10)
        assert ping.method == "OPTIONS" and str(ping.uri).startswith("sip:alice@192.168.1.20")
        await asyncio.wait_for(phones[0].options.get(), 10)  # and again, on the timer
        assert phones[1].options.empty()
    finally:
        for layer in layers:
            layer.close()
            await layer.transport.close()
        await agent.close()
