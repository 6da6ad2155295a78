"""Running the app's actions on a live call: the interpreter, with the call's limits."""

from __future__ import annotations

import logging
from typing import Any

import httpx

from sautikit.billing.authorisation import play_url_allowed
from sautikit.billing.quota import Quota
from sautikit.calls.funding import Funding
from sautikit.calls.records import CallRecords
from sautikit.calls.registry import CallRegistry
from sautikit.db.models import Call, Workspace
from sautikit.logs import bind_call
from sautikit.recordings.pipeline import RecordingPipeline
from sautikit.voice.amd import AmdSettings, detect_answering_machine
from sautikit.voice.callbacks import AppClient
from sautikit.voice.control import CallEnded
from sautikit.voice.interpreter import Interpreter
from sautikit.voice.live import LiveCall
from sautikit.voice.prompts import PromptCache
from sautikit.voice.stream import StreamOpener

__all__ = ["AppRunner"]

log = logging.getLogger(__name__)


class AppRunner:
    def __init__(
        self,
        registry: CallRegistry,
        recordings: RecordingPipeline,
        http: httpx.AsyncClient,
        prompts: PromptCache,
        funding: Funding,
        records: CallRecords,
        *,
        app_timeout: float,
        allow_private_http: bool = False,
    ) -> None:
        self.allow_private_http = allow_private_http
        self.funding = funding
        self.records = records
        self.registry = registry
        self.recordings = recordings
        self.http = http
        self.prompts = prompts
        self.app_timeout = app_timeout

    async def run(self, live: LiveCall, call: Call, workspace: Workspace, quota: Quota) -> None:
        """Run the call's app from ``call.action_url`` until the call or the app ends."""
        bind_call(call.id, workspace.id)

        def play_allowed(host: str) -> bool:
            return any(
                play_url_allowed(workspace, f"{scheme}://{host}/") for scheme in ("https", "http")
            )

        # The pipeline's client marks a record callback as delivered, so crash recovery
        # posts only the ones that never reached the app.
        app = await self.recordings.app_client(
            workspace.id, self.http, request_timeout=self.app_timeout, number_id=call.number_id
        )
        interpreter = Interpreter(
            live,
            app,
            recordings=self.recordings,
            prompts=self.prompts,
            play_allowed=play_allowed,
            fallback_url=call.fallback_url,
            streams=StreamOpener(allow_private=self.allow_private_http),
        )
        self.registry.interpreters[live.call_id] = interpreter
        limit = self.registry.spawn(
            self.funding.keep_funded(live, quota, max_duration=call.max_duration_seconds),
            f"funding of {call.id}",
        )
        try:
            assert call.action_url is not None
            fields: dict[str, str | int] = {}
            amd = call.machine_detection
            if amd is not None and live.direction == "outbound":
                if amd.get("async"):
                    self.registry.spawn(self._detect_later(live, app, amd), f"amd of {call.id}")
                else:
                    fields = await self._detect(live, amd)
            await interpreter.run(call.action_url, call.method, fields)
        except Exception:
            log.exception("call %s: the interpreter failed", call.id)
            await live.hangup("application_error")
        finally:
            limit.cancel()
            self.registry.interpreters.pop(live.call_id, None)

    async def _detect_later(self, live: LiveCall, app: AppClient, amd: dict[str, Any]) -> None:
        """``async_amd``: the app runs from answer; the verdict goes to its callback."""
        fields = await self._detect(live, amd)
        url = amd.get("status_callback")
        if url:
            await app.notify(
                url,
                {"CallId": live.call_id, "WorkspaceId": live.workspace_id, **fields},
            )

    async def _detect(self, live: LiveCall, amd: dict[str, Any]) -> dict[str, str | int]:
        """Detect, and keep the verdict on the call row (the API and events show it)."""
        fields = await _detect(live, amd)
        await self.records.answered_by(live.call_id, str(fields["AnsweredBy"]))
        return fields


async def _detect(live: LiveCall, amd: dict[str, Any]) -> dict[str, str | int]:
    """Answering-machine detection at answer (voice/amd.py); the fields the app is told."""
    settings = AmdSettings(
        detect_message_end=amd.get("mode") == "DetectMessageEnd",
        timeout=float(amd.get("timeout", 30)),
        speech_threshold=amd.get("speech_threshold_ms", 2400) / 1000,
        speech_end_threshold=amd.get("speech_end_threshold_ms", 1200) / 1000,
        silence_timeout=amd.get("silence_timeout_ms", 5000) / 1000,
    )
    try:
        answered_by, seconds = await detect_answering_machine(live, settings)
    except CallEnded:
        answered_by, seconds = "unknown", 0.0
    return {"AnsweredBy": answered_by, "MachineDetectionDuration": round(seconds * 1000)}
