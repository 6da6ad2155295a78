"""Operator commands. Each command reads the settings once and reports errors plainly."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.markup import escape

import sautikit
from sautikit import runtime
from sautikit.cli import billing, cluster, kamailio, members, mpesa, numbers, phone, trunks
from sautikit.cli.common import (
    JsonOption,
    console,
    err_console,
    in_transaction,
    load_settings_or_exit,
    print_rows,
)

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from sautikit import accounts
    from sautikit.db.models import ApiKey, Workspace

__all__ = ["app", "main"]

T = TypeVar("T")

app = typer.Typer(
    help="Sautikit: a self-hostable programmable voice platform.", no_args_is_help=True
)


def _print_version(wanted: bool) -> None:
    if wanted:
        typer.echo(f"sautikit {sautikit.__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            callback=_print_version,
            is_eager=True,
            help="Print the version and exit.",
        ),
    ] = False,
) -> None:
    """Sautikit: a self-hostable programmable voice platform."""


config_app = typer.Typer(help="Inspect the settings.", no_args_is_help=True)
db_app = typer.Typer(help="Manage the database schema.", no_args_is_help=True)
workspaces_app = typer.Typer(help="Create and list workspaces.", no_args_is_help=True)
keys_app = typer.Typer(help="Create, list and revoke API keys.", no_args_is_help=True)
app.add_typer(config_app, name="config")
app.add_typer(db_app, name="db")
app.add_typer(workspaces_app, name="workspaces")
app.add_typer(keys_app, name="keys")
app.add_typer(phone.app, name="phone")
app.add_typer(numbers.app, name="numbers")
app.add_typer(trunks.app, name="trunks")
app.add_typer(mpesa.app, name="mpesa")
app.add_typer(members.app, name="console")
app.command("kamailio-config")(kamailio.kamailio_config_command)
app.command("cluster-demo")(cluster.cluster_demo_command)
for command_group in billing.app.registered_groups:
    assert command_group.typer_instance is not None  # each group was added as a Typer
    app.add_typer(command_group.typer_instance, name=command_group.name)


def _flag(name: str, help_text: str) -> Any:
    variable = "SAUTIKIT_" + name.upper().replace("-", "_")
    return typer.Option(f"--{name}", help=f"{help_text} (overrides {variable}).")


@app.command("serve")
def serve_command(
    data_dir: Annotated[Path | None, _flag("data-dir", "Where files and SQLite live")] = None,
    database_url: Annotated[str | None, _flag("database-url", "The database")] = None,
    http_host: Annotated[str | None, _flag("http-host", "The API's listen address")] = None,
    http_port: Annotated[int | None, _flag("http-port", "The API's port")] = None,
    sip_host: Annotated[str | None, _flag("sip-host", "SIP's listen address")] = None,
    sip_port: Annotated[int | None, _flag("sip-port", "SIP's port")] = None,
    public_url: Annotated[str | None, _flag("public-url", "The API's public URL")] = None,
    log_level: Annotated[str | None, _flag("log-level", "debug, info, warning or error")] = None,
    roles: Annotated[
        str | None, _flag("roles", "What this node does: api, pbx, worker (comma-separated)")
    ] = None,
) -> None:
    """Run the API, the PBX and the workers in one process until SIGINT/SIGTERM; with
    --roles only some of them (docs/operations.md). A flag wins over its SAUTIKIT_*
    variable and the config file."""
    from sautikit.app import serve  # the whole server: only this command needs it
    from sautikit.config import ConfigError

    flags = {
        "data_dir": data_dir,
        "database_url": database_url,
        "http_host": http_host,
        "http_port": http_port,
        "sip_host": sip_host,
        "sip_port": sip_port,
        "public_url": public_url,
        "log_level": log_level,
        "roles": roles,
    }
    settings = load_settings_or_exit(**{k: v for k, v in flags.items() if v is not None})
    try:
        runtime.run(serve(settings))
    except ConfigError as exc:
        err_console.print(f"[red]error:[/] {escape(str(exc))}", highlight=False)
        raise typer.Exit(2) from None


@config_app.command("show")
def config_show() -> None:
    """Print the effective settings as JSON, secrets masked."""
    console.print_json(json.dumps(load_settings_or_exit().masked()))


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply every pending migration (SQLite also does this at start)."""

    async def nothing(_session: AsyncSession) -> None:
        return None

    in_transaction(nothing, migrate=True)
    console.print("database schema is current")


@workspaces_app.command("create")
def workspaces_create(name: str) -> None:
    """Create a workspace and print its id."""

    from sautikit import accounts

    async def work(session: AsyncSession) -> str:
        return (await accounts.create_workspace(session, name)).id

    console.print(in_transaction(work))


@workspaces_app.command("list")
def workspaces_list(as_json: JsonOption = False) -> None:
    """List workspaces, oldest first."""

    from sqlalchemy import select

    from sautikit.db.models import Workspace

    async def work(session: AsyncSession) -> list[Workspace]:
        return list((await session.scalars(select(Workspace).order_by(Workspace.id))).all())

    rows = [
        {"id": ws.id, "name": ws.name, "created_at": ws.created_at.isoformat()}
        for ws in in_transaction(work)
    ]
    print_rows(rows, as_json)


def _parse_scopes(value: str) -> list[str]:
    from sautikit import accounts

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

    from sautikit import accounts

    async def work(session: AsyncSession) -> accounts.CreatedKey:
        return await accounts.create_api_key(session, workspace, _parse_scopes(scopes), name)

    created = in_transaction(work)
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

    from sautikit import accounts

    async def work(session: AsyncSession) -> list[ApiKey]:
        return await accounts.list_api_keys(session, workspace)

    rows = [
        {
            "id": key.id,
            "workspace": key.workspace_id,
            "prefix": key.prefix + "…",  # the key itself is never stored
            "name": key.name,
            "scopes": ",".join(key.scopes),
            "revoked_at": key.revoked_at.isoformat() if key.revoked_at else "",
        }
        for key in in_transaction(work)
    ]
    print_rows(rows, as_json)


@keys_app.command("revoke")
def keys_revoke(key_id: str) -> None:
    """Revoke a key at once; requests with it answer 401 api_key.revoked."""

    from sautikit import accounts

    async def work(session: AsyncSession) -> None:
        await accounts.revoke_api_key(session, key_id)

    in_transaction(work)
    console.print(f"revoked {key_id}")


@app.command()
def demo() -> None:
    """Start Sautikit on embedded defaults and show it answering real requests."""
    from sautikit.cli.demo import run_demo
    from sautikit.logs import configure_logging

    settings = load_settings_or_exit()
    configure_logging("warning", settings.log_format)  # the demo narrates; logs would drown it
    raise typer.Exit(runtime.run(run_demo(settings, console)))


def main() -> None:
    app()
