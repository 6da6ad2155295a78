"""Run the Alembic migrations that ship inside the package.

A schema that is already current is left alone without a word: every command on the
embedded SQLite calls :func:`upgrade_database`, and Alembic's "Context impl SQLiteImpl" /
"Will assume non-transactional DDL" lines on each of them were noise. Only a real upgrade
speaks (its "Running upgrade …" lines).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection

from sautikit.db.engine import Database

__all__ = ["alembic_config", "upgrade_database"]

_MIGRATIONS = Path(__file__).with_name("migrations")
_ALEMBIC_LOG = logging.getLogger("alembic.runtime.migration")


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    # env.py runs the migrations on this connection instead of opening its own.
    config.attributes["connection"] = connection
    return config


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    level = _ALEMBIC_LOG.level
    _ALEMBIC_LOG.setLevel(logging.WARNING)
    try:
        yield
    finally:
        _ALEMBIC_LOG.setLevel(level)


def _is_current(connection: Connection, config: Config) -> bool:
    with _quiet():
        current = set(MigrationContext.configure(connection).get_current_heads())
    return current == set(ScriptDirectory.from_config(config).get_heads())


def _upgrade(connection: Connection, revision: str) -> None:
    config = alembic_config(connection)
    if revision == "head" and _is_current(connection, config):
        return
    command.upgrade(config, revision)


async def upgrade_database(database: Database, revision: str = "head") -> None:
    """Bring the schema up to ``revision`` inside one transaction (where the engine allows)."""
    async with database.engine.begin() as connection:
        await connection.run_sync(lambda sync: _upgrade(sync, revision))
