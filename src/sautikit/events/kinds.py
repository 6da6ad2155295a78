"""The event kinds of SPEC §7, and ``number.suspended`` (a number whose monthly rental
the wallet could not pay stops taking calls; SPEC §7 has no kind for it)."""

EVENT_KINDS: frozenset[str] = frozenset(
    {
        "call.started",
        "call.ringing",
        "call.answered",
        "call.completed",
        "call.failed",
        "call.funds_low",
        "call.recording.ready",
        "call.transcription.ready",
        "number.provisioned",
        "number.released",
        "number.suspended",
        "wallet.top_up",
        "wallet.low_balance",
    }
)
