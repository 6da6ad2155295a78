"""``sautikit trunks``: the operator's carrier trunks (SPEC §9).

A trunk carries outbound calls whose number starts with one of its prefixes (the longest
prefix across trunks wins) and is trusted for inbound calls from its addresses. Its
password is stored encrypted with the operator's secret. A running server picks up
changes within seconds.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from sautikit.cli.common import JsonOption, in_transaction, load_settings_or_exit, print_rows

# SQLAlchemy and the models load inside the commands (`sautikit --help` stays fast).
if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from sautikit.db.models import Trunk

__all__ = ["app"]

app = typer.Typer(help="Carrier trunks: where calls go out and come in.", no_args_is_help=True)


@app.command("add")
def add(
    name: str,
    host: Annotated[
        str, typer.Option("--host", help="The carrier's SIP address: an IP or a DNS name.")
    ],
    port: Annotated[
        int, typer.Option("--port", help="0: take hosts and ports from the name's SRV records.")
    ] = 5060,
    transport: Annotated[
        str,
        typer.Option(
            "--transport",
            help="udp, tcp or tls (verified against SAUTIKIT_SIP_TLS_CA_FILE; use --port 5061).",
        ),
    ] = "udp",
    username: Annotated[str | None, typer.Option("--username", help="Digest user.")] = None,
    password: Annotated[str | None, typer.Option("--password", help="Digest password.")] = None,
    prefixes: Annotated[
        list[str], typer.Option("--prefix", help="E.164 prefix to route here (repeat).")
    ] = [],  # noqa: B006 - typer reads the default, never mutates it
    inbound: Annotated[
        list[str], typer.Option("--inbound", help="Source IP or CIDR trusted inbound (repeat).")
    ] = [],  # noqa: B006
    dial_prefix: Annotated[
        str, typer.Option("--dial-prefix", help="Digits before the number, instead of '+'.")
    ] = "",
    digest_algorithms: Annotated[
        list[str],
        typer.Option(
            "--digest-algorithm",
            help="Answer its digest challenges only in these, best first (repeat; "
            "e.g. SHA-256 to refuse MD5); default: any.",
        ),
    ] = [],  # noqa: B006
    srtp: Annotated[
        str,
        typer.Option(
            "--srtp",
            help="optional (SRTP when offered) or required (offer SRTP, refuse plain RTP).",
        ),
    ] = "optional",
) -> None:
    """Add (or replace) a trunk. ``--prefix`` names the calls it carries out (longest
    prefix wins across trunks); ``--inbound`` the addresses it brings calls in from. A
    trunk needs at least one of them: with neither it would carry nothing."""
    from sqlalchemy import select

    from sautikit.billing.authorisation import normalise_prefix
    from sautikit.crypto import encrypt_secret
    from sautikit.db.models import Trunk
    from sautikit.sip.digest import DigestError, challenge_algorithms

    if transport not in ("udp", "tcp", "tls"):
        raise typer.BadParameter("transport must be udp, tcp or tls")
    if srtp not in ("optional", "required"):
        raise typer.BadParameter("srtp must be optional or required")
    try:
        algorithms = list(challenge_algorithms(digest_algorithms)) if digest_algorithms else None
    except DigestError as error:
        raise typer.BadParameter(str(error)) from None
    if not prefixes and not inbound:
        raise typer.BadParameter(
            "the trunk would carry nothing: give --prefix (e.g. --prefix +254) for the "
            "calls it carries out, or --inbound for the addresses it brings calls in from"
        )
    settings = load_settings_or_exit()
    secret = (
        encrypt_secret(password, settings.signing_key(), context=f"trunk:{name}")
        if password
        else None
    )

    async def work(session: AsyncSession) -> None:
        existing = await session.scalar(select(Trunk).where(Trunk.name == name))
        if existing is not None:
            await session.delete(existing)
            await session.flush()
        session.add(
            Trunk(
                name=name,
                host=host,
                port=port,
                transport=transport,
                username=username,
                password_encrypted=secret,
                prefixes=[normalise_prefix(prefix) for prefix in prefixes],
                inbound_addresses=inbound,
                dial_prefix=dial_prefix,
                digest_algorithms=algorithms,
                srtp=srtp,
            )
        )

    in_transaction(work)
    outbound = (
        f"carries calls to {', '.join(prefixes)} out to {host}:{port}"
        if prefixes
        else "inbound only: no --prefix, so no outbound call routes here"
    )
    incoming = f"; takes calls in from {', '.join(inbound)}" if inbound else ""
    typer.echo(f"trunk {name} saved: {outbound}{incoming}")


@app.command("list")
def list_trunks(as_json: JsonOption = False) -> None:
    """List trunks (never their passwords)."""
    from sqlalchemy import select

    from sautikit.db.models import Trunk

    async def work(session: AsyncSession) -> list[Trunk]:
        return list((await session.scalars(select(Trunk).order_by(Trunk.name))).all())

    rows = [
        {
            "name": trunk.name,
            "address": f"{trunk.transport}:{trunk.host}:{trunk.port or 'SRV'}",
            "username": trunk.username or "",
            "prefixes": ",".join(trunk.prefixes) or "(inbound only)",
            "inbound": ",".join(trunk.inbound_addresses),
            "health": trunk.health,
        }
        for trunk in in_transaction(work)
    ]
    print_rows(rows, as_json)


@app.command("remove")
def remove(name: str) -> None:
    """Remove a trunk."""
    from sqlalchemy import select

    from sautikit.db.models import Trunk

    async def work(session: AsyncSession) -> None:
        trunk = await session.scalar(select(Trunk).where(Trunk.name == name))
        if trunk is None:
            raise LookupError(f"no trunk {name}")
        await session.delete(trunk)

    in_transaction(work)
    typer.echo(f"trunk {name} removed")
