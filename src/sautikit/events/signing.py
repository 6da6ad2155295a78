"""Signatures on everything Sautikit sends to an app (SPEC §7).

The rule lives in the SDK (:mod:`sautikit_sdk.signing`) so that the server's signing and an
app's verification are one implementation; the server imports it from here.
"""

from sautikit_sdk.signing import *  # noqa: F403 - the alias is the module's whole surface
from sautikit_sdk.signing import __all__ as __all__
