"""``sautikit rates`` and ``sautikit wallet``: the rate deck and workspace wallets.

The helpers of :mod:`sautikit.cli.main` are imported inside the commands, because that
module mounts this one: importing it at the top would be circular.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from sautikit.cli.common import console, err_console, in_transaction

# The billing modules load inside the commands that use them (`sautikit --help` stays fast).
if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from sautikit.billing.rating import StoredRates
    from sautikit.db.models import WalletEntry

__all__ = ["app"]

app = typer.Typer(help="The rate deck and workspace wallets.", no_args_is_help=True)
rates_app = typer.Typer(help="Import the rate deck.", no_args_is_help=True)
wallet_app = typer.Typer(help="Credit and inspect workspace wallets.", no_args_is_help=True)
app.add_typer(rates_app, name="rates")
app.add_typer(wallet_app, name="wallet")


@rates_app.command("import")
def rates_import(
    file: Annotated[
        Path,
        typer.Argument(help="CSV: prefix,destination,direction,rate_per_minute_minor."),
    ],
    workspace: Annotated[
        str | None,
        typer.Option("--workspace", help="Import as this workspace's own rates, not the deck."),
    ] = None,
    replace: Annotated[
        bool, typer.Option("--replace", help="Remove the stored lines the file does not name.")
    ] = False,
) -> None:
    """Add or update rates from a CSV file. Every wrong line is named by its number, and
    then nothing is imported."""
    from sautikit.billing.rates_import import RateDeckError, parse_rate_deck
    from sautikit.billing.rating import store_rates

    try:
        lines = parse_rate_deck(file.read_bytes())
    except OSError as error:
        err_console.print(f"[red]error:[/] cannot read {file}: {error.strerror}")
        raise typer.Exit(1) from None
    except RateDeckError as error:
        for line, reason in error.problems:
            err_console.print(f"[red]error:[/] {file}:{line}: {reason}", highlight=False)
        err_console.print("nothing was imported")
        raise typer.Exit(1) from None

    async def work(session: AsyncSession) -> StoredRates:
        return await store_rates(session, lines, workspace_id=workspace, replace=replace)

    stored = in_transaction(work)
    console.print(
        f"{len(lines)} rates: {stored.added} added, {stored.updated} updated, "
        f"{stored.removed} removed"
    )


@wallet_app.command("credit")
def wallet_credit(
    workspace: Annotated[str, typer.Argument(help="Workspace id.")],
    amount_minor: Annotated[int, typer.Argument(min=1, help="Minor units to add; 100 = KES 1.00.")],
    reference: Annotated[
        str, typer.Option("--reference", help="Where the money came from, e.g. a receipt.")
    ],
    idempotency_key: Annotated[
        str | None,
        typer.Option(
            "--idempotency-key", help="Credit at most once per key, e.g. the payment's id."
        ),
    ] = None,
) -> None:
    """Credit a workspace's wallet with a payment received."""
    from sautikit.billing import ledger
    from sautikit.ids import new_id

    key = "operator:" + (idempotency_key or new_id())

    async def work(session: AsyncSession) -> WalletEntry:
        return await ledger.top_up(
            session, workspace, amount_minor, idempotency_key=key, reference=reference
        )

    entry = in_transaction(work)
    if entry.amount_minor != amount_minor or entry.reference != reference:
        err_console.print(
            f"[red]error:[/] the key {idempotency_key} already credited "
            f"{ledger.format_kes(entry.amount_minor)} ({entry.reference}); nothing was added"
        )
        raise typer.Exit(1)
    console.print(
        f"credited {ledger.format_kes(entry.amount_minor)}; "
        f"balance {ledger.format_kes(entry.balance_after_minor)} (entry {entry.id})",
        highlight=False,
    )


@wallet_app.command("balance")
def wallet_balance(
    workspace: Annotated[str, typer.Argument(help="Workspace id.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """Show a workspace's balance, and what live calls hold of it."""
    from sautikit.billing import ledger
    from sautikit.db.models import Workspace

    async def work(session: AsyncSession) -> tuple[int, int]:
        if await session.get(Workspace, workspace) is None:
            raise LookupError(f"no workspace {workspace}")
        return await ledger.balance(session, workspace), await ledger.available(session, workspace)

    balance, available = in_transaction(work)
    if as_json:
        print(
            json.dumps(
                {
                    "workspace_id": workspace,
                    "balance_minor": balance,
                    "available_minor": available,
                    "currency": "KES",
                }
            )
        )
        return
    console.print(
        f"balance {ledger.format_kes(balance)}, available {ledger.format_kes(available)}",
        highlight=False,
    )
