"""Crowd gathering: at least `min_count` objects inside a zone for at least `min_duration_s` seconds.

One alert per episode; the episode ends after the count stayed below `min_count` for `clear_s`, and a new
episode alerts only after `cooldown_s` since the last alert.
"""

from __future__ import annotations

from contracts.rules import CrowdRuleConfig
from detection.rules.base import Observation, RuleEvent, fire, in_windows
from detection.rules.zone import ZoneFilter


class CrowdRule:
    def __init__(self, config: CrowdRuleConfig) -> None:
        self.config = config
        self.id, self.kind = config.id, config.kind
        self._zone = ZoneFilter.of(config)
        self._since: float | None = None  # start of the current crowded stretch
        self._last_crowded: float | None = None
        self._fired = False  # alerted in the current episode
        self._last_alert: float | None = None

    def update(self, obs: Observation) -> list[RuleEvent]:
        cfg = self.config
        det = obs.detections
        mask = self._zone.trigger(det)
        count = self._zone.current_count
        if count >= cfg.min_count:
            if self._since is None:
                self._since = obs.t
            self._last_crowded = obs.t
        elif self._last_crowded is not None and obs.t - self._last_crowded >= cfg.clear_s:
            self._since = self._last_crowded = None
            self._fired = False
        if (
            count >= cfg.min_count
            and self._since is not None
            and not self._fired
            and obs.t - self._since >= cfg.min_duration_s
            and (self._last_alert is None or obs.t - self._last_alert >= cfg.cooldown_s)
            and in_windows(obs.t, cfg.windows, cfg.utc_offset_minutes)
        ):
            self._fired = True
            self._last_alert = obs.t
            detail = (
                f"{count} people in zone {cfg.zone} for {obs.t - self._since:.0f} s "
                f"(limit {cfg.min_count} for {cfg.min_duration_s:.0f} s)"
            )
            return fire(cfg, obs.t, det.select(mask), detail, zone=cfg.zone)
        return []
