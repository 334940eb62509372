"""Builders for tests that run GridWatch's real processes: configs, subprocesses, Redis, the API."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from tests.support.paths import REPO

DEMO_CONFIG = REPO / "configs" / "demo"


def write_city(config_dir: Path, cameras: list[dict[str, Any]]) -> Path:
    """The demo city's grid and stations with the given cameras."""
    config_dir.mkdir(parents=True, exist_ok=True)
    for name in ("grid.geojson", "stations.yaml"):
        shutil.copyfile(DEMO_CONFIG / name, config_dir / name)
    (config_dir / "cameras.yaml").write_text(yaml.safe_dump({"cameras": cameras}, sort_keys=False))
    return config_dir


def intrusion_camera(camera_id: str, url: str, lat: float, lon: float) -> dict[str, Any]:
    """A camera watching the right half of the image for people, as in the demo city."""
    return {
        "id": camera_id,
        "name": f"{camera_id} (test)",
        "url": url,
        "site_type": "key_site",
        "location": {"lat": lat, "lon": lon},
        "sample_fps": 2,
        "rules": [
            {
                "id": "right-half",
                "kind": "intrusion",
                "zone": "right-half",
                "severity": 2,
                "classes": ["person"],
                "min_confidence": 0.4,
                "cooldown_s": 600,
                "polygon": [[0.5, 0.0], [1.0, 0.0], [1.0, 1.0], [0.5, 1.0]],
            }
        ],
    }


class Process:
    """A GridWatch subprocess whose output goes to a log file (shown when a test fails)."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], log_dir: Path) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            args, env=env, stdout=self._log, stderr=subprocess.STDOUT, cwd=REPO, start_new_session=True
        )

    def alive(self) -> bool:
        return self.proc.poll() is None

    def log_tail(self, lines: int = 60) -> str:
        text = self.log_path.read_text(errors="replace").splitlines()
        return f"--- {self.name} (exit {self.proc.poll()}) ---\n" + "\n".join(text[-lines:])

    def stop(self, timeout: float = 20.0) -> int:
        if self.alive():
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        self._log.close()
        return self.proc.returncode


def gridwatch_args(*args: str) -> list[str]:
    return [sys.executable, "-m", "gridwatch", *args]


def api_get(url: str, token: str, timeout: float = 5.0) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except (urllib.error.URLError, OSError) as exc:  # not listening (yet)
        return 0, str(exc).encode()


def api_json(url: str, token: str) -> Any:
    status, body = api_get(url, token)
    assert status == 200, f"GET {url} -> {status}: {body[:300]!r}"
    return json.loads(body)


def wait_until(condition: Callable[[], Any], timeout: float, what: str, processes: list[Process] = ()) -> Any:
    """Poll `condition` until it returns something truthy; fail with the processes' logs otherwise."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        for process in processes:
            if not process.alive():
                raise AssertionError(f"{process.name} died while waiting for {what}\n{process.log_tail()}")
        time.sleep(0.5)
    logs = "\n".join(p.log_tail() for p in processes)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}\n{logs}")
