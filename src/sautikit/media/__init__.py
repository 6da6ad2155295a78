"""Sautikit's RTP media engine: codecs, DTMF, jitter buffer, the media clock, players and mixers.

Call logic (the PBX and the voice-action interpreter) needs only what is exported here: a
:class:`MediaEngine` per process, a :class:`MediaChannel` per call leg with the outcomes
its awaits return, :class:`Bridge` and :class:`Conference`, and the errors they raise. The
building blocks (RTP, RTCP, G.711, jitter buffer, player, recorder) stay in their modules.
"""

from sautikit.media.audio import (
    FRAME_SAMPLES,
    SAMPLE_RATE,
    AudioFormatError,
    load_audio,
    load_wav,
)
from sautikit.media.bridge import Bridge
from sautikit.media.channel import (
    ChannelClosed,
    ChannelInUse,
    DigitsEnd,
    DigitsResult,
    MediaChannel,
    PlayEnd,
    PlayOutcome,
    RecordingHandle,
    SilenceEnd,
)
from sautikit.media.clock import ClockStats, MediaClock
from sautikit.media.conference import Conference
from sautikit.media.engine import EngineStats, MediaEngine
from sautikit.media.player import beep, silence, tone
from sautikit.media.ports import PortsExhausted
from sautikit.media.recorder import RecorderState
from sautikit.media.tts import TextToSpeech, TtsError

__all__ = [
    "FRAME_SAMPLES",
    "SAMPLE_RATE",
    "AudioFormatError",
    "Bridge",
    "ChannelClosed",
    "ChannelInUse",
    "ClockStats",
    "Conference",
    "DigitsEnd",
    "DigitsResult",
    "EngineStats",
    "MediaChannel",
    "MediaClock",
    "MediaEngine",
    "PlayEnd",
    "PlayOutcome",
    "PortsExhausted",
    "RecorderState",
    "RecordingHandle",
    "SilenceEnd",
    "TextToSpeech",
    "TtsError",
    "beep",
    "load_audio",
    "load_wav",
    "silence",
    "tone",
]
