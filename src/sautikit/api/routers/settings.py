"""``/v1/settings``: the workspace's settings (SPEC §2, §5, §6, §8).

Reading them needs ``settings.read`` (they name the allow-lists, the storage bucket and
retention), and so does a PATCH, whose answer shows them all. A PATCH also needs, for
each field it changes, the scope of the thing that field governs:

* ``calls.write`` — ``destination_allowlist``, ``sip_host_allowlist``,
  ``play_host_allowlist``, ``max_concurrent_calls``, ``max_calls_per_second`` (what and how
  fast the workspace may dial and play), ``callback_encoding`` (how calls talk to the app),
  ``srtp`` (whether its calls' media must be encrypted);
* ``recordings.write`` — ``recording_format``, ``storage_url``, ``storage_credentials``,
  ``retention_days``;
* ``wallet.write`` — ``low_balance_threshold_minor``.

Bucket credentials are accepted (in ``storage_credentials`` or inside ``storage_url``) and
stored encrypted with the operator's key, bound to the workspace id; they are never
answered, only ``storage_credentials_set``. Changing ``storage_url`` to another bucket drops
the stored credentials unless new ones come in the same request, so a changed endpoint is
never sent the old bucket's keys. The stored value is the JSON
``{"access_key": …, "secret_key": …}`` sealed with :func:`sautikit.crypto.encrypt_secret`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit, urlunsplit

from fastapi import APIRouter, Depends, Request
from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from sqlalchemy.ext.asyncio import AsyncSession

from sautikit.api.auth import Principal, require_scopes
from sautikit.api.deps import DbSession, api_context
from sautikit.api.errors import ApiError
from sautikit.api.routing import SautikitRoute
from sautikit.api.schemas import RequestModel
from sautikit.api.urls import is_private_host
from sautikit.billing.authorisation import normalise_host_entry, normalise_prefix
from sautikit.crypto import encrypt_secret
from sautikit.db.models import Workspace
from sautikit.storage.base import StorageError
from sautikit.storage.s3 import parse_s3_url

__all__ = ["CALLBACK_ENCODING_DESCRIPTION", "FIELD_SCOPES", "router"]

router = APIRouter(prefix="/v1", route_class=SautikitRoute, tags=["settings"])

FIELD_SCOPES: dict[str, str] = {
    "destination_allowlist": "calls.write",
    "sip_host_allowlist": "calls.write",
    "play_host_allowlist": "calls.write",
    "max_concurrent_calls": "calls.write",
    "max_calls_per_second": "calls.write",
    "callback_encoding": "calls.write",
    "srtp": "calls.write",
    "recording_format": "recordings.write",
    "storage_url": "recordings.write",
    "storage_credentials": "recordings.write",
    "retention_days": "recordings.write",
    "low_balance_threshold_minor": "wallet.write",
}
CALLBACK_ENCODING_DESCRIPTION = (
    "How POSTs to the app carry the call's fields: `form` (the default) is an "
    "`application/x-www-form-urlencoded` body, every value a string, as Twilio and Africa's "
    "Talking send it; `json` is an `application/json` object whose counts "
    "(`RecordingDuration`, `RecordingChannels`, `DialCallDuration`) are integers. A GET "
    "always sends the fields as a query string. A number may override it."
)
SRTP_DESCRIPTION = (
    "`optional` (the default): a call offering SRTP (SDES `a=crypto`) gets SRTP, a plain one "
    "plain RTP. `required`: calls to the workspace's numbers and from its devices that offer "
    "only plain RTP are refused with SIP 488."
)
_NULLABLE = frozenset({"storage_url", "storage_credentials"})
_MAX_ENTRIES = 100


def _host_entry(text: str) -> str:
    return str(normalise_host_entry(text))


AllowedPrefix = Annotated[str, AfterValidator(normalise_prefix)]
AllowedHost = Annotated[str, AfterValidator(_host_entry)]


def _unique(values: list[str]) -> list[str]:
    return list(dict.fromkeys(values))


class StorageCredentials(RequestModel):
    access_key: str = Field(min_length=1, max_length=256)
    secret_key: str = Field(min_length=1, max_length=256)


class SettingsOut(BaseModel):
    destination_allowlist: list[str] = Field(description="E.164 prefixes the workspace may dial.")
    sip_host_allowlist: list[str] = Field(
        description="Hosts (optionally host:port) SIP URIs may be dialled at; empty: none."
    )
    play_host_allowlist: list[str] = Field(
        description="Hosts the play verb may fetch from; empty: any public host."
    )
    max_concurrent_calls: int
    max_calls_per_second: int
    callback_encoding: Literal["form", "json"] = Field(description=CALLBACK_ENCODING_DESCRIPTION)
    srtp: Literal["optional", "required"] = Field(description=SRTP_DESCRIPTION)
    recording_format: Literal["wav", "mp3"]
    storage_url: str | None = Field(description="The workspace's own bucket, without secrets.")
    storage_credentials_set: bool
    retention_days: int
    low_balance_threshold_minor: int
    currency: str = "KES"


def _no_null_where_refused(schema: dict[str, Any]) -> None:
    """The fields default to None to mean "not sent", but only storage ones take null:
    the schema of every other field says so (no ``null`` in its ``anyOf``)."""
    for name, field in schema.get("properties", {}).items():
        if name in _NULLABLE or "anyOf" not in field:
            continue
        kept = [option for option in field["anyOf"] if option.get("type") != "null"]
        field.pop("default", None)
        if len(kept) == 1:
            field.pop("anyOf")
            field.update(kept[0])
        else:
            field["anyOf"] = kept


class SettingsPatch(RequestModel):
    """Only the fields sent change."""

    model_config = ConfigDict(
        extra="forbid", str_strip_whitespace=True, json_schema_extra=_no_null_where_refused
    )

    destination_allowlist: list[AllowedPrefix] | None = Field(None, max_length=_MAX_ENTRIES)
    sip_host_allowlist: list[AllowedHost] | None = Field(None, max_length=_MAX_ENTRIES)
    play_host_allowlist: list[AllowedHost] | None = Field(None, max_length=_MAX_ENTRIES)
    max_concurrent_calls: int | None = Field(None, ge=1, le=1000)
    max_calls_per_second: int | None = Field(None, ge=1, le=100)
    callback_encoding: Literal["form", "json"] | None = Field(
        None, description=CALLBACK_ENCODING_DESCRIPTION
    )
    srtp: Literal["optional", "required"] | None = Field(None, description=SRTP_DESCRIPTION)
    recording_format: Literal["wav", "mp3"] | None = None
    storage_url: str | None = Field(
        None, max_length=2048, description="s3://BUCKET[/PREFIX]?endpoint=…; null: Sautikit's."
    )
    storage_credentials: StorageCredentials | None = None
    retention_days: int | None = Field(None, ge=1, le=3650)
    low_balance_threshold_minor: int | None = Field(None, ge=0, le=10**12)


def _out(workspace: Workspace) -> SettingsOut:
    return SettingsOut(
        destination_allowlist=workspace.destination_allowlist,
        sip_host_allowlist=workspace.sip_host_allowlist,
        play_host_allowlist=workspace.play_host_allowlist,
        max_concurrent_calls=workspace.max_concurrent_calls,
        max_calls_per_second=workspace.max_calls_per_second,
        # The columns hold only the values this schema allows (checked on write).
        callback_encoding=workspace.callback_encoding,  # type: ignore[arg-type]
        srtp=workspace.srtp,  # type: ignore[arg-type]
        recording_format=workspace.recording_format,  # type: ignore[arg-type]
        storage_url=workspace.storage_url,
        storage_credentials_set=workspace.storage_credentials is not None,
        retention_days=workspace.retention_days,
        low_balance_threshold_minor=workspace.low_balance_threshold_minor,
    )


def _invalid(field: str, message: str) -> ApiError:
    return ApiError(400, "validation.invalid_field", f"{field}: {message}", field=field)


async def _workspace(session: AsyncSession, principal: Principal) -> Workspace:
    workspace = await session.get(Workspace, principal.workspace_id)
    assert workspace is not None  # keys are deleted with their workspace
    return workspace


def _bucket(url: str, *, allow_private: bool) -> tuple[str, StorageCredentials | None]:
    """The storage URL without its credentials, and the credentials it carried."""
    try:
        location = parse_s3_url(url)
    except StorageError as error:
        raise _invalid("storage_url", str(error)) from None
    endpoint_host = urlsplit(location.endpoint or "").hostname or ""
    # A host name is left to the upload, which resolves it.
    if location.endpoint is not None and not allow_private and is_private_host(endpoint_host):
        raise _invalid("storage_url", "the endpoint is a private address")
    parts = urlsplit(url)
    bare = urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))
    if location.access_key is None or location.secret_key is None:
        return bare, None
    return bare, StorageCredentials(access_key=location.access_key, secret_key=location.secret_key)


def _apply_storage(
    workspace: Workspace, body: SettingsPatch, seal: Callable[[str], str], *, allow_private: bool
) -> None:
    credentials = body.storage_credentials
    if "storage_url" in body.model_fields_set:
        if body.storage_url is None:
            workspace.storage_url = workspace.storage_credentials = None
            if credentials is not None:
                raise _invalid("storage_credentials", "there is no storage_url to use them with")
            return
        bare, inline = _bucket(body.storage_url, allow_private=allow_private)
        if inline is not None and credentials is not None:
            raise _invalid(
                "storage_credentials", "give credentials in storage_url or here, not both"
            )
        if bare != workspace.storage_url:
            workspace.storage_credentials = None  # never hand old keys to a new endpoint
        workspace.storage_url = bare
        credentials = inline or credentials
    elif "storage_credentials" in body.model_fields_set and credentials is None:
        workspace.storage_credentials = None
    if credentials is not None:
        if workspace.storage_url is None:
            raise _invalid("storage_credentials", "set storage_url to a bucket first")
        workspace.storage_credentials = seal(json.dumps(credentials.model_dump()))


@router.get("/settings", response_model=SettingsOut, summary="The workspace's settings")
async def get_settings(
    session: DbSession, principal: Principal = Depends(require_scopes("settings.read"))
) -> SettingsOut:
    return _out(await _workspace(session, principal))


@router.patch(
    "/settings",
    response_model=SettingsOut,
    summary="Change settings",
    description=(
        "Needs `settings.read` (the answer shows every setting) and, for each field "
        "changed, the scope of what it governs: `calls.write` for the "
        "allow-lists, call caps and `callback_encoding`, `recordings.write` for recording "
        "format, storage and retention, `wallet.write` for the low-balance threshold. Bucket "
        "credentials are stored encrypted and never answered."
    ),
)
async def patch_settings(
    body: SettingsPatch,
    request: Request,
    session: DbSession,
    principal: Principal = Depends(require_scopes("settings.read")),
) -> SettingsOut:
    missing = sorted({FIELD_SCOPES[name] for name in body.model_fields_set} - principal.scopes)
    if missing:
        raise ApiError(
            403, "api_key.scope_denied", f"this API key lacks the scope {', '.join(missing)}"
        )
    for name in sorted(body.model_fields_set - _NULLABLE):
        if getattr(body, name) is None:
            raise _invalid(name, "may not be null")
    workspace = await _workspace(session, principal)
    settings = api_context(request).settings
    _apply_storage(
        workspace,
        body,
        lambda plaintext: encrypt_secret(plaintext, settings.signing_key(), context=workspace.id),
        allow_private=settings.allow_private_http,
    )
    for name in body.model_fields_set - {"storage_url", "storage_credentials"}:
        value = getattr(body, name)
        setattr(workspace, name, _unique(value) if isinstance(value, list) else value)
    await session.flush()
    return _out(workspace)
