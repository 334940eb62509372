"""WebRTC live view: one RTSP pull per camera relayed to all its viewers (aiortc)."""

from __future__ import annotations

from center_api.live.models import LiveAnswer, LiveOffer, LivePullPublic
from center_api.live.relay import (
    LiveBusy,
    LiveError,
    LiveRelay,
    LiveSession,
    NegotiationFailed,
    NoCommonCodec,
    PullStatus,
)
from center_api.live.router import build_live_router
from center_api.live.settings import LiveSettings
from center_api.live.source import CameraOffline, CameraPull, LiveCodec

__all__ = [
    "CameraOffline",
    "CameraPull",
    "LiveAnswer",
    "LiveBusy",
    "LiveCodec",
    "LiveError",
    "LiveOffer",
    "LivePullPublic",
    "LiveRelay",
    "LiveSession",
    "LiveSettings",
    "NegotiationFailed",
    "NoCommonCodec",
    "PullStatus",
    "build_live_router",
]
