"""Per-client limits: feed connections per token subject, failed token checks per client address.

Each is refused with a clear 4xx (or WebSocket close code) that names the limit, and everyone else goes on
being served. The throttle's clock is an argument, so its windows and refusals are checked without waiting.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import httpx
import pytest
import websockets
from pydantic import ValidationError
from redis.asyncio import Redis

from center_api.auth import Principal, Role
from center_api.feeds import FeedClientLimit, FeedHub
from center_api.metrics import CenterMetrics
from center_api.throttle import TokenFailureThrottle
from gridwatch.cli import _center_settings
from gridwatch.settings import GridwatchSettings
from tests.center_api.conftest import SCRAPE, RunningCenter, auth, poll, token

BAD = {"Authorization": "Bearer not-a-token"}
ALICE = Principal("alice", Role.operator, "st-nanguan")  # the principal of conftest's token()

# -- the throttle, its clock driven by the test ------------------------------------------------------------


@pytest.mark.parametrize(
    ("failures", "at", "refused_for"),
    [
        ([0.0, 1.0], 2.0, None),  # under the limit
        ([0.0, 1.0, 2.0], 2.0, 100.0),  # the third within the window refuses for block_s
        ([0.0, 1.0, 2.0], 101.5, 0.5),  # still refused just before the block ends
        ([0.0, 1.0, 2.0], 102.0, None),  # the block is over
        ([0.0, 1.0, 10.0], 10.0, None),  # the third came after the window: a new window began at 10
        ([0.0, 10.0, 11.0, 12.0], 12.0, 100.0),  # ... which the next two fill
    ],
)
def test_throttle_refuses_an_address_after_max_failures_in_the_window(
    failures: list[float], at: float, refused_for: float | None
) -> None:
    throttle = TokenFailureThrottle(max_failures=3, window_s=10, block_s=100, max_addresses=10)
    for now in failures:
        throttle.failed("10.0.0.1", now)
    assert throttle.refusal("10.0.0.1", at) == refused_for
    assert throttle.refusal("10.0.0.2", at) is None  # another address is untouched


def test_throttle_table_is_bounded_and_forgets_the_least_recent_first() -> None:
    throttle = TokenFailureThrottle(max_failures=2, window_s=60, block_s=60, max_addresses=3)
    throttle.failed("a", 0.0)
    throttle.failed("a", 1.0)  # "a" is refused
    for now, address in enumerate(["b", "c", "d"], start=2):
        throttle.failed(address, float(now))
    assert len(throttle) == 3 and throttle.forgotten == 1
    assert throttle.refusal("a", 5.0) is None  # "a" failed least recently: forgotten to make room
    throttle.failed("b", 6.0)  # "b" failed again: now the most recent, and refused
    throttle.failed("e", 7.0)
    assert throttle.refusal("b", 7.0) == 60.0 - 1.0
    assert len(throttle) == 3 and throttle.forgotten == 2


# -- the feed hub's count per owner --------------------------------------------------------------------------


async def test_feed_hub_refuses_the_owners_next_client_and_frees_a_place_on_disconnect() -> None:
    metrics = CenterMetrics()
    redis = Redis()  # never connected: connect and disconnect are local
    hub = FeedHub(redis, metrics)
    first = hub.connect("st-nanguan", "sse", owner=ALICE, limit=2)
    hub.connect(None, "websocket", owner=ALICE, limit=2)
    with pytest.raises(FeedClientLimit, match="limit 2 per token subject"):
        hub.connect("st-nanguan", "sse", owner=ALICE, limit=2)
    hub.connect("st-nanguan", "sse", owner=Principal("bob", Role.operator, "st-nanguan"), limit=2)
    hub.disconnect(first)
    hub.disconnect(first)  # twice: counted once
    assert hub.held_by(ALICE) == 1
    hub.connect("st-nanguan", "sse", owner=ALICE, limit=2)
    assert hub.clients == 3
    assert metrics.registry.get_sample_value("gridwatch_center_feed_clients_refused_total") == 1
    await redis.aclose()


# -- against a running center ------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def _open_sse(client: httpx.AsyncClient, headers: dict[str, str]) -> AsyncIterator[httpx.Response]:
    async with client.stream("GET", "/api/v1/feed/sse", headers=headers) as response:
        yield response


def _held(center: RunningCenter, owner: Principal) -> int:
    return center.app.state.services.hub.held_by(owner)  # type: ignore[attr-defined, no-any-return]


@pytest.mark.integration
async def test_feed_connections_per_token_subject(center_factory, database_url, redis_db) -> None:
    center = await center_factory(database_url, feed_clients_per_subject=2)
    alice, bob = auth(), auth(sub="bob")
    async with contextlib.AsyncExitStack() as stack:
        ws = await stack.enter_async_context(websockets.connect(center.ws_url(token=token())))
        sse = await stack.enter_async_context(_open_sse(center.client, alice))
        assert sse.status_code == 200

        async def both_held():
            return _held(center, ALICE) == 2

        await poll(both_held)
        refused = await center.client.get("/api/v1/feed/sse", headers=alice)
        assert refused.status_code == 429, refused.text
        assert refused.json()["code"] == "too_many_feed_clients"
        assert "limit 2 per token subject" in refused.json()["detail"]
        async with websockets.connect(center.ws_url(token=token())) as third:
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await asyncio.wait_for(third.recv(), 30)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4429
        assert "limit 2 per token subject" in closed.value.rcvd.reason
        # Everyone else is still served: another subject of the same station, and the health check.
        async with _open_sse(center.client, bob) as other:
            assert other.status_code == 200
        assert (await center.client.get("/api/v1/me", headers=alice)).status_code == 200
        await ws.close()

        async def one_held():
            return _held(center, ALICE) == 1

        await poll(one_held)  # a closed feed frees its place
        async with _open_sse(center.client, alice) as again:
            assert again.status_code == 200
    metrics = (await center.client.get("/metrics", headers=SCRAPE)).text
    assert "gridwatch_center_feed_clients_refused_total 2.0" in metrics


def _from(center: RunningCenter, address: str) -> httpx.AsyncClient:
    """A client of the center whose connections come from `address` (any 127.x.y.z is this host)."""
    transport = httpx.AsyncHTTPTransport(local_address=address)
    return httpx.AsyncClient(base_url=center.base, transport=transport, timeout=30)


@pytest.mark.integration
async def test_failed_token_checks_per_client_address(center_factory, database_url) -> None:
    center = await center_factory(database_url, token_failures_max=3, token_block_s=600)
    good = auth()
    async with (
        _from(center, "127.0.0.1") as noisy,
        _from(center, "127.0.0.2") as quiet,
        _from(center, "127.0.0.3") as anonymous,
        _from(center, "127.0.0.4") as scraper,
    ):
        for _ in range(3):
            assert (await noisy.get("/api/v1/me", headers=BAD)).status_code == 401
        blocked = await noisy.get("/api/v1/me", headers=good)  # even a good token, from that address
        assert blocked.status_code == 429, blocked.text
        assert blocked.json()["code"] == "too_many_token_failures"
        assert "limit 3 in 60 s" in blocked.json()["detail"]
        assert 0 < int(blocked.headers["Retry-After"]) <= 600
        assert (await noisy.get("/api/v1/health")).status_code == 200  # no token, no refusal
        async with websockets.connect(center.ws_url(token=token())) as ws:  # from 127.0.0.1 too
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await asyncio.wait_for(ws.recv(), 30)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4429
        assert "too many failed token checks" in closed.value.rcvd.reason

        # Another address is served, and its own bad token is its own first failure.
        assert (await quiet.get("/api/v1/me", headers=good)).status_code == 200
        assert (await quiet.get("/api/v1/me", headers=BAD)).status_code == 401
        assert (await quiet.get("/api/v1/incidents", headers=good)).status_code == 200
        # A missing token is no failed check: a page that has not logged in yet is not locked out.
        for _ in range(5):
            assert (await anonymous.get("/api/v1/me")).status_code == 401
        assert (await anonymous.get("/api/v1/me", headers=good)).status_code == 200
        # Bad scrape tokens count as well.
        for _ in range(3):
            assert (await scraper.get("/metrics", headers=BAD)).status_code == 401
        assert (await scraper.get("/metrics", headers=SCRAPE)).status_code == 429
        metrics = (await quiet.get("/metrics", headers=SCRAPE)).text
    assert "gridwatch_center_token_failures_total 7.0" in metrics
    assert "gridwatch_center_addresses_refused_total 2.0" in metrics


LIMIT_VARIABLES = {
    "GRIDWATCH_METRICS_TOKEN": "a-scrape-token-for-the-platform",
    "GRIDWATCH_FEED_CLIENTS_PER_SUBJECT": "3",
    "GRIDWATCH_TOKEN_FAILURES_MAX": "5",
    "GRIDWATCH_TOKEN_FAILURE_WINDOW_S": "30",
    "GRIDWATCH_TOKEN_BLOCK_S": "90",
}


def test_the_environment_sets_the_scrape_token_and_the_limits(
    monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:
    monkeypatch.setenv("GRIDWATCH_DATA_DIR", str(tmp_path))
    for name in LIMIT_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    default = _center_settings(GridwatchSettings())
    assert default.metrics_token is None and default.feed_clients_per_subject == 8
    for name, value in LIMIT_VARIABLES.items():
        monkeypatch.setenv(name, value)
    settings = _center_settings(GridwatchSettings())
    assert settings.metrics_token is not None
    assert settings.metrics_token.get_secret_value() == LIMIT_VARIABLES["GRIDWATCH_METRICS_TOKEN"]
    limits = (
        settings.feed_clients_per_subject,
        settings.token_failures_max,
        settings.token_failure_window_s,
        settings.token_block_s,
    )
    assert limits == (3, 5, 30.0, 90.0)
    assert "a-scrape-token" not in repr(settings)
    monkeypatch.setenv("GRIDWATCH_METRICS_TOKEN", "too-short")  # a guessable scrape token is refused
    with pytest.raises(ValidationError, match="metrics_token"):
        GridwatchSettings()
