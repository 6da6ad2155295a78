"""The SDK's signature checks under the server's name (see :mod:`sautikit_sdk.webhooks`)."""

from sautikit_sdk.webhooks import *  # noqa: F403 - the alias is the module's whole surface
from sautikit_sdk.webhooks import __all__ as __all__
