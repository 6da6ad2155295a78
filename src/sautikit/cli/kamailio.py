"""``sautikit kamailio-config``: the Kamailio in front of several nodes (cluster.kamailio)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from sautikit.cli.common import err_console

__all__ = ["kamailio_config_command"]


def kamailio_config_command(
    node: Annotated[
        list[str],
        typer.Option("--node", help="A node's SIP address, host:port (repeat for each)."),
    ],
    output: Annotated[
        Path, typer.Option(help="The folder to write kamailio.cfg and dispatcher.list to.")
    ],
    listen: Annotated[
        str, typer.Option(help="The address Kamailio listens on (UDP and TCP).")
    ] = "0.0.0.0:5060",
    advertise: Annotated[
        str, typer.Option(help="The address Kamailio names in Record-Route and Path.")
    ] = "",
    ping_interval: Annotated[
        int, typer.Option(help="Seconds between the OPTIONS probes of each node.")
    ] = 2,
) -> None:
    """Write a Kamailio 5.6 configuration (dispatcher with OPTIONS probing, record-route,
    Path for registrations) for the given nodes; run it with ``kamailio -f
    OUTPUT/kamailio.cfg``."""
    from sautikit.cluster.kamailio import kamailio_config, parse_address

    try:
        nodes = [parse_address(text) for text in node]
        listen_at = parse_address(listen, default_port=5060)
        output.mkdir(parents=True, exist_ok=True)
        dispatcher_list = (output / "dispatcher.list").resolve()
        config = kamailio_config(
            nodes,
            listen=listen_at,
            advertise=advertise or None,
            dispatcher_list_path=dispatcher_list,
            ping_interval=ping_interval,
        )
    except (ValueError, OSError) as exc:
        err_console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from None
    (output / "kamailio.cfg").write_text(config.cfg)
    dispatcher_list.write_text(config.dispatcher_list)
    typer.echo(f"wrote {output / 'kamailio.cfg'} and {dispatcher_list}")
