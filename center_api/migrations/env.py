"""Alembic environment. The app passes its connection in `config.attributes["connection"]` (see
`center_api.store.db.migrate`); the `alembic` command line uses `sqlalchemy.url` from `alembic.ini`
or the `-x url=...` argument (a sync or async URL)."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from center_api.store.models import Base

config = context.config
target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection, target_metadata=target_metadata, render_as_batch=True, compare_type=True
    )
    with context.begin_transaction():
        context.run_migrations()


def _url() -> str:
    return (
        context.get_x_argument(as_dictionary=True).get("url")
        or config.get_main_option("sqlalchemy.url")
        or ""
    )


async def _run_async(url: str) -> None:
    engine = create_async_engine(url)
    async with engine.begin() as conn:
        await conn.run_sync(_run)
    await engine.dispose()


if context.is_offline_mode():
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
elif (conn := config.attributes.get("connection")) is not None:
    _run(conn)
else:
    url = _url()
    if "+aiosqlite" in url or "+asyncpg" in url:
        asyncio.run(_run_async(url))
    else:
        from sqlalchemy import create_engine

        with create_engine(url).begin() as sync_conn:
            _run(sync_conn)
