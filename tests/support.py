"""Types and helpers shared by test modules (fixtures live in conftest.py)."""

from collections.abc import Awaitable, Callable

# make_key(scopes=None, workspace_id=None) -> (workspace id, auth headers)
KeyFactory = Callable[..., Awaitable[tuple[str, dict[str, str]]]]
