"""The REST API (SPEC §1–§2): shared machinery plus one router module per resource."""

from sautikit.api.app import create_api

__all__ = ["create_api"]
