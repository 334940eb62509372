"""`gridwatch up --demo` on embedded defaults: an incident arrives, and SIGTERM leaves no process behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.support.paths import REPO, model_path
from tests.support.rtsp import free_port

pytestmark = pytest.mark.integration


def descendants(pid: int) -> set[int]:
    """Every live descendant of `pid`, from /proc."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM])
def test_demo_shows_an_incident_and_stops_cleanly(tmp_path: Path, stop_signal: signal.Signals) -> None:
    # Embedded defaults: its own Valkey and SQLite, whatever the caller's environment points at.
    env = {k: v for k, v in os.environ.items() if k not in ("GRIDWATCH_REDIS_URL", "GRIDWATCH_DATABASE_URL")}
    env.update(
        GRIDWATCH_DATA_DIR=str(tmp_path / "data"),
        GRIDWATCH_MODEL=str(model_path()),
        GRIDWATCH_API_PORT=str(free_port()),
        GRIDWATCH_DEMO_RTSP_PORT=str(free_port()),
        PYTHONUNBUFFERED="1",
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "gridwatch", "up", "--demo"],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(proc.stdout.readline, "")), daemon=True)
    reader.start()
    started = time.monotonic()
    family: set[int] = set()
    try:
        deadline = started + 180
        while time.monotonic() < deadline and proc.poll() is None:
            if any(line.startswith("INCIDENT intrusion") for line in lines):
                break
            time.sleep(0.5)
        output = "".join(lines)
        assert any(line.startswith("INCIDENT intrusion") for line in lines), f"no incident:\n{output[-6000:]}"
        print(f"demo: first incident {time.monotonic() - started:.1f} s after start")
        assert "operator token (station st-nanguan)" in output
        assert "-> cell c-nanguan-02 -> station st-nanguan" in output
        family = descendants(proc.pid)
        assert len(family) >= 4, f"expected rtsp server, valkey, center and ingest children, got {family}"
    finally:
        proc.send_signal(stop_signal)
        try:
            code = proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
        reader.join(timeout=5)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(alive(pid) for pid in family):
        time.sleep(0.2)
    assert not [pid for pid in family if alive(pid)], "orphans left behind after SIGTERM"
    assert code == 0, "".join(lines)[-3000:]
