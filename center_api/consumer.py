"""The `gw:alerts` consumer: group `center`, batches, commit-then-XACK, XAUTOCLAIM, dead letters.

Each loop: claim entries idle in dead consumers' pending lists (every `claim_every_s`), remove consumers that
have been silent for `reap_idle_ms` with nothing pending, trim the entries every group acknowledged more than
`keep_acked_s` ago, re-read this consumer's own pending entries after a
failure or a restart (the name is stable: `center-<host>` by default), then read new entries. A batch is
decoded (bad entries go to `gw:alerts:dead` with the reason, and are acknowledged), routed, stored in one
transaction, acknowledged, and published to the feeds. A snapshot over the store's `max_bytes`
(`snapshot_max_bytes`) or not a JPEG is not stored: its alert is, without it, and the entry goes to the
dead-letter stream with the reason. Idempotent on the alert id, so a replayed or
re-claimed entry is stored once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import cast

from pydantic import ValidationError
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.typing import EncodableT, FieldT
from sqlalchemy.exc import DBAPIError

from center_api.metrics import CenterMetrics
from center_api.routing import AlertRouter
from center_api.snapshots import SnapshotStore
from center_api.store.db import refused_for_its_data
from center_api.store.incidents import IncidentWriter, RoutedAlert, StoredEvent
from contracts import Alert
from contracts.bus import ALERTS_STREAM, CENTER_GROUP, DEAD_STREAM, decode_alert_entry

log = logging.getLogger(__name__)

Entry = tuple[bytes, dict[bytes, bytes]]
# XREADGROUP's reply over RESP2, our clients' protocol: [(stream, [(entry_id, fields), ...]), ...]. redis-py
# types it as the union of its RESP2 and RESP3 shapes.
StreamsReply = list[tuple[bytes, list[Entry]]]
EventSink = Callable[[Sequence[StoredEvent]], Awaitable[None]]
DEAD_MAXLEN = 100_000
# KEYS: stream. ARGV: group, min idle ms, own name. Atomic, so a consumer that reads between the check and the
# delete cannot lose its pending entries: DELCONSUMER drops a consumer's pending list with it.
_REAP = """
local reaped = {}
for _, c in ipairs(redis.call('XINFO', 'CONSUMERS', KEYS[1], ARGV[1])) do
  local info = {}
  for i = 1, #c, 2 do info[c[i]] = c[i + 1] end
  local idle = tonumber(info['idle'])
  if info['name'] ~= ARGV[3] and tonumber(info['pending']) == 0 and idle >= tonumber(ARGV[2]) then
    redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], info['name'])
    table.insert(reaped, info['name'])
  end
end
return reaped
"""
# KEYS: stream. ARGV: keep ms. Trims the entries that every group of the stream has acknowledged and that are
# older than ARGV[1] ms (an id's first part is its time). A group's bound is its oldest pending entry, or else
# the entry after its last delivered one; XTRIM MINID keeps ids at or above the lowest bound (exact: the work
# is the entries trimmed, a few seconds' worth each round). No group: nothing.
_TRIM = """
local function below(a, b)
  local am, as = string.match(a, '(%d+)-(%d+)')
  local bm, bs = string.match(b, '(%d+)-(%d+)')
  am, as, bm, bs = tonumber(am), tonumber(as), tonumber(bm), tonumber(bs)
  return am < bm or (am == bm and as < bs)
end
local groups = redis.call('XINFO', 'GROUPS', KEYS[1])
if #groups == 0 then return 0 end
local t = redis.call('TIME')
local bound = tostring(math.floor(tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000 - tonumber(ARGV[1]))) .. '-0'
for _, g in ipairs(groups) do
  local info = {}
  for i = 1, #g, 2 do info[g[i]] = g[i + 1] end
  local reach = info['last-delivered-id']
  local ms, seq = string.match(reach, '(%d+)-(%d+)')
  reach = ms .. '-' .. tostring(tonumber(seq) + 1)
  if tonumber(info['pending']) > 0 then
    reach = redis.call('XPENDING', KEYS[1], info['name'])[2]
  end
  if below(reach, bound) then bound = reach end
end
return redis.call('XTRIM', KEYS[1], 'MINID', bound)
"""


async def ensure_group(redis: Redis, stream: str = ALERTS_STREAM, group: str = CENTER_GROUP) -> None:
    """Create the consumer group (from the start of the stream); an existing group is fine."""
    try:
        await redis.xgroup_create(stream, group, id="0", mkstream=True)
        log.info("created consumer group %s on %s", group, stream)
    except ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


@dataclass(frozen=True, slots=True)
class ConsumerTuning:
    """How the consumer reads, claims and reaps (the center's settings give each)."""

    batch_size: int = 200  # entries read and committed at once
    block_ms: int = 1000  # XREADGROUP block time
    claim_idle_ms: int = 60_000  # another consumer's pending entries idle this long are claimed
    claim_every_s: float = 5.0  # how often XAUTOCLAIM runs
    reap_idle_ms: int = 3_600_000  # consumers silent this long with nothing pending are removed
    keep_acked_s: float = 60.0  # entries every group acknowledged are trimmed from the stream after this


class AlertConsumer:
    def __init__(
        self,
        redis: Redis,
        *,
        consumer: str,
        router: AlertRouter,
        writer: IncidentWriter,
        snapshots: SnapshotStore,
        on_events: EventSink,
        metrics: CenterMetrics,
        tuning: ConsumerTuning = ConsumerTuning(),  # noqa: B008 - frozen, so one shared default is safe
    ) -> None:
        self._redis = redis
        self.consumer = consumer
        self._router = router
        self._writer = writer
        self._snapshots = snapshots
        self._on_events = on_events
        self._metrics = metrics
        self._tuning = tuning
        self._recover = True  # read our own pending entries first (a restart under the same name)
        self._next_claim = 0.0
        self._claim_cursor = "0-0"

    async def run(self) -> None:
        """Run until cancelled. Redis or database outages back off and retry; nothing is acked early."""
        backoff = 0.2
        await ensure_group(self._redis)
        while True:
            try:
                await self.step()
                backoff = 0.2
            except (RedisConnectionError, RedisTimeoutError, OSError, DBAPIError) as exc:
                # DBAPIError: the database is away or busy (a refused row is dead-lettered in `_commit`)
                self._recover = True
                log.warning("consumer %s: %s; retrying in %.1fs", self.consumer, exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10.0)
            except ResponseError as exc:
                if "NOGROUP" not in str(exc):
                    raise
                log.warning("consumer group vanished (stream deleted?); recreating")
                await ensure_group(self._redis)

    async def step(self) -> int:
        """One round; returns the number of entries handled."""
        handled = 0
        now = time.monotonic()
        if now >= self._next_claim:
            self._next_claim = now + self._tuning.claim_every_s
            handled += await self.claim_idle()
            await self.reap_dead()
            await self.trim_acknowledged()
        if self._recover:
            reply = cast(
                StreamsReply,
                await self._redis.xreadgroup(
                    CENTER_GROUP, self.consumer, {ALERTS_STREAM: "0"}, count=self._tuning.batch_size
                ),
            )
            entries = reply[0][1] if reply else []
            if not entries:
                self._recover = False
            handled += await self.handle(entries)
            return handled
        reply = cast(
            StreamsReply,
            await self._redis.xreadgroup(
                CENTER_GROUP,
                self.consumer,
                {ALERTS_STREAM: ">"},
                count=self._tuning.batch_size,
                block=self._tuning.block_ms,
            ),
        )
        for _stream, entries in reply or []:
            handled += await self.handle(entries)
        return handled

    async def claim_idle(self) -> int:
        """XAUTOCLAIM entries left pending by consumers that died; handle them as our own."""
        handled, cursor = 0, "0-0"
        for _ in range(100):  # bounded sweep per round
            reply = await self._redis.xautoclaim(
                ALERTS_STREAM,
                CENTER_GROUP,
                self.consumer,
                self._tuning.claim_idle_ms,
                start_id=cursor,
                count=self._tuning.batch_size,
            )
            cursor = reply[0].decode() if isinstance(reply[0], bytes) else reply[0]
            entries = [e for e in reply[1] if e and e[1] is not None]
            if entries:
                log.info("consumer %s claimed %d idle entries", self.consumer, len(entries))
                self._metrics.alerts_claimed.inc(len(entries))
                handled += await self.handle(entries)
            if cursor in ("0-0", "0"):
                break
        return handled

    async def reap_dead(self) -> list[str]:
        """Delete consumers silent for `reap_idle_ms` with nothing pending (their entries were claimed)."""
        reaped = cast(
            list[bytes],
            await self._redis.eval(
                _REAP, 1, ALERTS_STREAM, CENTER_GROUP, self._tuning.reap_idle_ms, self.consumer
            ),
        )
        names = [n.decode() if isinstance(n, bytes) else str(n) for n in reaped or []]
        if names:
            log.info("consumer %s removed %d dead consumers: %s", self.consumer, len(names), ", ".join(names))
            self._metrics.consumers_reaped.inc(len(names))
        return names

    async def trim_acknowledged(self) -> int:
        """Trim the entries that every group acknowledged more than `keep_acked_s` ago (their incidents are
        stored): the stream then holds what is still to be stored, not every snapshot of the last million
        alerts. Entries pending anywhere, or never delivered, stay."""
        keep_ms = int(self._tuning.keep_acked_s * 1000)
        trimmed = int(cast(int, await self._redis.eval(_TRIM, 1, ALERTS_STREAM, keep_ms)))
        if trimmed:
            self._metrics.entries_trimmed.inc(trimmed)
        return trimmed

    async def handle(self, entries: Sequence[Entry]) -> int:
        if not entries:
            return 0
        good: list[tuple[bytes, Alert, bytes | None]] = []
        dead: list[tuple[bytes, dict[bytes, bytes], str]] = []
        for entry_id, fields in entries:
            try:
                alert, snapshot = decode_alert_entry(fields)
            except (ValidationError, ValueError) as exc:
                dead.append((entry_id, fields, f"invalid alert: {str(exc)[:500]}"))
                continue
            refused = self._snapshots.refusal(snapshot) if snapshot else None
            if refused is not None:
                dead.append((entry_id, fields, f"{refused}; the alert is stored without it"))
                snapshot = None
            good.append((entry_id, alert, snapshot))
        t0 = time.perf_counter()
        placements = self._router.route_many([g[1] for g in good])
        self._metrics.locate_seconds.observe(time.perf_counter() - t0)
        blobs = [g[2] for g in good]
        digests = await asyncio.to_thread(self._store_snapshots, blobs) if any(blobs) else [None] * len(blobs)
        items = [RoutedAlert(g[1], p, d) for g, p, d in zip(good, placements, digests, strict=True)]
        events = await self._commit(items, [g[0] for g in good], dead)
        if dead:
            await self._dead_letter(dead)
        ids = list(dict.fromkeys([g[0] for g in good] + [d[0] for d in dead]))  # a refused snapshot: both
        await self._redis.xack(ALERTS_STREAM, CENTER_GROUP, *ids)
        await self._on_events(events)
        return len(entries)

    def _store_snapshots(self, blobs: Sequence[bytes | None]) -> list[str | None]:
        return [self._snapshots.put(b) if b else None for b in blobs]

    async def _commit(
        self,
        items: list[RoutedAlert],
        entry_ids: list[bytes],
        dead: list[tuple[bytes, dict[bytes, bytes], str]],
    ) -> list[StoredEvent]:
        now = datetime.now(UTC)
        t0 = time.perf_counter()
        try:
            events = await self._writer.ingest(items, now)
        except DBAPIError as exc:
            if not refused_for_its_data(exc):
                raise  # the database is away: retry the whole batch later, nothing acknowledged
            # One bad row must not block the stream: store one by one, dead-letter what the database refuses.
            log.warning("batch of %d refused by the database (%s); storing one by one", len(items), exc.orig)
            events = []
            for entry_id, item in zip(entry_ids, items, strict=True):
                try:
                    events += await self._writer.ingest([item], now)
                except DBAPIError as one:
                    if not refused_for_its_data(one):
                        raise
                    dead.append(
                        (entry_id, {b"alert": item.alert.model_dump_json().encode()}, f"refused: {one.orig}")
                    )
        self._metrics.commit_seconds.observe(time.perf_counter() - t0)
        self._metrics.alerts_consumed.inc(len(items))
        return events

    async def _dead_letter(self, dead: Sequence[tuple[bytes, dict[bytes, bytes], str]]) -> None:
        async with self._redis.pipeline(transaction=False) as pipe:
            for entry_id, fields, reason in dead:
                entry = {b"reason": reason.encode(), b"entry_id": entry_id}
                entry.update(
                    {
                        k if isinstance(k, bytes) else str(k).encode(): v
                        for k, v in fields.items()
                        if k not in (b"reason", b"entry_id")
                    }
                )
                # redis-py wants an invariant dict[FieldT, EncodableT]; dict[bytes, bytes] is one at run time
                pipe.xadd(
                    DEAD_STREAM, cast(dict[FieldT, EncodableT], entry), maxlen=DEAD_MAXLEN, approximate=True
                )
                log.warning("entry %s sent to %s: %s", entry_id, DEAD_STREAM, reason)
            await pipe.execute()
        self._metrics.alerts_dead.inc(len(dead))
