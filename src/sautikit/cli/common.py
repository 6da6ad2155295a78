"""What every command shares: the settings, one database transaction, output."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Annotated, TypeVar

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy.ext.asyncio import AsyncSession

from sautikit import runtime
from sautikit.app import open_database
from sautikit.config import ConfigError, Settings, load_settings
from sautikit.logs import configure_logging

__all__ = [
    "JsonOption",
    "console",
    "err_console",
    "in_transaction",
    "load_settings_or_exit",
    "print_rows",
]

T = TypeVar("T")

console = Console()
# Error lines are never wrapped: a file path and its line number stay one greppable line.
err_console = Console(stderr=True, soft_wrap=True)


def load_settings_or_exit() -> Settings:
    try:
        settings = load_settings()
    except ConfigError as exc:
        err_console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from None
    configure_logging(settings.log_level, settings.log_format, node_id=settings.node_id)
    return settings


def in_transaction(
    work: Callable[[AsyncSession], Awaitable[T]], *, migrate: bool | None = None
) -> T:
    """Run ``work`` in one transaction on the configured database."""
    settings = load_settings_or_exit()

    async def run() -> T:
        async with (
            open_database(settings, migrate=migrate) as database,
            database.transaction() as session,
        ):
            return await work(session)

    try:
        return runtime.run(run())
    except ConfigError as exc:
        err_console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from None
    except (LookupError, ValueError) as exc:
        err_console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(1) from None


JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON lines for scripts.")]


def print_rows(rows: list[dict[str, str]], as_json: bool) -> None:
    if as_json:
        for row in rows:
            print(json.dumps(row))
        return
    table = Table(*(rows[0] if rows else ()))
    for row in rows:
        table.add_row(*row.values())
    console.print(table)
