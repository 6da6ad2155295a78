"""The test phone: a SIP user agent with a voice, a keypad and an ear.

Operators check a deployment with it (``sautikit phone``), and the tests and the demo use
it as the caller or callee of real calls. It is a :class:`~sautikit.pbx.Pbx` of its own
(on an ephemeral SIP port) driven by a small script per call: speak a WAV or a sentence,
press keys, record what it hears, hang up when done or when the far end does.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt

from sautikit.media import RecordingHandle, TextToSpeech, load_wav
from sautikit.pbx.leg import CallLeg, InboundLeg
from sautikit.pbx.service import Pbx
from sautikit.sip import CallFailed, EndReason

__all__ = ["CallReport", "CallScript", "Phone"]

log = logging.getLogger(__name__)

Int16Array = npt.NDArray[np.int16]


@dataclass
class CallScript:
    """What the phone does once a call is up.

    After ``speak_after`` seconds (to let a prompt play) it speaks ``voice`` (a WAV file),
    then ``say`` (text, through text-to-speech), then presses ``dtmf`` after
    ``dtmf_delay`` seconds, and records what it hears to ``record_to``. It hangs up
    ``hangup_after`` seconds after answer when that is set, else ``linger`` seconds after
    its script ran out; the far end may hang up first.
    """

    voice: Path | None = None
    say: str | None = None
    speak_after: float = 0.0
    language: str = "en-US"
    dtmf: str = ""
    dtmf_delay: float = 0.5
    record_to: Path | None = None
    hangup_after: float | None = None
    linger: float = 5.0


@dataclass
class CallReport:
    """How one call went, as the phone saw it."""

    answered: bool
    status: int | None = None
    end_reason: str | None = None
    seconds: float = 0.0
    recorded: Path | None = None
    events: list[str] = field(default_factory=list)


class Phone:
    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        sip_port: int = 0,
        rtp_ports: tuple[int, int] = (30000, 30999),
        tts: TextToSpeech | None = None,
        user: str = "phone",
    ) -> None:
        self._incoming: asyncio.Queue[InboundLeg] = asyncio.Queue()
        self.pbx = Pbx(
            sip_host=host,
            sip_port=sip_port,
            rtp_ports=rtp_ports,
            tts=tts,
            on_inbound=self._incoming.put,
            sip_user=user,
        )
        self.host = host
        self.user = user

    @property
    def port(self) -> int:
        return self.pbx.port

    async def __aenter__(self) -> Phone:
        await self.pbx.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.pbx.close()

    async def call(
        self,
        target: str,
        script: CallScript,
        *,
        server: tuple[str, int] | None = None,
        caller_id: str | None = None,
        credentials: tuple[str, str] | None = None,
        ring_timeout: float = 30.0,
    ) -> CallReport:
        """Call ``target`` (a number, sent to ``server``, or a full SIP URI) and run the
        script. A number becomes ``sip:NUMBER@server``."""
        if not target.startswith(("sip:", "sips:")):
            if server is None:
                raise ValueError("a number needs the server to send it to")
            target = f"sip:{target}@{server[0]}:{server[1]}"
        from_uri = f"sip:{caller_id or self.user}@{self.host}:{self.port}"
        leg = await self.pbx.dial(
            target,
            from_uri=from_uri,
            credentials=credentials,
            ring_timeout=ring_timeout,
        )
        report = CallReport(answered=False)
        report.events.append(f"calling {target}")
        try:
            await leg.wait_answer()
        except CallFailed as failed:
            report.status = failed.status
            report.end_reason = (await leg.wait_ended()).reason.value
            report.events.append(f"not answered: {failed.status} {failed.phrase}")
            return report
        report.answered = True
        report.status = 200
        report.events.append("answered")
        await self._run(leg, script, report)
        return report

    async def answer(self, script: CallScript, *, within: float | None = None) -> CallReport:
        """Wait (up to ``within`` seconds) for the next incoming call, answer it and run
        the script."""
        async with asyncio.timeout(within):
            leg = await self._incoming.get()
        report = CallReport(answered=True, status=200)
        report.events.append(f"call from {leg.caller} to {leg.called}")
        await leg.answer()
        report.events.append("answered")
        await self._run(leg, script, report)
        return report

    async def _run(self, leg: CallLeg, script: CallScript, report: CallReport) -> None:
        loop = asyncio.get_running_loop()
        started = loop.time()
        recording: RecordingHandle | None = None
        if script.record_to is not None:
            recording = leg.channel.start_recording(script.record_to)
        acting = asyncio.create_task(self._act(leg, script, report))
        ended = asyncio.ensure_future(leg.wait_ended())
        await asyncio.wait({acting, ended}, return_when=asyncio.FIRST_COMPLETED)
        if not ended.done() and script.hangup_after is None:
            await asyncio.wait({ended}, timeout=script.linger)
        if not ended.done():
            report.events.append("hanging up")
            await leg.hangup()
        acting.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await acting
        end = await ended
        report.end_reason = end.reason.value
        report.seconds = loop.time() - started
        if end.reason is EndReason.REMOTE_HANGUP:
            report.events.append("the far end hung up")
        if recording is not None:
            recording.stop()
            with contextlib.suppress(OSError):
                await recording.finished()
            report.recorded = script.record_to
        await leg.channel.close()

    async def _act(self, leg: CallLeg, script: CallScript, report: CallReport) -> None:
        loop = asyncio.get_running_loop()
        deadline = None if script.hangup_after is None else loop.time() + script.hangup_after
        voice: list[Int16Array] = []
        if script.voice is not None:
            voice.append(await asyncio.to_thread(load_wav, script.voice))
        if script.say:
            tts = self.pbx.media.tts
            if tts is None:
                raise ValueError("this phone has no text-to-speech")
            voice.append(await tts.synthesize(script.say, script.language))
        if voice:
            await asyncio.sleep(script.speak_after)
            report.events.append("speaking")
            await leg.channel.play(voice)
        if script.dtmf:
            await asyncio.sleep(script.dtmf_delay)
            report.events.append(f"pressing {script.dtmf}")
            leg.channel.send_dtmf(script.dtmf)
            # Each key takes its duration plus a gap on the media clock.
            await asyncio.sleep(0.15 * len(script.dtmf))
        if deadline is not None:
            await asyncio.sleep(max(0.0, deadline - loop.time()))
