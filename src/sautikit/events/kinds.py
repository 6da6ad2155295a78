"""The event kinds of SPEC §7, ``number.suspended`` (a number whose monthly rental the
wallet could not pay stops taking calls; SPEC §7 has no kind for it), and
``queue.joined``/``queue.left`` (a call's stay in a queue, docs/verbs/queues.md)."""

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
        "queue.joined",
        "queue.left",
        "wallet.top_up",
        "wallet.low_balance",
    }
)
