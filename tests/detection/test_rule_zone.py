"""`ZoneFilter`: which objects a rule watches, as tables of cases (one mask entry per object)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from contracts.rules import CrowdRuleConfig, LineCrossingRuleConfig, LoiteringRuleConfig
from detection.rules.zone import ZoneFilter
from tests.detection.builders import make_detections, person_at

RIGHT = ((0.5, 0.0), (1.0, 0.0), (1.0, 1.0), (0.5, 1.0))
IN, OUT = person_at(0.8, 0.9), person_at(0.2, 0.9)
SMALL = person_at(0.8, 0.9, h=0.03)  # box area 0.0003
BIG = person_at(0.8, 0.95, h=0.9)  # box area 0.27


@pytest.mark.parametrize(
    ("kwargs", "objects", "expected"),
    [
        ({}, [], []),
        ({}, [IN, OUT], [True, True]),  # no polygon: everywhere
        ({"polygon": RIGHT}, [IN, OUT], [True, False]),
        ({"polygon": RIGHT}, [person_at(0.8, 0.9, cls="car")], [False]),
        (
            {"polygon": RIGHT, "classes": ("person", "car")},
            [person_at(0.8, 0.9, cls="car"), IN],
            [True, True],
        ),
        (
            {"min_confidence": 0.5},
            [person_at(0.8, 0.9, conf=0.4), person_at(0.8, 0.9, conf=0.5)],
            [False, True],
        ),
        ({"min_area": 0.001}, [SMALL, IN], [False, True]),
        ({"max_area": 0.1}, [BIG, IN], [False, True]),
        (
            {"tracked_only": True},
            [person_at(0.8, 0.9, track=-1), person_at(0.8, 0.9, track=3)],
            [False, True],
        ),
        # the anchor (bottom-center) decides, not the box: this box reaches into the zone, its feet do not
        ({"polygon": RIGHT}, [{"box": (0.3, 0.5, 0.6, 0.9)}], [False]),
        ({"polygon": RIGHT, "classes": ()}, [IN], [False]),  # no classes: watches nothing
    ],
)
def test_trigger_masks_the_objects_the_rule_watches(
    kwargs: dict[str, Any], objects: list[dict[str, Any]], expected: list[bool]
) -> None:
    zone = ZoneFilter(**{"classes": ("person",), **kwargs})
    mask = zone.trigger(make_detections(*objects))
    assert mask.dtype == bool and mask.tolist() == expected
    assert zone.current_count == sum(expected)


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"min_confidence": 1.5}, ValueError),
        ({"min_confidence": -0.1}, ValueError),
        ({"min_area": 0.5, "max_area": 0.2}, ValueError),
        ({"max_area": 1.5}, ValueError),
        ({"min_area": -0.1}, ValueError),
        ({"polygon": ((0.0, 0.0), (1.0, 1.0))}, ValueError),
        ({"polygon": ((0.0, 0.0), (1.0, 0.0), (float("nan"), 1.0))}, ValueError),
        ({"polygon": ((0.0, 0.0, 0.0), (1.0, 0.0, 0.0), (1.0, 1.0, 0.0))}, ValueError),
        ({"classes": "person"}, TypeError),
    ],
)
def test_init_refuses_bad_arguments(kwargs: dict[str, Any], error: type[Exception]) -> None:
    with pytest.raises(error):
        ZoneFilter(**{"classes": ("person",), **kwargs})


def test_of_reads_a_rule_config_and_a_line_has_no_polygon() -> None:
    crowd = ZoneFilter.of(CrowdRuleConfig(id="c", polygon=RIGHT, min_confidence=0.6, max_area=0.2))
    assert crowd.classes == {"person"} and crowd.min_confidence == 0.6 and crowd.max_area == 0.2
    assert crowd.polygon is not None and np.array_equal(crowd.polygon, np.asarray(RIGHT))
    assert crowd.trigger(make_detections(IN, OUT)).tolist() == [True, False]
    line = ZoneFilter.of(LineCrossingRuleConfig(id="l", a=(0.0, 0.5), b=(1.0, 0.5)), tracked_only=True)
    assert line.polygon is None and line.tracked_only
    loiter = ZoneFilter.of(LoiteringRuleConfig(id="s", polygon=RIGHT, classes=("car",)))
    assert loiter.trigger(make_detections(IN, person_at(0.8, 0.9, cls="car"))).tolist() == [False, True]
