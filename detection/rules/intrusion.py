"""Zone intrusion (and the restricted-vehicle zone): an object of the watched classes inside a polygon.

Fires once per track and stay: a track that keeps being seen inside (gaps shorter than `cooldown_s`) never
fires twice; it fires again only after it was out of the zone for `cooldown_s`. `min_samples` consecutive
samples inside are needed first, to ignore one-sample flicker.
"""

from __future__ import annotations

from dataclasses import dataclass

from contracts.rules import IntrusionRuleConfig, VehicleZoneRuleConfig
from detection.rules.base import Observation, RuleEvent, fire, in_windows, track_keys
from detection.rules.zone import ZoneFilter


@dataclass
class _TrackState:
    count: int = 0  # consecutive samples inside
    last_inside: float = 0.0
    fired: bool = False


class ZoneIntrusionRule:
    def __init__(self, config: IntrusionRuleConfig | VehicleZoneRuleConfig) -> None:
        self.config = config
        self.id, self.kind = config.id, config.kind
        self._zone = ZoneFilter.of(config)
        self._tracks: dict[int | None, _TrackState] = {}

    def update(self, obs: Observation) -> list[RuleEvent]:
        cfg = self.config
        det = obs.detections
        mask = self._zone.trigger(det)
        active = in_windows(obs.t, cfg.windows, cfg.utc_offset_minutes)
        inside_keys: dict[int | None, int] = {}
        for i, key in enumerate(track_keys(det)):
            if mask[i]:
                inside_keys.setdefault(key, i)
        firing: list[int] = []
        for key, i in inside_keys.items():
            state = self._tracks.get(key)
            if state is None or obs.t - state.last_inside > cfg.cooldown_s:
                state = self._tracks[key] = _TrackState()
            state.count += 1
            state.last_inside = obs.t
            if active and not state.fired and state.count >= cfg.min_samples:
                state.fired = True
                firing.append(i)
        for key, state in list(self._tracks.items()):
            if key not in inside_keys:
                state.count = 0  # flicker resets the dwell count, not the de-duplication
                if obs.t - state.last_inside > cfg.cooldown_s:
                    del self._tracks[key]
        if not firing:
            return []
        objects = det.select(firing)
        what = "vehicle" if cfg.kind == "vehicle_restricted" else "object"
        names = ", ".join(sorted({objects.class_name(i) for i in range(len(objects))}))
        return fire(
            cfg, obs.t, objects, f"{len(objects)} {what}(s) ({names}) in zone {cfg.zone}", zone=cfg.zone
        )
