"""The composition root's own parts: settings resolution and the process supervisor."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

from gridwatch.settings import GridwatchSettings
from gridwatch.supervisor import Supervisor


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("GRIDWATCH_REDIS_URL", "redis://example:6380/3")
    monkeypatch.setenv("GRIDWATCH_DATA_DIR", str(tmp_path))
    settings = GridwatchSettings()
    assert settings.resolved_redis_url() == "redis://example:6380/3"
    assert settings.resolved_database_url() == f"sqlite+aiosqlite:///{tmp_path.resolve() / 'center.db'}"


def test_missing_model_is_a_clear_error(tmp_path: Path) -> None:
    settings = GridwatchSettings(model=tmp_path / "nope.pt", data_dir=tmp_path)
    with pytest.raises(FileNotFoundError, match="set GRIDWATCH_MODEL"):
        settings.resolved_model()


def test_jwt_secret_is_generated_once_and_private(tmp_path: Path) -> None:
    settings = GridwatchSettings(data_dir=tmp_path / "data")
    first = settings.resolved_jwt_secret()
    assert len(first) >= 32
    assert settings.resolved_jwt_secret() == first
    assert (tmp_path / "data" / "jwt_secret").stat().st_mode & 0o077 == 0


def test_supervisor_stops_children_and_reports_an_early_exit() -> None:
    supervisor = Supervisor(stop_timeout_s=5)
    sleeper = supervisor.spawn("sleeper", [sys.executable, "-c", "import time; time.sleep(60)"])
    supervisor.spawn("quitter", [sys.executable, "-c", "raise SystemExit(3)"])
    assert supervisor.wait(poll_s=0.05) == 3
    supervisor.stop()
    assert sleeper.proc.returncode is not None
    with pytest.raises(ProcessLookupError):
        os.kill(sleeper.proc.pid, 0)


def test_supervisor_kills_a_child_that_ignores_sigterm(tmp_path: Path) -> None:
    supervisor = Supervisor(stop_timeout_s=0.5)
    ready = tmp_path / "ready"
    code = (
        "import pathlib, signal, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        "pathlib.Path(sys.argv[1]).touch(); time.sleep(60)"
    )
    child = supervisor.spawn("stubborn", [sys.executable, "-c", code, str(ready)])
    deadline = time.monotonic() + 30
    while not ready.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert ready.exists(), "the child never started"
    supervisor.stop()
    assert child.proc.returncode == -9


def test_the_default_worker_id_survives_a_restart() -> None:
    # The alert journal lives under the worker id: a restarted worker must find its own, so the id may not
    # carry anything of the process (a pid).
    import subprocess
    import sys

    from gridwatch.settings import default_worker_id

    code = "from gridwatch.settings import default_worker_id; print(default_worker_id())"
    other = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert other.stdout.strip() == default_worker_id()
