"""The API's rate limits: :class:`~sautikit.cluster.buckets.KeyRateLimit` per key, on
token buckets every node shares on PostgreSQL (in this process on SQLite)."""

from sautikit.cluster.buckets import KeyRateLimit, RateLimiter

__all__ = ["KeyRateLimit", "RateLimiter"]
