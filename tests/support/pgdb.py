"""Throw-away PostgreSQL databases, one per holder, on the suite's private cluster or an external server.

By default the suite starts its own cluster (`tests.support.servers.PostgresServer`).
`GRIDWATCH_TEST_DATABASE_URL=postgresql://user:password@host:port/postgres` points it at an external server
instead (the user needs CREATEDB): the suite then creates databases named `gridwatch_test_<random>` there,
drops each when its holder is done, and touches no other database.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg  # type: ignore[import-untyped]

from tests.support.servers import PostgresServer, ServerError, redacted

URL_ENV = "GRIDWATCH_TEST_DATABASE_URL"


def _run(coro: Coroutine[Any, Any, None]) -> None:
    # On a thread of its own: the caller may be inside a running event loop (an async test's fixture).
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, coro).result()


class PostgresDatabases:
    """Creates and drops databases through `admin_url` (a libpq URL: `postgresql://...`)."""

    def __init__(self, admin_url: str) -> None:
        parts = urlsplit(admin_url)
        self.admin_url = urlunsplit(parts._replace(scheme="postgresql"))  # "postgresql+asyncpg" -> libpq's

    def url(self, name: str, driver: str | None = "asyncpg") -> str:
        """Database `name`'s URL: SQLAlchemy's `postgresql+asyncpg://` form, or libpq's with driver=None."""
        scheme = f"postgresql+{driver}" if driver else "postgresql"
        return urlunsplit(urlsplit(self.admin_url)._replace(scheme=scheme, path=f"/{name}"))

    async def _execute(self, sql: str) -> None:
        try:
            conn = await asyncpg.connect(self.admin_url, timeout=30)
        except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
            raise ServerError(f"PostgreSQL is not reachable at {redacted(self.admin_url)} ({exc})") from None
        try:
            await conn.execute(sql, timeout=60)
        finally:
            await conn.close()

    def check(self) -> None:
        _run(self._execute("SELECT 1"))

    @contextmanager
    def database(self, prefix: str = "gridwatch_test") -> Iterator[str]:
        """A new, empty database (its SQLAlchemy asyncpg URL), dropped afterwards."""
        name = f"{prefix}_{uuid.uuid4().hex[:10]}"
        _run(self._execute(f'CREATE DATABASE "{name}"'))
        try:
            yield self.url(name)
        finally:
            _run(self._execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@contextmanager
def postgres_service(durable: bool = False) -> Iterator[PostgresDatabases]:
    """The external server named by `GRIDWATCH_TEST_DATABASE_URL`, else a private cluster started here
    (`durable=False`: without fsync, for the tests)."""
    external = os.environ.get(URL_ENV)
    if external:
        databases = PostgresDatabases(external)
        databases.check()
        yield databases
        return
    with PostgresServer(durable=durable) as server:
        yield PostgresDatabases(server.admin_url)
