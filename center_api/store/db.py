"""Engine and schema: SQLite (aiosqlite) by default, PostgreSQL (asyncpg) by URL."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
# PostgreSQL ends a session that sits this long inside a transaction without sending anything. A replica
# frozen mid-transaction (SIGSTOP, a paused VM, a stalled host) would otherwise keep its row locks (the open
# incidents it locked to fold, rollup rows) and stall every other replica's writer until it woke up, so that
# they could not even claim its pending entries. Once its session ends its locks go; when it wakes, its
# transaction fails and its batch is retried (stored once: the writer is idempotent on alert ids). The
# center's transactions do no slow work between their statements.
IDLE_IN_TRANSACTION_MS = 10_000


def refused_for_its_data(exc: DBAPIError) -> bool:
    """Whether the database refused the rows themselves (an integrity or data error, SQLSTATE class 23 or
    22), which no retry changes. Anything else (a lost connection, a server starting up or shutting down, no
    resources, a deadlock) is the database being away: the consumer retries its batch, never dead-letters it,
    and the API answers 503. asyncpg's errors reach SQLAlchemy as its generic DBAPIError, so the SQLSTATE
    decides for them."""
    if isinstance(exc, (IntegrityError, DataError)):
        return True
    return str(getattr(exc.orig, "sqlstate", None) or "")[:2] in ("22", "23")


def make_engine(database_url: str) -> AsyncEngine:
    """The center's engine. SQL parameters stay out of logs and errors (`hide_parameters`): a camera row
    holds its stream URL, password included, and SQLAlchemy logs parameters whenever its logger is at INFO.
    For the same reason aiosqlite's logger stays at INFO or above: at DEBUG it logs every statement with its
    parameters, whatever the engine says."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        quiet = logging.getLogger("aiosqlite")
        if quiet.level < logging.INFO:  # NOTSET (inherit) included
            quiet.setLevel(logging.INFO)
        if url.database and url.database != ":memory:":
            Path(url.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, connect_args={"timeout": 30}, hide_parameters=True)

        @event.listens_for(engine.sync_engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        return engine
    session_settings = {"idle_in_transaction_session_timeout": str(IDLE_IN_TRANSACTION_MS)}
    return create_async_engine(
        url,
        pool_size=10,
        max_overflow=10,
        pool_pre_ping=True,
        hide_parameters=True,
        connect_args={"server_settings": session_settings},
    )


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


def _alembic_config(connection: Any) -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["connection"] = connection
    return cfg


async def migrate(engine: AsyncEngine) -> None:
    """Bring the schema to the newest Alembic revision (creates it on an empty database)."""
    from alembic import command

    async with engine.begin() as conn:
        await conn.run_sync(lambda sync_conn: command.upgrade(_alembic_config(sync_conn), "head"))
    log.info("database schema at head (%s)", engine.url.render_as_string(hide_password=True))
