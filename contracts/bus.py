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
WORKERS_PREFIX = "gw:workers:"
FEED_PREFIX = "gw:feed:"
ALERTS_MAXLEN = 1_000_000


def health_key(camera_id: str) -> str:
    return f"{HEALTH_PREFIX}{camera_id}"


# Pub/sub is server-wide in Redis (not per logical DB), so every channel carries the DB it belongs to:
# two deployments (or test runs) on one server in different DBs never hear each other.


def channel_db(client: object) -> int:
    """The logical DB of a redis-py client (sync or asyncio), read from its connection pool."""
    pool = getattr(client, "connection_pool", None)
    kwargs = getattr(pool, "connection_kwargs", None) or {}
    return int(kwargs.get("db") or 0)


def feed_channel(station_id: str, db: int = 0) -> str:
    """Pub/sub channel of one station's live feed; `feed_channel("*", db)` is the pattern for all of them."""
    return f"{FEED_PREFIX}{db}:{station_id}"


def cameras_channel(db: int = 0) -> str:
    """Pub/sub channel on which the registry announces a camera id that was added, changed or removed."""
    return f"gw:cameras:changed:{db}"


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
