"""Servers of the whole suite: a private Redis/Valkey and a private PostgreSQL, started on first use.

Nothing in the suite talks to a server it did not start, unless `GRIDWATCH_TEST_REDIS_URL` or
`GRIDWATCH_TEST_DATABASE_URL` names one (see `tests/support/redisdb.py` and `tests/support/pgdb.py` for what
the suite then touches). A server that cannot start fails every test that needs it, with the reason.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.fixtures import entered_or_fail
from tests.support.pgdb import PostgresDatabases, postgres_service
from tests.support.redisdb import RedisDatabases, redis_service


@pytest.fixture(scope="session")
def redis_databases() -> Iterator[RedisDatabases]:
    """The suite's Redis server, as DBs to lease (started by the first test that needs one)."""
    with entered_or_fail(redis_service(), "no Redis for the tests: ") as databases:
        yield databases


@pytest.fixture
def redis_url(redis_databases: RedisDatabases) -> Iterator[str]:
    """The URL of a Redis DB of this test's own, empty at the start and flushed at the end."""
    with entered_or_fail(redis_databases.lease()) as url:
        yield url


@pytest.fixture(scope="session")
def postgres_databases() -> Iterator[PostgresDatabases]:
    """The suite's PostgreSQL server, as databases to create (started by the first test that needs one)."""
    with entered_or_fail(postgres_service(), "no PostgreSQL for the tests: ") as databases:
        yield databases
