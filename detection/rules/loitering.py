"""Loitering: one track inside a zone for at least `dwell_s` seconds; one alert per stay."""

from __future__ import annotations

from dataclasses import dataclass

from contracts.rules import LoiteringRuleConfig
from detection.rules.base import Observation, RuleEvent, fire, in_windows
from detection.rules.zone import ZoneFilter


@dataclass
class _Stay:
    since: float
    last_inside: float
    fired: bool = False


class LoiteringRule:
    def __init__(self, config: LoiteringRuleConfig) -> None:
        self.config = config
        self.id, self.kind = config.id, config.kind
        self._zone = ZoneFilter.of(config, tracked_only=True)  # a stay belongs to one track
        self._stays: dict[int, _Stay] = {}

    def update(self, obs: Observation) -> list[RuleEvent]:
        cfg = self.config
        det = obs.detections
        mask = self._zone.trigger(det)
        firing: list[int] = []
        active = in_windows(obs.t, cfg.windows, cfg.utc_offset_minutes)
        for i in map(int, mask.nonzero()[0]):
            tid = int(det.tracker_id[i])
            stay = self._stays.get(tid)
            if stay is None or obs.t - stay.last_inside > cfg.max_gap_s:
                # a stay after the last alert's cooldown is a new stay; within it, the old one goes on
                if stay is None or not stay.fired or obs.t - stay.last_inside > cfg.cooldown_s:
                    stay = self._stays[tid] = _Stay(since=obs.t, last_inside=obs.t)
            stay.last_inside = obs.t
            if active and not stay.fired and obs.t - stay.since >= cfg.dwell_s:
                stay.fired = True
                firing.append(i)
        for tid, stay in list(self._stays.items()):
            if obs.t - stay.last_inside > max(cfg.max_gap_s, cfg.cooldown_s if stay.fired else 0.0):
                del self._stays[tid]
        if not firing:
            return []
        objects = det.select(firing)
        dwell = max(obs.t - self._stays[int(t)].since for t in objects.tracker_id)
        detail = f"{len(objects)} track(s) in zone {cfg.zone} for {dwell:.0f} s (limit {cfg.dwell_s:.0f} s)"
        return fire(cfg, obs.t, objects, detail, zone=cfg.zone)
