"""``POST /v1/sip/token``: a short-lived token for a browser client (SPEC §11).

The app's backend calls it with its API key (scope ``sip.manage``) for one client
identity of its workspace and hands the answer to its page; the page registers over SIP
on WebSocket with the token in ``Authorization: Bearer …`` (JsSIP's ``authorization_jwt``),
and asks for a fresh one before ``expires_at`` (docs/pbx.md "Browser calling").
"""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from sautikit.api.auth import Principal, require_scopes
from sautikit.api.deps import DbSession, api_context
from sautikit.api.errors import ApiError, ErrorEnvelope
from sautikit.api.routing import SautikitRoute
from sautikit.api.schemas import RequestModel
from sautikit.billing.numbers import active_number
from sautikit.calls.clients import client_tokens
from sautikit.config import Settings
from sautikit.sip.addresses import advertised_address
from sautikit.sip.token_auth import IDENTITY_PATTERN, MAX_TTL

__all__ = ["router"]

router = APIRouter(prefix="/v1/sip", route_class=SautikitRoute, tags=["sip credentials"])

manage = require_scopes("sip.manage")


class TokenIn(RequestModel):
    identity: str = Field(
        pattern=f"^{IDENTITY_PATTERN}$",
        description="The client's name in the workspace: 1–64 letters, digits, '.', '_' "
        "or '-'. `dial` rings it as `client:<identity>`.",
    )
    caller_id: str | None = Field(
        None,
        description="An active number of the workspace (E.164) the client calls out as; "
        "without it the client can take calls but not place them.",
    )
    ttl: int = Field(
        MAX_TTL, ge=10, le=MAX_TTL, description=f"Seconds the token lives (10–{MAX_TTL})."
    )


class TokenOut(BaseModel):
    token: str = Field(
        description="An HS256 JWT (`iss` `sautikit-sip`); send it as "
        "`Authorization: Bearer <token>` in REGISTER and INVITE."
    )
    expires_at: datetime = Field(
        description="When it stops being accepted; a registration "
        "made with it ends then unless refreshed with a new one."
    )
    identity: str
    sip_uri: str = Field(description="The SIP URI to register as (JsSIP's `uri`).")
    ws_url: str | None = Field(description="The `ws://` address of SIP over WebSocket, if on.")
    wss_url: str | None = Field(description="The `wss://` address, if on.")


def _urls(settings: Settings) -> tuple[str, str | None, str | None]:
    host = advertised_address(settings.sip_host, settings.sip_advertised_host or None)
    shown = f"[{host}]" if ":" in host else host
    ws = f"ws://{shown}:{settings.sip_ws_port}" if settings.sip_ws_port else None
    wss = f"wss://{shown}:{settings.sip_wss_port}" if settings.sip_wss_port else None
    return host, ws, wss


@router.post(
    "/token",
    response_model=TokenOut,
    summary="A short-lived token a browser registers and calls with over SIP on WebSocket",
    responses={404: {"model": ErrorEnvelope, "description": "`numbers.not_owned` caller_id"}},
)
async def issue_token(
    body: TokenIn,
    session: DbSession,
    request: Request,
    principal: Principal = Depends(manage),
) -> TokenOut:
    settings: Settings = api_context(request).settings
    if body.caller_id is not None:
        number = await active_number(session, body.caller_id, workspace_id=principal.workspace_id)
        if number is None:
            raise ApiError(
                404,
                "numbers.not_owned",
                f"caller_id {body.caller_id} is not an active number of this workspace",
                field="caller_id",
            )
    token, claims = client_tokens(settings).issue(
        principal.workspace_id, body.identity, caller_id=body.caller_id, ttl=body.ttl
    )
    host, ws_url, wss_url = _urls(settings)
    return TokenOut(
        token=token,
        expires_at=datetime.fromtimestamp(claims.expires_at, UTC),
        identity=body.identity,
        sip_uri=f"sip:{claims.sip_user}@{host}",
        ws_url=ws_url,
        wss_url=wss_url,
    )
