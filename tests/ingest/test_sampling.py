from __future__ import annotations

import random

import pytest

from ingest.sampling import Sampler, SamplingMode, StreamStats, backoff_delay


@pytest.mark.parametrize(
    ("attempt", "cap"),
    [(0, 1.0), (1, 2.0), (2, 4.0), (4, 16.0), (5, 30.0), (50, 30.0)],
)
def test_backoff_full_jitter_is_bounded_by_the_capped_exponential(attempt: int, cap: float) -> None:
    rng = random.Random(1)
    delays = [backoff_delay(attempt, 1.0, 30.0, rng) for _ in range(2000)]
    assert 0.0 <= min(delays) and max(delays) <= cap
    assert max(delays) > cap * 0.9  # full jitter: the whole window is used
    assert min(delays) < cap * 0.1


def run_sampler(sampler: Sampler, fps: float, gop_s: float, seconds: float) -> list[tuple[float, bool]]:
    """Feed a synthetic stream; returns (time, keyframe) of every emitted frame. Decodes only what it must."""
    stats = StreamStats()
    emitted: list[tuple[float, bool]] = []
    gop = round(fps * gop_s)
    for i in range(int(seconds * fps)):
        t, key = i / fps, i % gop == 0
        stats.packet(t, 1000, key)
        if key:
            sampler.set_keyframe_interval(stats.keyframe_interval)
        if sampler.should_decode(t, key) and sampler.should_emit(t, key):
            emitted.append((t, key))
    return emitted


@pytest.mark.parametrize(
    ("sample_fps", "gop_s", "mode", "expected_rate"),
    [
        (1.0, 1.0, SamplingMode.keyframes, 1.0),
        (0.5, 2.0, SamplingMode.keyframes, 0.5),
        (0.2, 1.0, SamplingMode.keyframes, 0.2),
        (0.25, 2.0, SamplingMode.keyframes, 0.25),
        (1.0, 2.0, SamplingMode.all, 1.0),
        (5.0, 1.0, SamplingMode.all, 5.0),
        (25.0, 2.0, SamplingMode.all, 25.0),
    ],
)
def test_sampler_picks_the_cheapest_mode_and_holds_the_rate(
    sample_fps: float, gop_s: float, mode: SamplingMode, expected_rate: float
) -> None:
    sampler = Sampler(sample_fps)
    emitted = run_sampler(sampler, 25.0, gop_s, 60.0)
    assert sampler.mode is mode
    steady = [t for t, _ in emitted if t >= 10.0]
    rate = (len(steady) - 1) / (steady[-1] - steady[0])
    assert rate == pytest.approx(expected_rate, rel=0.1)
    if mode is SamplingMode.keyframes:
        assert all(key for _, key in emitted)


def test_keyframe_mode_never_sends_a_p_frame_to_the_decoder() -> None:
    sampler = Sampler(0.5)
    sampler.set_keyframe_interval(1.0)
    assert not sampler.should_decode(0.04, keyframe=False)
    assert sampler.should_decode(1.0, keyframe=True)


def test_all_mode_starts_decoding_at_a_keyframe() -> None:
    sampler = Sampler(10.0)
    sampler.set_keyframe_interval(2.0)
    assert sampler.mode is SamplingMode.all
    assert not sampler.should_decode(0.04, keyframe=False)  # no reference yet
    assert sampler.should_decode(2.0, keyframe=True)
    assert sampler.should_decode(2.04, keyframe=False)
    sampler.reset()
    assert not sampler.should_decode(2.08, keyframe=False)


def test_a_timestamp_jump_back_restarts_the_schedule() -> None:
    sampler = Sampler(1.0)
    sampler.set_keyframe_interval(1.0)
    assert sampler.should_emit(100.0, True)
    assert not sampler.should_emit(100.2, True)
    assert sampler.should_emit(0.0, True)  # stream restarted at 0 (a looped clip, a camera reboot)
    assert sampler.should_emit(1.0, True)


def test_stream_stats_measure_fps_keyframe_interval_and_bitrate() -> None:
    stats = StreamStats(window_s=10.0)
    for i in range(250):  # 10 s at 25 fps, 20 kB per frame, keyframe every 2 s
        stats.packet(i / 25, 20_000, i % 50 == 0)
    assert stats.fps == pytest.approx(25.0)
    assert stats.keyframe_interval == pytest.approx(2.0)
    assert stats.bitrate_kbps == pytest.approx(4000.0, rel=0.01)
    for i in range(5):
        stats.sample(100.0 + i * 2)
    assert stats.sample_fps(108.0) == pytest.approx(0.5)
