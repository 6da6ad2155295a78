"""The web console's pages (issue 18): server-rendered HTML, htmx for the live parts.

Every page reuses the domain functions the REST API uses (``accounts``, ``billing``,
``events``), so the console follows the same rules; it adds only sign-in and HTML.
A member sees only their workspace: another workspace's call, number or recording answers
404 exactly like one that does not exist. Changes need the owner or developer role, a
session and the form's CSRF token; viewers read. The operator signs in with the
operator token and sees every workspace.
"""

from __future__ import annotations

import hmac
import logging
import re
from collections.abc import Sequence
from datetime import datetime, timedelta
from importlib import resources
from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Form, Query, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from jinja2 import Environment, PackageLoader, select_autoescape
from pydantic import ValidationError
from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from sautikit import accounts
from sautikit.api.deps import api_context
from sautikit.api.errors import ApiError
from sautikit.billing import ledger
from sautikit.billing.ledger import InsufficientFunds, format_kes
from sautikit.billing.mpesa.topups import InvalidTopUp, TopUpService, create_stk_topup
from sautikit.billing.numbers import (
    NumberNotAvailable,
    NumberNotFound,
    claim_number,
    release_number,
)
from sautikit.billing.sip_credentials import (
    CreatedCredential,
    create_credential,
    revoke_credential,
    rotate_credential,
)
from sautikit.calls.status import LIVE_STATUSES, CallStatus
from sautikit.console import auth
from sautikit.console.auth import COOKIE_NAME, SESSION_LIFETIME, SignInThrottle, Viewer
from sautikit.console.waveform import waveform_svg
from sautikit.crypto import encrypt_secret
from sautikit.db import Database
from sautikit.db.models import (
    ApiKey,
    Call,
    ConsoleSession,
    ConsoleUser,
    Delivery,
    DeliveryAttempt,
    Event,
    Number,
    Rate,
    Recording,
    SipCredential,
    TopUp,
    Transcription,
    Trunk,
    WalletEntry,
    WebhookSubscription,
    Workspace,
)
from sautikit.db.types import utcnow
from sautikit.events import EVENT_KINDS
from sautikit.events.delivery import fan_out
from sautikit.storage import StorageError

__all__ = ["router"]

log = logging.getLogger(__name__)

router = APIRouter(prefix="/console", include_in_schema=False)

_templates = Environment(
    loader=PackageLoader("sautikit.console", "templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)
_templates.filters["kes"] = format_kes
_templates.filters["when"] = lambda moment: (
    moment.strftime("%Y-%m-%d %H:%M:%S UTC") if isinstance(moment, datetime) else ""
)
_STATIC = {"htmx.min.js": "text/javascript", "console.css": "text/css"}
_CALL_STATUSES = tuple(status.value for status in CallStatus)


# -- plumbing -------------------------------------------------------------------------


def _database(request: Request) -> Database:
    """Pages read with ``sessions()``, never queueing on the writer; forms that change
    something use ``transaction()``."""
    return api_context(request).database


def _throttle(request: Request) -> SignInThrottle:
    throttle: SignInThrottle | None = getattr(request.app.state, "console_throttle", None)
    if throttle is None:
        throttle = request.app.state.console_throttle = SignInThrottle()
    return throttle


def render(
    request: Request,
    template: str,
    viewer: Viewer | None,
    *,
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    html = _templates.get_template(template).render(viewer=viewer, path=request.url.path, **context)
    return HTMLResponse(
        html,
        status_code=status_code,
        headers={
            # Everything is served from here: scripts, styles, images, media redirects.
            "Content-Security-Policy": (
                "default-src 'self'; img-src 'self' data:; media-src *; "
                "frame-ancestors 'none'; form-action 'self'"
            ),
            "X-Frame-Options": "DENY",
            "Referrer-Policy": "same-origin",
            "Cache-Control": "no-store",
        },
    )


def _to_sign_in() -> RedirectResponse:
    return RedirectResponse("/console/sign-in", status_code=303)


def _not_found(request: Request, viewer: Viewer) -> HTMLResponse:
    return render(request, "not_found.html", viewer, status_code=404)


def _forbidden(request: Request, viewer: Viewer | None, message: str) -> HTMLResponse:
    return render(request, "forbidden.html", viewer, status_code=403, message=message)


async def _viewer(request: Request, session: AsyncSession) -> Viewer | None:
    return await auth.resolve_session(session, request.cookies.get(COOKIE_NAME))


async def _member(request: Request, session: AsyncSession) -> Viewer | Response:
    """The signed-in workspace member, or the answer to give instead."""
    viewer = await _viewer(request, session)
    if viewer is None:
        return _to_sign_in()
    if viewer.operator:
        return RedirectResponse("/console/operator", status_code=303)
    return viewer


async def _operator(request: Request, session: AsyncSession) -> Viewer | Response:
    viewer = await _viewer(request, session)
    if viewer is None:
        return _to_sign_in()
    if not viewer.operator:
        return _forbidden(request, viewer, "Only the operator may open this page.")
    return viewer


def _same_origin(request: Request) -> bool:
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return origin is None
    return urlsplit(origin).netloc == request.headers.get("host", request.url.netloc)


def _change_refused(request: Request, viewer: Viewer, csrf_token: str) -> Response | None:
    """None when this viewer may make this change; else the page that says why not."""
    if not _same_origin(request) or not auth.csrf_matches(viewer, csrf_token):
        return _forbidden(request, viewer, "The form expired. Reload the page and try again.")
    if not viewer.can_change:
        return _forbidden(request, viewer, "Viewers can look but not change anything.")
    return None


def _back(path: str, notice: str | None = None) -> RedirectResponse:
    return RedirectResponse(path if notice is None else f"{path}?notice={notice}", status_code=303)


def _workspace_id(viewer: Viewer) -> str:
    assert viewer.workspace_id is not None  # members always belong to a workspace
    return viewer.workspace_id


@router.get("/static/{name}")
async def static_file(name: str) -> Response:
    media_type = _STATIC.get(name)
    if media_type is None:
        return Response("not found", status_code=404, media_type="text/plain")
    data = resources.files("sautikit.console").joinpath("static", name).read_bytes()
    return Response(data, media_type=media_type, headers={"Cache-Control": "max-age=3600"})


# -- signing in and out ---------------------------------------------------------------


@router.get("/sign-in")
async def sign_in_page(request: Request) -> Response:
    return render(request, "sign_in.html", None, error=None, email="")


def _with_session_cookie(request: Request, response: Response, token: str) -> Response:
    secure = api_context(request).settings.effective_public_url.startswith("https://")
    response.set_cookie(
        COOKIE_NAME,
        token,
        max_age=int(SESSION_LIFETIME.total_seconds()),
        path="/console",
        httponly=True,
        samesite="strict",
        secure=secure,
    )
    return response


@router.post("/sign-in")
async def sign_in(request: Request, email: str = Form(""), password: str = Form("")) -> Response:
    client = request.client.host if request.client else "unknown"
    keys = (f"email:{auth.normalise_email(email)}", f"address:{client}")
    throttle = _throttle(request)
    if throttle.blocked(*keys):
        return render(
            request,
            "sign_in.html",
            None,
            status_code=429,
            email=email,
            error="Too many failed attempts. Wait 15 minutes and try again.",
        )
    async with _database(request).transaction() as session:
        user = await auth.verify_member(session, email, password)
        if user is None:
            throttle.failed(*keys)
            return render(
                request,
                "sign_in.html",
                None,
                status_code=401,
                email=email,
                error="That e-mail address and password do not match.",
            )
        throttle.succeeded(*keys)
        token = await auth.open_session(session, user_id=user.id)
    return _with_session_cookie(request, _back("/console"), token)


@router.post("/operator/sign-in")
async def operator_sign_in(request: Request, token: str = Form("")) -> Response:
    client = request.client.host if request.client else "unknown"
    keys = ("operator", f"address:{client}")
    throttle = _throttle(request)
    expected = api_context(request).settings.operator_token.get_secret_value()
    if throttle.blocked(*keys):
        return render(
            request,
            "sign_in.html",
            None,
            status_code=429,
            email="",
            error="Too many failed attempts. Wait 15 minutes and try again.",
        )
    if not expected or not hmac.compare_digest(token.encode(), expected.encode()):
        throttle.failed(*keys)
        return render(
            request,
            "sign_in.html",
            None,
            status_code=401,
            email="",
            error="That is not the operator token.",
        )
    throttle.succeeded(*keys)
    async with _database(request).transaction() as session:
        session_token = await auth.open_session(session, operator=True)
    return _with_session_cookie(request, _back("/console/operator"), session_token)


@router.post("/sign-out")
async def sign_out(request: Request, csrf_token: str = Form("")) -> Response:
    async with _database(request).transaction() as session:
        viewer = await _viewer(request, session)
        if viewer is not None and auth.csrf_matches(viewer, csrf_token):
            await auth.end_session(session, request.cookies.get(COOKIE_NAME))
    response = _to_sign_in()
    response.delete_cookie(COOKIE_NAME, path="/console")
    return response


# -- invites and members --------------------------------------------------------------


def _invite_link(request: Request, token: str) -> str:
    return f"{api_context(request).settings.effective_public_url}/console/invite/{token}"


@router.get("/invite/{token}")
async def invite_page(request: Request, token: str) -> Response:
    async with _database(request).sessions() as session:
        invite = await auth.find_invite(session, token)
        workspace = await session.get(Workspace, invite.workspace_id) if invite else None
    if invite is None or workspace is None:
        return render(request, "invite_dead.html", None, status_code=404)
    return render(request, "invite.html", None, invite=invite, workspace=workspace, error=None)


@router.post("/invite/{token}")
async def accept_invite(
    request: Request, token: str, password: str = Form(""), repeat: str = Form("")
) -> Response:
    async with _database(request).transaction() as session:
        invite = await auth.find_invite(session, token)
        workspace = await session.get(Workspace, invite.workspace_id) if invite else None
        if invite is None or workspace is None:
            return render(request, "invite_dead.html", None, status_code=404)
        if not _same_origin(request):
            return _forbidden(request, None, "The form came from another site.")
        error = "The two passwords differ." if password != repeat else None
        if error is None:
            try:
                user = await auth.accept_invite(session, token, password)
            except (ValueError, LookupError) as exc:
                error = str(exc)
        if error is not None:
            return render(
                request,
                "invite.html",
                None,
                status_code=400,
                invite=invite,
                workspace=workspace,
                error=error[:1].upper() + error[1:] + ("" if error.endswith(".") else "."),
            )
        session_token = await auth.open_session(session, user_id=user.id)
    return _with_session_cookie(request, _back("/console"), session_token)


async def _members_page(
    request: Request, session: AsyncSession, viewer: Viewer, link: str | None = None
) -> HTMLResponse:
    members = (
        await session.scalars(
            select(ConsoleUser)
            .where(ConsoleUser.workspace_id == _workspace_id(viewer))
            .order_by(ConsoleUser.email)
        )
    ).all()
    return render(
        request,
        "members.html",
        viewer,
        members=members,
        roles=auth.ROLES,
        link=link,
        status_code=201 if link else 200,
    )


@router.get("/members")
async def members_page(request: Request) -> Response:
    async with _database(request).sessions() as session:
        viewer = await _member(request, session)
        if isinstance(viewer, Response):
            return viewer
        return await _members_page(request, session, viewer)


@router.post("/members/invite")
async def invite_member(
    request: Request, csrf_token: str = Form(""), email: str = Form(""), role: str = Form("")
) -> Response:
    async with _database(request).transaction() as session:
        viewer = await _member(request, session)
        if isinstance(viewer, Response):
            return viewer
        refused = _change_refused(request, viewer, csrf_token)
        if refused is not None:
            return refused
        if viewer.role != "owner":
            return _forbidden(request, viewer, "Only owners invite members.")
        try:
            token = await auth.create_invite(session, _workspace_id(viewer), email, role)
        except ValueError as exc:
            return _forbidden(request, viewer, str(exc))
        return await _members_page(request, session, viewer, _invite_link(request, token))


@router.post("/members/{user_id}/remove")
async def remove_member(request: Request, user_id: str, csrf_token: str = Form("")) -> Response:
    async with _database(request).transaction() as session:
        viewer = await _member(request, session)
        if isinstance(viewer, Response):
            return viewer
        refused = _change_refused(request, viewer, csrf_token)
        if refused is not None:
            return refused
        if viewer.role != "owner":
            return _forbidden(request, viewer, "Only owners remove members.")
        user = await session.get(ConsoleUser, user_id)
        if user is None or user.workspace_id != viewer.workspace_id:
            return _not_found(request, viewer)
        if user.id == viewer.user_id:
            return _forbidden(request, viewer, "You cannot remove yourself.")
        user.disabled_at = utcnow()
        await session.execute(delete(ConsoleSession).where(ConsoleSession.user_id == user.id))
        return _back("/console/members")


# -- overview -------------------------------------------------------------------------


@router.get("")
async def overview(request: Request) -> Response:
    async with _database(request).sessions() as session:
        viewer = await _member(request, session)
        if isinstance(viewer, Response):
            return viewer
        workspace_id = _workspace_id(viewer)
        today = utcnow().replace(hour=0, minute=0, second=0, microsecond=0)
        calls_today = await session.scalar(
            select(func.count(Call.id)).where(
                Call.workspace_id == workspace_id, Call.created_at >= today
            )
        )
        spent = await session.scalar(
            select(func.coalesce(func.sum(WalletEntry.amount_minor), 0)).where(
                WalletEntry.workspace_id == workspace_id,
                WalletEntry.amount_minor < 0,
                WalletEntry.created_at >= today,
            )
        )
        return render(
            request,
            "overview.html",
            viewer,
            balance=await ledger.balance(session, workspace_id),
            calls_today=int(calls_today or 0),
            spent_today=-int(spent or 0),
            live=await _live_calls(session, workspace_id),
        )


async def _live_calls(session: AsyncSession, workspace_id: str | None) -> Sequence[Call]:
    query = select(Call).where(Call.status.in_(LIVE_STATUSES)).order_by(Call.id.desc())
    if workspace_id is not None:
        query = query.where(Call.workspace_id == workspace_id)
    return (await session.scalars(query.limit(200))).all()


# -- calls ----------------------------------------------------------------------------


@router.get("/calls")
async def calls_page(
    request: Request,
    status: str = Query(""),
    direction: str = Query(""),
    number: str = Query(""),
) -> Response:
    async with _database(request).sessions() as session:
        viewer = await _member(request, session)
        if isinstance(viewer, Response):
            return viewer
        query = select(Call).where(Call.workspace_id == _workspace_id(viewer))
        if status in _CALL_STATUSES:
            query = query.where(Call.status == status)
        if direction in ("inbound", "outbound"):
            query = query.where(Call.direction == direction)
        if number:
            query = query.where((Call.from_number == number) | (Call.to_number == number))
        calls = (await session.scalars(query.order_by(Call.id.desc()).limit(100))).all()
        return render(
            request,
            "calls.html",
            viewer,
            calls=calls,
            statuses=_CALL_STATUSES,
            filters={"status": status, "direction": direction, "number": number},
        )


@router.get("/calls/live")
async def live_calls_rows(request: Request) -> Response:
    """The live calls' table rows: the page polls this every two seconds."""
    async with _database(request).sessions() as session:
        viewer = await _viewer(request, session)
        if viewer is None:
            return Response(status_code=401)
        calls = await _live_calls(session, None if viewer.operator else viewer.workspace_id)
        return render(request, "live_rows.html", viewer, calls=calls)


async def _owned_call(session: AsyncSession, viewer: Viewer, call_id: str) -> Call | None:
    call = await session.get(Call, call_id)
    if call is None or (not viewer.operator and call.workspace_id != viewer.workspace_id):
        return None
    return call


@router.get("/calls/{call_id}")
async def call_page(request: Request, call_id: str) -> Response:
    async with _database(request).sessions() as session:
        viewer = await _member(request, session)
        if isinstance(viewer, Response):
            return viewer
        call = await _owned_call(session, viewer, call_id)
        if call is None:
            return _not_found(request, viewer)
        legs = (
            await session.scalars(
                select(Call).where(Call.parent_call_id == call.id).order_by(Call.id)
            )
        ).all()
        events = (
            await session.scalars(
                select(Event).where(Event.call_id == call.id).order_by(Event.occurred_at, Event.id)
            )
        ).all()
        recordings = (
            await session.scalars(
                select(Recording).where(Recording.call_id == call.id).order_by(Recording.id)
            )
        ).all()
        transcripts = {
            t.recording_id: t
            for t in await session.scalars(
                select(Transcription).where(
                    Transcription.recording_id.in_([r.id for r in recordings])
                )
            )
        }
        return render(
            request,
            "call.html",
            viewer,
            call=call,
            legs=legs,
            events=events,
            recordings=recordings,
            transcripts=transcripts,
            live=call.status in LIVE_STATUSES,
        )


async def _owned_recording(
    session: AsyncSession, viewer: Viewer, recording_id: str
) -> Recording | None:
    recording = await session.get(Recording, recording_id)
    if recording is None or recording.workspace_id != viewer.workspace_id:
        return None
    return recording


async def _recording_store_and_key(
    request: Request, session: AsyncSession, recording: Recording
) -> tuple[Any, str] | None:
    from sautikit.api.routers.recordings import _stores  # the API's one way to reach a store

    if recording.status != "ready" or recording.storage_key is None:
        return None
    workspace = await session.get_one(Workspace, recording.workspace_id)
    return _stores(request).for_workspace(workspace), recording.storage_key


@router.get("/recordings/{recording_id}/audio")
async def recording_audio(request: Request, recording_id: str) -> Response:
    """302 to a presigned URL of the recording: the audio element loads it from there."""
    async with _database(request).sessions() as session:
        viewer = await _member(request, session)
        if isinstance(viewer, Response):
            return viewer
        recording = await _owned_recording(session, viewer, recording_id)
        found = await _recording_store_and_key(request, session, recording) if recording else None
        if recording is None or found is None:
            return _not_found(request, viewer)
        store, key = found
        lifetime = timedelta(seconds=api_context(request).settings.recording_url_lifetime_seconds)
        try:
            link = await store.presigned_url(
                key, lifetime, filename=f"{recording.id}.{recording.format}"
            )
        except StorageError:
            return _not_found(request, viewer)
        return RedirectResponse(link.url, status_code=302)


@router.get("/recordings/{recording_id}/waveform.svg")
async def recording_waveform(request: Request, recording_id: str) -> Response:
    """One waveform per channel, drawn from the stored WAV."""
    async with _database(request).sessions() as session:
        viewer = await _member(request, session)
        if isinstance(viewer, Response):
            return viewer
        recording = await _owned_recording(session, viewer, recording_id)
        found = await _recording_store_and_key(request, session, recording) if recording else None
        if recording is None or found is None or recording.format != "wav":
            return Response(status_code=404)
        store, key = found
    try:
        data = await store.get_bytes(key)
    except StorageError:
        return Response(status_code=404)
    return Response(waveform_svg(data), media_type="image/svg+xml")


# -- numbers --------------------------------------------------------------------------


@router.get("/numbers")
async def numbers_page(request: Request, notice: str = Query("")) -> Response:
    async with _database(request).sessions() as session:
        viewer = await _member(request, session)
        if isinstance(viewer, Response):
            return viewer
        owned = (
            await session.scalars(
                select(Number)
                .where(Number.workspace_id == _workspace_id(viewer))
                .order_by(Number.e164)
            )
        ).all()
        available = (
            await session.scalars(
                select(Number)
                .where(Number.workspace_id.is_(None), Number.status == "available")
                .order_by(Number.e164)
                .limit(50)
            )
        ).all()
        return render(
            request, "numbers.html", viewer, owned=owned, available=available, notice=notice
        )


@router.post("/numbers/{number_id}/claim")
async def claim(request: Request, number_id: str, csrf_token: str = Form("")) -> Response:
    async with _database(request).transaction() as session:
        viewer = await _member(request, session)
        if isinstance(viewer, Response):
            return viewer
        refused = _change_refused(request, viewer, csrf_token)
        if refused is not None:
            return refused
        try:
            number = await claim_number(
                session, workspace_id=_workspace_id(viewer), number_id=number_id, now=utcnow()
            )
        except (NumberNotFound, NumberNotAvailable):
            await session.rollback()
            return _back("/console/numbers", "not-available")
        except InsufficientFunds:
            await session.rollback()
            return _back("/console/numbers", "insufficient-funds")
        return _back("/console/numbers", f"claimed-{number.e164.lstrip('+')}")


@router.post("/numbers/{number_id}/routing")
async def route(
    request: Request,
    number_id: str,
    csrf_token: str = Form(""),
    voice_url: str = Form(""),
    events_url: str = Form(""),
) -> Response:
    async with _database(request).transaction() as session:
        viewer = await _member(request, session)
        if isinstance(viewer, Response):
            return viewer
        refused = _change_refused(request, viewer, csrf_token)
        if refused is not None:
            return refused
        number = await session.get(Number, number_id)
        if number is None or number.workspace_id != viewer.workspace_id:
            return _not_found(request, viewer)
        for value in (voice_url, events_url):
            if value and urlsplit(value).scheme not in ("http", "https"):
                return _back("/console/numbers", "bad-url")
        number.voice_url = voice_url or None
        number.events_url = events_url or None
        return _back("/console/numbers", "routed")


@router.post("/numbers/{number_id}/release")
async def release(request: Request, number_id: str, csrf_token: str = Form("")) -> Response:
    async with _database(request).transaction() as session:
        viewer = await _member(request, session)
        if isinstance(viewer, Response):
            return viewer
        refused = _change_refused(request, viewer, csrf_token)
        if refused is not None:
            return refused
        number = await session.get(Number, number_id)
        if number is None or number.workspace_id != viewer.workspace_id:
            return _not_found(request, viewer)
        await release_number(session, number, now=utcnow())
        return _back("/console/numbers", "released")


# -- SIP credentials ------------------------------------------------------------------


async def _owned_number(session: AsyncSession, viewer: Viewer, number_id: str) -> Number | None:
    number = await session.get(Number, number_id)
    if number is None or number.workspace_id != viewer.workspace_id:
        return None
    return number


def _phone_settings(request: Request, viewer: Viewer) -> dict[str, str]:
    """What a softphone or IP phone needs, besides the username and password."""
    settings = api_context(request).settings
    host = settings.sip_advertised_host or settings.sip_host
    return {"server": f"{host}:{settings.sip_port}", "realm": _workspace_id(viewer)}


async def _credentials_page(
    request: Request,
    session: AsyncSession,
    viewer: Viewer,
    number: Number,
    created: CreatedCredential | None = None,
) -> HTMLResponse:
    credentials = (
        await session.scalars(
            select(SipCredential)
            .where(SipCredential.number_id == number.id, SipCredential.revoked_at.is_(None))
            .order_by(SipCredential.id)
        )
    ).all()
    return render(
        request,
        "sip.html",
        viewer,
        number=number,
        credentials=credentials,
        created=created,
        phone=_phone_settings(request, viewer),
        status_code=201 if created else 200,
    )


@router.get("/numbers/{number_id}/sip")
async def sip_page(request: Request, number_id: str) -> Response:
    async with _database(request).sessions() as session:
        viewer = await _member(request, session)
        if isinstance(viewer, Response):
            return viewer
        number = await _owned_number(session, viewer, number_id)
        if number is None:
            return _not_found(request, viewer)
        return await _credentials_page(request, session, viewer, number)


@router.post("/numbers/{number_id}/sip")
async def sip_create(
    request: Request,
    number_id: str,
    csrf_token: str = Form(""),
    rotate: str = Form(""),
    revoke: str = Form(""),
) -> Response:
    """Create a login, rotate one (a new one; the old works until revoked) or revoke one."""
    async with _database(request).transaction() as session:
        viewer = await _member(request, session)
        if isinstance(viewer, Response):
            return viewer
        refused = _change_refused(request, viewer, csrf_token)
        if refused is not None:
            return refused
        number = await _owned_number(session, viewer, number_id)
        if number is None:
            return _not_found(request, viewer)
        target = rotate or revoke
        old = await session.get(SipCredential, target) if target else None
        if target and (old is None or old.number_id != number.id or old.revoked_at):
            return _not_found(request, viewer)
        if revoke and old is not None:
            await revoke_credential(session, old, now=utcnow())
            created = None
        elif old is not None:
            created = await rotate_credential(session, number, old)
        else:
            created = await create_credential(session, number)
        # The registrar's DeviceDirectory picks the change up on its reload timer.
        return await _credentials_page(request, session, viewer, number, created)


# -- API keys -------------------------------------------------------------------------


@router.get("/keys")
async def keys_page(request: Request) -> Response:
    async with _database(request).sessions() as session:
        viewer = await _member(request, session)
        if isinstance(viewer, Response):
            return viewer
        keys = await accounts.list_api_keys(session, _workspace_id(viewer))
        return render(
            request, "keys.html", viewer, keys=keys, scopes=sorted(accounts.SCOPES), secret=None
        )


@router.post("/keys")
async def create_key(
    request: Request, csrf_token: str = Form(""), name: str = Form("")
) -> Response:
    async with _database(request).transaction() as session:
        viewer = await _member(request, session)
        if isinstance(viewer, Response):
            return viewer
        refused = _change_refused(request, viewer, csrf_token)
        if refused is not None:
            return refused
        form = await request.form()
        scopes = [str(scope) for scope in form.getlist("scopes")] or sorted(accounts.SCOPES)
        try:
            created = await accounts.create_api_key(
                session, _workspace_id(viewer), scopes, name=name.strip()[:200]
            )
        except accounts.UnknownScopeError:
            return _back("/console/keys")
        keys = await accounts.list_api_keys(session, _workspace_id(viewer))
        # The secret is in this one answer and nowhere else.
        return render(
            request,
            "keys.html",
            viewer,
            keys=keys,
            scopes=sorted(accounts.SCOPES),
            secret=created.secret,
            status_code=201,
        )


@router.post("/keys/{key_id}/revoke")
async def revoke_key(request: Request, key_id: str, csrf_token: str = Form("")) -> Response:
    async with _database(request).transaction() as session:
        viewer = await _member(request, session)
        if isinstance(viewer, Response):
            return viewer
        refused = _change_refused(request, viewer, csrf_token)
        if refused is not None:
            return refused
        key = await session.get(ApiKey, key_id)
        if key is None or key.workspace_id != viewer.workspace_id:
            return _not_found(request, viewer)
        await accounts.revoke_api_key(session, key_id)
        return _back("/console/keys")


# -- webhooks and deliveries ----------------------------------------------------------


async def _deliveries(session: AsyncSession, workspace_id: str) -> list[dict[str, Any]]:
    rows = (
        await session.execute(
            select(Delivery, Event)
            .join(Event, Delivery.event_id == Event.id)
            .where(Event.workspace_id == workspace_id)
            .order_by(Delivery.id.desc())
            .limit(50)
        )
    ).all()
    shown = []
    for delivery, event in rows:
        last = await session.scalar(
            select(DeliveryAttempt)
            .where(DeliveryAttempt.delivery_id == delivery.id)
            .order_by(DeliveryAttempt.attempted_at.desc())
            .limit(1)
        )
        shown.append({"delivery": delivery, "event": event, "last": last})
    return shown


@router.get("/webhooks")
async def webhooks_page(request: Request) -> Response:
    async with _database(request).sessions() as session:
        viewer = await _member(request, session)
        if isinstance(viewer, Response):
            return viewer
        return await _webhooks_page(request, session, viewer)


async def _webhooks_page(
    request: Request,
    session: AsyncSession,
    viewer: Viewer,
    *,
    secret: str | None = None,
    error: str | None = None,
) -> HTMLResponse:
    subscriptions = (
        await session.scalars(
            select(WebhookSubscription)
            .where(WebhookSubscription.workspace_id == _workspace_id(viewer))
            .order_by(WebhookSubscription.id)
        )
    ).all()
    return render(
        request,
        "webhooks.html",
        viewer,
        status_code=201 if secret else 400 if error else 200,
        subscriptions=subscriptions,
        deliveries=await _deliveries(session, _workspace_id(viewer)),
        kinds=sorted(EVENT_KINDS),
        secret=secret,
        error=error,
    )


@router.post("/webhooks")
async def create_webhook(request: Request) -> Response:
    """Subscribe a URL to event kinds, by the API's own rules; the secret is shown once."""
    from sautikit.api.routers.webhooks import WebhookIn, subscribe  # the API's rules

    form = await request.form()
    async with _database(request).transaction() as session:
        viewer = await _member(request, session)
        if isinstance(viewer, Response):
            return viewer
        refused = _change_refused(request, viewer, str(form.get("csrf_token", "")))
        if refused is not None:
            return refused
        events = [str(kind) for kind in form.getlist("events")] or ["*"]
        try:
            body = WebhookIn.model_validate({"url": str(form.get("url", "")), "events": events})
        except ValidationError as exc:
            message = "; ".join(str(error["msg"]) for error in exc.errors())
            return await _webhooks_page(request, session, viewer, error=message)
        subscription = await subscribe(session, _workspace_id(viewer), body)
        return await _webhooks_page(request, session, viewer, secret=subscription.secret)


@router.post("/webhooks/{webhook_id}/delete")
async def delete_webhook(request: Request, webhook_id: str, csrf_token: str = Form("")) -> Response:
    async with _database(request).transaction() as session:
        viewer = await _member(request, session)
        if isinstance(viewer, Response):
            return viewer
        refused = _change_refused(request, viewer, csrf_token)
        if refused is not None:
            return refused
        subscription = await session.get(WebhookSubscription, webhook_id)
        if subscription is None or subscription.workspace_id != viewer.workspace_id:
            return _not_found(request, viewer)
        await session.delete(subscription)
        return _back("/console/webhooks")


@router.get("/webhooks/deliveries")
async def delivery_rows(request: Request) -> Response:
    """The delivery log's rows: the page polls this every two seconds."""
    async with _database(request).sessions() as session:
        viewer = await _member(request, session)
        if isinstance(viewer, Response):
            return Response(status_code=401)
        return render(
            request,
            "delivery_rows.html",
            viewer,
            deliveries=await _deliveries(session, _workspace_id(viewer)),
        )


@router.post("/events/{event_id}/redeliver")
async def redeliver(request: Request, event_id: str, csrf_token: str = Form("")) -> Response:
    async with _database(request).transaction() as session:
        viewer = await _member(request, session)
        if isinstance(viewer, Response):
            return viewer
        refused = _change_refused(request, viewer, csrf_token)
        if refused is not None:
            return refused
        event = await session.get(Event, event_id)
        if event is None or event.workspace_id != viewer.workspace_id:
            return _not_found(request, viewer)
        await fan_out(session, event, utcnow())
        return _back("/console/webhooks")


# -- wallet and M-Pesa ----------------------------------------------------------------


def _topups(request: Request) -> TopUpService | None:
    service: TopUpService | None = getattr(request.app.state, "topups", None)
    return service


@router.get("/wallet")
async def wallet_page(request: Request, notice: str = Query("")) -> Response:
    async with _database(request).sessions() as session:
        viewer = await _member(request, session)
        if isinstance(viewer, Response):
            return viewer
        workspace_id = _workspace_id(viewer)
        entries = (
            await session.scalars(
                select(WalletEntry)
                .where(WalletEntry.workspace_id == workspace_id)
                .order_by(WalletEntry.id.desc())
                .limit(100)
            )
        ).all()
        topups = (
            await session.scalars(
                select(TopUp)
                .where(TopUp.workspace_id == workspace_id)
                .order_by(TopUp.id.desc())
                .limit(20)
            )
        ).all()
        workspace = await session.get_one(Workspace, workspace_id)
        settings = api_context(request).settings
        return render(
            request,
            "wallet.html",
            viewer,
            balance=await ledger.balance(session, workspace_id),
            entries=entries,
            topups=topups,
            mpesa=_topups(request) is not None,
            shortcode=settings.daraja_shortcode,
            account_ref=workspace.mpesa_account_ref,
            notice=notice,
        )


@router.get("/wallet/balance")
async def wallet_balance_fragment(request: Request) -> Response:
    """The balance alone: the wallet page polls it while a top-up is pending."""
    async with _database(request).sessions() as session:
        viewer = await _member(request, session)
        if isinstance(viewer, Response):
            return Response(status_code=401)
        balance = await ledger.balance(session, _workspace_id(viewer))
        return HTMLResponse(f"{format_kes(balance)}", headers={"Cache-Control": "no-store"})


@router.post("/wallet/topups")
async def start_topup(
    request: Request,
    csrf_token: str = Form(""),
    amount_kes: str = Form(""),
    phone_e164: str = Form(""),
) -> Response:
    service = _topups(request)
    async with _database(request).transaction() as session:
        viewer = await _member(request, session)
        if isinstance(viewer, Response):
            return viewer
        refused = _change_refused(request, viewer, csrf_token)
        if refused is not None:
            return refused
        if service is None:
            return _back("/console/wallet", "mpesa-off")
        if not amount_kes.strip().isdigit():
            return _back("/console/wallet", "bad-amount")
        try:
            topup = await create_stk_topup(
                session, _workspace_id(viewer), int(amount_kes) * 100, phone_e164.strip()
            )
        except InvalidTopUp as exc:
            return _back("/console/wallet", f"bad-{exc.field.split('_')[0]}")
        topup_id = topup.id
    await service.send_push(topup_id)  # after the commit, as the API does
    return _back("/console/wallet", "push-sent")


# -- settings -------------------------------------------------------------------------


@router.get("/settings")
async def settings_page(request: Request) -> Response:
    async with _database(request).sessions() as session:
        viewer = await _member(request, session)
        if isinstance(viewer, Response):
            return viewer
        workspace = await session.get_one(Workspace, _workspace_id(viewer))
        return _settings_page(request, viewer, workspace)


def _settings_page(
    request: Request,
    viewer: Viewer,
    workspace: Workspace,
    *,
    status_code: int = 200,
    errors: list[str] | None = None,
    saved: bool = False,
    storage_errors: list[str] | None = None,
    storage_saved: bool = False,
) -> Response:
    return render(
        request,
        "settings.html",
        viewer,
        status_code=status_code,
        workspace=workspace,
        errors=errors or [],
        saved=saved,
        storage_errors=storage_errors or [],
        storage_saved=storage_saved,
    )


_SETTINGS_LISTS = ("destination_allowlist", "sip_host_allowlist", "play_host_allowlist")
_SETTINGS_NUMBERS = (
    "max_concurrent_calls",
    "max_calls_per_second",
    "retention_days",
    "low_balance_threshold_minor",
)


@router.post("/settings")
async def save_settings(request: Request) -> Response:
    """The settings form, checked by the API's own ``SettingsPatch`` (one rule, one place).

    Lists are typed one entry a line (or comma-separated). The storage bucket, which
    carries credentials, is changed through ``PATCH /v1/settings`` only.
    """
    from sautikit.api.routers.settings import SettingsPatch, _unique  # the API's rules

    form = await request.form()
    async with _database(request).transaction() as session:
        viewer = await _member(request, session)
        if isinstance(viewer, Response):
            return viewer
        refused = _change_refused(request, viewer, str(form.get("csrf_token", "")))
        if refused is not None:
            return refused
        if viewer.role != "owner":
            return _forbidden(request, viewer, "Only owners change the workspace's settings.")
        values: dict[str, Any] = {"recording_format": str(form.get("recording_format", ""))}
        for name in _SETTINGS_LISTS:
            text = str(form.get(name, ""))
            values[name] = [part.strip() for part in re.split(r"[,\n]", text) if part.strip()]
        for name in _SETTINGS_NUMBERS:
            values[name] = str(form.get(name, "")).strip()
        workspace = await session.get_one(Workspace, _workspace_id(viewer))
        try:
            patch = SettingsPatch.model_validate(values)
        except ValidationError as exc:
            problems = [
                f"{'.'.join(str(part) for part in error['loc'])}: {error['msg']}"
                for error in exc.errors()
            ]
            return _settings_page(request, viewer, workspace, status_code=400, errors=problems)
        for name in patch.model_fields_set:
            value = getattr(patch, name)
            setattr(workspace, name, _unique(value) if isinstance(value, list) else value)
        await session.flush()
        return _settings_page(request, viewer, workspace, saved=True)


@router.post("/settings/storage")
async def save_storage(request: Request) -> Response:
    """The storage-bucket form, applied by the API's own rules (``_apply_storage``): a
    blank URL goes back to the deployment's store; new keys are sealed, blank keys keep
    the stored ones while the bucket stays the same (another bucket never gets them)."""
    from sautikit.api.routers.settings import SettingsPatch, _apply_storage  # the API's rules

    form = await request.form()
    settings = api_context(request).settings
    async with _database(request).transaction() as session:
        viewer = await _member(request, session)
        if isinstance(viewer, Response):
            return viewer
        refused = _change_refused(request, viewer, str(form.get("csrf_token", "")))
        if refused is not None:
            return refused
        if viewer.role != "owner":
            return _forbidden(request, viewer, "Only owners change the workspace's settings.")
        workspace = await session.get_one(Workspace, _workspace_id(viewer))
        url = str(form.get("storage_url", "")).strip()
        keys = {name: str(form.get(name, "")).strip() for name in ("access_key", "secret_key")}
        values: dict[str, Any] = {"storage_url": url or None}
        if any(keys.values()):
            values["storage_credentials"] = keys
        try:
            patch = SettingsPatch.model_validate(values)
            _apply_storage(
                workspace,
                patch,
                lambda plain: encrypt_secret(plain, settings.signing_key(), context=workspace.id),
                allow_private=settings.allow_private_http,
            )
        except ValidationError as exc:
            problems = [
                f"{'.'.join(str(part) for part in error['loc'])}: {error['msg']}"
                for error in exc.errors()
            ]
        except ApiError as exc:
            problems = [str(exc)]
        else:
            await session.flush()
            return _settings_page(request, viewer, workspace, storage_saved=True)
        await session.refresh(workspace)  # nothing half-applied
        return _settings_page(request, viewer, workspace, status_code=400, storage_errors=problems)


# -- the operator ---------------------------------------------------------------------


@router.get("/operator")
async def operator_page(request: Request, notice: str = Query("")) -> Response:
    async with _database(request).sessions() as session:
        viewer = await _operator(request, session)
        if isinstance(viewer, Response):
            return viewer
        workspaces = (await session.scalars(select(Workspace).order_by(Workspace.name))).all()
        balances = {w.id: await ledger.balance(session, w.id) for w in workspaces}
        trunks = (await session.scalars(select(Trunk).order_by(Trunk.name))).all()
        rates = (
            await session.scalars(
                select(Rate).where(Rate.workspace_id.is_(None)).order_by(Rate.prefix).limit(200)
            )
        ).all()
        inventory = (await session.scalars(select(Number).order_by(Number.e164).limit(500))).all()
        return render(
            request,
            "operator.html",
            viewer,
            workspaces=workspaces,
            balances=balances,
            trunks=trunks,
            rates=rates,
            inventory=inventory,
            live=await _live_calls(session, None),
            notice=notice,
        )


@router.post("/operator/workspaces/{workspace_id}/credit")
async def operator_credit(
    request: Request,
    workspace_id: str,
    csrf_token: str = Form(""),
    amount_kes: str = Form(""),
    reference: str = Form(""),
) -> Response:
    async with _database(request).transaction() as session:
        viewer = await _operator(request, session)
        if isinstance(viewer, Response):
            return viewer
        refused = _change_refused(request, viewer, csrf_token)
        if refused is not None:
            return refused
        if await session.get(Workspace, workspace_id) is None:
            return _not_found(request, viewer)
        if not amount_kes.strip().isdigit() or int(amount_kes) <= 0 or not reference.strip():
            return _back("/console/operator", "bad-amount")
        await ledger.top_up(
            session,
            workspace_id,
            int(amount_kes) * 100,
            # A form sent twice (a reload, a double click) credits once per reference.
            idempotency_key=f"console:{reference.strip()}",
            reference=reference.strip(),
        )
        return _back("/console/operator", "credited")


@router.post("/calls/{call_id}/hangup")
async def hang_up(request: Request, call_id: str, csrf_token: str = Form("")) -> Response:
    """Hang up a live call, through the same command bus as ``POST /v1/calls/{id}``."""
    async with _database(request).transaction() as session:
        viewer = await _viewer(request, session)
        if viewer is None:
            return _to_sign_in()
        refused = _change_refused(request, viewer, csrf_token)
        if refused is not None:
            return refused
        call = await _owned_call(session, viewer, call_id)
        if call is None:
            return _not_found(request, viewer)
        if call.status in LIVE_STATUSES:
            await request.app.state.bus.publish(
                session, {"type": "command", "call_id": call.id, "status": "completed"}
            )
        return _back("/console/operator" if viewer.operator else f"/console/calls/{call.id}")
