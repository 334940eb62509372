from __future__ import annotations

import pytest
from pydantic import ValidationError

from contracts.rules import LineCrossingRuleConfig
from detection.rules import LineCrossingRule
from detection.rules.line_crossing import crosses_segment
from tests.detection.builders import obs, person_at

# a horizontal line drawn left to right at y = 0.6 between x = 0.2 and x = 0.8: side A is below it
A, B = (0.2, 0.6), (0.8, 0.6)


def path(track: int, *points: tuple[float, float]) -> list[tuple[float, list[dict]]]:
    return [(float(i), [person_at(x, y, track=track)]) for i, (x, y) in enumerate(points)]


def run(steps, **kw) -> tuple[list[tuple[float, str]], dict]:
    r = LineCrossingRule(LineCrossingRuleConfig(id="ln", line="gate", a=A, b=B, **kw))
    out = []
    for t, objects in steps:
        for e in r.update(obs(t, *objects)):
            out.append((t, e.detail.split(" ")[5].rstrip(";")))
    return out, r.counts


UP = path(1, (0.5, 0.9), (0.5, 0.7), (0.5, 0.5), (0.5, 0.3))  # from below (A) to above (B)
DOWN = path(1, (0.5, 0.3), (0.5, 0.5), (0.5, 0.7), (0.5, 0.9))


@pytest.mark.parametrize(
    ("steps", "direction", "expected", "counts"),
    [
        (UP, "both", [(2.0, "A->B")], {"a_to_b": 1, "b_to_a": 0}),
        (UP, "a_to_b", [(2.0, "A->B")], {"a_to_b": 1, "b_to_a": 0}),
        (UP, "b_to_a", [], {"a_to_b": 1, "b_to_a": 0}),  # counted, not alerted
        (DOWN, "b_to_a", [(2.0, "B->A")], {"a_to_b": 0, "b_to_a": 1}),
        # passing beside the segment, across its extension, is not a crossing
        (path(1, (0.9, 0.9), (0.9, 0.3)), "both", [], {"a_to_b": 0, "b_to_a": 0}),
        # walking along one side never crosses
        (path(1, (0.1, 0.8), (0.5, 0.8), (0.9, 0.8)), "both", [], {"a_to_b": 0, "b_to_a": 0}),
        # stopping exactly on the line, then going on: one crossing
        (
            path(1, (0.5, 0.8), (0.5, 0.6), (0.5, 0.6), (0.5, 0.4)),
            "both",
            [(3.0, "A->B")],
            {"a_to_b": 1, "b_to_a": 0},
        ),
    ],
)
def test_line_crossing(steps, direction, expected, counts) -> None:
    fired, got_counts = run(steps, direction=direction)
    assert fired == expected
    assert got_counts == counts


def test_jitter_on_the_line_counts_once_per_cooldown() -> None:
    steps = path(1, (0.5, 0.65), (0.5, 0.55), (0.5, 0.65), (0.5, 0.55), (0.5, 0.65))
    fired, counts = run(steps, cooldown_s=10)
    assert len(fired) == 1 and counts["a_to_b"] + counts["b_to_a"] == 1


def test_two_tracks_count_separately() -> None:
    steps = [
        (float(i), [person_at(0.4, y, track=1), person_at(0.6, y, track=2)]) for i, y in enumerate((0.8, 0.4))
    ]
    fired, counts = run(steps)
    assert counts["a_to_b"] == 2 and len(fired) == 1  # one event, two objects


@pytest.mark.parametrize(
    ("p", "q", "crosses"),
    [((0.5, 0.7), (0.5, 0.5), True), ((0.1, 0.7), (0.1, 0.5), False), ((0.5, 0.7), (0.6, 0.65), False)],
)
def test_crosses_segment(p, q, crosses) -> None:
    assert crosses_segment(A, B, p, q) is crosses


def test_degenerate_line_is_rejected() -> None:
    with pytest.raises(ValidationError):
        LineCrossingRuleConfig(id="x", a=(0.5, 0.5), b=(0.5, 0.5))
