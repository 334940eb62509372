"""The pre-roll ring as a pure unit: scripted packets (90 kHz timestamps), no clock, no PyAV."""

from __future__ import annotations

from fractions import Fraction

import pytest

from ingest.ring import BUDGET_CHUNK, MIB, PacketRing, RingBudget, StreamParams, Tap

TB = Fraction(1, 90_000)
PARAMS = StreamParams("h264", 1920, 1080, TB, None)


def stream(
    ring: PacketRing,
    seconds: float,
    *,
    fps: int = 25,
    gop_s: float = 1.0,
    mbit: float = 4.0,
    start_s: float = 0.0,
    key_share: float = 0.2,
) -> int:
    """Feeds `seconds` of a constant-bitrate stream from `start_s`; a keyframe every `gop_s` takes `key_share`
    of its GOP's bytes. Returns the number of packets fed."""
    gop = max(1, round(fps * gop_s))
    per_gop = mbit * 1e6 / 8 * gop / fps
    key_size = int(per_gop * key_share)
    other = int((per_gop - key_size) / max(1, gop - 1))
    step = 90_000 // fps
    first = round(start_s * fps)
    count = round(seconds * fps)
    for i in range(first, first + count):
        key = i % gop == 0
        ring.add(b"k" * key_size if key else b"p" * other, i * step, i * step, key, step, i / fps)
    return count


def new_ring(preroll: float = 10.0, max_bytes: int = 8 * MIB, budget: RingBudget | None = None) -> PacketRing:
    ring = PacketRing("cam", preroll, max_bytes, budget)
    ring.reset(PARAMS, wall_offset=1_000_000.0)
    return ring


def held(ring: PacketRing) -> list:
    tap = ring.tap(-1e9, None, 1 << 40, lambda _t: None)
    assert tap is not None
    return tap.packets


@pytest.mark.parametrize(
    ("preroll", "gop_s", "fed_s"),
    [
        (10, 1.0, 30),  # the usual camera
        (10, 2.0, 30),  # a 2 s GOP: up to 12 s held
        (10, 4.0, 60),  # long GOPs: the GOP covering now-10 s stays
        (5, 1.0, 4),  # not yet full: everything since the first keyframe
        (2, 0.5, 20),
    ],
)
def test_the_ring_keeps_whole_gops_covering_the_preroll(preroll: float, gop_s: float, fed_s: float) -> None:
    ring = new_ring(preroll)
    stream(ring, fed_s, gop_s=gop_s)
    packets = held(ring)
    assert packets[0].key, "a ring always starts at a keyframe"
    newest = packets[-1].pts * float(TB)
    oldest = packets[0].pts * float(TB)
    assert oldest <= max(0.0, newest - preroll) + 1e-9, "the GOP covering now - preroll is kept"
    assert newest - oldest < preroll + gop_s + 1e-9, "and not one GOP more"
    assert ring.seconds_held == pytest.approx(newest - oldest + 1 / 25)
    assert ring.bytes_held == sum(len(p.data) for p in packets)
    assert ring.note is None


def test_packets_before_the_first_keyframe_are_not_kept() -> None:
    ring = new_ring()
    for i in range(1, 10):  # joined mid-GOP: P-frames first
        ring.add(b"p" * 100, i * 3600, i * 3600, False, 3600, i / 25)
    assert ring.bytes_held == 0 and ring.tap(0, None, 1 << 30, lambda _t: None) is None
    ring.add(b"k" * 500, 10 * 3600, 10 * 3600, True, 3600, 0.4)
    assert held(ring)[0].key and ring.bytes_held == 500


@pytest.mark.parametrize(
    ("mbit", "max_mib", "expect_s"),
    [
        (4, 8, None),  # 10 s at 4 Mbit/s is 5 MB: within the bound, nothing to say
        (16, 8, 4.2),  # 16 Mbit/s: 8 MiB hold ~4.2 s
        (12, 8, 5.6),
        (8, 4, 4.2),
    ],
)
def test_a_bitrate_over_the_bound_keeps_fewer_seconds_and_says_so(
    mbit: float, max_mib: int, expect_s: float | None
) -> None:
    ring = new_ring(10, max_mib * MIB)
    stream(ring, 40, mbit=mbit)
    assert ring.bytes_held <= max_mib * MIB
    assert held(ring)[0].key
    if expect_s is None:
        assert ring.note is None and ring.seconds_held >= 10
        return
    # whole GOPs (1 s) within the bound: the seconds that fit, rounded down to a GOP
    assert expect_s - 1.0 <= ring.seconds_held <= expect_s
    bound = f"{mbit:.1f} Mbit/s over the {max_mib} MiB bound"
    assert ring.note == f"keeps {ring.seconds_held:.1f} s of 10 s: {bound}"


def test_the_note_goes_when_the_bitrate_comes_back_under_the_bound() -> None:
    ring = new_ring(10, 8 * MIB)
    stream(ring, 20, mbit=16)
    assert ring.note is not None
    stream(ring, 30, mbit=2, start_s=20)
    assert ring.note is None and ring.seconds_held >= 10


def test_a_single_gop_over_the_bound_is_dropped_whole() -> None:
    ring = new_ring(10, 1 * MIB)
    stream(ring, 12, mbit=4, gop_s=4)  # one 4 s GOP is 2 MB
    assert ring.bytes_held <= 1 * MIB
    assert ring.dropped_gops >= 2
    assert ring.note is not None and "one GOP is over the 1 MiB bound" in ring.note
    packets = ring.tap(0, None, 1 << 30, lambda _t: None)
    assert packets is None or packets.packets[0].key


def test_rings_share_the_worker_budget() -> None:
    budget = RingBudget(6 * MIB)
    a, b = new_ring(10, 8 * MIB, budget), new_ring(10, 8 * MIB, budget)
    stream(a, 20)  # 5 MB: fits
    stream(b, 20)  # only ~1 MB left for the second one
    assert budget.used <= budget.limit
    assert a.bytes_held + b.bytes_held <= budget.limit
    assert a.note is None and a.seconds_held >= 10
    assert b.note is not None and "budget is used up" in b.note
    assert budget.refusals >= 1
    a.release()  # the camera moves away: its memory goes back
    assert a.bytes_held == 0
    stream(b, 20, start_s=20)
    assert b.note is None and b.seconds_held >= 10
    b.release()
    assert budget.used == 0


class CountingBudget(RingBudget):
    def __init__(self, limit: int) -> None:
        super().__init__(limit)
        self.calls = 0

    def reserve(self, want: int) -> int:
        self.calls += 1
        return super().reserve(want)

    def release(self, amount: int) -> None:
        self.calls += 1
        super().release(amount)


@pytest.mark.parametrize("limit", [768 * MIB, 3 * MIB])
def test_the_budget_is_touched_per_chunk_not_per_packet(limit: int) -> None:
    budget = CountingBudget(limit)
    ring = new_ring(10, 8 * MIB, budget)
    packets = stream(ring, 120)
    assert packets == 3000
    # 60 MB of video through the ring: a few reservations per held megabyte and per GOP at most
    assert budget.calls <= 5 * MIB // BUDGET_CHUNK + 120 + 10


def test_a_reconnect_resets_the_ring_and_cuts_open_taps() -> None:
    ring = new_ring()
    stream(ring, 12)
    closed: list[Tap] = []
    tap = ring.tap(8.0, 20.0, 1 << 30, closed.append)
    assert tap is not None and not tap.closed
    generation = ring.generation
    ring.reset(PARAMS, wall_offset=0.0)
    assert closed == [tap] and tap.reason == "the stream reconnected"
    assert ring.bytes_held == 0 and ring.generation == generation + 1
    stream(ring, 3)  # timestamps start over after the reconnect
    assert held(ring)[0].pts == 0


def test_timestamps_that_jump_back_drop_what_is_held() -> None:
    ring = new_ring()
    stream(ring, 12, start_s=100)
    closed: list[Tap] = []
    ring.tap(105.0, 200.0, 1 << 30, closed.append)
    stream(ring, 2)  # the camera's clock restarted at 0
    assert closed and closed[0].reason == "the stream's timestamps jumped back"
    assert held(ring)[0].pts == 0 and ring.seconds_held == pytest.approx(2.0)


def test_a_packet_without_timestamps_drops_its_gop_until_the_next_keyframe() -> None:
    ring = new_ring()
    stream(ring, 3.5)
    ring.skip()
    stream(ring, 0.4, start_s=3.6)  # the rest of that GOP is not taken
    assert held(ring)[-1].pts == round(2.96 * 90_000)
    stream(ring, 1, start_s=4.0)
    assert held(ring)[-1].pts == round(4.96 * 90_000)


def test_a_tap_takes_the_keyframe_at_or_before_its_start_then_follows_to_its_end() -> None:
    ring = new_ring(10)
    stream(ring, 12)
    closed: list[Tap] = []
    tap = ring.tap(from_t=7.5, end_t=14.0, max_bytes=1 << 30, on_close=closed.append)
    assert tap is not None
    assert tap.start_t == 7.0 and tap.packets[0].key and tap.packets[0].pts == 7 * 90_000
    stream(ring, 1, start_s=12)
    assert not tap.closed
    assert ring.extend(tap, 15.0)
    stream(ring, 2.5, start_s=13)
    assert closed == [tap] and tap.reason is None
    assert tap.packets[-1].dts * float(TB) == pytest.approx(15.0 - 1 / 25)
    assert not ring.extend(tap, 20.0), "a closed tap does not extend"


def test_a_tap_whose_end_the_ring_already_holds_closes_at_once() -> None:
    ring = new_ring(10)
    stream(ring, 12)
    closed: list[Tap] = []
    tap = ring.tap(from_t=3.2, end_t=6.0, max_bytes=1 << 30, on_close=closed.append)
    assert tap is not None and closed == [tap]
    assert tap.packets[0].pts == 3 * 90_000 and tap.packets[-1].pts == round(5.96 * 90_000)


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        ("disconnect", "the stream was lost (end of stream)"),
        ("release", "the camera stopped on this worker"),
        ("bound", "the clip reached its 1 MiB bound"),
        ("cut", "the worker stopped"),
        ("memory", "the worker's memory for clips being recorded is used up"),
    ],
)
def test_a_tap_is_cut_with_what_it_has(event: str, reason: str) -> None:
    ring = new_ring(10)
    stream(ring, 4)
    closed: list[Tap] = []
    memory = RingBudget(2 * MIB)
    tap = ring.tap(2.0, 60.0, 1 * MIB if event == "bound" else 8 * MIB, closed.append, memory)
    assert tap is not None and memory.used >= tap.nbytes
    if event == "disconnect":
        ring.disconnect("end of stream")
    elif event == "release":
        ring.release()
    elif event in ("bound", "memory"):
        stream(ring, 10, start_s=4)
    else:
        assert ring.cut(tap, "the worker stopped")
    assert closed == [tap] and tap.reason == reason
    assert tap.packets[0].key and tap.nbytes == sum(len(p.data) for p in tap.packets)
    assert tap.nbytes <= (1 * MIB if event == "bound" else 2 * MIB)
    tap.release_memory()
    assert memory.used == 0


def test_wall_clock_maps_to_stream_time_by_marked_samples_then_by_arrival() -> None:
    ring = new_ring(10)
    stream(ring, 12)  # arrivals: i / 25 monotonic, wall offset 1,000,000
    assert ring.stream_time(1_000_000.0 + 5.0) == pytest.approx(5.0)  # by arrival
    ring.mark(wall=1_700_000_000.25, stream_t=6.0)
    ring.mark(wall=1_700_000_001.25, stream_t=7.0)
    assert ring.stream_time(1_700_000_001.25) == 7.0  # a marked sample: exact
    assert ring.stream_time(1_700_000_000.75) == pytest.approx(6.5)  # between: the earlier mark + elapsed
    ring.reset(PARAMS, 0.0)
    assert ring.stream_time(1_700_000_001.25) is None
