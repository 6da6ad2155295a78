"""The database: SQLAlchemy 2 models, async sessions and Alembic migrations.

SQLite (aiosqlite) is the embedded default; PostgreSQL (asyncpg) is for real deployments
and for several Sautikit processes sharing one truth.
"""

from sautikit.db.engine import Database
from sautikit.db.writer import Job, Writer, WriterClosed, WriterPool, on_commit

__all__ = [
    "Database",
    "Job",
    "Writer",
    "WriterClosed",
    "WriterPool",
    "on_commit",
    "upgrade_database",
]


async def upgrade_database(database: Database, revision: str = "head") -> None:
    """Bring the schema up to ``revision`` (:mod:`sautikit.db.migrate`; Alembic loads only
    when this is called, so code that only reads rows never imports it)."""
    from sautikit.db.migrate import upgrade_database as upgrade

    await upgrade(database, revision)
