"""Ingest CPU benchmark: CPU-seconds per stream-second of five ways to read RTSP, side by side, plus capacity.

    .venv/bin/python bench/ingest.py [--streams 4] [--seconds 20] [--rounds 3] [--capacity 16,32,64,...]

Serves S looped 1080p25 H.264 clips (keyframe every 2 s, ~4 Mbit/s, made by `make_clip`) from the real RTSP
server (GStreamer), and runs each reader in its own subprocess reading all S streams on threads:
  opencv          cv2.VideoCapture(...).read() every frame (what most projects and tutorials do)
  pyav_all        PyAV decoding every frame
  pyav_keyframes  a bare PyAV loop decoding keyframes only (skip_frame NONKEY): what any keyframe sampler pays
  gridwatch       IngestWorker sampling one frame per keyframe (sample_fps 0.5 on a 2 s GOP)
  floor           PyAV demux only, no decoding
GridWatch hands its samples on in the decoder's YUV: the BGR conversion (~0.7 ms at 1080p) is paid by
detection, and only for the samples that pass its motion gate.
Each child measures its own CPU time (getrusage) over the measurement window, which starts after the warmup
and only once every one of its streams has delivered a frame (same streams, same window for every reader).
The readers run in R interleaved rounds and the table shows each one's median (the machine is shared and
noisy; the spread is printed too). Then GridWatch runs with growing stream counts in one worker; a count is
sustained when every stream's newest sample stays younger than 3 s throughout the window.
streams_per_core = streams / worker CPU cores used (the RTSP server runs on the same machine, so the worker's
own CPU is the fair denominator). Prints a table, then one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

AGE_LIMIT_S = 3.0


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# ----- children ------------------------------------------------------------------------------------------
def child_opencv(urls: list[str], warmup: float, seconds: float) -> dict[str, float]:
    os.environ["OPENCV_FFMPEG_CAPTURE_OPTIONS"] = "rtsp_transport;tcp"
    import cv2

    stop = threading.Event()
    frames = [0] * len(urls)

    def read(i: int, url: str) -> None:
        cap = cv2.VideoCapture(url, cv2.CAP_FFMPEG)
        while not stop.is_set():
            ok, _ = cap.read()
            if not ok:
                break
            frames[i] += 1
        cap.release()

    return _run_threads(urls, read, frames, stop, warmup, seconds)


def child_pyav(urls: list[str], warmup: float, seconds: float, decode: str) -> dict[str, float]:
    """`decode`: "all" frames (slice threads), "keyframes" only (one thread, as GridWatch), or "none"."""
    import av

    from ingest.reader import source_spec

    stop = threading.Event()
    frames = [0] * len(urls)

    def read(i: int, url: str) -> None:
        spec = source_spec(url, 10, 10)
        # same reading set-up as GridWatch: PyAV's timeout only for the open, FFmpeg's socket timeout after
        with av.open(spec.url, options=spec.options, timeout=(10, None)) as container:
            stream = container.streams.video[0]
            if decode == "all":
                stream.thread_type = "SLICE"
            elif decode == "keyframes":
                stream.codec_context.skip_frame = "NONKEY"
                stream.codec_context.thread_count = 1
            for packet in container.demux(stream):
                if stop.is_set():
                    break
                if decode == "all" or (decode == "keyframes" and packet.is_keyframe):
                    frames[i] += len(packet.decode())
                elif decode == "none":
                    frames[i] += 1

    return _run_threads(urls, read, frames, stop, warmup, seconds)


def _run_threads(urls, read, frames, stop, warmup, seconds) -> dict[str, float]:  # noqa: ANN001
    threads = [threading.Thread(target=read, args=(i, u), daemon=True) for i, u in enumerate(urls)]
    for t in threads:
        t.start()
    time.sleep(warmup)
    _wait_all_running(lambda: all(frames))
    c0, w0, f0 = cpu_seconds(), time.monotonic(), sum(frames)
    time.sleep(seconds)
    c1, w1, f1 = cpu_seconds(), time.monotonic(), sum(frames)
    stop.set()
    return {"cpu_s": c1 - c0, "wall_s": w1 - w0, "frames": f1 - f0, "streams": len(urls)}


def _wait_all_running(running, limit: float = 60.0) -> None:  # noqa: ANN001
    """Start the window only when every stream delivers (OpenCV opens its streams one after another)."""
    deadline = time.monotonic() + limit
    while not running() and time.monotonic() < deadline:
        time.sleep(0.1)
    if not running():
        raise RuntimeError(f"not every stream delivered within {limit:.0f} s")


def child_gridwatch(urls: list[str], warmup: float, seconds: float) -> dict[str, float]:
    from contracts import Camera
    from ingest.cameras import StaticCameraSource
    from ingest.config import IngestConfig
    from ingest.worker import IngestWorker

    last: dict[str, float] = {}
    count = [0]

    class Sink:
        def submit(self, frame) -> None:  # noqa: ANN001
            last[frame.camera_id] = time.monotonic()
            count[0] += 1

        def cameras_changed(self, cameras) -> None:  # noqa: ANN001
            pass

        def dropped(self, camera_id: str) -> int:
            return 0

    class Alerts:
        def publish(self, alert, snapshot=None) -> None:  # noqa: ANN001
            pass

    cams = [Camera(id=f"b{i}", url=u, sample_fps=0.5) for i, u in enumerate(urls)]
    config = IngestConfig(worker_id="bench", max_concurrent_reconnects=64)
    worker = IngestWorker(config, StaticCameraSource(cams), Sink(), Alerts())
    worker.start()
    time.sleep(warmup)
    _wait_all_running(lambda: len(last) == len(cams))
    c0, w0, n0 = cpu_seconds(), time.monotonic(), count[0]
    worst = 0.0
    while time.monotonic() - w0 < seconds:
        time.sleep(0.25)
        now = time.monotonic()
        ages = [now - last.get(c.id, w0 - warmup) for c in cams]
        worst = max(worst, max(ages))
    c1, w1, n1 = cpu_seconds(), time.monotonic(), count[0]
    modes = {s.mode for s in worker.stream_counters().values()}
    worker.stop(10)
    return {
        "cpu_s": c1 - c0,
        "wall_s": w1 - w0,
        "frames": n1 - n0,
        "streams": len(urls),
        "max_age_s": worst,
        "modes": ",".join(sorted(modes)),
    }


def child_main(args: argparse.Namespace) -> None:
    urls = args.urls.split(",")
    if args.child == "opencv":
        out = child_opencv(urls, args.warmup, args.seconds)
    elif args.child == "pyav_all":
        out = child_pyav(urls, args.warmup, args.seconds, decode="all")
    elif args.child == "pyav_keyframes":
        out = child_pyav(urls, args.warmup, args.seconds, decode="keyframes")
    elif args.child == "floor":
        out = child_pyav(urls, args.warmup, args.seconds, decode="none")
    else:
        out = child_gridwatch(urls, args.warmup, args.seconds)
    print("RESULT " + json.dumps(out), flush=True)
    os._exit(0)  # reader threads of the baselines may still sit in a blocking read


# ----- parent --------------------------------------------------------------------------------------------
def run_child(variant: str, urls: list[str], warmup: float, seconds: float) -> dict[str, float]:
    cmd = [
        sys.executable,
        __file__,
        "--child",
        variant,
        "--urls",
        ",".join(urls),
        "--warmup",
        str(warmup),
        "--seconds",
        str(seconds),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=warmup + seconds + 120, cwd=REPO)
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            result = json.loads(line[len("RESULT ") :])
            result["per_stream"] = result["cpu_s"] / result["wall_s"] / result["streams"]
            return result
    raise RuntimeError(f"{variant} child failed ({proc.returncode}): {proc.stderr[-2000:]}")


READERS = ("opencv", "pyav_all", "pyav_keyframes", "gridwatch", "floor")


def median_run(runs: list[dict[str, float]]) -> dict[str, float]:
    """The round whose CPU per stream is the median (the upper one of an even count)."""
    return sorted(runs, key=lambda r: r["per_stream"])[len(runs) // 2]


def make_source(root: Path) -> Path:
    from gridwatch.demo.clips import Scene, Walker, loop_clip, make_clip

    walker = Walker(path=((0.0, 0.1, 0.9), (10.0, 0.9, 0.9)))
    base = make_clip(
        root / "bench1080.mp4",
        Scene(width=1920, height=1080, fps=25, seconds=10, walkers=(walker,), noise=6.0),
        gop_seconds=2.0,
        bitrate=4_000_000,
    )
    return loop_clip(base, root / "bench1080_loop.mp4", 90)  # 15 minutes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument(
        "--rounds", type=int, default=3, help="interleaved rounds of the readers (median shown)"
    )
    parser.add_argument(
        "--capacity",
        default="16,32,64,96,128,160",
        help="stream counts to try for GridWatch capacity (stops at the first that is too slow)",
    )
    parser.add_argument("--child")
    parser.add_argument("--urls")
    args = parser.parse_args()
    if args.child:
        child_main(args)
        return 0
    from tests.support.rtsp import RtspServer

    with tempfile.TemporaryDirectory(prefix="gw-bench-") as tmp:
        clip = make_source(Path(tmp))
        import av

        with av.open(str(clip)) as c:
            s = c.streams.video[0]
            kbps = (c.size * 8 / 1000) / float(c.duration / 1_000_000)
            print(
                f"source: {s.codec_context.width}x{s.codec_context.height} {s.average_rate} fps, "
                f"{kbps:.0f} kbit/s, keyframe every 2 s"
            )
        counts = sorted({int(x) for x in args.capacity.split(",") if x} | {args.streams})
        mounts = {f"/s{i}": clip for i in range(max(counts))}
        with RtspServer(mounts) as server:
            urls = [server.url(f"/s{i}") for i in range(max(counts))]
            rounds: dict[str, list[dict[str, float]]] = {v: [] for v in READERS}
            for r in range(max(1, args.rounds)):
                for variant in READERS:
                    result = run_child(variant, urls[: args.streams], args.warmup, args.seconds)
                    rounds[variant].append(result)
                    share = result["per_stream"] * 100
                    print(f"round {r + 1}: {variant:<15} {share:6.2f}% of a core per stream", flush=True)
            capacity = []
            for n in counts:
                r = run_child("gridwatch", urls[:n], args.warmup + n / 8, args.seconds)
                capacity.append((n, r))
                if r["max_age_s"] >= AGE_LIMIT_S:
                    break
    results = {v: median_run(runs) for v, runs in rounds.items()}
    floor = results["floor"]["per_stream"]
    head = f"{'reader':<16}{'streams':>8}{'CPU/stream (% core)':>22}{'spread':>16}{'frames/s':>10}"
    print(f"\n{head}{'vs floor':>10}")
    for name, r in results.items():
        spread = [x["per_stream"] * 100 for x in rounds[name]]
        print(
            f"{name:<16}{r['streams']:>8}{r['per_stream'] * 100:>21.2f}%"
            f"{f'{min(spread):.2f}-{max(spread):.2f}%':>16}{r['frames'] / r['wall_s']:>10.1f}"
            f"{r['per_stream'] / floor:>9.1f}x"
        )
    print(f"\n{'gridwatch streams':<18}{'worker CPU (cores)':>20}{'max sample age':>16}{'streams/core':>14}")
    sustained = None
    for n, r in capacity:
        cores = r["cpu_s"] / r["wall_s"]
        ok = r["max_age_s"] < AGE_LIMIT_S
        print(
            f"{n:<18}{cores:>20.2f}{r['max_age_s']:>15.1f}s{n / cores:>14.1f}{'' if ok else '  (too slow)'}"
        )
        if ok:
            sustained = (n, n / cores)
    per = {name: r["per_stream"] for name, r in results.items()}
    summary = {
        "streams": args.streams,
        "rounds": max(1, args.rounds),
        "opencv_cpu": round(per["opencv"], 4),
        "pyav_all_cpu": round(per["pyav_all"], 4),
        "pyav_keyframes_cpu": round(per["pyav_keyframes"], 4),
        "gridwatch_cpu": round(per["gridwatch"], 4),
        "floor_cpu": round(floor, 4),
        "ratio_vs_opencv": round(per["opencv"] / per["gridwatch"], 1),
        "ratio_vs_floor": round(per["gridwatch"] / floor, 2),
        "keyframe_loop_vs_floor": round(per["pyav_keyframes"] / floor, 2),
        "gridwatch_vs_keyframe_loop": round(per["gridwatch"] / per["pyav_keyframes"], 2),
        "max_streams_sustained": sustained[0] if sustained else 0,
        "streams_per_core": round(sustained[1], 1) if sustained else 0,
    }
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
