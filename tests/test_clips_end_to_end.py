"""Event clips end to end on real parts: the real RTSP server, a Redis DB of the suite's own server, the real
`gridwatch center` and `gridwatch ingest` processes (each with its own data directory, as on two hosts), and
ffprobe reading what the center serves.

The generated clips stamp each frame's index into the picture (`tests.support.clipcheck.timecode_overlay`):
a clip is remuxed, never re-encoded, so its first frame's stamp says where in the source stream it starts,
and the person's scripted entry time can be placed on the clip's own timeline.

One stack (`live`) serves four cases: a clip around an alert, Range requests on it, a camera whose bitrate
blows the per-camera ring bound, and an operator's on-demand clip. A second test runs the outages: the center
stopped while a worker cuts a clip, and a worker killed with SIGKILL while its clip waits in the spool.
"""

from __future__ import annotations

import glob
import json
import os
import re
import signal
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import redis
import yaml

from center_api.auth import issue_token
from contracts import health_key
from gridwatch.demo.clips import Scene, Walker, make_clip, quiet_scene
from tests.detection.groundtruth import entry_time
from tests.support.clipcheck import (
    jpeg_timecode,
    probe_clip,
    read_timecodes,
    timecode_overlay,
    top_level_boxes,
)
from tests.support.paths import model_path
from tests.support.redisdb import RedisDatabases
from tests.support.rtsp import RtspServer, free_port
from tests.support.stack import Process, api_get, gridwatch_args, intrusion_camera, wait_until, write_city

pytestmark = pytest.mark.integration

SECRET = "clips-end-to-end-secret-0123456789abcdef"
SCRAPE_TOKEN = "clips-end-to-end-scrape-token-0123456789"
PREROLL_S = 6.0
POSTROLL_S = 4.0
FPS = 10
GOP_S = 1.0
SAMPLE_FPS = 2.0
RIGHT_HALF = ((0.5, 0.0), (1.0, 0.0), (1.0, 1.0), (0.5, 1.0))
# The walker enters the right half ~8 s into the stream: the ring holds a full pre-roll by then.
WALK = Walker(path=((0.0, 0.10, 0.92), (6.0, 0.25, 0.92), (10.0, 0.74, 0.95), (600.0, 0.76, 0.95)))
LATE_WALK = Walker(path=((0.0, 0.10, 0.92), (10.0, 0.25, 0.92), (14.0, 0.74, 0.95), (600.0, 0.76, 0.95)))
BIG_GOP_S = 0.5  # the high-bitrate camera: keyframes twice a second, so sampling decodes keyframes only
# 3 Mbit/s: a 1 MiB ring holds ~2.8 s, under half the pre-roll, yet more than the detector's lag on a busy
# machine (the alert's frame must still be in the ring when the alert comes)
BIG_BITRATE = 3_000_000
RING_MAX_MB = 1
ON_DEMAND_S = 3.0
NANGUAN = "st-nanguan"


# ----- the parts ------------------------------------------------------------------------------------------
def clip_camera(camera_id: str, url: str, lat: float, lon: float, sample_fps: float = SAMPLE_FPS) -> dict:
    """`intrusion_camera` firing on the first sample inside (min_samples 1), so the alert lands on the first
    sample after the entry."""
    camera = intrusion_camera(camera_id, url, lat=lat, lon=lon)
    camera["sample_fps"] = sample_fps
    camera["rules"][0]["min_samples"] = 1
    camera["rules"][0]["polygon"] = [list(p) for p in RIGHT_HALF]
    return camera


def write_cameras(path: Path, cameras: list[dict]) -> Path:
    path.write_text(yaml.safe_dump({"cameras": cameras}, sort_keys=False))
    return path


def scripted_entry(walker: Walker) -> float:
    return entry_time(walker, RIGHT_HALF, 60)


@dataclass
class Stack:
    """A center and its workers, each a real `gridwatch` process with its own data directory."""

    root: Path
    redis_url: str
    cameras: list[dict]
    port: int = field(default_factory=free_port)
    processes: dict[str, Process] = field(default_factory=dict)
    logs: list[Process] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.config_dir = write_city(self.root / "config", self.cameras)
        self.center_data = self.root / "center-data"
        self.operator = issue_token(SECRET, subject="op-nanguan", role="operator", station_id=NANGUAN)
        self.other_station = issue_token(SECRET, subject="op-xiadu", role="operator", station_id="st-xiadu")
        self.city = issue_token(SECRET, subject="cmd", role="city_command", station_id=None)
        self.worker_token = issue_token(SECRET, subject="worker", role="worker", station_id=None)

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _env(self, data_dir: Path) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("GRIDWATCH_")}  # SQLite in data/
        env.update(
            GRIDWATCH_REDIS_URL=self.redis_url,
            GRIDWATCH_DATA_DIR=str(data_dir),
            GRIDWATCH_CONFIG_DIR=str(self.config_dir),
            GRIDWATCH_MODEL=str(model_path()),
            GRIDWATCH_JWT_SECRET=SECRET,
            # the center bounds an on-demand clip by the workers' pre-roll
            GRIDWATCH_CLIP_PREROLL_S=str(PREROLL_S),
        )
        return env

    def start_center(self) -> Process:
        env = self._env(self.center_data)
        env["GRIDWATCH_METRICS_TOKEN"] = SCRAPE_TOKEN
        name = f"center-{len(self.logs)}"
        center = Process(name, gridwatch_args("center", "--port", str(self.port)), env, self.root)
        self.processes["center"] = center
        self.logs.append(center)
        wait_until(lambda: api_get(f"{self.api}/api/v1/health", "")[0] == 200, 90, "the center API", [center])
        return center

    def start_worker(
        self, worker_id: str, cameras: list[dict], center_url: str | None = None, **extra: str
    ) -> Process:
        data_dir = self.worker_data(worker_id)
        cameras_file = write_cameras(self.root / f"cameras-{worker_id}-{len(self.logs)}.yaml", cameras)
        env = self._env(data_dir)
        env.update(
            GRIDWATCH_CENTER_URL=center_url or self.api,
            GRIDWATCH_WORKER_TOKEN=self.worker_token,
            GRIDWATCH_CLIP_POSTROLL_S=str(POSTROLL_S),
            GRIDWATCH_CLIP_MAX_S=str(PREROLL_S + POSTROLL_S + 4),
            **extra,
        )
        args = gridwatch_args("ingest", "--cameras", str(cameras_file), "--worker-id", worker_id)
        worker = Process(f"ingest-{worker_id}-{len(self.logs)}", args, env, self.root)
        self.processes[worker_id] = worker
        self.logs.append(worker)
        return worker

    def worker_data(self, worker_id: str) -> Path:
        return self.root / f"worker-{worker_id}"

    def spooled(self, worker_id: str) -> list[Path]:
        """Clips waiting in a worker's spool (`<sha256>.mp4`; staging files are `tmp-*`)."""
        spool = self.worker_data(worker_id) / "clips" / worker_id
        return sorted(p for p in spool.glob("*.mp4") if re.fullmatch(r"[0-9a-f]{64}\.mp4", p.name))

    def running(self) -> list[Process]:
        return [p for p in self.processes.values() if p.alive()]

    def stop_all(self) -> None:
        for process in reversed(self.logs):
            process.stop()

    def get(self, path: str, token: str | None = None, headers: dict[str, str] | None = None) -> Response:
        url = path if path.startswith("http") else self.api + path
        request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token or self.city}"})
        for key, value in (headers or {}).items():
            request.add_header(key, value)
        return call(request)

    def post(self, path: str, body: dict[str, Any], token: str) -> Response:
        request = urllib.request.Request(
            self.api + path,
            data=json.dumps(body).encode(),
            method="POST",
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )
        return call(request)

    def json(self, path: str, token: str | None = None) -> Any:
        answer = self.get(path, token)
        assert answer.status == 200, f"GET {path} -> {answer.status}: {answer.body[:300]!r}"
        return json.loads(answer.body)

    def incidents(self, camera_id: str, kind: str | None = None) -> list[dict]:
        query = f"?camera={camera_id}" + (f"&kind={kind}" if kind else "")
        items = self.json(f"/api/v1/incidents{query}")["items"]
        return [i for i in items if i["camera_id"] == camera_id and (kind is None or i["kind"] == kind)]

    def clips(self, incident_id: int, token: str | None = None) -> list[dict]:
        return list(self.json(f"/api/v1/incidents/{incident_id}/clips", token))

    def wait_incident(self, camera_id: str, timeout: float, kind: str | None = None) -> dict:
        found = wait_until(
            lambda: self.incidents(camera_id, kind), timeout, f"an incident of {camera_id}", self.running()
        )
        return found[0]

    def wait_clips(self, incident_id: int, timeout: float) -> list[dict]:
        return wait_until(
            lambda: self.clips(incident_id), timeout, f"a clip of incident {incident_id}", self.running()
        )

    def download(self, clip: dict, dest: Path) -> Path:
        answer = self.get(clip["url"])
        assert answer.status == 200, f"GET {clip['url']} -> {answer.status}: {answer.body[:300]!r}"
        assert (answer.header("Content-Type") or "").startswith("video/mp4"), answer.headers
        dest.write_bytes(answer.body)
        return dest

    def clip_uploads(self) -> dict[str, float]:
        """The center's count of clip uploads taken since it started, by outcome (stored | duplicate)."""
        answer = self.get("/metrics", SCRAPE_TOKEN)
        assert answer.status == 200, answer
        found = re.findall(
            r'^gridwatch_center_clips_stored_total\{outcome="(\w+)"\} (\S+)$', answer.body.decode(), re.M
        )
        return {outcome: float(value) for outcome, value in found}

    def center_clip_files(self) -> list[str]:
        return sorted(glob.glob(str(self.center_data / "**" / "*.mp4"), recursive=True))

    def log_tails(self) -> str:
        return "\n".join(p.log_tail(80) for p in self.logs)


def call(request: urllib.request.Request) -> Response:
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return Response(answer.status, dict(answer.headers), answer.read())
    except urllib.error.HTTPError as exc:
        return Response(exc.code, dict(exc.headers), exc.read())


@dataclass(frozen=True)
class Response:
    status: int
    headers: dict[str, str]
    body: bytes

    def header(self, name: str) -> str | None:
        for key, value in self.headers.items():
            if key.lower() == name.lower():
                return value
        return None


def check_clip_file(path: Path, expected_s: float, tolerance_s: float, *, what: str) -> Any:
    """ffprobe reads it; H.264 in MP4 with faststart; its first frame is a keyframe; its timestamps start at
    0; it lasts `expected_s` within `tolerance_s`."""
    probe = probe_clip(path)
    assert "mp4" in probe.format_name, f"{what}: not an MP4 ({probe.format_name})"
    assert probe.codec == "h264", f"{what}: codec {probe.codec}"
    boxes = top_level_boxes(path)
    assert boxes.index("moov") < boxes.index("mdat"), f"{what}: not faststart ({boxes})"
    assert probe.first_frame_key and probe.first_frame_type == "I", (
        f"{what}: first frame is {probe.first_frame_type}, key={probe.first_frame_key}"
    )
    assert probe.packets[0].keyframe, f"{what}: the first packet is not a keyframe"
    assert abs(probe.first_pts_s) < 1e-3, f"{what}: timestamps start at {probe.first_pts_s}, not 0"
    assert abs(probe.duration_s - expected_s) <= tolerance_s, (
        f"{what}: lasts {probe.duration_s:.2f} s, expected {expected_s:.2f} +- {tolerance_s:.2f} s"
    )
    return probe


def source_frames(path: Path) -> list[int]:
    """The source frame index of each frame of a clip; they follow one another without a gap."""
    stamps = read_timecodes(path)
    indexes = [index for _, index in stamps]
    gaps = [(a, b) for a, b in zip(indexes, indexes[1:], strict=False) if b != a + 1]
    assert not gaps, f"{path.name}: frames missing or out of order in the clip: {gaps[:5]}"
    t0, index0 = stamps[0]
    for t, index in stamps:
        assert abs((t - t0) - (index - index0) / FPS) < 0.5 / FPS, f"{path.name}: frame {index} at {t:.3f} s"
    return indexes


# ----- one stack for the alert, Range, ring-bound and on-demand cases ------------------------------------
@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, redis_databases: RedisDatabases) -> Iterator[Stack]:
    root = tmp_path_factory.mktemp("clips-live")
    stamp = (timecode_overlay(FPS),)
    walk = make_clip(root / "walk.mp4", Scene(seconds=90, walkers=(WALK,), overlays=stamp), gop_seconds=GOP_S)
    big = make_clip(
        root / "big.mp4",
        Scene(seconds=40, walkers=(WALK,), noise=20.0, overlays=stamp),
        gop_seconds=BIG_GOP_S,
        bitrate=BIG_BITRATE,
    )
    with redis_databases.lease() as redis_url, RtspServer({"/walk": walk, "/big": big}) as rtsp:
        cameras = [
            # c-nanguan-02 and c-nanguan-03, both st-nanguan
            clip_camera("cam-walk", rtsp.url("/walk"), lat=36.6135, lon=101.7850),
            clip_camera("cam-big", rtsp.url("/big"), lat=36.6135, lon=101.7950, sample_fps=1.0),
        ]
        stack = Stack(root, redis_url, cameras)
        try:
            stack.start_center()
            stack.start_worker("w-live", cameras, GRIDWATCH_RING_MAX_MB=str(RING_MAX_MB))
            yield stack
        finally:
            stack.stop_all()


def test_alert_gets_a_clip_of_preroll_and_postroll_with_the_entry_where_the_alert_marks_it(
    live: Stack, tmp_path: Path
) -> None:
    incident = live.wait_incident("cam-walk", 120, kind="intrusion")
    clips = live.wait_clips(incident["id"], 60)
    assert len(clips) == 1, json.dumps(clips, indent=1)
    clip = clips[0]
    detail = live.json(f"/api/v1/incidents/{incident['id']}")
    assert detail["clip_state"] == "present", detail
    assert abs(clip["duration_s"] - (PREROLL_S + POSTROLL_S)) <= GOP_S, clip

    path = live.download(clip, tmp_path / "walk-clip.mp4")
    probe = check_clip_file(path, PREROLL_S + POSTROLL_S, GOP_S, what="the alert's clip")
    assert abs(probe.duration_s - clip["duration_s"]) <= 1.5 / FPS, (probe.duration_s, clip)
    assert (probe.width, probe.height) == (640, 360)

    # The mark: the clip's frame at the alert's offset is the very frame the alert was raised on (the alert's
    # snapshot shows that frame's stamp).
    frames = source_frames(path)
    [offset] = clip["alert_offsets_s"]
    snapshot = live.get(incident["snapshot_url"])
    assert snapshot.status == 200, snapshot
    alerted = jpeg_timecode(snapshot.body)
    assert abs(offset - (alerted - frames[0]) / FPS) <= 1 / FPS + 1e-6, (
        f"the alert is marked at {offset:.2f} s of the clip, but its frame ({alerted}) is at "
        f"{(alerted - frames[0]) / FPS:.2f} s (the clip starts at source frame {frames[0]})"
    )
    # The person's scripted entry lands at the mark: the alert is on the first sample after the entry, one
    # sample period + one frame at most. A busy machine makes the detector drop samples (latest wins), each
    # counted in the camera's health and each moving the alert one sample period later at most.
    dropped = (live.json("/api/v1/cameras/cam-walk", live.operator).get("health") or {}).get(
        "dropped_samples", 0
    )
    entry_in_clip = scripted_entry(WALK) - frames[0] / FPS
    late = offset - entry_in_clip
    tolerance = 1 / SAMPLE_FPS + 1 / FPS
    assert -tolerance <= late <= tolerance + dropped / SAMPLE_FPS, (
        f"the alert is marked at {offset:.2f} s of the clip; the person entered at {entry_in_clip:.2f} s "
        f"(the clip starts at source frame {frames[0]}; the detector dropped {dropped} samples)"
    )
    # The whole pre-roll is before the alert: the clip starts on the keyframe at or before alert - pre-roll.
    assert PREROLL_S - 1e-3 <= offset <= PREROLL_S + GOP_S + 1 / FPS, (
        f"the alert is at {offset:.2f} s of the clip, not after a {PREROLL_S:g} s pre-roll: {clip}"
    )
    assert clip["short_reason"] is None, clip


def test_clip_is_listed_and_served_with_range_to_its_station_only(live: Stack) -> None:
    incident = live.wait_incident("cam-walk", 120, kind="intrusion")
    [clip] = live.wait_clips(incident["id"], 60)
    assert live.clips(incident["id"], live.operator) == [clip]
    whole = live.get(clip["url"], live.operator)
    assert whole.status == 200
    size = len(whole.body)
    assert whole.header("Accept-Ranges") == "bytes"

    first = live.get(clip["url"], live.operator, {"Range": "bytes=0-99"})
    assert first.status == 206 and first.body == whole.body[:100]
    assert first.header("Content-Range") == f"bytes 0-99/{size}"
    middle = live.get(clip["url"], live.operator, {"Range": f"bytes={size // 2}-{size // 2 + 999}"})
    assert middle.status == 206 and middle.body == whole.body[size // 2 : size // 2 + 1000]
    suffix = live.get(clip["url"], live.operator, {"Range": "bytes=-500"})
    assert suffix.status == 206 and suffix.body == whole.body[-500:]
    beyond = live.get(clip["url"], live.operator, {"Range": f"bytes={size + 10}-{size + 20}"})
    assert beyond.status == 416, beyond
    assert beyond.header("Content-Range") == f"bytes */{size}"

    download = live.get(clip["download_url"], live.operator)
    assert download.status == 200 and download.body == whole.body
    assert "attachment" in (download.header("Content-Disposition") or "")

    # Another station's operator sees neither the list nor the file.
    assert live.get(f"/api/v1/incidents/{incident['id']}/clips", live.other_station).status == 404
    by_id = f"/api/v1/incidents/{incident['id']}/clips/{clip['id']}"
    assert live.get(by_id, live.other_station).status == 404
    assert live.get(clip["url"], live.other_station).status == 404  # a token is checked before the signature
    assert live.get(by_id, live.operator).status == 200


def test_camera_over_the_ring_bound_gets_a_shorter_clip_and_says_why(live: Stack, tmp_path: Path) -> None:
    incident = live.wait_incident("cam-big", 120, kind="intrusion")
    clips = live.wait_clips(incident["id"], 60)
    clip = min(clips, key=lambda c: c["started_at"])
    full = PREROLL_S + POSTROLL_S
    assert clip["duration_s"] < full - GOP_S, f"not shorter than {full} s: {clip}"
    assert "bound" in (clip.get("short_reason") or ""), f"a short clip says why (the ring's bound): {clip}"
    detail = live.json(f"/api/v1/incidents/{incident['id']}")
    assert detail["clip_state"] == "present", detail
    assert detail.get("clip_reason"), f"the incident says why its clip is short: {detail}"

    path = live.download(clip, tmp_path / "big-clip.mp4")
    probe = check_clip_file(path, clip["duration_s"], 1.5 / FPS, what="the bounded camera's clip")
    assert probe.first_frame_key
    # The bound cut the pre-roll, not the alert's frame nor the post-roll.
    frames = source_frames(path)
    [offset] = clip["alert_offsets_s"]
    alerted = jpeg_timecode(live.get(incident["snapshot_url"]).body)
    assert frames[0] <= alerted and abs(offset - (alerted - frames[0]) / FPS) <= 1 / FPS + 1e-6, (
        f"the alert's frame ({alerted}) is not at its mark ({offset:.2f} s) in the clip starting at frame "
        f"{frames[0]}: {clip}"
    )
    assert offset < PREROLL_S - BIG_GOP_S, f"pre-roll of {offset:.2f} s despite the bound"
    assert clip["duration_s"] - offset >= POSTROLL_S - 1 / FPS, clip

    # The camera's health says how much the ring holds, its bound, and why it keeps fewer seconds.
    camera = live.json("/api/v1/cameras/cam-big", live.operator)
    health = camera.get("health") or {}
    assert "bound" in (health.get("ring_note") or ""), (
        f"the camera's health says why its ring is short: {camera}"
    )
    assert health.get("ring_limit_bytes") and health["ring_limit_bytes"] <= RING_MAX_MB * 2**20, health
    assert health.get("preroll_s") is not None and health["preroll_s"] < PREROLL_S, health
    client = redis.Redis.from_url(live.redis_url)
    try:
        raw = client.get(health_key("cam-big"))
    finally:
        client.close()
    assert raw is not None and json.loads(raw).get("ring_note"), raw
    # The small camera's ring holds its whole pre-roll and says nothing.
    walk_health = live.json("/api/v1/cameras/cam-walk", live.operator).get("health") or {}
    assert not walk_health.get("ring_note"), walk_health


def test_operator_saves_the_last_seconds_of_a_camera(live: Stack, tmp_path: Path) -> None:
    # The walk camera's ring is full once its first alert's clip is in.
    first = live.wait_incident("cam-walk", 120, kind="intrusion")
    live.wait_clips(first["id"], 60)
    over = live.post("/api/v1/cameras/cam-walk/clips", {"seconds": PREROLL_S + 1}, live.operator)
    assert over.status == 422, f"{PREROLL_S + 1:g} s is more than the workers keep: {over}"
    answer = live.post("/api/v1/cameras/cam-walk/clips", {"seconds": ON_DEMAND_S}, live.operator)
    assert answer.status in (200, 201, 202), answer
    body = json.loads(answer.body)
    incident_id = body.get("incident_id") or body.get("incident", {}).get("id")
    assert incident_id, body
    incident = live.json(f"/api/v1/incidents/{incident_id}")
    assert incident["kind"] == "operator_clip" and incident["camera_id"] == "cam-walk", incident
    assert incident["station_id"] == NANGUAN
    clips = live.wait_clips(incident_id, 60)
    assert len(clips) == 1, clips
    clip = clips[0]
    assert ON_DEMAND_S - 1 / FPS <= clip["duration_s"] <= ON_DEMAND_S + GOP_S + 1 / FPS, clip
    path = live.download(clip, tmp_path / "on-demand.mp4")
    check_clip_file(path, clip["duration_s"], 1.5 / FPS, what="the on-demand clip")
    source_frames(path)
    # The request is in the incident's audit trail, by the operator who made it.
    history = live.json(f"/api/v1/incidents/{incident_id}")["history"]
    assert any(e["event"] == "clip_requested" and e["actor"] == "op-nanguan" for e in history), history


# ----- outages --------------------------------------------------------------------------------------------
def test_clip_arrives_once_after_a_center_outage_and_after_a_worker_kill(
    tmp_path: Path, redis_url: str
) -> None:
    """Worker `w-one` cuts its clip while the center is stopped: it arrives once the center is back.
    Worker `w-two` spools its clip for a center that is not there, is killed with SIGKILL, and a fresh
    `w-two` (same id, same data directory) delivers it. Each clip is stored once."""
    stamp = (timecode_overlay(FPS),)
    one = make_clip(tmp_path / "one.mp4", Scene(seconds=90, walkers=(LATE_WALK,), overlays=stamp))
    # another street (seed): two cameras never send the same bytes, which the center would file as one clip
    two = make_clip(tmp_path / "two.mp4", Scene(seconds=90, walkers=(LATE_WALK,), overlays=stamp, seed=11))
    after = make_clip(tmp_path / "quiet.mp4", quiet_scene(90))
    with RtspServer({"/one": one, "/two": two, "/quiet": after}) as rtsp:
        cam_one = clip_camera("cam-one", rtsp.url("/one"), lat=36.6135, lon=101.7750)
        cam_two = clip_camera("cam-two", rtsp.url("/two"), lat=36.6210, lon=101.7750)
        stack = Stack(tmp_path / "stack", redis_url, [cam_one, cam_two])
        client = redis.Redis.from_url(redis_url)
        try:
            center = stack.start_center()
            stack.start_worker("w-one", [cam_one])
            nowhere = f"http://127.0.0.1:{free_port()}"  # nothing listens there
            stack.start_worker("w-two", [cam_two], center_url=nowhere)
            wait_until(lambda: client.exists(health_key("cam-one")), 60, "w-one reading", stack.running())
            center.stop()
            down_at = datetime.now(UTC)

            wait_until(lambda: stack.spooled("w-one"), 90, "w-one's clip in its spool", stack.running())
            [spooled_two] = wait_until(
                lambda: stack.spooled("w-two"), 90, "w-two's clip in its spool", stack.running()
            )
            killed = stack.processes["w-two"]
            os.killpg(killed.proc.pid, signal.SIGKILL)
            killed.proc.wait(timeout=10)
            assert spooled_two.exists(), "SIGKILL lost the spooled clip"

            stack.start_center()
            # A fresh w-two: same id and data directory; its camera now shows an empty street.
            stack.start_worker("w-two", [{**cam_two, "url": rtsp.url("/quiet")}])

            found = {}
            for camera_id in ("cam-one", "cam-two"):
                incident = stack.wait_incident(camera_id, 60, kind="intrusion")
                found[camera_id] = incident
                stack.wait_clips(incident["id"], 120)
            first_seen = datetime.fromisoformat(found["cam-one"]["first_seen"])
            assert first_seen >= down_at, (
                f"cam-one's alert ({first_seen}) came before the center stopped ({down_at}): the outage "
                "case did not happen as scripted"
            )
            wait_until(
                lambda: not stack.spooled("w-one") and not stack.spooled("w-two"),
                60,
                "the spools to empty",
                stack.running(),
            )
            time.sleep(2)  # a second upload, were there one, would land now
            for camera_id, incident in found.items():
                clips = stack.clips(incident["id"])
                assert len(clips) == 1, f"{camera_id}: {json.dumps(clips, indent=1)}"
                detail = stack.json(f"/api/v1/incidents/{incident['id']}")
                assert detail["clip_state"] == "present", detail
                path = stack.download(clips[0], tmp_path / f"{camera_id}.mp4")
                check_clip_file(path, PREROLL_S + POSTROLL_S, GOP_S, what=f"{camera_id}'s clip")
                source_frames(path)
            stored = stack.center_clip_files()
            assert len(stored) == 2, f"the center stores each clip once: {stored}"
            # Since its restart the center took each clip once: nothing was sent twice.
            uploads = stack.clip_uploads()
            assert uploads.get("stored") == 2 and not uploads.get("duplicate"), uploads
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{stack.log_tails()}") from None
        finally:
            client.close()
            stack.stop_all()
