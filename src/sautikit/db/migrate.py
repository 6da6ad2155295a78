"""Run the Alembic migrations that ship inside the package."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Connection

from sautikit.db.engine import Database

__all__ = ["alembic_config", "upgrade_database"]

_MIGRATIONS = Path(__file__).with_name("migrations")


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    # env.py runs the migrations on this connection instead of opening its own.
    config.attributes["connection"] = connection
    return config


async def upgrade_database(database: Database, revision: str = "head") -> None:
    """Bring the schema up to ``revision`` inside one transaction (where the engine allows)."""
    async with database.engine.begin() as connection:
        await connection.run_sync(lambda sync: command.upgrade(alembic_config(sync), revision))
