"""The event kinds of SPEC §7."""

EVENT_KINDS: frozenset[str] = frozenset(
    {
        "call.started",
        "call.ringing",
        "call.answered",
        "call.completed",
        "call.failed",
        "call.recording.ready",
        "call.transcription.ready",
        "number.provisioned",
        "number.released",
        "wallet.top_up",
        "wallet.low_balance",
    }
)
