"""``sautikit console``: the operator makes a workspace's first console member."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from sautikit.cli.common import console, in_transaction, load_settings_or_exit
from sautikit.console.roles import INVITE_LIFETIME, ROLES

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

__all__ = ["app"]

app = typer.Typer(help="Members of the web console (/console).", no_args_is_help=True)


@app.command("add-member")
def add_member(
    workspace_id: Annotated[str, typer.Argument(help="The member's workspace.")],
    email: Annotated[str, typer.Argument(help="The e-mail address they sign in with.")],
    role: Annotated[str, typer.Option("--role", help=f"One of {', '.join(ROLES)}.")] = "owner",
    password: Annotated[
        str,
        typer.Option(
            prompt=True,
            hide_input=True,
            confirmation_prompt=True,
            show_default=False,
            help="Asked for when not given (at least 10 characters).",
        ),
    ] = "",
) -> None:
    """Add a member who signs in to the console with EMAIL and a password."""

    from sautikit.console.auth import create_member

    async def add(session: AsyncSession) -> tuple[str, str]:
        member = await create_member(session, workspace_id, email, password, role)
        return member.id, member.email

    member_id, address = in_transaction(add)
    console.print(
        f"{address} ({role}) can now sign in at /console — member {member_id}", highlight=False
    )


@app.command("invite")
def invite(
    workspace_id: Annotated[str, typer.Argument(help="The workspace to join.")],
    email: Annotated[str, typer.Argument(help="The invitee's e-mail address.")],
    role: Annotated[str, typer.Option("--role", help=f"One of {', '.join(ROLES)}.")] = "owner",
) -> None:
    """Print a link with which EMAIL chooses a password and joins (once, within 7 days)."""
    base = load_settings_or_exit().effective_public_url

    from sautikit.console.auth import create_invite

    async def make(session: AsyncSession) -> str:
        return await create_invite(session, workspace_id, email, role)

    token = in_transaction(make)
    console.print(f"{base}/console/invite/{token}", highlight=False, soft_wrap=True)
    console.print(f"valid for {INVITE_LIFETIME.days} days, once", highlight=False)
