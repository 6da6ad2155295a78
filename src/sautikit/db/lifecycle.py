"""Opening the database for a process: migrate the embedded SQLite, or insist that a shared
PostgreSQL is already current (``sautikit db upgrade`` migrates it).

Kept apart from the composition root (:mod:`sautikit.app`) so that command-line tools that
only read or write rows do not import the API, the PBX and the media engine — nor Alembic
while the schema is current: the revision in ``alembic_version`` is compared with the head
read from the migration files' own ``revision =`` lines first, and Alembic runs only when
they differ (or the files do not make one clear head).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from sautikit.config import ConfigError, Settings
from sautikit.db import Database, upgrade_database

__all__ = ["open_database", "require_current_schema"]


@asynccontextmanager
async def open_database(
    settings: Settings, *, migrate: bool | None = None
) -> AsyncIterator[Database]:
    """Open the database and make sure its schema is current.

    The embedded SQLite default migrates itself; a shared PostgreSQL is migrated by the
    operator (``sautikit db upgrade``) so that several processes never race to do it, and
    start-up stops with a clear message while it is behind.
    """
    database = Database(
        settings.effective_database_url,
        pool_size=settings.database_pool_size,
        max_overflow=settings.database_pool_overflow,
        writers=settings.database_writers,
    )
    try:
        if migrate if migrate is not None else database.is_sqlite:
            if not await _known_current(database):
                await upgrade_database(database)
        elif not await _known_current(database):
            await require_current_schema(database)
        yield database
    finally:
        await database.close()


_VERSIONS = Path(__file__).with_name("migrations") / "versions"
_REVISION = re.compile(r'^(down_)?revision\s*(?::[^=]*)?=\s*["\']([^"\']+)["\']', re.M)


def _head_from_files() -> str | None:
    """The one revision no migration names as its ``down_revision``; None when the files
    do not make that plain (then Alembic decides)."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in _VERSIONS.glob("*.py"):
        for down, value in _REVISION.findall(path.read_text(encoding="utf-8")):
            (parents if down else revisions).add(value)
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 else None


async def _known_current(database: Database) -> bool:
    head = _head_from_files()
    if head is None:
        return False
    try:
        async with database.engine.connect() as connection:
            found = await connection.execute(text("SELECT version_num FROM alembic_version"))
            current = [row[0] for row in found]
    except DBAPIError:  # no alembic_version table yet: a new database
        return False
    return current == [head]


async def require_current_schema(database: Database) -> None:
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    from sautikit.db.migrate import alembic_config

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    async with database.engine.connect() as connection:
        current = await connection.run_sync(
            lambda sync: MigrationContext.configure(sync).get_current_revision()
        )
    if current != head:
        raise ConfigError(
            f"the database schema is at {current or 'nothing'}, this Sautikit needs {head}: "
            "run `sautikit db upgrade`"
        )
