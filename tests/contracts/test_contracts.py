"""The wire contracts: round trips, URL redaction, stream options, validation errors naming their source."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from contracts import (
    Alert,
    AlertKind,
    Camera,
    CameraConfigError,
    DetectedObject,
    GeoPoint,
    decode_alert_entry,
    encode_alert_entry,
    new_alert_id,
    parse_cameras,
    redact_url,
    scrub,
    stream_input,
)
from contracts.streams import describe_stream_error


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
        ("file:///srv/clips/a.mp4", "file:///srv/clips/a.mp4"),
        # raw delimiters in the password: the userinfo ends at the last `@` before a host
        ("rtsp://admin:pa/ss@10.0.0.9/live", "rtsp://***@10.0.0.9/live"),
        ("rtsp://admin:pa#ss@10.0.0.9/live", "rtsp://***@10.0.0.9/live"),
        ("rtsp://admin:pa?ss@10.0.0.9:8554/live", "rtsp://***@10.0.0.9:8554/live"),
        ("rtsp://admin:p@ss@10.0.0.9/live", "rtsp://***@10.0.0.9/live"),
        ("rtsp://admin:p@x/y?z#w@10.0.0.9/live", "rtsp://***@10.0.0.9/live"),
        ("rtsp://admin:p%40ss%2F%23@10.0.0.9/live", "rtsp://***@10.0.0.9/live"),
        ("rtsp://admin:s3cret@[fd00::9]:554/live", "rtsp://***@[fd00::9]:554/live"),
        ("RTSP+UDP://admin:s3cret@cam/live", "RTSP+UDP://***@cam/live"),
        # credentials in the query, any case, any position; other parameters stay
        ("rtsp://cam/live?user=admin&password=s3cret", "rtsp://cam/live?user=***&password=***"),
        ("http://cam/video.cgi?channel=1&pwd=s3cret", "http://cam/video.cgi?channel=1&pwd=***"),
        ("http://cam/v?usr=admin&PASSWD=s3cret&res=hd", "http://cam/v?usr=***&PASSWD=***&res=hd"),
        ("https://cam/hls.m3u8?token=abc.def", "https://cam/hls.m3u8?token=***"),
        ("rtsp://cam/live?access_token=abc;api_key=k", "rtsp://cam/live?access_token=***;api_key=***"),
        ("rtsp://u:p@cam/live?pass=x#frag", "rtsp://***@cam/live?pass=***#frag"),
        ("rtsp://cam/live?channel=1", "rtsp://cam/live?channel=1"),
    ],
)
def test_redact_url(url: str, shown: str) -> None:
    assert redact_url(url) == shown


SECRET_URLS = [
    ("rtsp://admin:s3cret@10.0.0.9/live", "s3cret"),
    ("rtsp://admin:pa/ss#1@10.0.0.9/live", "pa/ss#1"),
    ("rtsp://admin:p%40ss%2Fw0rd@10.0.0.9/live", "p@ss/w0rd"),
    ("rtsp://admin:p@ss?w0rd@10.0.0.9/live", "p@ss?w0rd"),
    ("rtsp://10.0.0.9/live?user=admin&password=s3cret", "s3cret"),
    ("http://10.0.0.9/video.cgi?pwd=p%26ss%3Dw0rd", "p&ss=w0rd"),
]


@pytest.mark.parametrize(("url", "password"), SECRET_URLS)
def test_scrub_removes_the_url_and_every_form_of_its_password(url: str, password: str) -> None:
    from urllib.parse import quote, unquote

    text = " | ".join(
        [
            f"Error opening {url}",
            f"Error opening {unquote(url)}",
            f"auth admin:{password} rejected",
            f"auth admin:{quote(password, safe='')} rejected",
            f"bare {password} and {quote(password, safe='')}",
        ]
    )
    cleaned = scrub(text, url)
    assert password not in cleaned and quote(password, safe="") not in cleaned
    assert f"admin:{password}" not in cleaned
    assert redact_url(url) in cleaned and "Error opening" in cleaned


class _FFmpegLikeError(Exception):
    """Shaped like PyAV's FFmpegError: `str()` appends the URL, `strerror` does not."""

    def __init__(self, errno_: int, strerror: str, filename: str) -> None:
        super().__init__(errno_, strerror, filename)
        self.errno, self.strerror, self.filename = errno_, strerror, filename

    def __str__(self) -> str:
        return f"[Errno {self.errno}] {self.strerror}: {self.filename!r}"


class ExitError(_FFmpegLikeError):
    """Named as PyAV's: its open/read timeout interrupted FFmpeg."""


@pytest.mark.parametrize(("url", "password"), SECRET_URLS)
@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda url: _FFmpegLikeError(1, "Server returned 404 Not Found", url), "_FFmpegLikeError: Server"),
        (lambda url: ConnectionRefusedError(111, "Connection refused"), "ConnectionRefusedError: Connection"),
        (lambda url: ValueError(f"cannot open {url}"), "ValueError: cannot open {shown}"),
        (lambda url: RuntimeError(f"bad option for {url}: {url.split('//')[1]}"), "RuntimeError: bad option"),
        (lambda url: ExitError(1414092869, "Immediate exit requested", url), "timed out (no data)"),
        (lambda url: TimeoutError(), "TimeoutError"),
    ],
)
def test_describe_stream_error_never_carries_credentials(
    url: str, password: str, make: object, expected: str
) -> None:
    from urllib.parse import quote

    reason = describe_stream_error(make(url), url)  # type: ignore[operator]
    assert password not in reason and quote(password, safe="") not in reason
    assert "admin:" not in reason
    assert reason.startswith(expected.format(shown=redact_url(url)))


def test_describe_stream_error_names_a_host_that_does_not_resolve() -> None:
    url = "rtsp://admin:s3cret@no-such-camera.invalid/live"
    reason = describe_stream_error(OSError(5, "Input/output error"), url)
    assert reason == "cannot resolve host 'no-such-camera.invalid'"


@pytest.mark.parametrize(
    ("url", "opened", "transport", "paced"),
    [
        ("rtsp://u:p@cam/stream", "rtsp://u:p@cam/stream", "tcp", False),
        ("rtsps://cam/stream", "rtsps://cam/stream", "tcp", False),
        ("rtsp+udp://cam/stream", "rtsp://cam/stream", "udp", False),
        ("rtsp+http://cam/stream", "rtsp://cam/stream", "http", False),
        ("rtsp+tcp://cam/stream", "rtsp://cam/stream", "tcp", False),
        ("http://cam/video.ts", "http://cam/video.ts", None, False),
        ("/data/clip.mp4", "/data/clip.mp4", None, True),
        ("file:///data/clip.mp4", "/data/clip.mp4", None, True),
    ],
)
def test_stream_input_by_url(url: str, opened: str, transport: str | None, paced: bool) -> None:
    source = stream_input(url, socket_timeout_s=7)
    assert (source.url, source.options.get("rtsp_transport"), source.paced) == (opened, transport, paced)
    assert source.options.get("timeout") == (None if paced else "7000000")
    assert "p@" not in repr(source)


def test_stream_input_takes_what_the_caller_varies() -> None:
    live = stream_input("rtsp://cam/x", probesize=500_000, analyzeduration_us=0)
    assert "timeout" not in live.options  # no socket timeout unless asked for
    assert (live.options["probesize"], live.options["analyzeduration"]) == ("500000", "0")
    reader = stream_input("rtsp://cam/x", socket_timeout_s=5)
    assert (reader.options["probesize"], reader.options["analyzeduration"]) == ("65536", "200000")
    assert reader.options["fflags"] == "nobuffer" and reader.options["timeout"] == "5000000"


def camera(**overrides) -> dict:
    item = {
        "id": "cam-1",
        "url": "rtsp://u:pw@h/x",
        "rules": [{"id": "r1", "kind": "intrusion", "polygon": [[0, 0], [1, 0], [1, 1]]}],
    }
    item.update(overrides)
    return item


def test_camera_credentials_are_secret_in_repr_but_kept_for_the_registry() -> None:
    (cam,) = parse_cameras({"cameras": [camera()]}, "cams.yaml")
    assert "pw" not in repr(cam) and "pw" not in str(cam)
    assert cam.url == "rtsp://h/x" and cam.redacted_url == "rtsp://***@h/x"
    # the registry and workers need the credentials: the dump carries them, and reads back the same
    assert '"credentials":{"username":"u","password":"pw"' in cam.model_dump_json()
    assert Camera.model_validate_json(cam.model_dump_json()).stream_url() == "rtsp://u:pw@h/x"


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
