"""Opening the database for a process: migrate the embedded SQLite, or insist that a shared
PostgreSQL is already current (``sautikit db upgrade`` migrates it).

Kept apart from the composition root (:mod:`sautikit.app`) so that command-line tools that
only read or write rows do not import the API, the PBX and the media engine.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from sautikit.config import ConfigError, Settings
from sautikit.db import Database, upgrade_database
from sautikit.db.migrate import alembic_config

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
            await upgrade_database(database)
        else:
            await require_current_schema(database)
        yield database
    finally:
        await database.close()


async def require_current_schema(database: Database) -> None:
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
