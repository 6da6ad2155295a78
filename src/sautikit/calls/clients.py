"""Browser clients (SPEC §11): identities of a workspace that sign in with a short-lived
token over SIP on WebSocket instead of a digest login (docs/pbx.md "Browser calling")."""

from __future__ import annotations

from sautikit.config import Settings
from sautikit.crypto import derive_key
from sautikit.sip.token_auth import ClientTokens

__all__ = ["client_tokens"]


def client_tokens(settings: Settings) -> ClientTokens:
    """The deployment's client tokens: every node derives the same key from the
    operator's secret, so any node accepts a token another issued."""
    return ClientTokens(derive_key(settings.signing_key(), "sip client tokens"))
