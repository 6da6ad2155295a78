"""Migrations build the schema from an empty database, on SQLite and on PostgreSQL."""

from __future__ import annotations

import pytest
from alembic import command
from sqlalchemy import inspect

from sautikit.app import require_current_schema
from sautikit.config import ConfigError
from sautikit.db import Database, upgrade_database
from sautikit.db.migrate import alembic_config
from sautikit.db.models import Base


async def _tables(database: Database) -> set[str]:
    async with database.engine.connect() as connection:
        return set(await connection.run_sync(lambda sync: inspect(sync).get_table_names()))


async def test_upgrade_from_empty_builds_every_table(empty_database: Database) -> None:
    assert await _tables(empty_database) == set()
    await upgrade_database(empty_database)
    assert set(Base.metadata.tables) <= await _tables(empty_database)
    await require_current_schema(empty_database)


async def test_upgrade_twice_is_harmless(empty_database: Database) -> None:
    await upgrade_database(empty_database)
    await upgrade_database(empty_database)
    await require_current_schema(empty_database)


async def test_downgrade_then_upgrade(empty_database: Database) -> None:
    await upgrade_database(empty_database)
    async with empty_database.engine.begin() as connection:
        await connection.run_sync(lambda sync: command.downgrade(alembic_config(sync), "base"))
    assert await _tables(empty_database) <= {"alembic_version"}
    await upgrade_database(empty_database)
    assert set(Base.metadata.tables) <= await _tables(empty_database)


async def test_a_database_behind_is_refused_with_advice(empty_database: Database) -> None:
    with pytest.raises(ConfigError, match="sautikit db upgrade"):
        await require_current_schema(empty_database)
