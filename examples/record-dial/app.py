"""Record a two-party call via Dial: the seed page's second example, with the Sautikit SDK.

``python app.py call --to +254722999000 --from +254700000001`` places the call with
``POST /v1/calls`` (``client.calls.create``). When the callee answers, Sautikit asks this
app's ``/calls/connect-and-record`` for actions: a notice, then a ``dial`` to the agent
with ``record: "record-from-answer"`` and ``callerId`` set to the call's ``To``. Sautikit
records both parties from the moment the agent answers and posts ``call.recording.ready``
to ``/calls/events``, where the app prints the recording's download URL.

``python app.py serve`` runs the app; see README.md for the settings.
"""

from __future__ import annotations

import argparse
import logging
import os
from dataclasses import dataclass
from typing import Any

import uvicorn
from fastapi import Depends, FastAPI, HTTPException, Request, Response

from sautikit_sdk import Call, Sautikit
from sautikit_sdk.actions import dial, response, say
from sautikit_sdk.webhooks import (
    SIGNATURE_HEADER,
    WebhookVerificationError,
    callback_fields,
    verify,
)

log = logging.getLogger("record-dial")


@dataclass(frozen=True)
class RecordDialSettings:
    agent_number: str = "+254720000001"  # who the answered call is connected to
    signing_secret: str | None = None  # None: signatures are not checked (development only)

    @classmethod
    def from_env(cls) -> RecordDialSettings:
        return cls(
            agent_number=os.environ.get("AGENT_NUMBER", cls.agent_number),
            signing_secret=os.environ.get("SAUTIKIT_SIGNING_SECRET") or None,
        )


def place_call(client: Sautikit, *, to: str, from_: str, app_url: str) -> Call:
    """The seed's ``curl -X POST /v1/calls``, plus an ``events_url`` for the recording."""
    return client.calls.create(
        to=to,
        from_=from_,
        action_url=f"{app_url.rstrip('/')}/calls/connect-and-record",
        events_url=f"{app_url.rstrip('/')}/calls/events",
    )


def create_app(settings: RecordDialSettings | None = None) -> FastAPI:
    settings = settings or RecordDialSettings.from_env()
    if settings.signing_secret is None:
        log.warning("SAUTIKIT_SIGNING_SECRET is unset: request signatures are NOT checked")

    async def require_signature(request: Request) -> None:
        if settings.signing_secret is None:
            return
        try:
            verify(
                await request.body(), request.headers.get(SIGNATURE_HEADER), settings.signing_secret
            )
        except WebhookVerificationError as refused:
            raise HTTPException(status_code=401, detail=str(refused)) from None

    app = FastAPI(title="Sautikit record-dial example", dependencies=[Depends(require_signature)])

    @app.post("/calls/connect-and-record")
    async def connect_and_record(request: Request) -> dict[str, Any]:
        """Answers Dial with recording, once the callee of the API call picks up."""
        fields = callback_fields(
            await request.body(), request.headers.get("content-type"), request.url.query
        )
        return response(
            say("This call will be recorded. Please hold while we connect you."),
            dial(
                number=settings.agent_number,
                record="record-from-answer",
                caller_id=fields["To"],
            ),
        )

    @app.post("/calls/events", status_code=204)
    async def events(request: Request) -> Response:
        """Call events; ``call.recording.ready`` carries a presigned ``download_url``."""
        event = await request.json()
        if event.get("kind") == "call.recording.ready":
            data = event.get("data", {})
            log.info("Recording of call %s: %s", data.get("call_id"), data.get("download_url"))
        return Response(status_code=204)

    return app


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    call = commands.add_parser("call", help="place the recorded call through the API")
    call.add_argument("--to", required=True, help="E.164 number to call, e.g. +254722999000")
    call.add_argument("--from", dest="from_", required=True, help="a number you hold")
    call.add_argument(
        "--app-url",
        default=os.environ.get("RECORD_DIAL_PUBLIC_URL", "http://127.0.0.1:3001"),
        help="how Sautikit reaches this app",
    )
    commands.add_parser("serve", help="run the app that answers Sautikit")
    args = parser.parse_args()
    if args.command == "call":
        client = Sautikit(
            os.environ["SAUTIKIT_API_KEY"],
            base_url=os.environ.get("SAUTIKIT_BASE_URL", "http://127.0.0.1:8080"),
        )
        placed = place_call(client, to=args.to, from_=args.from_, app_url=args.app_url)
        print(f"call {placed.id} is {placed.status}")
    else:
        uvicorn.run(
            create_app(),
            host=os.environ.get("HOST", "127.0.0.1"),
            port=int(os.environ.get("PORT", "3001")),
        )


if __name__ == "__main__":
    main()
