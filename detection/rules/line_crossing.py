"""Line crossing with direction: a track whose bottom-center moves across the line segment between samples.

Counts both directions (`counts`); alerts in the configured direction, at most once per track per
`cooldown_s` (a track jittering on the line counts once).
"""

from __future__ import annotations

from dataclasses import dataclass

from contracts.rules import LineCrossingRuleConfig
from detection.rules.base import Observation, RuleEvent, fire, in_windows
from detection.rules.zone import ZoneFilter


def side(a: tuple[float, float], b: tuple[float, float], p: tuple[float, float]) -> float:
    """> 0 on side A, < 0 on side B (see `LineCrossingRuleConfig.direction`)."""
    return (b[0] - a[0]) * (p[1] - a[1]) - (b[1] - a[1]) * (p[0] - a[0])


def crosses_segment(
    a: tuple[float, float], b: tuple[float, float], p: tuple[float, float], q: tuple[float, float]
) -> bool:
    """Whether the move p -> q passes between the line's ends (not just across its infinite extension)."""
    return (side(a, b, p) > 0) != (side(a, b, q) > 0) and (side(p, q, a) > 0) != (side(p, q, b) > 0)


@dataclass
class _Track:
    last: tuple[float, float]  # last anchor strictly off the line
    seen: float
    last_alert: float | None = None


class LineCrossingRule:
    FORGET_S = 30.0  # a track unseen this long is forgotten

    def __init__(self, config: LineCrossingRuleConfig) -> None:
        self.config = config
        self.id, self.kind = config.id, config.kind
        self._zone = ZoneFilter.of(config, tracked_only=True)  # a crossing is a move of one track
        self._tracks: dict[int, _Track] = {}
        self.counts = {"a_to_b": 0, "b_to_a": 0}

    def update(self, obs: Observation) -> list[RuleEvent]:
        cfg = self.config
        det = obs.detections
        mask = self._zone.trigger(det)
        anchors = det.anchors
        firing: list[int] = []
        directions: list[str] = []
        active = in_windows(obs.t, cfg.windows, cfg.utc_offset_minutes)
        for i in map(int, mask.nonzero()[0]):
            tid = int(det.tracker_id[i])
            p = (float(anchors[i, 0]), float(anchors[i, 1]))
            track = self._tracks.get(tid)
            if track is None:
                if side(cfg.a, cfg.b, p) != 0:
                    self._tracks[tid] = _Track(last=p, seen=obs.t)
                continue
            track.seen = obs.t
            if side(cfg.a, cfg.b, p) == 0:
                continue  # on the line: wait until it is clearly on one side
            if crosses_segment(cfg.a, cfg.b, track.last, p):
                direction = "a_to_b" if side(cfg.a, cfg.b, track.last) > 0 else "b_to_a"
                cooled = track.last_alert is None or obs.t - track.last_alert >= cfg.cooldown_s
                if cooled:
                    self.counts[direction] += 1
                    track.last_alert = obs.t
                    if active and cfg.direction in (direction, "both"):
                        firing.append(i)
                        directions.append(direction)
            track.last = p
        for tid, track in list(self._tracks.items()):
            if obs.t - track.seen > self.FORGET_S:
                del self._tracks[tid]
        if not firing:
            return []
        arrows = ", ".join(sorted(set(directions))).replace("_to_", "->").upper()
        detail = (
            f"{len(firing)} crossing(s) of line {cfg.line} {arrows}; "
            f"counts A->B {self.counts['a_to_b']}, B->A {self.counts['b_to_a']}"
        )
        return fire(cfg, obs.t, det.select(firing), detail, zone=cfg.line)
