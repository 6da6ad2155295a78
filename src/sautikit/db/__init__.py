"""The database: SQLAlchemy 2 models, async sessions and Alembic migrations.

SQLite (aiosqlite) is the embedded default; PostgreSQL (asyncpg) is for real deployments
and for several Sautikit processes sharing one truth.
"""

from sautikit.db.engine import Database
from sautikit.db.migrate import upgrade_database
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
