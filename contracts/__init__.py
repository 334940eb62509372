"""Wire and in-process types shared by every GridWatch package.

This package is the leaf of the import graph: it imports only the standard library and pydantic.
"""

from __future__ import annotations

from contracts.alerts import Alert, AlertKind, DetectedObject, GeoPoint, new_alert_id
from contracts.bus import (
    ALERTS_STREAM,
    CAMERAS_KEY,
    CENTER_GROUP,
    DEAD_STREAM,
    HEALTH_PREFIX,
    cameras_channel,
    channel_db,
    decode_alert_entry,
    encode_alert_entry,
    feed_channel,
    health_key,
)
from contracts.camera import Camera, CameraConfigError, SiteType, StreamCredentials, parse_cameras
from contracts.clips import (
    CLIP_REQUESTS_STREAM,
    NO_CLIP_KINDS,
    ClipFailure,
    ClipMeta,
    ClipNote,
    ClipRequest,
    ClipState,
    decode_clip_request,
    encode_clip_request,
)
from contracts.frames import AlertSink, Frame, FrameSink, Picture
from contracts.health import CameraState, StreamHealth
from contracts.rules import IntrusionRuleConfig, RuleConfig
from contracts.streams import (
    StreamInput,
    UrlCredentials,
    describe_stream_error,
    join_credentials,
    redact_url,
    scrub,
    split_credentials,
    stream_input,
    url_secrets,
)

__all__ = [
    "ALERTS_STREAM",
    "CAMERAS_KEY",
    "CLIP_REQUESTS_STREAM",
    "NO_CLIP_KINDS",
    "ClipFailure",
    "ClipMeta",
    "ClipNote",
    "ClipRequest",
    "ClipState",
    "CENTER_GROUP",
    "DEAD_STREAM",
    "HEALTH_PREFIX",
    "Alert",
    "AlertSink",
    "AlertKind",
    "Camera",
    "CameraConfigError",
    "CameraState",
    "DetectedObject",
    "Frame",
    "FrameSink",
    "GeoPoint",
    "Picture",
    "IntrusionRuleConfig",
    "RuleConfig",
    "SiteType",
    "StreamCredentials",
    "StreamHealth",
    "StreamInput",
    "UrlCredentials",
    "cameras_channel",
    "channel_db",
    "decode_alert_entry",
    "decode_clip_request",
    "encode_clip_request",
    "describe_stream_error",
    "encode_alert_entry",
    "feed_channel",
    "health_key",
    "join_credentials",
    "new_alert_id",
    "parse_cameras",
    "redact_url",
    "scrub",
    "split_credentials",
    "stream_input",
    "url_secrets",
]
