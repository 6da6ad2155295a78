"""The Python SDK under the server's name: ``sautikit.client`` is ``sautikit_sdk``.

The SDK is its own distribution (``sautikit-sdk``, built from ``sdk/python/``) which the
server depends on; apps install it alone and import ``sautikit_sdk``. This alias keeps
code written against the server's package working with the very same objects.
"""

from sautikit_sdk import *  # noqa: F403 - the alias is the SDK's whole public surface
from sautikit_sdk import __all__ as __all__
