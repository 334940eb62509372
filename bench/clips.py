"""Event clip benchmark: what the pre-roll ring costs a worker, what cutting a clip costs, how soon a clip is
at the center, and what the usual NVR approach (an FFmpeg process per camera recording segments) costs.

    .venv/bin/python bench/clips.py [--quick] [--streams 6] [--seconds 20] [--rounds 3] [--alerts 4]

1. Reading: the ingest benchmark's 1080p25 streams (H.264, keyframe every 2 s, ~4 Mbit/s, `bench/ingest.py`'s
   `make_source`) from the real RTSP server (GStreamer). Four readers of S streams each run side by side:
     floor      PyAV demux only, no decoding (the floor)
     ring_off   GridWatch's IngestWorker sampling keyframes (sample_fps 0.5 on the 2 s GOP), clips off
     ring_on    the same with the clip recorder on: every packet of every camera goes into its pre-roll ring
                (10 s, the default), as a worker with clips keeps it
     ffmpeg     one `ffmpeg -rtsp_transport tcp -i URL -c copy -f segment -segment_time 10` per camera
     paired     one process, two workers on S/2 streams each, rings on for one and off for the other: the
                CPU of their reader threads (where every packet goes into the ring), same process and window
   The parent starts them all, waits until every stream of every reader delivers, and opens one measurement
   window for all of them at once (a line on each child's stdin; psutil reads the ffmpeg processes), so
   they share the machine's noise. R rounds; the table shows medians.
     ring_overhead_vs_floor = (ring_on - ring_off) / floor, CPU per stream (whole processes);
     ring_thread_overhead_vs_floor = (on - off reader thread) / floor (paired: far less noise).
   The ring's own cost is also timed directly (the reader's `memoryview(packet)` + `PacketRing.add` over the
   source's packets, CPU per packet x 25 packets/s). The process-level difference is near the machine's
   noise on 2 shared cores (a few hundredths of a percent of a core per stream), so all three are printed.
2. Cutting: 20 s of the source's packets in a `PacketRing` (preroll 20 s); `tap` + `remux` to a faststart MP4,
   as the recorder does, N times: CPU ms (this thread) and wall ms; ffprobe reads the result.
3. Alert -> clip at the center: a real `gridwatch center` and `gridwatch ingest` (private Redis, SQLite, the
   shared model), K cameras of a person walking into a zone at staggered times (640x360, the test clips'
   size), pre-roll and post-roll 10 s. From the alert's frame time (the incident's `first_seen`) to the
   clip listed by `GET /api/v1/incidents/{id}/clips` (p50/p95; the post-roll is in it), and from the clip's
   last frame (started_at + duration) to listed: the cut, spool and upload.
Prints a table, then one JSON line.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import queue
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil  # type: ignore[import-untyped]

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.support.rtsp import RtspServer, free_port  # noqa: E402

_spec = importlib.util.spec_from_file_location("bench_ingest", REPO / "bench" / "ingest.py")
assert _spec is not None and _spec.loader is not None
bench_ingest = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench_ingest)  # the ingest benchmark's streams and CPU clock

MIB = 2**20
SECRET = "bench-clips-secret-0123456789abcdef0123"
READERS = ("floor", "ring_off", "ring_on", "ffmpeg")
CHILDREN = ("floor", "ring_off", "ring_on", "paired")  # run by this script (ffmpeg runs as itself)


# ----- reader children: READY once every stream delivers, then measure from a line on stdin ---------------
def _measure(ready: Any, seconds: float, extra: Any = None, on_start: Any = None) -> None:
    deadline = time.monotonic() + 90
    while not ready() and time.monotonic() < deadline:
        time.sleep(0.1)
    if not ready():
        raise RuntimeError("not every stream delivered within 90 s")
    print("READY", flush=True)
    sys.stdin.readline()
    if on_start is not None:
        on_start()
    c0, w0 = bench_ingest.cpu_seconds(), time.monotonic()
    time.sleep(seconds)
    out = {"cpu_s": bench_ingest.cpu_seconds() - c0, "wall_s": time.monotonic() - w0}
    out["rss_mb"] = psutil.Process().memory_info().rss / MIB
    if extra is not None:
        out.update(extra())
    print("RESULT " + json.dumps(out), flush=True)


def child_floor(urls: list[str], seconds: float) -> None:
    import av

    from ingest.reader import source_spec

    frames = [0] * len(urls)

    def read(i: int, url: str) -> None:
        spec = source_spec(url, 10, 10)
        with av.open(spec.url, options=spec.options, timeout=(10, None)) as container:
            for _ in container.demux(container.streams.video[0]):
                frames[i] += 1

    for i, url in enumerate(urls):
        threading.Thread(target=read, args=(i, url), daemon=True).start()
    _measure(lambda: all(frames), seconds)


def _worker(name: str, urls: list[str], ring: bool, work: Path, seen: set[str]) -> Any:
    """An IngestWorker sampling keyframes (sample_fps 0.5 on the 2 s GOP) of `urls`, cameras `<name><i>`,
    with the clip recorder (every packet into a 10 s pre-roll ring) or without."""
    from contracts import Camera
    from ingest.cameras import StaticCameraSource
    from ingest.clips import ClipRecorder
    from ingest.config import ClipConfig, IngestConfig
    from ingest.spool import ClipSpool
    from ingest.worker import IngestWorker

    class Sink:
        def submit(self, frame: Any) -> None:
            seen.add(frame.camera_id)

        def cameras_changed(self, cameras: Any) -> None:
            pass

        def dropped(self, camera_id: str) -> int:
            return 0

    class Alerts:
        def publish(self, alert: Any, snapshot: bytes | None = None) -> None:
            pass

    cams = [Camera(id=f"{name}{i}", url=u, sample_fps=0.5) for i, u in enumerate(urls)]
    config = IngestConfig(worker_id=f"bench-{name}", max_concurrent_reconnects=64, clips=ClipConfig())
    recorder = (
        ClipRecorder(config.clips, ClipSpool(work / f"spool-{name}"), config.worker_id) if ring else None
    )
    worker = IngestWorker(config, StaticCameraSource(cams), Sink(), Alerts(), clips=recorder)
    worker.start()
    return worker


def _ring_use(worker: Any) -> dict[str, float]:
    health = worker.health().values()
    held = [h.ring_bytes for h in health if h.ring_bytes is not None]
    secs = [h.preroll_s for h in health if h.preroll_s is not None]
    return {
        "ring_bytes": statistics.mean(held) if held else 0.0,
        "ring_s": statistics.mean(secs) if secs else 0.0,
    }


def child_gridwatch(urls: list[str], seconds: float, ring: bool, work: Path) -> None:
    seen: set[str] = set()
    worker = _worker("b", urls, ring, work, seen)
    _measure(lambda: len(seen) == len(urls), seconds, lambda: _ring_use(worker))


def _reader_thread_cpu() -> dict[str, float]:
    """CPU seconds of each camera's reader thread (`ingest-<camera>`), by camera."""
    names = {t.native_id: t.name for t in threading.enumerate() if t.name.startswith("ingest-")}
    return {
        names[t.id].removeprefix("ingest-"): t.user_time + t.system_time
        for t in psutil.Process().threads()
        if t.id in names
    }


def child_paired(urls: list[str], seconds: float, work: Path) -> None:
    """Two workers in one process, one with rings ("on" cameras) and one without ("off"): the CPU of their
    reader threads (where every packet goes into the ring) compared in the same window, same process."""
    half = len(urls) // 2
    seen: set[str] = set()
    _worker("on", urls[:half], True, work, seen)
    _worker("off", urls[half:], False, work, seen)
    start: dict[str, float] = {}

    def threads() -> dict[str, float]:
        end = _reader_thread_cpu()
        used = {cam: end[cam] - start.get(cam, 0.0) for cam in end}
        on = [v for cam, v in used.items() if cam.startswith("on")]
        off = [v for cam, v in used.items() if cam.startswith("off")]
        return {"on_thread_s": sum(on) / max(1, len(on)), "off_thread_s": sum(off) / max(1, len(off))}

    _measure(lambda: len(seen) == len(urls), seconds, threads, lambda: start.update(_reader_thread_cpu()))


def child_main(args: argparse.Namespace) -> None:
    urls = args.urls.split(",")
    if args.child == "floor":
        child_floor(urls, args.seconds)
    elif args.child == "paired":
        child_paired(urls, args.seconds, Path(args.work))
    else:
        child_gridwatch(urls, args.seconds, ring=args.child == "ring_on", work=Path(args.work))
    os._exit(0)  # reader threads may sit in a blocking read


# ----- 1. reading, side by side ---------------------------------------------------------------------------
class Child:
    def __init__(self, variant: str, urls: list[str], seconds: float, work: Path) -> None:
        cmd = [sys.executable, __file__, "--child", variant, "--urls", ",".join(urls)]
        cmd += ["--seconds", str(seconds), "--work", str(work)]
        self.variant = variant
        self.proc = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO
        )
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.strip())
        self.lines.put("")

    def expect(self, prefix: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                break
            if line.startswith(prefix):
                return line[len(prefix) :]
            if not line and self.proc.poll() is not None:
                break
        self.proc.kill()
        err = self.proc.stderr.read()[-2000:] if self.proc.stderr else ""
        raise RuntimeError(f"{self.variant} child: no {prefix.strip()} ({self.proc.poll()}): {err}")

    def go(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)
        for pipe in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if pipe:
                pipe.close()


def ffmpeg_recorders(urls: list[str], out: Path) -> list[subprocess.Popen[bytes]]:
    binary = shutil.which("ffmpeg")
    if binary is None:
        raise RuntimeError("ffmpeg is not installed (apt-get install -y ffmpeg)")
    procs = []
    for i, url in enumerate(urls):
        folder = out / f"cam{i}"
        folder.mkdir(parents=True)
        cmd = [binary, "-nostdin", "-loglevel", "error", "-rtsp_transport", "tcp", "-i", url]
        cmd += ["-c", "copy", "-f", "segment", "-segment_time", "10", "-reset_timestamps", "1"]
        procs.append(subprocess.Popen([*cmd, str(folder / "seg%05d.mp4")], stdin=subprocess.DEVNULL))
    return procs


def ffmpeg_cpu(procs: list[subprocess.Popen[bytes]]) -> float:
    total = 0.0
    for proc in procs:
        times = psutil.Process(proc.pid).cpu_times()
        total += times.user + times.system
    return total


def read_round(urls: dict[str, list[str]], seconds: float, warmup: float, work: Path) -> dict[str, dict]:
    """One round: every reader on its own streams, one shared measurement window."""
    children = [Child(v, urls[v], seconds, work / v) for v in CHILDREN]
    ff = ffmpeg_recorders(urls["ffmpeg"], work / "ffmpeg")
    try:
        for child in children:
            child.expect("READY", 120)
        deadline = time.monotonic() + 60
        while not all(
            any(p.stat().st_size for p in (work / "ffmpeg").glob(f"cam{i}/*")) for i in range(len(ff))
        ):
            if time.monotonic() > deadline or any(p.poll() is not None for p in ff):
                raise RuntimeError("an ffmpeg recorder wrote nothing")
            time.sleep(0.2)
        time.sleep(warmup)
        f0, w0 = ffmpeg_cpu(ff), time.monotonic()
        for child in children:
            child.go()
        time.sleep(seconds)
        f1, w1 = ffmpeg_cpu(ff), time.monotonic()
        results = {c.variant: json.loads(c.expect("RESULT ", seconds + 60)) for c in children}
        results["ffmpeg"] = {"cpu_s": f1 - f0, "wall_s": w1 - w0, "rss_mb": 0.0}
        for variant, r in results.items():
            r["per_stream"] = r["cpu_s"] / r["wall_s"] / len(urls[variant])
        paired = results["paired"]
        paired["thread_on"] = paired["on_thread_s"] / paired["wall_s"]
        paired["thread_off"] = paired["off_thread_s"] / paired["wall_s"]
        paired["per_stream"] = paired["thread_on"] - paired["thread_off"]  # the ring's share, per stream
        return results
    finally:
        for child in children:
            child.close()
        for proc in ff:
            proc.terminate()
        for proc in ff:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        shutil.rmtree(work / "ffmpeg", ignore_errors=True)


# ----- 2. the ring's add and the cut, in this process --------------------------------------------------
def source_packets(path: Path, seconds: float) -> tuple[Any, list[Any]]:
    import av

    from ingest.ring import StreamParams

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        ctx, tb = stream.codec_context, stream.time_base
        if tb is None:
            raise RuntimeError(f"{path.name}: a video stream without a time base")
        params = StreamParams(ctx.name, ctx.width, ctx.height, tb, ctx.extradata)
        packets = []
        for packet in container.demux(stream):
            if packet.dts is None:
                continue
            if float(packet.dts * tb) >= seconds and packet.is_keyframe:
                break
            pts = packet.dts if packet.pts is None else packet.pts
            packets.append((memoryview(packet), pts, packet.dts, packet.is_keyframe, packet.duration or 0))
    return params, packets


def ring_add_cost(path: Path, params: Any, seconds: float, repeats: int) -> float:
    """CPU microseconds per packet of what the reader does for the ring: `memoryview(packet)` (a view of
    PyAV's buffer, no copy) and `PacketRing.add` (10 s ring), over the source's packets fed again
    and again."""
    import av

    from ingest.ring import PacketRing

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        # (packet, pts, dts): the packets stay PyAV's; the timed loop takes a view of each, as the reader does
        held = [
            (p, p.dts if p.pts is None else p.pts, p.dts)
            for p in container.demux(stream)
            if p.dts is not None and p.dts * params.time_base < seconds
        ]
        ring = PacketRing("bench", 10.0, 64 * MIB)
        ring.reset(params, 0.0)
        span = held[-1][2] - held[0][2] + (held[-1][0].duration or 1)
        started, count = time.thread_time(), 0
        for r in range(repeats):
            shift = r * span
            for p, pts, dts in held:
                ring.add(memoryview(p), pts + shift, dts + shift, p.is_keyframe, p.duration or 0, 0.0)
                count += 1
        return (time.thread_time() - started) / count * 1e6


def cut_cost(params: Any, packets: list[Any], work: Path, repeats: int) -> dict[str, float]:
    """Fill a 20 s ring, then tap + remux it to an MP4 `repeats` times."""
    from ingest.remux import remux
    from ingest.ring import PacketRing
    from tests.support.clipcheck import probe_clip

    ring = PacketRing("bench", 20.0, 256 * MIB)
    ring.reset(params, 0.0)
    for data, pts, dts, key, duration in packets:
        ring.add(data, pts, dts, key, duration, 0.0)
    cpu, wall, size, seconds = [], [], 0, 0.0
    for i in range(repeats):
        out = work / f"cut{i}.mp4"
        c0, w0 = time.thread_time(), time.perf_counter()
        tap = ring.tap(0.0, None, 256 * MIB, lambda tap: None)
        assert tap is not None
        result = remux(out, params, tap.packets)
        cpu.append((time.thread_time() - c0) * 1000)
        wall.append((time.perf_counter() - w0) * 1000)
        size, seconds = result.nbytes, result.duration_s
        if i == 0:
            probe = probe_clip(out)
            assert probe.first_frame_key and abs(probe.duration_s - seconds) < 0.1, probe
        out.unlink()
    return {
        "cpu_ms": statistics.median(cpu),
        "wall_ms": statistics.median(wall),
        "clip_s": seconds,
        "clip_mb": size / MIB,
    }


# ----- 3. alert -> clip at a real center -----------------------------------------------------------------
def clip_latency(alerts: int, work: Path) -> list[dict[str, float]]:
    from center_api.auth import issue_token
    from gridwatch.demo.clips import Scene, Walker, make_clip
    from tests.support.paths import model_path
    from tests.support.servers import RedisServer
    from tests.support.stack import Process, api_get, gridwatch_args, intrusion_camera, write_city

    places = [(36.6135, 101.775), (36.6135, 101.785), (36.6135, 101.795), (36.621, 101.775)]
    mounts: dict[str, Path] = {}
    for i in range(alerts):
        t = 12.0 + 3 * i  # a full 10 s pre-roll is held by then
        walker = Walker(path=((0.0, 0.1, 0.92), (t - 3, 0.3, 0.92), (t + 1, 0.74, 0.95), (600, 0.76, 0.95)))
        mounts[f"/cam{i}"] = make_clip(work / f"walk{i}.mp4", Scene(seconds=t + 40, walkers=(walker,)))
    with ExitStack() as stack:
        redis_server = stack.enter_context(RedisServer())
        rtsp = stack.enter_context(RtspServer(mounts))
        cameras = []
        for i in range(alerts):
            cam = intrusion_camera(f"clip-{i}", rtsp.url(f"/cam{i}"), *places[i % len(places)])
            cam["sample_fps"], cam["rules"][0]["min_samples"] = 1, 1
            cameras.append(cam)
        config = write_city(work / "config", cameras)
        port = free_port()
        api = f"http://127.0.0.1:{port}"
        base = {k: v for k, v in os.environ.items() if not k.startswith("GRIDWATCH_")}
        base.update(
            GRIDWATCH_REDIS_URL=redis_server.db_url(0),
            GRIDWATCH_CONFIG_DIR=str(config),
            GRIDWATCH_MODEL=str(model_path()),
            GRIDWATCH_JWT_SECRET=SECRET,
        )
        center = Process(
            "center",
            gridwatch_args("center", "--port", str(port)),
            dict(base, GRIDWATCH_DATA_DIR=str(work / "center")),
            work,
        )
        stack.callback(center.stop)
        deadline = time.monotonic() + 120
        while api_get(f"{api}/api/v1/health", "")[0] != 200:
            if time.monotonic() > deadline or not center.alive():
                raise RuntimeError(f"the center did not start\n{center.log_tail()}")
            time.sleep(0.5)
        worker_env = dict(
            base,
            GRIDWATCH_DATA_DIR=str(work / "worker"),
            GRIDWATCH_CENTER_URL=api,
            GRIDWATCH_WORKER_TOKEN=issue_token(SECRET, subject="bench", role="worker", station_id=None),
        )
        args = gridwatch_args("ingest", "--cameras", str(config / "cameras.yaml"), "--worker-id", "bench")
        worker = Process("ingest", args, worker_env, work)
        stack.callback(worker.stop)
        city = issue_token(SECRET, subject="bench", role="city_command", station_id=None)
        listed: dict[int, dict[str, float]] = {}
        deadline = time.monotonic() + 12 + 3 * alerts + 120
        while len(listed) < alerts:
            if time.monotonic() > deadline or not worker.alive() or not center.alive():
                raise RuntimeError(f"{len(listed)} of {alerts} clips arrived\n{worker.log_tail()}")
            status, body = api_get(f"{api}/api/v1/incidents?limit=100", city)
            for incident in json.loads(body)["items"] if status == 200 else []:
                if incident["id"] in listed:
                    continue
                status, raw = api_get(f"{api}/api/v1/incidents/{incident['id']}/clips", city)
                clips = json.loads(raw) if status == 200 else []
                if clips:
                    now = datetime.now(UTC)
                    clip = clips[0]
                    end = datetime.fromisoformat(clip["started_at"]).timestamp() + clip["duration_s"]
                    listed[incident["id"]] = {
                        "ready_s": (now - datetime.fromisoformat(incident["first_seen"])).total_seconds(),
                        "after_end_s": now.timestamp() - end,
                        "clip_s": clip["duration_s"],
                    }
            time.sleep(0.2)
        return list(listed.values())


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short run: 2 streams, 1 round, 2 alerts")
    parser.add_argument("--streams", type=int, default=6, help="streams per reader")
    parser.add_argument("--seconds", type=float, default=20.0, help="measurement window of a round")
    parser.add_argument("--warmup", type=float, default=4.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--alerts", type=int, default=4, help="alerts (cameras) for alert -> clip")
    parser.add_argument("--child")
    parser.add_argument("--urls")
    parser.add_argument("--work")
    args = parser.parse_args()
    if args.child:
        child_main(args)
        return 0
    if args.quick:
        args.streams, args.seconds, args.rounds, args.alerts = 2, 8.0, 1, 2
    with tempfile.TemporaryDirectory(prefix="gw-bench-clips-") as tmp:
        work = Path(tmp)
        source = bench_ingest.make_source(work)
        names = (*READERS, "paired")
        with RtspServer({f"/s{i}": source for i in range(args.streams * len(names))}) as server:
            urls = {
                v: [server.url(f"/s{k * args.streams + i}") for i in range(args.streams)]
                for k, v in enumerate(names)
            }
            rounds: dict[str, list[dict]] = {v: [] for v in names}
            for r in range(args.rounds):
                results = read_round(urls, args.seconds, args.warmup, work / f"round{r}")
                for variant, result in results.items():
                    rounds[variant].append(result)
                shares = "  ".join(f"{v} {results[v]['per_stream'] * 100:.3f}%" for v in READERS)
                paired = results["paired"]["per_stream"] * 100
                print(
                    f"round {r + 1}: {shares}  paired on-off {paired:+.4f}% of a core per stream", flush=True
                )
        params, packets = source_packets(source, 20.0)
        add_us = ring_add_cost(source, params, 20.0, 20 if args.quick else 100)
        cut = cut_cost(params, packets, work, 5 if args.quick else 20)
        latency = clip_latency(args.alerts, work / "latency")
    med = {v: bench_ingest.median_run(runs) for v, runs in rounds.items()}
    per = {v: r["per_stream"] for v, r in med.items()}
    floor = per["floor"]
    ring_on = med["ring_on"]
    ring_mb = ring_on["ring_bytes"] / MIB
    rss_delta = (ring_on["rss_mb"] - med["ring_off"]["rss_mb"]) / args.streams
    add_share = add_us * 25 / 1e6  # 25 packets/s per stream
    print(f"\n{'reader':<10}{'streams':>8}{'CPU/stream (% core)':>22}{'spread':>16}{'vs floor':>10}")
    for v in READERS:
        spread = [x["per_stream"] * 100 for x in rounds[v]]
        print(
            f"{v:<10}{args.streams:>8}{per[v] * 100:>21.3f}%{f'{min(spread):.3f}-{max(spread):.3f}%':>16}"
            f"{per[v] / floor:>9.2f}x"
        )
    paired = med["paired"]
    ring_thread = paired["per_stream"]
    ready = [x["ready_s"] for x in latency]
    after = [x["after_end_s"] for x in latency]
    print(
        f"\nring on - off: {(per['ring_on'] - per['ring_off']) * 100:+.3f}% of a core per stream "
        f"({(per['ring_on'] - per['ring_off']) / floor * 100:+.1f}% of the floor)"
        f"\nring on - off in one process (reader threads): {paired['thread_on'] * 100:.3f}% vs "
        f"{paired['thread_off'] * 100:.3f}% of a core per stream, "
        f"{ring_thread * 100:+.4f}% ({ring_thread / floor * 100:+.1f}% of the floor)"
        f"\nring add: {add_us:.2f} us CPU a packet = {add_share * 100:.4f}% of a core per 25 fps stream "
        f"({add_share / floor * 100:.2f}% of the floor)"
        f"\nring per camera: {ring_mb:.2f} MiB for {ring_on['ring_s']:.1f} s held (10 s asked); "
        f"RSS on - off {rss_delta:+.2f} MiB per camera"
        f"\ncut of a {cut['clip_s']:.1f} s clip ({cut['clip_mb']:.1f} MiB): {cut['cpu_ms']:.1f} ms CPU, "
        f"{cut['wall_ms']:.1f} ms wall (median of the runs)"
        f"\nalert -> clip at the center ({len(latency)} alerts, post-roll 10 s included): "
        f"p50 {pct(ready, 0.5):.1f} s, p95 {pct(ready, 0.95):.1f} s; clip end -> listed p50 "
        f"{pct(after, 0.5):.2f} s, p95 {pct(after, 0.95):.2f} s"
        f"\nffmpeg -c copy segment recorder: {per['ffmpeg'] * 100:.3f}% of a core per camera "
        f"({per['ffmpeg'] / max(per['ring_on'], 1e-9):.2f}x GridWatch reading with the ring)"
    )
    summary = {
        "streams": args.streams,
        "rounds": args.rounds,
        "ring_overhead_vs_floor": round((per["ring_on"] - per["ring_off"]) / floor, 3),
        "ring_thread_overhead_vs_floor": round(ring_thread / floor, 3),
        "ring_add_us": round(add_us, 2),
        "ring_add_vs_floor": round(add_share / floor, 4),
        "ring_mb_per_camera": round(ring_mb, 2),
        "ring_s_held": round(ring_on["ring_s"], 1),
        "ring_rss_mb_per_camera": round(rss_delta, 2),
        "cut_cpu_ms": round(cut["cpu_ms"], 1),
        "cut_wall_ms": round(cut["wall_ms"], 1),
        "cut_clip_s": round(cut["clip_s"], 1),
        "clip_ready_p50_s": round(pct(ready, 0.5), 2),
        "clip_ready_p95_s": round(pct(ready, 0.95), 2),
        "clip_after_end_p95_s": round(pct(after, 0.95), 2),
        "floor_cpu": round(floor, 5),
        "ring_off_cpu": round(per["ring_off"], 5),
        "ring_on_cpu": round(per["ring_on"], 5),
        "ffmpeg_segment_cpu": round(per["ffmpeg"], 5),
    }
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
