"""Camera tampering from image statistics, against a reference learned from the first `learn_s` seconds.

    blackout   mean grey below `dark_level` (video loss, lens sprayed black, lights cut)
    covered    a flat picture: grey std-dev below `flat_std` (hand, cloth, bag over the lens)
    blur       sharpness below `blur_ratio` of the reference (defocused, smeared, fogged lens)
    moved      the edge map no longer correlates with the reference (camera turned or moved)

An episode is raised once, after `min_samples` bad samples in a row, and cleared after `clear_samples`
good ones; the reference is neither learned nor adapted while an episode is open.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from contracts.rules import TamperRuleConfig
from detection.rules.base import FrameStats, Observation, RuleEvent

log = logging.getLogger(__name__)

_DETAIL = {
    "blackout": "picture black (video loss or lens blacked out)",
    "covered": "lens covered (flat picture)",
    "blur": "picture blurred (defocus or smeared lens)",
    "moved": "scene changed (camera moved or turned)",
}


def edge_correlation(a: np.ndarray[Any, Any], b: np.ndarray[Any, Any]) -> float:
    a, b = a - a.mean(), b - b.mean()
    denom = float(np.sqrt((a * a).sum() * (b * b).sum()))
    return float((a * b).sum() / denom) if denom > 1e-9 else 0.0


class TamperRule:
    ADAPT = 0.02  # how fast the reference follows slow changes (light through the day)

    def __init__(self, config: TamperRuleConfig) -> None:
        self.config = config
        self.id, self.kind = config.id, config.kind
        self._learn_start: float | None = None
        self._ref_sharpness = 0.0
        self._ref_edges: np.ndarray[Any, Any] | None = None
        self._learned = 0
        self._bad = 0
        self._good = 0
        self.episode: str | None = None  # the open episode's cause

    @property
    def ready(self) -> bool:
        return self._ref_edges is not None and self._learn_start is None

    def classify(self, stats: FrameStats) -> str | None:
        """The tampering this frame shows, if any (needs the learned reference for blur and moved)."""
        cfg = self.config
        if stats.mean < cfg.dark_level:
            return "blackout"
        if stats.std < cfg.flat_std:
            return "covered"
        if not self.ready or self._ref_edges is None:
            return None
        if stats.sharpness < cfg.blur_ratio * self._ref_sharpness:
            return "blur"
        if edge_correlation(stats.edges, self._ref_edges) < cfg.scene_change:
            return "moved"
        return None

    def _learn(self, t: float, stats: FrameStats) -> None:
        if self._learn_start is None and self._ref_edges is None:
            self._learn_start = t
        n = self._learned = self._learned + 1
        if self._ref_edges is None:
            self._ref_edges = stats.edges.astype(np.float32).copy()
            self._ref_sharpness = stats.sharpness
        else:
            self._ref_edges += (stats.edges - self._ref_edges) / n
            self._ref_sharpness += (stats.sharpness - self._ref_sharpness) / n
        if self._learn_start is not None and t - self._learn_start >= self.config.learn_s:
            self._learn_start = None
            log.info("tamper rule %s learned its reference from %d samples", self.id, n)

    def _adapt(self, stats: FrameStats) -> None:
        assert self._ref_edges is not None
        self._ref_edges += self.ADAPT * (stats.edges - self._ref_edges)
        self._ref_sharpness += self.ADAPT * (stats.sharpness - self._ref_sharpness)

    def update(self, obs: Observation) -> list[RuleEvent]:
        stats = obs.stats
        if stats is None:
            return []
        cause = self.classify(stats)
        cfg = self.config
        if self.episode is None:
            if cause is None:
                self._bad = 0
                if self.ready:
                    self._adapt(stats)
                else:
                    self._learn(obs.t, stats)
                return []
            self._bad += 1
            if self._bad < cfg.min_samples:
                return []
            self.episode, self._good = cause, 0
            log.warning("tamper rule %s: %s", self.id, _DETAIL[cause])
            return [RuleEvent.of(cfg, obs.t, zone=cause, detail=_DETAIL[cause])]
        if cause is None:
            self._good += 1
            if self._good >= cfg.clear_samples:
                log.info("tamper rule %s: view restored after %s", self.id, self.episode)
                self.episode, self._bad = None, 0
        else:
            self._good = 0
        return []
