"""Detection: Ultralytics detector, batching, motion gating, tracking, event rules, alerts to Redis.

Imports only `contracts` from the project (never ingest, center_api or gridwatch).
"""

from __future__ import annotations

from detection.config import DetectionConfig, MotionConfig, TrackerConfig
from detection.pipeline import DetectionPipeline
from detection.publisher import RedisAlertPublisher
from detection.types import Detections

__all__ = [
    "DetectionConfig",
    "DetectionPipeline",
    "Detections",
    "MotionConfig",
    "RedisAlertPublisher",
    "TrackerConfig",
]
