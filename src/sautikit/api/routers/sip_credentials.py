"""``/v1/numbers/{id}/sip-credentials``: device logins for a number (SPEC §2, §6).

Devices register with Digest auth; the realm is the workspace id. The password is in the
answer of create and rotate only — Sautikit keeps nothing but its digest HA1 values.
Rotation is two-phase: rotate makes a new credential and the old one keeps working until
it is deleted.

Each answer also says what to type into a phone: the registrar's advertised host, port,
transports and digest algorithms, and the exact identity (``sip:username@host``) —
docs/pbx.md "Connect a softphone" walks through baresip and linphone with them.

The list and get answers show the credential's live registrations: each Contact as the
phone sent it and, apart, the address its REGISTER was received from — where calls to a
phone behind NAT actually go (docs/pbx.md "Behind NAT").
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Body, Depends, Request, Response
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from sautikit.api.auth import Principal, require_scopes
from sautikit.api.deps import DbSession, api_context
from sautikit.api.errors import ApiError, ErrorEnvelope
from sautikit.api.pagination import PageParams, page_params, paginate
from sautikit.api.routers.numbers import owned_number
from sautikit.api.routing import SautikitRoute
from sautikit.api.schemas import RequestModel
from sautikit.billing.sip_credentials import (
    CreatedCredential,
    InvalidDigestAlgorithms,
    InvalidUsername,
    UsernameTaken,
    create_credential,
    revoke_credential,
    rotate_credential,
)
from sautikit.config import Settings
from sautikit.db.models import Number, SipCredential, SipRegistration
from sautikit.db.types import utcnow
from sautikit.pbx.registrations import live_registrations, source_of
from sautikit.sip.addresses import advertised_address
from sautikit.sip.registrar import received_elsewhere

__all__ = ["router"]

router = APIRouter(
    prefix="/v1/numbers/{number_id}/sip-credentials",
    route_class=SautikitRoute,
    tags=["sip credentials"],
)

manage = require_scopes("sip.manage")


class CredentialIn(RequestModel):
    username: str | None = Field(
        None, description="3–64 letters, digits, '.', '_' or '-'; generated when left out."
    )
    digest_algorithms: list[str] | None = Field(
        None,
        description="What the device's challenge offers, in order (`MD5`, `SHA-256`); "
        "left out: the server's setting (MD5 by default, which every phone answers).",
    )


class RegistrarOut(BaseModel):
    host: str = Field(description="The SIP server (registrar and outbound proxy) to set.")
    port: int
    transports: list[str] = Field(description="Transports it accepts: `udp`, `tcp`, `tls`.")
    tls_port: int | None = Field(
        None, description="The port of SIP over TLS (`transport=tls`), when it is on."
    )
    digest_algorithms: list[str] = Field(
        description="Digest algorithms it challenges this credential with, in order."
    )


class ReceivedOut(BaseModel):
    transport: str = Field(description="`udp`, `tcp` or `tls`.")
    host: str
    port: int


class RegistrationOut(BaseModel):
    contact: str = Field(description="The Contact URI exactly as the phone registered it.")
    received: ReceivedOut | None = Field(
        description="Where the REGISTER came from: calls to the phone are sent here."
    )
    behind_nat: bool = Field(
        description="The REGISTER came from another address than its Contact names (NAT)."
    )
    path: list[str] = Field(description="The Path (RFC 3327) of proxies in front, if any.")
    registered_at: datetime
    expires_at: datetime


class CredentialOut(BaseModel):
    id: str
    number_id: str
    username: str
    realm: str = Field(description="The digest realm: the workspace id.")
    identity: str = Field(
        description="The SIP identity (address of record) to configure: `sip:username@host`."
    )
    registrar: RegistrarOut
    status: str = Field(description="`active`, or `revoked` once deleted.")
    created_at: datetime
    revoked_at: datetime | None
    registrations: list[RegistrationOut] = Field(
        default_factory=list, description="The phones registered with it now."
    )


class CredentialCreated(CredentialOut):
    password: str = Field(description="Shown only in this answer; Sautikit keeps a digest.")
    replaces: str | None = Field(
        None, description="After a rotation: the credential that still works until deleted."
    )


class CredentialPage(BaseModel):
    data: list[CredentialOut]
    next_cursor: str | None


def _registrar(request: Request) -> RegistrarOut:
    settings: Settings = api_context(request).settings
    return RegistrarOut(
        host=advertised_address(settings.sip_host, settings.sip_advertised_host or None),
        port=settings.sip_port,
        transports=["udp", "tcp", "tls"] if settings.sip_tls_enabled else ["udp", "tcp"],
        tls_port=settings.sip_tls_port if settings.sip_tls_enabled else None,
        digest_algorithms=list(settings.sip_digest_algorithm_list),
    )


def _registration(row: SipRegistration) -> RegistrationOut:
    source = source_of(row)
    return RegistrationOut(
        contact=row.contact,
        received=ReceivedOut(transport=source.transport, host=source.host, port=source.port)
        if source
        else None,
        behind_nat=received_elsewhere(row.contact, source),
        path=list(row.path or ()),
        registered_at=row.registered_at,
        expires_at=row.expires_at,
    )


def _out(
    credential: SipCredential,
    registrar: RegistrarOut,
    registrations: list[SipRegistration] | None = None,
) -> CredentialOut:
    return CredentialOut(
        id=credential.id,
        number_id=credential.number_id,
        username=credential.username,
        realm=credential.workspace_id,
        identity=f"sip:{credential.username}@{registrar.host}",
        registrar=registrar.model_copy(update={"digest_algorithms": credential.digest_algorithms})
        if credential.digest_algorithms
        else registrar,
        status="active" if credential.revoked_at is None else "revoked",
        created_at=credential.created_at,
        revoked_at=credential.revoked_at,
        registrations=[_registration(row) for row in registrations or ()],
    )


def _created(
    created: CreatedCredential, registrar: RegistrarOut, replaces: str | None = None
) -> CredentialCreated:
    return CredentialCreated(
        **_out(created.record, registrar).model_dump(),
        password=created.password,
        replaces=replaces,
    )


async def _credential(session: AsyncSession, number: Number, credential_id: str) -> SipCredential:
    credential = await session.get(SipCredential, credential_id)
    if credential is None or credential.number_id != number.id:
        raise ApiError(404, "sip_credentials.not_found", f"no SIP credential {credential_id}")
    return credential


@router.post(
    "",
    status_code=201,
    response_model=CredentialCreated,
    summary="Make a device login for the number (the password is shown once)",
    responses={409: {"model": ErrorEnvelope, "description": "`sip_credentials.username_taken`"}},
)
async def create(
    number_id: str,
    session: DbSession,
    request: Request,
    body: CredentialIn | None = Body(None),
    principal: Principal = Depends(manage),
) -> CredentialCreated:
    number = await owned_number(session, principal, number_id, for_change=True)
    try:
        created = await create_credential(
            session,
            number,
            body.username if body else None,
            body.digest_algorithms if body else None,
        )
    except InvalidUsername as error:
        raise ApiError(
            400, "validation.invalid_field", f"username: {error}", field="username"
        ) from None
    except InvalidDigestAlgorithms as error:
        raise ApiError(
            400,
            "validation.invalid_field",
            f"digest_algorithms: {error}",
            field="digest_algorithms",
        ) from None
    except UsernameTaken as error:
        raise ApiError(409, "sip_credentials.username_taken", str(error)) from None
    return _created(created, _registrar(request))


@router.get("", response_model=CredentialPage, summary="The number's credentials (no secrets)")
async def list_credentials(
    number_id: str,
    session: DbSession,
    request: Request,
    page: PageParams = Depends(page_params),
    principal: Principal = Depends(manage),
) -> dict[str, Any]:
    number = await owned_number(session, principal, number_id)
    query = select(SipCredential).where(SipCredential.number_id == number.id)
    registrar = _registrar(request)
    usernames = await session.scalars(
        select(SipCredential.username).where(
            SipCredential.number_id == number.id, SipCredential.revoked_at.is_(None)
        )
    )
    registered = await live_registrations(session, usernames)
    return await paginate(
        session,
        query,
        SipCredential.id,
        page,
        lambda credential: _out(credential, registrar, _registered(credential, registered)),
    )


def _registered(
    credential: SipCredential, registered: dict[str, list[SipRegistration]]
) -> list[SipRegistration]:
    """A revoked credential's phones can no longer refresh: none are shown."""
    if credential.revoked_at is not None:
        return []
    return registered.get(credential.username, [])


@router.get("/{credential_id}", response_model=CredentialOut, summary="One credential")
async def get_credential(
    number_id: str,
    credential_id: str,
    session: DbSession,
    request: Request,
    principal: Principal = Depends(manage),
) -> CredentialOut:
    number = await owned_number(session, principal, number_id)
    credential = await _credential(session, number, credential_id)
    registered = await live_registrations(session, [credential.username])
    return _out(credential, _registrar(request), _registered(credential, registered))


@router.post(
    "/{credential_id}/rotate",
    status_code=201,
    response_model=CredentialCreated,
    summary="Rotate: a new login now; the old one works until deleted",
    responses={409: {"model": ErrorEnvelope, "description": "`sip_credentials.revoked`"}},
)
async def rotate(
    number_id: str,
    credential_id: str,
    session: DbSession,
    request: Request,
    principal: Principal = Depends(manage),
) -> CredentialCreated:
    number = await owned_number(session, principal, number_id, for_change=True)
    old = await _credential(session, number, credential_id)
    if old.revoked_at is not None:
        raise ApiError(
            409, "sip_credentials.revoked", f"credential {credential_id} is revoked; create one"
        )
    created = await rotate_credential(session, number, old)
    return _created(created, _registrar(request), replaces=old.id)


@router.delete("/{credential_id}", status_code=204, summary="Revoke a login at once")
async def revoke(
    number_id: str, credential_id: str, session: DbSession, principal: Principal = Depends(manage)
) -> Response:
    number = await owned_number(session, principal, number_id)
    await revoke_credential(
        session, await _credential(session, number, credential_id), now=utcnow()
    )
    return Response(status_code=204)
