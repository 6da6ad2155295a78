"""The SDK's version: read by ``sdk/python/pyproject.toml`` and sent in ``User-Agent``."""

__version__ = "0.1.0"
