"""Event rules, one module per rule, each pure (frame time passed in, no I/O). `build_rule` maps a config.

The zone rules pick their objects with one `ZoneFilter` each; every rule builds its events with
`RuleEvent.of`.
"""

from __future__ import annotations

from contracts.rules import (
    CrowdRuleConfig,
    IntrusionRuleConfig,
    LineCrossingRuleConfig,
    LoiteringRuleConfig,
    TamperRuleConfig,
    VehicleZoneRuleConfig,
)
from detection.rules.base import FrameStats, Observation, Rule, RuleEvent
from detection.rules.crowd import CrowdRule
from detection.rules.intrusion import ZoneIntrusionRule
from detection.rules.line_crossing import LineCrossingRule
from detection.rules.loitering import LoiteringRule
from detection.rules.tamper import TamperRule
from detection.rules.zone import ZoneFilter

AnyRuleConfig = (
    IntrusionRuleConfig
    | VehicleZoneRuleConfig
    | LoiteringRuleConfig
    | CrowdRuleConfig
    | LineCrossingRuleConfig
    | TamperRuleConfig
)


def build_rule(config: AnyRuleConfig) -> Rule:
    if isinstance(config, IntrusionRuleConfig | VehicleZoneRuleConfig):
        return ZoneIntrusionRule(config)
    if isinstance(config, LoiteringRuleConfig):
        return LoiteringRule(config)
    if isinstance(config, CrowdRuleConfig):
        return CrowdRule(config)
    if isinstance(config, LineCrossingRuleConfig):
        return LineCrossingRule(config)
    if isinstance(config, TamperRuleConfig):
        return TamperRule(config)
    raise TypeError(f"no rule for config {type(config).__name__}")


__all__ = [
    "CrowdRule",
    "FrameStats",
    "LineCrossingRule",
    "LoiteringRule",
    "Observation",
    "Rule",
    "RuleEvent",
    "TamperRule",
    "ZoneFilter",
    "ZoneIntrusionRule",
    "build_rule",
]
