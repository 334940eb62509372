from __future__ import annotations

import pytest
from pydantic import ValidationError

from contracts.rules import IntrusionRuleConfig, TimeWindow, VehicleZoneRuleConfig
from detection.rules import ZoneIntrusionRule
from tests.detection.builders import obs, person_at

RIGHT = ((0.5, 0.0), (1.0, 0.0), (1.0, 1.0), (0.5, 1.0))


def rule(**kw) -> ZoneIntrusionRule:
    return ZoneIntrusionRule(IntrusionRuleConfig(id="r", zone="z", polygon=RIGHT, **kw))


def fire_times(r: ZoneIntrusionRule, steps) -> list[float]:
    out = []
    for t, objects in steps:
        out.extend(t for _ in r.update(obs(t, *objects)))
    return out


IN, OUT = person_at(0.8, 0.9), person_at(0.2, 0.9)


@pytest.mark.parametrize(
    ("kwargs", "steps", "expected"),
    [
        ({}, [(0, [OUT]), (1, [IN]), (2, [IN])], [1]),
        ({}, [(0, [OUT]), (1, [OUT]), (2, [OUT])], []),
        ({"min_samples": 3}, [(0, [IN]), (1, [IN]), (2, [IN]), (3, [IN])], [2]),
        ({"min_samples": 3}, [(0, [IN]), (1, [IN]), (2, []), (3, [IN]), (4, [IN])], []),  # flicker resets
        ({"min_samples": 2}, [(0, [IN]), (1, []), (2, [IN]), (3, [IN])], [3]),
        # one person standing for ten minutes is one alert
        ({"cooldown_s": 60}, [(t, [IN]) for t in range(600)], [0]),
        # leaves and comes back within the cooldown: still one; after it: again
        ({"cooldown_s": 10}, [(0, [IN]), (1, [OUT]), (5, [IN]), (6, [OUT]), (30, [IN])], [0, 30]),
        # filters: class, confidence, area
        ({}, [(0, [person_at(0.8, 0.9, cls="car")])], []),
        ({"min_confidence": 0.5}, [(0, [person_at(0.8, 0.9, conf=0.4)])], []),
        ({"min_area": 0.05}, [(0, [person_at(0.8, 0.9, h=0.1)])], []),
        ({"max_area": 0.01}, [(0, [person_at(0.8, 0.9, h=0.3)])], []),
        # position is the bottom-center: a box reaching into the zone with its feet outside does not count
        ({}, [(0, [{"box": (0.1, 0.2, 0.7, 0.6), "track": 1, "conf": 0.9}])], []),
        ({}, [(0, [{"box": (0.45, 0.2, 0.65, 0.6), "track": 1, "conf": 0.9}])], [0]),
        # two tracks: one alert each
        ({}, [(0, [IN]), (1, [IN, person_at(0.6, 0.5, track=2)])], [0, 1]),
    ],
)
def test_intrusion_fires(kwargs, steps, expected) -> None:
    assert fire_times(rule(**kwargs), steps) == expected


@pytest.mark.parametrize(
    ("window", "hour_utc", "offset", "fires"),
    [
        (("08:00", "18:00"), 12, 0, True),
        (("08:00", "18:00"), 20, 0, False),
        (("22:00", "06:00"), 23, 0, True),  # spans midnight
        (("22:00", "06:00"), 12, 0, False),
        (("18:00", "23:00"), 12, 8 * 60, True),  # 12:00 UTC is 20:00 at UTC+8
    ],
)
def test_intrusion_time_windows(window, hour_utc, offset, fires) -> None:
    r = rule(windows=(TimeWindow(start=window[0], end=window[1]),), utc_offset_minutes=offset)
    t = (hour_utc - 12) * 3600  # builders.T0 is 12:00 UTC
    assert bool(r.update(obs(t, IN))) is fires


def test_event_carries_rule_zone_objects() -> None:
    event = rule(severity=1).update(obs(0, IN))[0]
    assert (event.kind, event.rule_id, event.zone, event.severity) == ("intrusion", "r", "z", 1)
    assert event.objects is not None and list(event.objects.tracker_id) == [1]


def test_vehicle_zone_watches_vehicles() -> None:
    r = ZoneIntrusionRule(VehicleZoneRuleConfig(id="v", polygon=RIGHT, min_samples=1))
    assert r.update(obs(0, person_at(0.8, 0.9, track=1))) == []
    events = r.update(obs(1, person_at(0.8, 0.9, track=2, cls="truck")))
    assert [e.kind for e in events] == ["vehicle_restricted"]


@pytest.mark.parametrize(
    "polygon",
    [((0.0, 0.0), (1.0, 0.0)), ((0.0, 0.0), (1.2, 0.0), (1.0, 1.0)), ((-0.1, 0.0), (1.0, 0.0), (1.0, 1.0))],
)
def test_bad_polygons_are_rejected(polygon) -> None:
    with pytest.raises(ValidationError):
        IntrusionRuleConfig(id="r", polygon=polygon)
