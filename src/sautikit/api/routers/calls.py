"""``/v1/calls``: place outbound calls, read call records, steer live calls (SPEC §2, §4).

Placing a call is admitted as every call is (:mod:`sautikit.calls.admission`): it is
written as ``queued`` (with its ``call.started`` event and a hold on the wallet), and the
PBX is asked to dial it once the transaction commits; the answer is 201 at once, before
anyone picks up. Live-call changes travel the same way to whichever process holds the call.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field, UrlConstraints, model_validator
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from sautikit.api.auth import Principal, require_scopes
from sautikit.api.deps import DbSession
from sautikit.api.errors import ApiError, ErrorEnvelope
from sautikit.api.pagination import PageParams, Timestamp, page_params, paginate
from sautikit.api.routing import SautikitRoute, refused_when_overloaded
from sautikit.api.schemas import RequestModel
from sautikit.api.urls import refuse_undeliverable_fields
from sautikit.billing.authorisation import DestinationNotAllowed, InvalidDestination
from sautikit.calls.admission import (
    Admission,
    CallAsk,
    CallLimitExceeded,
    InsufficientFunds,
    NumberNotOwned,
    Origin,
)
from sautikit.calls.recording import RECORD_FROM_ANSWER
from sautikit.calls.records import call_data
from sautikit.calls.status import LIVE_STATUSES, CallStatus
from sautikit.db.models import Call, Event, Recording

__all__ = ["router"]

router = APIRouter(prefix="/v1/calls", route_class=SautikitRoute, tags=["calls"])

read = require_scopes("calls.read")
write = require_scopes("calls.write")

AppUrl = Annotated[AnyHttpUrl, UrlConstraints(max_length=2048)]


class CallCreate(RequestModel):
    to: str = Field(min_length=1, max_length=255, description="E.164 number or SIP URI.")
    from_: str = Field(alias="from", description="A number the workspace holds, E.164.")
    action_url: AppUrl = Field(description="Answers with the actions to run once answered.")
    method: Literal["POST", "GET"] = "POST"
    events_url: AppUrl | None = None
    fallback_url: AppUrl | None = None
    timeout: int = Field(30, ge=1, le=600, description="Seconds to ring before no_answer.")
    record: bool = Field(False, description="Record the call from answer, both parties.")
    max_duration: int | None = Field(None, ge=1, le=86_400, description="Seconds.")
    machine_detection: Literal["Enable", "DetectMessageEnd"] | None = Field(
        None,
        description="Answering-machine detection: `action_url` gets `AnsweredBy` (`human`, "
        "`machine_start`, `machine_end_beep`, `machine_end_silence`, `machine_end_other`, "
        "`fax`, `unknown`). `DetectMessageEnd` waits for the end of a machine's greeting.",
    )
    async_amd: bool = Field(
        False,
        description="Run `action_url` at answer and post `AnsweredBy` to "
        "`async_amd_status_callback` when detection ends.",
    )
    async_amd_status_callback: AppUrl | None = None
    machine_detection_timeout: int = Field(30, ge=3, le=59, description="Seconds.")
    machine_detection_speech_threshold: int = Field(2400, ge=1000, le=6000, description="ms.")
    machine_detection_speech_end_threshold: int = Field(1200, ge=500, le=5000, description="ms.")
    machine_detection_silence_timeout: int = Field(5000, ge=2000, le=10_000, description="ms.")

    @model_validator(mode="after")
    def _amd_callback(self) -> CallCreate:
        if self.async_amd and self.machine_detection is None:
            raise ValueError("async_amd needs machine_detection")
        if self.async_amd and self.async_amd_status_callback is None:
            raise ValueError("async_amd needs async_amd_status_callback")
        return self

    def amd_settings(self) -> dict[str, Any] | None:
        if self.machine_detection is None:
            return None
        return {
            "mode": self.machine_detection,
            "async": self.async_amd,
            "status_callback": (
                str(self.async_amd_status_callback) if self.async_amd_status_callback else None
            ),
            "timeout": self.machine_detection_timeout,
            "speech_threshold_ms": self.machine_detection_speech_threshold,
            "speech_end_threshold_ms": self.machine_detection_speech_end_threshold,
            "silence_timeout_ms": self.machine_detection_silence_timeout,
        }


class CallChange(RequestModel):
    action_url: AppUrl | None = Field(None, description="Fetch these actions and run them now.")
    method: Literal["POST", "GET"] = "POST"
    status: Literal["completed"] | None = Field(None, description="`completed` hangs up.")
    recording: Literal["paused", "resumed", "stopped"] | None = None
    stream: Literal["stopped"] | None = Field(
        None, description="`stopped` ends the call's streams (the `stream` verb)."
    )
    stream_name: str | None = Field(
        None, max_length=64, description="With `stream`: only the stream of this `name`."
    )
    transfer: str | None = Field(
        None,
        max_length=256,
        pattern=r"^(\+[1-9][0-9]{5,14}|sips?:\S+)$",
        description="Blind transfer to this E.164 number or SIP URI: a callee bridged by "
        "`dial` hands its caller on to it; a call running its app dials it instead.",
    )

    @model_validator(mode="after")
    def _one_change(self) -> CallChange:
        asked = [
            self.action_url is not None,
            self.status is not None,
            self.recording is not None,
            self.stream is not None,
            self.transfer is not None,
        ]
        if sum(asked) != 1:
            raise ValueError(
                "give exactly one of action_url, status, recording, stream or transfer"
            )
        if self.stream_name is not None and self.stream is None:
            raise ValueError("stream_name goes with stream")
        return self


HangupCauseName = Literal[
    "normal_clearing",
    "caller_hangup",
    "callee_hangup",
    "no_answer",
    "busy",
    "rejected",
    "insufficient_funds",
    "max_duration",
    "application_error",
    "network_error",
]


def _declare_sip_status(schema: dict[str, Any]) -> None:
    schema["properties"]["sip_status"] = {
        "type": "integer",
        "minimum": 300,
        "maximum": 699,
        "description": "The SIP final status that failed the call, where one did.",
    }
    schema["example"] = {
        "code": "call.trunk_rejected",
        "message": "udp:203.0.113.5:5060 refused the call: 404 Not Found",
        "sip_status": 404,
    }


class CallErrorOut(BaseModel):
    """Why a call failed (docs/calls.md lists the codes)."""

    # ``sip_status`` is an extra field, absent rather than null where no SIP answer
    # applies; the schema declares it.
    model_config = ConfigDict(extra="allow", json_schema_extra=_declare_sip_status)

    code: str = Field(description="Dotted `<area>.<reason>`, e.g. `call.no_route`.")
    message: str


_CALL_EXAMPLE: dict[str, Any] = {
    "id": "0192f3c4-5d6e-7f80-9a1b-2c3d4e5f6a7b",
    "direction": "outbound",
    "from": "+254700000001",
    "to": "+254722000000",
    "status": "completed",
    "number_id": "0192f3c4-0000-7000-8000-000000000001",
    "parent_call_id": None,
    "created_at": "2026-12-04T09:30:00.120Z",
    "started_at": "2026-12-04T09:30:00.350Z",
    "answered_at": "2026-12-04T09:30:04.010Z",
    "ended_at": "2026-12-04T09:31:10.500Z",
    "duration_seconds": 67,
    "hangup_cause": "callee_hangup",
    "price_minor": 600,
    "currency": "KES",
    "error": None,
    "quality": None,
    "on_net": False,
}


class CallOut(BaseModel):
    """A call record (SPEC §4); a dial's leg is one too, with its ``parent_call_id``."""

    model_config = ConfigDict(json_schema_extra={"example": _CALL_EXAMPLE})

    id: str = Field(description="UUIDv7.")
    direction: Literal["inbound", "outbound"]
    from_: str = Field(validation_alias="from", serialization_alias="from")
    to: str
    status: CallStatus
    number_id: str | None
    parent_call_id: str | None = Field(description="The call a `dial` leg belongs to.")
    created_at: str | None = Field(description="RFC 3339, UTC.")
    started_at: str | None
    answered_at: str | None
    ended_at: str | None
    duration_seconds: int | None = Field(description="Answered time, whole seconds.")
    hangup_cause: HangupCauseName | None
    price_minor: int | None
    currency: Literal["KES"]
    error: CallErrorOut | None = Field(description="Why the call failed, when it did.")
    quality: dict[str, Any] | None = Field(
        default=None,
        description="The leg's audio once ended: packets, lost, jitter_ms, mos_estimate "
        "(E-model), one_way_audio, and round_trip_ms when the far end sent RTCP reports.",
    )
    on_net: bool = Field(
        default=False,
        description="An outbound call to a number held on this platform: it stayed on it "
        "(never reached a carrier) and is priced at the on-net rate.",
    )
    answered_by: str | None = Field(
        default=None,
        description="Answering-machine detection's verdict (`AnsweredBy`: `human`, "
        "`machine_start`, `machine_end_beep`, `machine_end_silence`, `machine_end_other`, "
        "`fax`, `unknown`); null without detection or until it has decided.",
    )


class CallPage(BaseModel):
    data: list[CallOut]
    next_cursor: str | None


class CallEventRef(BaseModel):
    id: str
    kind: str = Field(examples=["call.answered"])
    occurred_at: str


class CallRecordingRef(BaseModel):
    id: str
    source: str = Field(examples=["record"])
    status: str = Field(examples=["stored"])
    duration_seconds: int | None


class CallDetail(CallOut):
    """A call with its ``dial`` legs, its events in order and its recordings."""

    legs: list[CallOut]
    events: list[CallEventRef]
    recordings: list[CallRecordingRef]


def _out(call: Call) -> dict[str, Any]:
    data = call_data(call)
    data.pop("workspace_id")
    data["on_net"] = call.on_net
    return data


async def _owned(session: AsyncSession, principal: Principal, call_id: str) -> Call:
    call = await session.get(Call, call_id)
    if call is None or call.workspace_id != principal.workspace_id:
        raise ApiError(404, "calls.not_found", f"no call {call_id}")
    return call


@router.post(
    "",
    status_code=201,
    response_model=CallOut,
    summary="Place an outbound call",
    responses={
        402: {"model": ErrorEnvelope, "description": "`wallet.insufficient_funds`"},
        403: {"model": ErrorEnvelope, "description": "`destinations.not_allowed`"},
        503: {
            "model": ErrorEnvelope,
            "description": "`service.overloaded` or `service.busy` (retry after "
            "`Retry-After` seconds) or `service.unavailable` (shutting down: retry elsewhere)",
        },
    },
)
@refused_when_overloaded
async def place_call(
    body: CallCreate, request: Request, session: DbSession, principal: Principal = Depends(write)
) -> dict[str, Any]:
    refuse_undeliverable_fields(request, body, "action_url", "events_url", "fallback_url")
    state = request.app.state
    manager = getattr(state, "calls", None)
    if manager is not None and not manager.accepting:
        raise ApiError(503, "service.unavailable", "this server is shutting down; retry")
    ask = CallAsk(
        Origin.API,
        to=body.to,
        caller=body.from_,
        workspace_id=principal.workspace_id,
        action_url=str(body.action_url),
        method=body.method,
        events_url=str(body.events_url) if body.events_url else None,
        fallback_url=str(body.fallback_url) if body.fallback_url else None,
        ring_timeout_seconds=body.timeout,
        record=RECORD_FROM_ANSWER if body.record else None,
        max_duration_seconds=body.max_duration,
    )
    admission: Admission = state.admission
    try:
        call = (await admission.admit(session, ask)).call
    except NumberNotOwned as refused:
        raise ApiError(403, "numbers.not_owned", str(refused), field="from") from None
    except InvalidDestination as invalid:
        raise ApiError(400, "validation.invalid_field", f"to: {invalid}", field="to") from None
    except DestinationNotAllowed as refused:
        raise ApiError(403, "destinations.not_allowed", str(refused), field="to") from None
    except CallLimitExceeded as limited:
        raise ApiError(
            429,
            "rate_limited",
            str(limited),
            headers={"Retry-After": str(max(1, round(limited.retry_after)))},
        ) from None
    except InsufficientFunds as short:
        raise ApiError(402, "wallet.insufficient_funds", str(short)) from None
    # Kept on the row, for the process that places the call (voice/amd.py runs at answer).
    call.machine_detection = body.amd_settings()
    await state.bus.publish(session, {"type": "place", "call_id": call.id})
    return _out(call)


@router.get("", response_model=CallPage, summary="Call records, newest first")
async def list_calls(
    session: DbSession,
    page: PageParams = Depends(page_params),
    principal: Principal = Depends(read),
    status: CallStatus | None = Query(None),
    direction: Literal["inbound", "outbound"] | None = Query(None),
    from_: str | None = Query(None, alias="from"),
    to: str | None = Query(None),
    created_after: Timestamp | None = Query(None),
    created_before: Timestamp | None = Query(None),
) -> dict[str, Any]:
    query = select(Call).where(Call.workspace_id == principal.workspace_id)
    for column, value in (
        (Call.status, status),
        (Call.direction, direction),
        (Call.from_number, from_),
        (Call.to_number, to),
    ):
        if value is not None:
            query = query.where(column == value)
    if created_after is not None:
        query = query.where(Call.created_at > created_after)
    if created_before is not None:
        query = query.where(Call.created_at < created_before)
    return await paginate(session, query, Call.id, page, _out)


@router.get(
    "/{call_id}",
    response_model=CallDetail,
    summary="One call, with its legs, events and recordings",
)
async def get_call(
    call_id: str, session: DbSession, principal: Principal = Depends(read)
) -> dict[str, Any]:
    call = await _owned(session, principal, call_id)
    legs = (await session.scalars(select(Call).where(Call.parent_call_id == call.id))).all()
    events = (
        await session.scalars(select(Event).where(Event.call_id == call.id).order_by(Event.id))
    ).all()
    recordings = (
        await session.scalars(
            select(Recording).where(Recording.call_id == call.id).order_by(Recording.id)
        )
    ).all()
    return {
        **_out(call),
        "legs": [_out(leg) for leg in legs],
        "events": [
            {"id": event.id, "kind": event.kind, "occurred_at": event.occurred_at.isoformat()}
            for event in events
        ],
        "recordings": [
            {
                "id": recording.id,
                "source": recording.source,
                "status": recording.status,
                "duration_seconds": recording.duration_seconds,
            }
            for recording in recordings
        ],
    }


@router.post(
    "/{call_id}",
    response_model=CallOut,
    summary="Redirect, hang up, or control the recording or streams of a live call",
)
async def change_call(
    call_id: str,
    body: CallChange,
    request: Request,
    session: DbSession,
    principal: Principal = Depends(write),
) -> dict[str, Any]:
    refuse_undeliverable_fields(request, body, "action_url")
    call = await _owned(session, principal, call_id)
    if call.status not in LIVE_STATUSES:
        raise ApiError(409, "calls.not_live", f"call {call_id} has ended ({call.status})")
    command: dict[str, Any] = {"type": "command", "call_id": call.id}
    if body.action_url is not None:
        command |= {"action_url": str(body.action_url), "method": body.method}
    elif body.status is not None:
        command["status"] = body.status
    elif body.stream is not None:
        command["stream"] = {"status": body.stream, "name": body.stream_name}
    elif body.transfer is not None:
        command["transfer"] = body.transfer
    else:
        command["recording"] = body.recording
    await request.app.state.bus.publish(session, command)
    return _out(call)
