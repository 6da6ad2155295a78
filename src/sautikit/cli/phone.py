"""``sautikit phone``: call a Sautikit server, or answer its calls, as a real phone would."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from sautikit import runtime

if TYPE_CHECKING:  # the PBX and the media engine load only when a call is made
    from sautikit.pbx import CallReport, CallScript, Phone

__all__ = ["app"]

app = typer.Typer(help="A test phone: place or answer calls with a voice and a keypad.")

Voice = Annotated[Path | None, typer.Option("--play", help="A WAV to speak as the voice.")]
Say = Annotated[str | None, typer.Option("--say", help="A sentence to speak (text-to-speech).")]
SpeakAfter = Annotated[
    float, typer.Option("--speak-after", help="Seconds to listen (to a prompt) before speaking.")
]
Language = Annotated[str, typer.Option("--language", help="Language of --say, e.g. en-US, sw.")]
Dtmf = Annotated[str, typer.Option("--dtmf", help="Keys to press after speaking, e.g. 1234#.")]
Record = Annotated[Path | None, typer.Option("--record", help="Record what the phone hears.")]
HangupAfter = Annotated[
    float | None, typer.Option("--hangup-after", help="Hang up this many seconds after answer.")
]
Listen = Annotated[str, typer.Option("--listen", help="host:port for the phone's SIP.")]


def _address(value: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit():
        raise typer.BadParameter(f"expected host:port, got {value!r}")
    return host, int(port)


def _script(
    voice: Path | None,
    say: str | None,
    speak_after: float,
    language: str,
    dtmf: str,
    record: Path | None,
    hangup_after: float | None,
) -> CallScript:
    from sautikit.pbx import CallScript

    return CallScript(
        voice=voice,
        say=say,
        speak_after=speak_after,
        language=language,
        dtmf=dtmf,
        record_to=record,
        hangup_after=hangup_after,
    )


def _print(report: CallReport) -> None:
    for event in report.events:
        typer.echo(f"  {event}")
    typer.echo(
        f"answered={report.answered} status={report.status} end={report.end_reason} "
        f"seconds={report.seconds:.1f}"
        + (f" recorded={report.recorded}" if report.recorded else "")
    )


def _phone(listen: str) -> Phone:
    host, port = _address(listen)
    from sautikit.media import TextToSpeech
    from sautikit.pbx import Phone

    tts = TextToSpeech(Path(tempfile.gettempdir()) / "sautikit-phone-tts")
    return Phone(host=host, sip_port=port, tts=tts)


@app.command("call")
def call(
    target: Annotated[str, typer.Argument(help="A number (+2547…) or a SIP URI.")],
    server: Annotated[str, typer.Option("--server", help="Sautikit's SIP host:port.")] = (
        "127.0.0.1:5080"
    ),
    caller_id: Annotated[str | None, typer.Option("--from", help="Caller number.")] = None,
    username: Annotated[str | None, typer.Option("--username", help="Digest user.")] = None,
    password: Annotated[str | None, typer.Option("--password", help="Digest password.")] = None,
    voice: Voice = None,
    say: Say = None,
    speak_after: SpeakAfter = 0.0,
    language: Language = "en-US",
    dtmf: Dtmf = "",
    record: Record = None,
    hangup_after: HangupAfter = None,
    listen: Listen = "127.0.0.1:0",
) -> None:
    """Call TARGET, speak, press keys, record what is heard, then hang up."""
    credentials = (username, password or "") if username else None
    script = _script(voice, say, speak_after, language, dtmf, record, hangup_after)

    async def run() -> CallReport:
        async with _phone(listen) as phone:
            return await phone.call(
                target,
                script,
                server=_address(server),
                caller_id=caller_id,
                credentials=credentials,
            )

    report = runtime.run(run())
    _print(report)
    raise typer.Exit(0 if report.answered else 1)


@app.command("answer")
def answer(
    listen: Listen = "127.0.0.1:5090",
    calls: Annotated[int, typer.Option("--calls", help="Answer this many calls, then quit.")] = 1,
    voice: Voice = None,
    say: Say = None,
    speak_after: SpeakAfter = 0.0,
    language: Language = "en-US",
    dtmf: Dtmf = "",
    record: Record = None,
    hangup_after: HangupAfter = None,
) -> None:
    """Wait for calls on --listen and answer each one with the same script."""
    script = _script(voice, say, speak_after, language, dtmf, record, hangup_after)

    async def run() -> None:
        async with _phone(listen) as phone:
            typer.echo(f"listening on {listen}")
            for _ in range(calls):
                _print(await phone.answer(script))

    runtime.run(run())
