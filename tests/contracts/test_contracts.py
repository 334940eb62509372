"""The wire contracts: round trips, redaction, validation errors that name the file and the camera."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from contracts import (
    Alert,
    AlertKind,
    CameraConfigError,
    DetectedObject,
    GeoPoint,
    decode_alert_entry,
    encode_alert_entry,
    new_alert_id,
    parse_cameras,
    redact_url,
)


def make_alert(**overrides) -> Alert:
    fields = dict(
        kind=AlertKind.intrusion,
        severity=2,
        camera_id="cam-1",
        site_id="site-1",
        captured_at=datetime(2026, 11, 29, 3, 0, tzinfo=UTC),
        location=GeoPoint(lat=36.61, lon=101.78),
        zone="gate",
        rule="gate-intrusion",
        objects=(DetectedObject(cls="person", confidence=0.9, box=(0.1, 0.2, 0.3, 0.9), track_id=4),),
        worker_id="w1",
        model="yolov8n",
    )
    fields.update(overrides)
    return Alert(**fields)


def test_alert_round_trips_through_json() -> None:
    alert = make_alert()
    assert Alert.model_validate_json(alert.model_dump_json()) == alert


@pytest.mark.parametrize("snapshot", [None, b"\xff\xd8\xff\xe0jpeg-bytes"])
def test_stream_entry_round_trip(snapshot: bytes | None) -> None:
    alert = make_alert()
    fields = encode_alert_entry(alert, snapshot)
    as_redis_returns = {key.encode(): value for key, value in fields.items()}
    decoded, decoded_snapshot = decode_alert_entry(as_redis_returns)
    assert decoded == alert
    assert decoded_snapshot == snapshot


@pytest.mark.parametrize(
    "fields",
    [{}, {b"alert": b"not json"}, {b"alert": b'{"kind": "intrusion"}'}, {b"alert": b'{"kind": "nope"}'}],
)
def test_bad_stream_entries_raise_value_error(fields: dict) -> None:
    with pytest.raises(ValueError):
        decode_alert_entry(fields)


def test_alert_rejects_naive_times_and_converts_to_utc() -> None:
    with pytest.raises(ValidationError):
        make_alert(captured_at=datetime(2026, 1, 1))
    local = datetime(2026, 1, 1, 8, 0, tzinfo=timezone(timedelta(hours=8)))
    assert make_alert(captured_at=local).captured_at == datetime(2026, 1, 1, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize("severity", [0, 5])
def test_alert_severity_is_bounded(severity: int) -> None:
    with pytest.raises(ValidationError):
        make_alert(severity=severity)


def test_alert_ids_are_uuid7_and_time_ordered() -> None:
    ids = [new_alert_id() for _ in range(200)]
    assert len(set(ids)) == 200
    assert all(uuid.UUID(i).version == 7 for i in ids)
    prefixes = [i[:13] for i in ids]  # the 48-bit millisecond timestamp
    assert prefixes == sorted(prefixes)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("rtsp://admin:s3cret@10.1.2.3:554/stream1", "rtsp://***@10.1.2.3:554/stream1"),
        ("rtsp://admin@cam.local/live", "rtsp://***@cam.local/live"),
        ("rtsp://cam.local/live", "rtsp://cam.local/live"),
        ("/srv/clips/a.mp4", "/srv/clips/a.mp4"),
    ],
)
def test_redact_url(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def camera(**overrides) -> dict:
    item = {
        "id": "cam-1",
        "url": "rtsp://u:pw@h/x",
        "rules": [{"id": "r1", "kind": "intrusion", "polygon": [[0, 0], [1, 0], [1, 1]]}],
    }
    item.update(overrides)
    return item


def test_camera_url_is_secret_in_repr_but_kept_for_the_registry() -> None:
    (cam,) = parse_cameras({"cameras": [camera()]}, "cams.yaml")
    assert "pw" not in repr(cam) and "pw" not in str(cam)
    assert cam.redacted_url == "rtsp://***@h/x"
    assert '"rtsp://u:pw@h/x"' in cam.model_dump_json()  # the registry and workers need the real URL


@pytest.mark.parametrize(
    ("cameras", "message"),
    [
        ([camera(), camera()], "cams.yaml: camera 'cam-1': duplicate camera id"),
        (
            [camera(rules=[{"id": "r", "kind": "intrusion", "polygon": [[0, 0], [2, 0], [1, 1]]}])],
            "cams.yaml: camera 'cam-1': rules.0",
        ),
        (
            [camera(rules=[{"id": "r", "kind": "intrusion", "polygon": [[0, 0], [1, 1]]}])],
            "at least 3 points",
        ),
        ([camera(sample_fps=0)], "cams.yaml: camera 'cam-1': sample_fps"),
        ([camera(colour="red")], "colour: Extra inputs are not permitted"),
        ([{"url": "rtsp://h/x"}], "cams.yaml: camera #0: id"),
        ("not a list", "cams.yaml: expected a list of cameras"),
    ],
)
def test_bad_camera_files_name_the_file_and_the_camera(cameras: object, message: str) -> None:
    with pytest.raises(CameraConfigError) as excinfo:
        parse_cameras({"cameras": cameras}, "cams.yaml")
    assert message in str(excinfo.value)
    assert "pw" not in str(excinfo.value)
