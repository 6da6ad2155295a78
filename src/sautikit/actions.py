"""The SDK's voice-action builders under the server's name (see :mod:`sautikit_sdk.actions`)."""

from sautikit_sdk.actions import *  # noqa: F403 - the alias is the module's whole surface
from sautikit_sdk.actions import __all__ as __all__
