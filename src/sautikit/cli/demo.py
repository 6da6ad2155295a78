"""``sautikit demo``: Sautikit on embedded defaults, answering real authenticated requests."""

from __future__ import annotations

import asyncio
import socket

import httpx
from rich.console import Console

from sautikit import accounts
from sautikit.app import open_database, serve
from sautikit.config import Settings

__all__ = ["run_demo"]


def _port_is_free(host: str, port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


async def _make_demo_key(settings: Settings) -> str:
    async with (
        open_database(settings, migrate=True) as database,
        database.transaction() as session,
    ):
        workspace = await accounts.create_workspace(session, "Demo workspace")
        created = await accounts.create_api_key(
            session, workspace.id, sorted(accounts.SCOPES), "demo"
        )
    return created.secret


async def run_demo(settings: Settings, console: Console) -> int:
    if not _port_is_free(settings.http_host, settings.http_port):
        settings = settings.model_copy(update={"http_port": 0})
    console.rule("[bold]Sautikit demo")
    console.print(f"data directory: {settings.data_dir.resolve()}")
    key = await _make_demo_key(settings)
    console.print(f"[green]✓[/] created a demo workspace and API key {key[:14]}…")

    listening: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    server = asyncio.create_task(serve(settings, on_ready=listening.set_result))
    await asyncio.wait({server, listening}, return_when=asyncio.FIRST_COMPLETED)
    if not listening.done():
        await server  # start-up failed: let its error surface
    base = listening.result()
    console.print(f"[green]✓[/] Sautikit is listening on {base}")
    try:
        async with httpx.AsyncClient(base_url=base, timeout=10) as http:
            auth = {"Authorization": f"Bearer {key}"}
            answer = await http.get("/v1/workspace", headers=auth)
            console.print(f"[green]✓[/] GET /v1/workspace → {answer.status_code}")
            console.print_json(answer.text)

            body = {"url": "https://app.example.com/sautikit/events", "events": ["*"]}
            headers = {**auth, "Idempotency-Key": "demo-webhook-1"}
            first = await http.post("/v1/webhooks", json=body, headers=headers)
            again = await http.post("/v1/webhooks", json=body, headers=headers)
            console.print(
                f"[green]✓[/] POST /v1/webhooks → {first.status_code}; the retry with the same "
                f"Idempotency-Key replays it (Idempotent-Replayed: "
                f"{again.headers.get('idempotent-replayed')}) and creates nothing new"
            )

            pricing = await http.get("/v1/public/pricing")
            console.print(f"[green]✓[/] GET /v1/public/pricing → {pricing.status_code}")
            console.print_json(pricing.text)

            refused = await http.get("/v1/workspace")
            console.print(f"[green]✓[/] without a key → {refused.status_code}")
            console.print_json(refused.text)
            ok = (
                answer.status_code == 200
                and first.status_code == 201
                and again.json() == first.json()
            )
    finally:
        server.cancel()
        await asyncio.gather(server, return_exceptions=True)
    console.rule()
    console.print(
        "Next: run [bold]sautikit serve[/] and open http://127.0.0.1:8080/docs for the API "
        "reference (/openapi.json for the document); README.md has the quickstart."
    )
    return 0 if ok else 1
