"""Console roles and invitation lifetime: plain constants, importable without the
password hashing and the database (``sautikit console --help`` shows them)."""

from __future__ import annotations

from datetime import timedelta

__all__ = ["INVITE_LIFETIME", "ROLES"]

INVITE_LIFETIME = timedelta(days=7)
ROLES = ("owner", "developer", "viewer")
