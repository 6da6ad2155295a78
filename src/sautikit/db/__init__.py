"""The database: SQLAlchemy 2 models, async sessions and Alembic migrations.

SQLite (aiosqlite) is the embedded default; PostgreSQL (asyncpg) is for real deployments
and for several Sautikit processes sharing one truth.
"""

from sautikit.db.engine import Database
from sautikit.db.migrate import upgrade_database

__all__ = ["Database", "upgrade_database"]
