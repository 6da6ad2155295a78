"""What every command shares: the settings, one database transaction, output."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from sautikit import runtime

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from sautikit.config import Settings

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


def load_settings_or_exit(**overrides: object) -> Settings:
    """The settings (``overrides`` first, e.g. ``serve``'s flags), or a one-line error."""
    # Settings (pydantic-settings) and logging load on first use: `--help` needs neither.
    from sautikit.config import ConfigError, load_settings, unknown_variables
    from sautikit.logs import configure_logging

    for warning in unknown_variables():
        err_console.print(f"[yellow]warning:[/] {warning}", highlight=False)
    try:
        settings = load_settings(**overrides)
    except ConfigError as exc:
        err_console.print(f"[red]error:[/] {escape(str(exc))}", highlight=False)
        raise typer.Exit(2) from None
    configure_logging(settings.log_level, settings.log_format, node_id=settings.node_id)
    return settings


def in_transaction(
    work: Callable[[AsyncSession], Awaitable[T]], *, migrate: bool | None = None
) -> T:
    """Run ``work`` in one transaction on the configured database."""
    settings = load_settings_or_exit()
    # Imported here, not at the top: commands that touch no database (--help, --version,
    # config show) start without SQLAlchemy and Alembic.
    from sautikit.config import ConfigError
    from sautikit.db.lifecycle import open_database

    async def run() -> T:
        async with (
            open_database(settings, migrate=migrate) as database,
            database.transaction() as session,
        ):
            return await work(session)

    try:
        return runtime.run(run())
    except ConfigError as exc:
        err_console.print(f"[red]error:[/] {escape(str(exc))}", highlight=False)
        raise typer.Exit(2) from None
    except (LookupError, ValueError) as exc:
        err_console.print(f"[red]error:[/] {escape(str(exc))}", highlight=False)
        raise typer.Exit(1) from None


JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON lines for scripts.")]


def print_rows(rows: list[dict[str, str]], as_json: bool) -> None:
    if as_json:
        for row in rows:
            print(json.dumps(row))
        return
    # Ids are never cut to fit the terminal: each column is as wide as its widest value,
    # and the table may run past the terminal's edge rather than shorten one.
    names = list(rows[0]) if rows else []
    widths = {name: max([len(name), *(len(row[name]) for row in rows)]) for name in names}
    table = Table()
    for name in names:
        table.add_column(name, min_width=widths[name], no_wrap=True)
    for row in rows:
        table.add_row(*row.values())
    needed = sum(widths.values()) + 3 * len(names) + 1
    Console(width=max(console.width, needed)).print(table, crop=False)
