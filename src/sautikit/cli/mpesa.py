"""``sautikit mpesa``: the operator's side of M-Pesa top-ups.

``register-urls`` tells Daraja where Paybill payments are validated and confirmed;
``unmatched`` lists payments that named no workspace; ``assign`` credits one of them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from sautikit import runtime
from sautikit.cli.common import (
    JsonOption,
    console,
    err_console,
    in_transaction,
    load_settings_or_exit,
    print_rows,
)

# Daraja's client and the ledger load inside the commands (`sautikit --help` stays fast).
if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from sautikit.db.models import MpesaPayment, TopUp

__all__ = ["app"]

app = typer.Typer(help="M-Pesa top-ups through Safaricom's Daraja.", no_args_is_help=True)


@app.command("register-urls")
def register_urls() -> None:
    """Register this deployment's C2B validation and confirmation URLs with Daraja."""
    from sautikit.billing.mpesa.daraja import DarajaClient, DarajaError
    from sautikit.billing.mpesa.topups import callback_urls

    settings = load_settings_or_exit()
    if not settings.daraja_enabled:
        err_console.print("[red]error:[/] set the SAUTIKIT_DARAJA_* settings first")
        raise typer.Exit(2)
    urls = callback_urls(settings)

    async def register() -> str:
        client = DarajaClient(settings)
        try:
            answer = await client.register_c2b_urls(
                confirmation_url=urls["c2b_confirmation"], validation_url=urls["c2b_validation"]
            )
        finally:
            await client.aclose()
        return answer.description

    try:
        description = runtime.run(register())
    except DarajaError as exc:
        err_console.print(f"[red]error:[/] Daraja refused: {exc}")
        raise typer.Exit(1) from None
    console.print(f"registered with Daraja ({description or 'accepted'})", highlight=False)
    console.print(f"confirmation: {urls['c2b_confirmation']}", highlight=False)


@app.command("unmatched")
def unmatched(as_json: JsonOption = False) -> None:
    """Payments M-Pesa reported that matched no workspace, oldest first."""
    from sqlalchemy import select

    from sautikit.billing.ledger import format_kes
    from sautikit.db.models import MpesaPayment

    async def load(session: AsyncSession) -> list[MpesaPayment]:
        query = select(MpesaPayment).where(MpesaPayment.status == "unmatched")
        return list((await session.scalars(query.order_by(MpesaPayment.id))).all())

    rows = [
        {
            "id": payment.id,
            "receipt": payment.trans_id,
            "amount": format_kes(payment.amount_minor),
            "account_reference": payment.account_reference or "",
            "source": payment.source,
            "received_at": payment.received_at.isoformat(),
        }
        for payment in in_transaction(load)
    ]
    print_rows(rows, as_json)


@app.command("assign")
def assign(
    payment_id: Annotated[str, typer.Argument(help="The id from `sautikit mpesa unmatched`.")],
    workspace_id: Annotated[str, typer.Argument(help="The workspace to credit.")],
) -> None:
    """Credit an unmatched payment to a workspace, once."""
    from sautikit.billing.ledger import format_kes
    from sautikit.billing.mpesa.topups import assign_payment

    async def credit(session: AsyncSession) -> TopUp:
        return await assign_payment(session, payment_id, workspace_id)

    topup = in_transaction(credit)
    console.print(
        f"credited {format_kes(topup.amount_minor)} to {workspace_id} (top-up {topup.id})",
        highlight=False,
    )
