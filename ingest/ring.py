"""The pre-roll ring: the last seconds of one camera's compressed video, kept so a clip can start before its
alert.

    reader thread ──add(packet)──► PacketRing ──snapshot + following packets──► Tap (one per recording)
                                      │ whole GOPs, always from a keyframe         └─ closed at its end time,
                                      │ bounded by seconds, bytes, worker budget      a reconnect, or a bound
                                      └─ RingBudget (worker-wide, reserved in chunks)

A `PacketRing` holds packets of the current connection only: `reset` (on every connect) drops them, as a
reconnect breaks timestamps. It evicts whole GOPs from the front and keeps the GOP that covers
`newest - preroll_s`, so it always starts at a keyframe. Two bounds can make it keep less: its own
`max_bytes`, and the worker-wide `RingBudget` shared by every ring of the worker; then `note` says so.

Cost: `add` runs on the reader thread for every video packet. It takes the ring's own lock (uncontended but
for a snapshot), appends one tuple, and touches the shared budget only when the ring crosses a chunk
boundary (`BUDGET_CHUNK`), never per packet. A `Tap` shares the packet tuples with the ring: recordings
that overlap the ring or each other cost no copy.

Times: `pts`/`dts` are integers in the stream's `time_base`; `arrived` is `time.monotonic()` at demux. The
ring never reads a clock itself (the caller passes times in).
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from typing import NamedTuple

BUDGET_CHUNK = 512 * 1024  # bytes a ring reserves from the worker budget at a time
MARKS = 512  # samples remembered for mapping an alert's wall-clock time to stream time
MIB = 1024 * 1024

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class StreamParams:
    """What a remux needs of the stream besides its packets (taken at connect)."""

    codec: str  # FFmpeg codec name: h264 | hevc
    width: int | None
    height: int | None
    time_base: Fraction
    extradata: bytes | None


class RingPacket(NamedTuple):
    """One compressed video packet, in decode order. `pts`/`dts` in the stream's time base."""

    data: bytes | memoryview  # the reader's: a view of the demuxer's buffer (kept alive by it, not copied)
    pts: int
    dts: int
    key: bool
    duration: int
    arrived: float  # monotonic seconds when it was demuxed


class RingBudget:
    """A worker-wide byte budget shared by all rings of a worker (thread-safe; used in chunks)."""

    def __init__(self, limit_bytes: int) -> None:
        if limit_bytes <= 0:
            raise ValueError("limit_bytes must be > 0")
        self.limit = limit_bytes
        self._used = 0
        self._lock = threading.Lock()
        self.refusals = 0  # reservations cut short: some ring kept fewer seconds for the budget

    @property
    def used(self) -> int:
        return self._used

    def reserve(self, want: int) -> int:
        """Grants up to `want` bytes (what is left when less); counts a refusal when it grants less."""
        with self._lock:
            granted = max(0, min(want, self.limit - self._used))
            self._used += granted
            if granted < want:
                self.refusals += 1
            return granted

    def release(self, amount: int) -> None:
        with self._lock:
            self._used = max(0, self._used - amount)


class Tap:
    """A recording's view of a ring: a snapshot from a keyframe, then every following packet until `end_t`.

    The ring appends to `packets` on the reader thread and closes the tap (under its lock) when a packet at
    or past `end_t` arrives, when the stream resets or is lost, or when the tap's byte bound is reached;
    `reason` then says why it ended early (None: it reached its end). `on_close` runs once, outside the
    ring's lock, on whichever thread closed it. With a `budget` (the recorder's, worker-wide) the tap reserves
    what it holds in chunks and is cut when the budget refuses; `release_memory` gives it back.
    """

    __slots__ = (
        "budget",
        "closed",
        "end_t",
        "max_bytes",
        "nbytes",
        "on_close",
        "packets",
        "params",
        "reason",
        "reserved",
        "start_t",
    )

    def __init__(
        self,
        packets: list[RingPacket],
        params: StreamParams,
        start_t: float,
        end_t: float,
        max_bytes: int,
        on_close: Callable[[Tap], None],
        budget: RingBudget | None = None,
    ) -> None:
        self.packets = packets
        self.params = params
        self.start_t = start_t  # stream seconds of the first packet's pts (its keyframe)
        self.end_t = end_t  # stream seconds: packets whose dts reaches this are not taken
        self.max_bytes = max_bytes
        self.nbytes = sum(len(p.data) for p in packets)
        self.on_close = on_close
        self.closed = False
        self.reason: str | None = None
        self.budget = budget
        self.reserved = 0

    def grow(self, size: int) -> str | None:
        """Room for `size` more bytes: None, or why not (under the ring's lock)."""
        if self.nbytes + size > self.max_bytes:
            return f"the clip reached its {self.max_bytes / MIB:g} MiB bound"
        if self.budget is not None and self.nbytes + size > self.reserved:
            self.reserved += self.budget.reserve(self.nbytes + size - self.reserved + BUDGET_CHUNK)
            if self.nbytes + size > self.reserved:
                return "the worker's memory for clips being recorded is used up"
        return None

    def release_memory(self) -> None:
        if self.budget is not None:
            self.budget.release(self.reserved)
            self.reserved = 0


class _Gop:
    __slots__ = ("nbytes", "packets", "start_t")

    def __init__(self, packet: RingPacket, start_t: float) -> None:
        self.packets = [packet]
        self.nbytes = len(packet.data)
        self.start_t = start_t


class PacketRing:
    """The pre-roll ring of one camera (see the module docstring). Thread-safe."""

    def __init__(
        self,
        camera_id: str,
        preroll_s: float,
        max_bytes: int,
        budget: RingBudget | None = None,
        lag_s: float = 0.0,
    ) -> None:
        if preroll_s <= 0 or max_bytes <= 0 or lag_s < 0:
            raise ValueError("preroll_s and max_bytes must be > 0, lag_s >= 0")
        self.camera_id = camera_id
        # What the ring keeps: the pre-roll, plus the time an alert takes to reach the recorder after its
        # frame was demuxed (decode, detection queue, inference): the pre-roll is counted back from the frame.
        self.preroll_s = preroll_s + lag_s
        self.max_bytes = max_bytes
        self.budget = budget
        self.params: StreamParams | None = None
        self.connected = False
        self.released = False  # `release` was called: the ring takes nothing more
        self.generation = 0  # connections seen; a tap belongs to one
        self.dropped_gops = 0  # GOPs dropped whole: a single GOP over the bound, or broken timestamps
        self._lock = threading.Lock()
        self._gops: deque[_Gop] = deque()
        self._bytes = 0
        self._reserved = 0
        self._tb = 0.0
        self._last_dts: int | None = None
        self._limited: str | None = None  # "bound" | "budget" | "gop": why it last evicted early
        self._starved = False  # the budget refused: ask again at the next keyframe, not per packet
        self._await_key = False  # the newest GOP was dropped: its remaining packets are not taken
        self._taps: list[Tap] = []
        self._marks: deque[tuple[float, float]] = deque(maxlen=MARKS)  # (wall seconds, stream seconds)
        self._wall_offset = 0.0  # wall - monotonic at connect

    # ----- the reader's side ---------------------------------------------------------------------------
    def reset(self, params: StreamParams, wall_offset: float) -> None:
        """A (re)connect: drop everything (timestamps start over), cut open taps, take the new parameters."""
        with self._lock:
            if self.released:
                return
            closed = self._clear("the stream reconnected")
            self.params = params
            self._tb = float(params.time_base)
            self.connected = True
            self.generation += 1
            self._wall_offset = wall_offset
        self._notify(closed)

    def disconnect(self, reason: str) -> None:
        """The stream was lost: cut open taps with what they have; packets stay until the next `reset`."""
        with self._lock:
            self.connected = False
            closed = self._close_taps(f"the stream was lost ({reason})"[:200])
        self._notify(closed)

    def add(
        self, data: bytes | memoryview, pts: int, dts: int, key: bool, duration: int, arrived: float
    ) -> None:
        """One video packet in decode order (the reader thread, for every packet)."""
        packet = RingPacket(data, pts, dts, key, duration, arrived)
        closed: list[Tap] | None = None
        with self._lock:
            if self.released:
                return
            last = self._last_dts
            if last is not None and dts <= last and self._gops:
                # broken timestamps (a camera restarted its clock): what is held no longer lines up
                self.dropped_gops += len(self._gops)
                closed = self._clear("the stream's timestamps jumped back")
            self._last_dts = dts
            gops = self._gops
            taken = True
            if key:
                gops.append(_Gop(packet, pts * self._tb))
                self._await_key = False
            elif gops and not self._await_key:
                gop = gops[-1]
                gop.packets.append(packet)
                gop.nbytes += len(data)
            else:
                taken = False  # waiting for a keyframe: a ring always starts at one
            if taken:
                self._bytes += len(data)
                if self._taps:
                    closed = self._feed(packet, closed)
                self._bound(dts * self._tb, key)
        if closed:
            self._notify(closed)

    def skip(self) -> None:
        """A packet without a dts: its GOP cannot be cut; drop that GOP, wait for the next keyframe."""
        if not self._gops:
            return  # cheap while waiting for a keyframe (RTSP's first packets)
        with self._lock:
            if self._gops:
                self._bytes -= self._gops.pop().nbytes
                self.dropped_gops += 1
                self._await_key = True
            closed = self._close_taps("a packet without timestamps")
        self._notify(closed)

    def mark(self, wall: float, stream_t: float) -> None:
        """A sample was handed on: its wall-clock time (`Frame.captured_at`) and stream time (`Frame.pts`)."""
        with self._lock:
            self._marks.append((wall, stream_t))

    # ----- what is held --------------------------------------------------------------------------------
    @property
    def bytes_held(self) -> int:
        return self._bytes

    @property
    def seconds_held(self) -> float:
        with self._lock:
            return self._span()

    @property
    def note(self) -> str | None:
        """Why the ring keeps fewer seconds than `preroll_s`, or None."""
        with self._lock:
            limited, held, nbytes = self._limited, self._span(), self._bytes
        if limited is None:
            return None
        if limited == "gop":
            return f"keeps nothing: one GOP is over the {self.max_bytes / MIB:g} MiB bound"
        if limited == "budget":
            kept = f"keeps {held:.1f} s of {self.preroll_s:g} s" if held > 0 else "keeps nothing"
            return f"{kept}: the worker's ring budget is used up"
        mbps = nbytes * 8 / held / 1e6 if held > 0 else 0.0
        bound = f"{mbps:.1f} Mbit/s over the {self.max_bytes / MIB:g} MiB bound"
        return f"keeps {held:.1f} s of {self.preroll_s:g} s: {bound}"

    def stream_time(self, wall: float) -> float | None:
        """The stream time of wall-clock `wall` (an alert's `captured_at`): the sample marked at that time, or
        else the nearest earlier mark (or packet arrival) plus the wall time since; None if nothing held."""
        with self._lock:
            for mark_wall, mark_t in reversed(self._marks):
                if mark_wall <= wall + 1e-4:
                    return mark_t + max(0.0, wall - mark_wall)
            mono = wall - self._wall_offset
            for gop in reversed(self._gops):
                for p in reversed(gop.packets):
                    if p.arrived <= mono:
                        return p.pts * self._tb + (mono - p.arrived)
            return self._gops[0].start_t if self._gops else None

    def newest_t(self) -> float | None:
        with self._lock:
            return self._gops[-1].packets[-1].dts * self._tb if self._gops else None

    # ----- the recorder's side -------------------------------------------------------------------------
    def tap(
        self,
        from_t: float,
        end_t: float | None,
        max_bytes: int,
        on_close: Callable[[Tap], None],
        budget: RingBudget | None = None,
    ) -> Tap | None:
        """A consistent snapshot from the keyframe at or before `from_t` (the oldest held if none is), then
        every following packet until one whose dts reaches `end_t` (None: the snapshot alone, closed at
        once). None: nothing held (no keyframe yet)."""
        with self._lock:
            if not self._gops or self.params is None:
                return None
            start = 0
            for i, gop in enumerate(self._gops):
                if gop.start_t <= from_t:
                    start = i
            packets: list[RingPacket] = []
            for gop in list(self._gops)[start:]:
                packets.extend(gop.packets)
            newest = self._gops[-1].packets[-1]
            snapshot = end_t is None
            if end_t is None:
                end_t = newest.dts * self._tb
            cut = end_t / self._tb if self._tb and not snapshot else float("inf")
            while len(packets) > 1 and packets[-1].dts >= cut:
                packets.pop()
            tap = Tap(packets, self.params, self._gops[start].start_t, end_t, max_bytes, on_close, budget)
            held, tap.nbytes = tap.nbytes, 0
            refused = tap.grow(held)  # the snapshot counts too: the ring may drop it while the clip needs it
            tap.nbytes = held
            if snapshot or newest.dts >= cut:
                tap.closed = True  # the ring already holds its end (an alert that came late)
            elif refused or not self.connected:
                tap.closed, tap.reason = True, refused or "the stream was lost"
            else:
                self._taps.append(tap)
        if tap.closed:
            _closed(tap, self.camera_id)
        return tap

    def extend(self, tap: Tap, end_t: float) -> bool:
        """Moves an open tap's end to `end_t` (later only); False if it has closed already."""
        with self._lock:
            if tap.closed:
                return False
            tap.end_t = max(tap.end_t, end_t)
            return True

    def cut(self, tap: Tap, reason: str) -> bool:
        """Closes an open tap now with what it has; False if it had closed already."""
        with self._lock:
            if tap.closed:
                return False
            self._taps.remove(tap)
            tap.closed, tap.reason = True, reason
        _closed(tap, self.camera_id)
        return True

    def release(self) -> None:
        """The camera stops on this worker: cut taps, drop the packets, give the budget back."""
        with self._lock:
            self.connected = False
            self.released = True
            closed = self._clear("the camera stopped on this worker")
            self.params = None
        self._notify(closed)

    # ----- internals (under the lock) ------------------------------------------------------------------
    def _span(self) -> float:
        gops = self._gops
        if not gops:
            return 0.0
        last = max(gops[-1].packets, key=lambda p: p.pts)  # only the newest GOP: B-frames reorder
        return max(0.0, (last.pts + last.duration) * self._tb - gops[0].start_t)

    def _bound(self, t: float, key: bool) -> None:
        gops = self._gops
        if len(gops) > 1 and gops[1].start_t <= t - self.preroll_s:
            while len(gops) > 1 and gops[1].start_t <= t - self.preroll_s:
                self._evict()
            self._limited = None
            self._settle_budget()
        if self._bytes > self.max_bytes:
            self._trim(self.max_bytes, "bound")
        if self.budget is not None:
            if self._starved and key:
                self._reserve()  # refused before: ask again once a GOP, never per packet
            elif self._bytes > self._reserved:
                if self._starved:
                    self._trim(self._reserved, "budget")
                else:
                    self._reserve()

    def _feed(self, packet: RingPacket, closed: list[Tap] | None) -> list[Tap] | None:
        t = packet.dts * self._tb
        for tap in list(self._taps):
            reason = None if t >= tap.end_t else tap.grow(len(packet.data))
            if reason is None and t < tap.end_t:
                tap.packets.append(packet)
                tap.nbytes += len(packet.data)
                continue
            self._taps.remove(tap)
            tap.closed, tap.reason = True, reason
            closed = [*(closed or ()), tap]
        return closed

    def _evict(self) -> None:
        gop = self._gops.popleft()
        self._bytes -= gop.nbytes

    def _trim(self, limit: int, why: str) -> None:
        while self._bytes > limit and len(self._gops) > 1:
            self._evict()
            self._limited = why
        if self._bytes > limit and self._gops:  # the current GOP alone is over: drop it, wait for a keyframe
            self._evict()
            self.dropped_gops += 1
            self._limited = "gop" if why == "bound" else why
        self._settle_budget()

    def _reserve(self) -> None:
        assert self.budget is not None
        want = max(0, self._bytes - self._reserved) + BUDGET_CHUNK
        granted = self.budget.reserve(want)
        self._reserved += granted
        self._starved = granted < want
        if self._bytes > self._reserved:
            self._trim(self._reserved, "budget")

    def _settle_budget(self) -> None:
        if self.budget is not None and self._reserved > self._bytes + 2 * BUDGET_CHUNK:
            give = self._reserved - self._bytes - BUDGET_CHUNK
            self.budget.release(give)
            self._reserved -= give

    def _clear(self, reason: str) -> list[Tap]:
        self._gops.clear()
        self._bytes = 0
        self._last_dts = None
        self._limited = None
        self._marks.clear()
        if self.budget is not None and self._reserved:
            self.budget.release(self._reserved)
        self._reserved = 0
        self._starved = False
        return self._close_taps(reason)

    def _close_taps(self, reason: str) -> list[Tap]:
        closed, self._taps = self._taps, []
        for tap in closed:
            tap.closed, tap.reason = True, reason
        return closed

    def _notify(self, closed: list[Tap]) -> None:
        for tap in closed:
            _closed(tap, self.camera_id)


def _closed(tap: Tap, camera_id: str) -> None:
    try:
        tap.on_close(tap)
    except Exception:  # the recorder's callback: a bug there must not end the reader's connection
        log.exception("camera %s: a clip recording's close callback failed", camera_id)
