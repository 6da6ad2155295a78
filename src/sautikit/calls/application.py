"""Running the app's actions on a live call: the interpreter, with the call's limits."""

from __future__ import annotations

import logging

import httpx

from sautikit.billing.authorisation import play_url_allowed
from sautikit.calls.funding import enforce_limits
from sautikit.calls.registry import CallRegistry
from sautikit.db.models import Call, Workspace
from sautikit.recordings.pipeline import RecordingPipeline
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
        *,
        app_timeout: float,
        allow_private_http: bool = False,
    ) -> None:
        self.allow_private_http = allow_private_http
        self.registry = registry
        self.recordings = recordings
        self.http = http
        self.prompts = prompts
        self.app_timeout = app_timeout

    async def run(
        self, live: LiveCall, call: Call, workspace: Workspace, allowed_seconds: int | None
    ) -> None:
        """Run the call's app from ``call.action_url`` until the call or the app ends."""

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
            enforce_limits(live, call.max_duration_seconds, allowed_seconds),
            f"limits of {call.id}",
        )
        try:
            assert call.action_url is not None
            await interpreter.run(call.action_url, call.method)
        except Exception:
            log.exception("call %s: the interpreter failed", call.id)
            await live.hangup("application_error")
        finally:
            limit.cancel()
            self.registry.interpreters.pop(live.call_id, None)
