"""Redis key and stream names, and the encoding of one `gw:alerts` stream entry.

An entry has two fields: `alert` (the Alert as JSON) and, optionally, `snapshot` (JPEG bytes).
"""

from __future__ import annotations

from contracts.alerts import Alert

ALERTS_STREAM = "gw:alerts"
DEAD_STREAM = "gw:alerts:dead"
CENTER_GROUP = "center"
HEALTH_PREFIX = "gw:health:"
CAMERAS_KEY = "gw:cameras"  # hash: camera id -> Camera JSON (url included: workers need it)
CAMERAS_CHANNEL = "gw:cameras:changed"  # pub/sub: a camera id that was added, changed or removed
WORKERS_PREFIX = "gw:workers:"
FEED_PREFIX = "gw:feed:"
ALERTS_MAXLEN = 1_000_000


def health_key(camera_id: str) -> str:
    return f"{HEALTH_PREFIX}{camera_id}"


def feed_channel(station_id: str) -> str:
    """Pub/sub channel of one station's live feed ('*' is the city-wide channel)."""
    return f"{FEED_PREFIX}{station_id}"


def encode_alert_entry(alert: Alert, snapshot: bytes | None = None) -> dict[str, bytes]:
    fields = {"alert": alert.model_dump_json().encode()}
    if snapshot:
        fields["snapshot"] = snapshot
    return fields


def _field(fields: dict[bytes, bytes] | dict[str, bytes], name: str) -> bytes | None:
    value = fields.get(name.encode()) if name.encode() in fields else fields.get(name)  # type: ignore[call-overload]
    return value


def decode_alert_entry(fields: dict[bytes, bytes] | dict[str, bytes]) -> tuple[Alert, bytes | None]:
    """Inverse of `encode_alert_entry`; raises `ValueError` (pydantic's ValidationError is one) if bad."""
    raw = _field(fields, "alert")
    if raw is None:
        raise ValueError("stream entry has no 'alert' field")
    alert = Alert.model_validate_json(raw)
    return alert, _field(fields, "snapshot") or None
