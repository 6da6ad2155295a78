"""Events: the kinds of SPEC §7, the durable outbox and webhook delivery."""

from sautikit.events.kinds import EVENT_KINDS

__all__ = ["EVENT_KINDS"]
