"""What one ``sautikit serve`` process does: its roles (``--roles``, ``SAUTIKIT_ROLES``).

- ``api``: the HTTP API and the console. A new outbound call is admitted and written by
  the request, then placed by whichever ``pbx`` node claims it (the command bus).
- ``pbx``: SIP and RTP: it binds the SIP listener and the RTP range, places and answers
  calls, runs their apps, records them, and recovers the calls of dead nodes.
- ``worker``: the background work on the shared database: event delivery, transcription,
  retention and number renewals, M-Pesa top-ups.

Every node serves ``/healthz``, ``/readyz`` and ``/metrics`` on its HTTP port, whatever
its roles (a balancer and Prometheus must reach each one); only an ``api`` node serves
``/v1`` and the console. All three roles in one process is the default (and the only
way on SQLite, which is one process by design).
"""

from __future__ import annotations

from typing import Final, Literal, get_args

__all__ = ["ALL_ROLES", "Role", "parse_roles", "roles_text"]

Role = Literal["api", "pbx", "worker"]
ALL_ROLES: Final[tuple[Role, ...]] = get_args(Role)


def parse_roles(text: str) -> frozenset[Role]:
    """``"api,pbx"`` as its roles; raises ``ValueError`` naming what is wrong."""
    named = [part.strip().lower() for part in text.replace(" ", ",").split(",") if part.strip()]
    if not named:
        raise ValueError(f"name at least one role of {', '.join(ALL_ROLES)}")
    unknown = [part for part in named if part not in ALL_ROLES]
    if unknown:
        raise ValueError(f"unknown role {unknown[0]!r}: the roles are {', '.join(ALL_ROLES)}")
    return frozenset(role for role in ALL_ROLES if role in named)


def roles_text(roles: frozenset[Role]) -> str:
    """The canonical spelling: the roles in the order of :data:`ALL_ROLES`."""
    return ",".join(role for role in ALL_ROLES if role in roles)
