"""A center whose database goes away answers 503 `store_unavailable` with the one error body and a
Retry-After, never a bare 500 that drops the connection, and serves again once the database is back.
It kills its own private PostgreSQL (durable: fsync and synchronous commit on), also when the suite uses an
external server."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.center_api.conftest import auth, make_settings, start_center, stop_center
from tests.support.fixtures import entered_or_fail
from tests.support.pgdb import PostgresDatabases
from tests.support.servers import PostgresServer

pytestmark = pytest.mark.integration

CITY = auth("city_command", None, "chief")
READS = ["/api/v1/incidents", "/api/v1/stats?by=station", "/api/v1/cameras"]


async def test_a_database_outage_is_a_503_with_the_error_body_and_the_center_comes_back(
    tmp_path: Path, redis_db
) -> None:
    with entered_or_fail(PostgresServer(durable=True), "a private PostgreSQL for this test") as pg:
        databases = PostgresDatabases(pg.admin_url)
        with databases.database("gridwatch_outage") as url:
            server, task, center = await start_center(make_settings(tmp_path, url))
            try:
                for path in READS:
                    ok = await center.client.get(path, headers=CITY)
                    assert ok.status_code == 200, (path, ok.text)
                pg.kill()  # kill -9 of the postmaster: every connection of the pool is gone
                for path in READS:
                    away = await center.client.get(path, headers=CITY)
                    assert away.status_code == 503, (path, away.status_code, away.text)
                    assert away.json()["code"] == "store_unavailable", away.text
                    assert away.headers["Retry-After"].isdigit()
                health = await center.client.get("/api/v1/health")  # the process itself is alive
                assert health.status_code == 200
                pg.restart()
                for path in READS:
                    for _ in range(100):  # the pool replaces its dead connections
                        back = await center.client.get(path, headers=CITY)
                        if back.status_code == 200:
                            break
                        assert back.status_code == 503, (path, back.status_code, back.text)
                        await asyncio.sleep(0.2)
                    assert back.status_code == 200, (path, back.text)
            finally:
                await stop_center(server, task, center)
