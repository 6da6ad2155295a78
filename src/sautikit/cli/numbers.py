"""``sautikit numbers``: load and list the operator's inventory, and renew rentals.

The helpers of :mod:`sautikit.cli.main` are imported inside the commands, because that
module mounts this one: importing it at the top would be circular.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from sautikit.cli.common import console, err_console, in_transaction, print_rows

# The inventory modules load inside the commands that use them (`sautikit --help` stays fast).
if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from sautikit.billing.numbers import ImportSummary, RenewalReport
    from sautikit.db.models import Number

__all__ = ["app"]

app = typer.Typer(
    help="Load and list the inventory of numbers; renew their rentals.", no_args_is_help=True
)


@app.command("import")
def import_command(
    file: Annotated[
        Path, typer.Argument(help="CSV: number,monthly_price_minor,capabilities (voice;sms).")
    ],
) -> None:
    """Add numbers and update the prices of numbers nobody holds. A wrong line is named
    by its number and then nothing is imported."""
    from sautikit.billing.numbers import InventoryError, import_inventory, parse_inventory

    try:
        lines = parse_inventory(file.read_bytes())
    except OSError as error:
        err_console.print(f"[red]error:[/] cannot read {file}: {error.strerror}")
        raise typer.Exit(1) from None
    except InventoryError as error:
        for line, message in error.problems:
            err_console.print(f"[red]error:[/] {file}:{line}: {message}")
        err_console.print("nothing was imported")
        raise typer.Exit(1) from None

    async def work(session: AsyncSession) -> ImportSummary:
        return await import_inventory(session, lines)

    summary = in_transaction(work)
    console.print(
        f"{summary.added} added, {summary.updated} updated, {summary.unchanged} unchanged, "
        f"{summary.held} held by workspaces (price kept)"
    )


@app.command("list")
def list_command(
    status: Annotated[
        str | None, typer.Option("--status", help="available, active or suspended.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON lines for scripts.")] = False,
) -> None:
    """List the inventory, in number order."""
    from sqlalchemy import select

    from sautikit.db.models import Number

    async def work(session: AsyncSession) -> list[Number]:
        query = select(Number).order_by(Number.e164)
        if status is not None:
            query = query.where(Number.status == status)
        return list((await session.scalars(query)).all())

    rows = [
        {
            "id": number.id,
            "number": number.e164,
            "status": number.status,
            "monthly_price_minor": str(number.monthly_price_minor),
            "capabilities": ";".join(number.capabilities),
            "workspace": number.workspace_id or "",
        }
        for number in in_transaction(work)
    ]
    print_rows(rows, as_json)


@app.command("renew")
def renew_command() -> None:
    """Charge the rental of every number whose paid month has ended; suspend those the
    wallet cannot pay for. Safe to run as often as wanted (from cron, say): a month is
    never charged twice."""

    from sautikit.billing.numbers import renew_numbers
    from sautikit.db.types import utcnow

    async def work(session: AsyncSession) -> RenewalReport:
        return await renew_numbers(session, utcnow())

    report = in_transaction(work)
    console.print(
        f"{len(report.renewed)} renewed, {len(report.suspended)} suspended, "
        f"{len(report.reactivated)} reactivated, {len(report.released)} released unpaid"
    )
