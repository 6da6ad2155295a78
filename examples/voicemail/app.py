"""A voicemail box: the seed page's Express app, in Python with FastAPI and the Sautikit SDK.

Sautikit calls ``/voicemail/prompt`` when a caller reaches the box; the app answers a
greeting and a ``record`` action. When the caller presses ``#`` (or is silent for 10 s),
Sautikit posts the recording's details to ``/voicemail/recording``; the app downloads
``RecordingUrl`` and stores the audio in an S3 bucket (or, with no bucket configured, in a
local folder). The transcript arrives later at ``/voicemail/transcript``.

Every request must carry a valid ``X-Sautikit-Signature`` (checked with
:func:`sautikit_sdk.webhooks.verify`) when ``SAUTIKIT_SIGNING_SECRET`` is set.

Run it with ``python examples/voicemail/app.py`` (see README.md for the settings).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import httpx
import uvicorn
from fastapi import Depends, FastAPI, HTTPException, Request, Response

from sautikit_sdk.actions import hangup, record, response, say
from sautikit_sdk.webhooks import (
    SIGNATURE_HEADER,
    WebhookVerificationError,
    callback_fields,
    verify,
)

log = logging.getLogger("voicemail")

GREETING = (
    "You have reached the voicemail of Acme Corp. Please leave a message after the tone. "
    "Press the hash key when done."
)


@dataclass(frozen=True)
class VoicemailSettings:
    """Where the app is reached, how it checks requests, and where voicemails go."""

    public_url: str | None = None  # how Sautikit reaches this app; None: the request's host
    signing_secret: str | None = None  # None: signatures are not checked (development only)
    s3_bucket: str | None = None  # None: store under local_dir instead of S3
    s3_endpoint_url: str | None = None  # MinIO, Ceph, R2 …; None: AWS S3
    aws_region: str | None = None
    local_dir: Path = Path(".")  # without a bucket: files go to local_dir/voicemails/…

    @classmethod
    def from_env(cls) -> VoicemailSettings:
        return cls(
            public_url=os.environ.get("VOICEMAIL_PUBLIC_URL") or None,
            signing_secret=os.environ.get("SAUTIKIT_SIGNING_SECRET") or None,
            s3_bucket=os.environ.get("S3_BUCKET") or None,
            s3_endpoint_url=os.environ.get("S3_ENDPOINT_URL") or None,
            aws_region=os.environ.get("AWS_REGION") or None,
            local_dir=Path(os.environ.get("VOICEMAIL_DIR", ".")),
        )


class VoicemailStore(Protocol):
    async def put(
        self, key: str, content: bytes, content_type: str, metadata: dict[str, str]
    ) -> str:
        """Store ``content`` under ``key``; answer where it went."""
        ...


class S3Store:
    """Any S3-compatible bucket, through boto3 (credentials from its usual environment)."""

    def __init__(self, bucket: str, endpoint_url: str | None, region: str | None) -> None:
        import boto3  # type: ignore[import-untyped]  # only the S3 path needs it

        self.bucket = bucket
        self.s3 = boto3.client("s3", endpoint_url=endpoint_url, region_name=region)

    async def put(
        self, key: str, content: bytes, content_type: str, metadata: dict[str, str]
    ) -> str:
        await asyncio.to_thread(
            self.s3.put_object,
            Bucket=self.bucket,
            Key=key,
            Body=content,
            ContentType=content_type,
            Metadata=metadata,
        )
        return f"s3://{self.bucket}/{key}"


class FolderStore:
    """A local folder laid out like the bucket (``<root>/voicemails/<CallId>/…``): the
    file, and its metadata beside it as ``<name>.json``."""

    def __init__(self, root: Path) -> None:
        self.root = root

    async def put(
        self, key: str, content: bytes, content_type: str, metadata: dict[str, str]
    ) -> str:
        target = self.root / key
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
        sidecar = {"content_type": content_type, **metadata}
        target.with_name(target.name + ".json").write_text(json.dumps(sidecar, indent=2))
        return str(target)


def open_store(settings: VoicemailSettings) -> VoicemailStore:
    if settings.s3_bucket:
        return S3Store(settings.s3_bucket, settings.s3_endpoint_url, settings.aws_region)
    return FolderStore(settings.local_dir)


async def _fields(request: Request) -> dict[str, str]:
    """The callback's fields, all strings: Sautikit posts a form by default (JSON when the
    number or workspace chose it); :func:`callback_fields` reads either."""
    return callback_fields(
        await request.body(), request.headers.get("content-type"), request.url.query
    )


def create_app(
    settings: VoicemailSettings | None = None, *, http: httpx.AsyncClient | None = None
) -> FastAPI:
    """The voicemail app; ``http`` fetches recordings (default: a new client per download)."""
    settings = settings or VoicemailSettings.from_env()
    store = open_store(settings)
    if settings.signing_secret is None:
        log.warning("SAUTIKIT_SIGNING_SECRET is unset: request signatures are NOT checked")

    async def require_signature(request: Request) -> None:
        if settings.signing_secret is None:
            return
        # Over the raw body, before parsing it (a GET callback would sign its query string).
        try:
            verify(
                await request.body(), request.headers.get(SIGNATURE_HEADER), settings.signing_secret
            )
        except WebhookVerificationError as refused:
            raise HTTPException(status_code=401, detail=str(refused)) from None

    def url(request: Request, path: str) -> str:
        base = settings.public_url or str(request.base_url)
        return base.rstrip("/") + path

    async def download(recording_url: str) -> httpx.Response:
        if http is not None:
            return (await http.get(recording_url)).raise_for_status()
        async with httpx.AsyncClient(timeout=60) as client:
            return (await client.get(recording_url)).raise_for_status()

    app = FastAPI(title="Sautikit voicemail example", dependencies=[Depends(require_signature)])

    @app.post("/voicemail/prompt")
    async def prompt(request: Request) -> dict[str, Any]:
        """Sautikit calls this when the caller reaches the voicemail box."""
        return response(
            say(GREETING, language="en-US"),
            record(
                action=url(request, "/voicemail/recording"),
                method="POST",
                timeout=10,  # stop after 10 s of silence
                max_length=120,  # cap at 2 minutes
                finish_on_key="#",
                transcribe=True,
                transcribe_callback=url(request, "/voicemail/transcript"),
            ),
        )

    @app.post("/voicemail/recording")
    async def recording(request: Request) -> dict[str, Any]:
        """Sautikit posts the recording's details here when recording ends."""
        fields = await _fields(request)
        call_id, recording_id = fields.get("CallId", ""), fields.get("RecordingSid", "")
        duration = fields.get("RecordingDuration", "0")
        # Sautikit does not post an empty recording; an old or odd request might still.
        if not fields.get("RecordingUrl"):
            log.info("Call %s left no message", call_id)
            return response(hangup())
        # Download the recording from Sautikit: the URL is signed and short-lived.
        audio = await download(fields["RecordingUrl"])
        content_type = audio.headers.get("content-type", "audio/wav").split(";")[0]
        extension = "mp3" if content_type == "audio/mpeg" else "wav"
        where = await store.put(
            f"voicemails/{call_id}/{recording_id}.{extension}",
            audio.content,
            content_type,
            {"callId": call_id, "duration": duration},
        )
        log.info("Stored voicemail for call %s, duration %ss, at %s", call_id, duration, where)
        return response(hangup())  # the call ends after the recording

    @app.post("/voicemail/transcript", status_code=204)
    async def transcript(request: Request) -> Response:
        """The transcript, delivered asynchronously."""
        fields = await _fields(request)
        call_id = fields.get("CallId", "")
        if fields.get("TranscriptionStatus") == "completed":
            text = fields.get("TranscriptionText", "")
            log.info("Transcript for %s: %s", call_id, text)
            # Saved beside the audio, as the seed's "save transcript to DB" step.
            await store.put(
                f"voicemails/{call_id}/{fields.get('RecordingSid')}.txt",
                text.encode(),
                "text/plain; charset=utf-8",
                {"callId": call_id},
            )
        return Response(status_code=204)

    return app


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    uvicorn.run(
        create_app(),
        host=os.environ.get("HOST", "127.0.0.1"),
        port=int(os.environ.get("PORT", "3000")),
    )
