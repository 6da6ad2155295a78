"""Operator commands. Each command reads the settings once and reports errors plainly."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Annotated, TypeVar

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from sautikit import accounts, runtime
from sautikit.app import open_database, serve
from sautikit.cli import phone
from sautikit.config import ConfigError, Settings, load_settings
from sautikit.db.models import ApiKey, Workspace
from sautikit.logs import configure_logging

__all__ = ["app", "main"]

T = TypeVar("T")

app = typer.Typer(
    help="Sautikit: a self-hostable programmable voice platform.", no_args_is_help=True
)
config_app = typer.Typer(help="Inspect the settings.", no_args_is_help=True)
db_app = typer.Typer(help="Manage the database schema.", no_args_is_help=True)
workspaces_app = typer.Typer(help="Create and list workspaces.", no_args_is_help=True)
keys_app = typer.Typer(help="Create, list and revoke API keys.", no_args_is_help=True)
app.add_typer(config_app, name="config")
app.add_typer(db_app, name="db")
app.add_typer(workspaces_app, name="workspaces")
app.add_typer(keys_app, name="keys")
app.add_typer(phone.app, name="phone")

console = Console()
err_console = Console(stderr=True)


def _settings() -> Settings:
    try:
        settings = load_settings()
    except ConfigError as exc:
        err_console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from None
    configure_logging(settings.log_level, settings.log_format)
    return settings


def _in_transaction(
    work: Callable[[AsyncSession], Awaitable[T]], *, migrate: bool | None = None
) -> T:
    """Run ``work`` in one transaction on the configured database."""
    settings = _settings()

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


@app.command("serve")
def serve_command() -> None:
    """Run the API and the PBX in one process until SIGINT/SIGTERM."""
    settings = _settings()
    try:
        runtime.run(serve(settings))
    except ConfigError as exc:
        err_console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from None


@config_app.command("show")
def config_show() -> None:
    """Print the effective settings as JSON, secrets masked."""
    console.print_json(json.dumps(_settings().masked()))


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply every pending migration (SQLite also does this at start)."""

    async def nothing(_session: AsyncSession) -> None:
        return None

    _in_transaction(nothing, migrate=True)
    console.print("database schema is current")


@workspaces_app.command("create")
def workspaces_create(name: str) -> None:
    """Create a workspace and print its id."""

    async def work(session: AsyncSession) -> str:
        return (await accounts.create_workspace(session, name)).id

    console.print(_in_transaction(work))


JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON lines for scripts.")]


def _print_rows(rows: list[dict[str, str]], as_json: bool) -> None:
    if as_json:
        for row in rows:
            print(json.dumps(row))
        return
    table = Table(*(rows[0] if rows else ()))
    for row in rows:
        table.add_row(*row.values())
    console.print(table)


@workspaces_app.command("list")
def workspaces_list(as_json: JsonOption = False) -> None:
    """List workspaces, oldest first."""

    async def work(session: AsyncSession) -> list[Workspace]:
        return list((await session.scalars(select(Workspace).order_by(Workspace.id))).all())

    rows = [
        {"id": ws.id, "name": ws.name, "created_at": ws.created_at.isoformat()}
        for ws in _in_transaction(work)
    ]
    _print_rows(rows, as_json)


def _parse_scopes(value: str) -> list[str]:
    if value.strip() in {"all", "*"}:
        return sorted(accounts.SCOPES)
    return [scope.strip() for scope in value.replace(" ", ",").split(",") if scope.strip()]


@keys_app.command("create")
def keys_create(
    workspace: Annotated[str, typer.Option("--workspace", help="Workspace id.")],
    scopes: Annotated[str, typer.Option("--scopes", help="Comma-separated scopes, or 'all'.")],
    name: Annotated[str, typer.Option("--name", help="A label for listings.")] = "",
) -> None:
    """Create an API key. The key is printed once; only its hash is stored."""

    async def work(session: AsyncSession) -> accounts.CreatedKey:
        return await accounts.create_api_key(session, workspace, _parse_scopes(scopes), name)

    created = _in_transaction(work)
    err_console.print(f"key {created.record.id} — store it now, it is not shown again:")
    print(created.secret)


@keys_app.command("list")
def keys_list(
    workspace: Annotated[
        str | None, typer.Option("--workspace", help="Only this workspace.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """List API keys (never the keys themselves)."""

    async def work(session: AsyncSession) -> list[ApiKey]:
        return await accounts.list_api_keys(session, workspace)

    rows = [
        {
            "id": key.id,
            "workspace": key.workspace_id,
            "prefix": key.prefix + "…",
            "name": key.name,
            "scopes": ",".join(key.scopes),
            "revoked_at": key.revoked_at.isoformat() if key.revoked_at else "",
        }
        for key in _in_transaction(work)
    ]
    _print_rows(rows, as_json)


@keys_app.command("revoke")
def keys_revoke(key_id: str) -> None:
    """Revoke a key at once; requests with it answer 401 api_key.revoked."""

    async def work(session: AsyncSession) -> None:
        await accounts.revoke_api_key(session, key_id)

    _in_transaction(work)
    console.print(f"revoked {key_id}")


@app.command()
def demo() -> None:
    """Start Sautikit on embedded defaults and show it answering real requests."""
    from sautikit.cli.demo import run_demo

    settings = _settings()
    configure_logging("warning", settings.log_format)  # the demo narrates; logs would drown it
    raise typer.Exit(runtime.run(run_demo(settings, console)))


def main() -> None:
    app()
