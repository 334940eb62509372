from __future__ import annotations

import pytest

from contracts.rules import LoiteringRuleConfig
from detection.rules import LoiteringRule
from tests.detection.builders import obs, person_at

ZONE = ((0.5, 0.0), (1.0, 0.0), (1.0, 1.0), (0.5, 1.0))
IN1, IN2, OUT1 = person_at(0.8, 0.9, track=1), person_at(0.7, 0.8, track=2), person_at(0.2, 0.9, track=1)


def fire_times(steps, **kw) -> list[tuple[float, list[int]]]:
    r = LoiteringRule(LoiteringRuleConfig(id="l", polygon=ZONE, **{"dwell_s": 10, "max_gap_s": 3, **kw}))
    out = []
    for t, objects in steps:
        for event in r.update(obs(t, *objects)):
            out.append((t, [int(x) for x in event.objects.tracker_id]))
    return out


@pytest.mark.parametrize(
    ("steps", "kw", "expected"),
    [
        ([(t, [IN1]) for t in range(0, 15)], {}, [(10, [1])]),
        ([(t, [IN1]) for t in range(0, 9)], {}, []),
        # ten minutes of standing: one alert
        ([(t, [IN1]) for t in range(0, 600)], {}, [(10, [1])]),
        # detector misses shorter than max_gap_s do not restart the stay
        (
            [(0, [IN1]), (2, []), (3, [IN1]), (5, []), (6, [IN1]), (8, []), (9, [IN1]), (10, [IN1])],
            {},
            [(10, [1])],
        ),
        # a gap longer than max_gap_s restarts it
        ([(0, [IN1]), (2, [IN1]), (4, [])] + [(t, [IN1]) for t in range(6, 20, 2)], {}, [(16, [1])]),
        # walking outside the zone never counts
        ([(t, [OUT1]) for t in range(0, 30)], {}, []),
        # two people, each fires once, at its own time
        ([(t, [IN1] + ([IN2] if t >= 5 else [])) for t in range(0, 20)], {}, [(10, [1]), (15, [2])]),
        # untracked objects cannot loiter (no identity)
        ([(t, [person_at(0.8, 0.9, track=-1)]) for t in range(0, 20)], {}, []),
    ],
)
def test_loitering(steps, kw, expected) -> None:
    assert fire_times(steps, **kw) == expected


def test_returning_after_cooldown_fires_again() -> None:
    steps = (
        [(t, [IN1]) for t in range(0, 12)]
        + [(t, []) for t in range(12, 80)]
        + [(t, [IN1]) for t in range(80, 95)]
    )
    assert fire_times(steps, cooldown_s=30) == [(10, [1]), (90, [1])]
