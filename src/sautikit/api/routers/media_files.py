"""``GET /v1/files/{key}``: downloads from the local store through its signed URLs.

No API key: the URL's HMAC signature and expiry are the authorisation (see
``sautikit.storage.signing``), so an app can fetch a recording straight from a callback.
The composition root must set ``app.state.store`` to the running ``ObjectStore``; when it
is not a ``LocalObjectStore`` (S3 serves its own URLs), every path here answers 404.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from sautikit.api.errors import ApiError, ErrorEnvelope
from sautikit.api.routing import SautikitRoute
from sautikit.storage.base import InvalidKey, ObjectNotFound, content_disposition
from sautikit.storage.local import DOWNLOAD_PATH, LocalObjectStore
from sautikit.storage.signing import BadSignature, UrlExpired

__all__ = ["router"]

router = APIRouter(route_class=SautikitRoute, tags=["recordings"])


def _not_found() -> ApiError:
    return ApiError(404, "storage.not_found", "no file is stored at this URL")


@router.get(
    DOWNLOAD_PATH + "/{key:path}",
    summary="Download a stored file through a signed URL (no API key)",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"audio/wav": {}, "audio/mpeg": {}}, "description": "The file"},
        403: {"model": ErrorEnvelope, "description": "`storage.bad_signature`"},
        404: {"model": ErrorEnvelope, "description": "`storage.not_found`"},
        410: {"model": ErrorEnvelope, "description": "`storage.url_expired`"},
    },
)
async def download_file(
    request: Request,
    key: str,
    expires: str | None = None,
    signature: str | None = None,
    filename: str | None = None,
) -> StreamingResponse:
    # Fields are optional here so that a URL missing one is a bad signature, not a 400.
    store = getattr(request.app.state, "store", None)
    if not isinstance(store, LocalObjectStore):
        raise _not_found()
    try:
        store.signer.verify(key, expires, signature, filename)
    except UrlExpired:
        raise ApiError(
            410, "storage.url_expired", "this download URL has expired; ask for a new one"
        ) from None
    except BadSignature:
        raise ApiError(
            403,
            "storage.bad_signature",
            "this download URL's signature is missing or does not match",
        ) from None
    try:
        opened = await store.open(key)
    except (ObjectNotFound, InvalidKey):
        raise _not_found() from None
    headers = {"Content-Length": str(opened.size), "Cache-Control": "private, no-store"}
    if filename is not None:
        headers["Content-Disposition"] = content_disposition(filename)
    return StreamingResponse(opened.chunks(), media_type=opened.content_type, headers=headers)
