"""Start-up of the monitoring center at city scale: `gridwatch center` until /api/v1/health says ready.

  .venv/bin/python bench/startup.py [--config-dir DIR] [--sqlite] [--restarts 3] [--profile]

The reference city (143 communities, 1,037 cells, 40 stations, 8,502 cameras) is generated into a temporary
directory unless --config-dir names one. Redis and PostgreSQL are private servers started for the run
(PostgreSQL with fsync on, as deployed; --sqlite uses a SQLite file in the data directory instead).

1. End to end: `python -m gridwatch center` as a process, from exec to the first 200 of /api/v1/health; the
   first start (empty database, empty data directory) and `--restarts` restarts on the same database and
   data directory. Wall seconds and the CPU seconds the process used (user + system, read while it runs).
2. Phases: the same steps as the CLI and the lifespan take them, run here one after the other and timed:
   the CLI's check of cameras.yaml, loading and validating the grid, the cell index (STRtree), the schema
   (Alembic), the import of cameras.yaml into the registry, the registry loaded into the router, the
   consumer group. First start, then restart. Importing the modules is timed in a fresh interpreter.
3. Floor: what no start-up can skip: reading the three files with json and libyaml's C loader (no
   validation, no database), and the same with cameras.yaml read from its parsed copy; for comparison, the
   pure-Python YAML loader the CLI used before on cameras.yaml.
With --profile, one restart runs under cProfile and the 25 functions with the most cumulative time are
printed. The machine's load shows in wall seconds; the CPU seconds are steadier. Prints the tables, then one
JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import pstats
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import psutil  # type: ignore[import-untyped]

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.support.pgdb import postgres_service  # noqa: E402
from tests.support.rtsp import free_port  # noqa: E402
from tests.support.servers import RedisServer  # noqa: E402

SECRET = "bench-secret-bench-secret-bench-secret"


def _timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    t0 = time.perf_counter()
    result = fn()
    return time.perf_counter() - t0, result


# --- 1. end to end


def start_center(env: dict[str, str], port: int, log: Path, profile: Path | None = None) -> dict[str, float]:
    """Start `gridwatch center`, wait for /health 200, stop it; wall and CPU seconds to ready."""
    args = [sys.executable, "-m", "gridwatch", "center", "--port", str(port)]
    if profile is not None:
        args[1:1] = ["-m", "cProfile", "-o", str(profile)]
    url = f"http://127.0.0.1:{port}/api/v1/health"
    t0 = time.perf_counter()
    with log.open("wb") as out:
        proc = subprocess.Popen(args, env=env, cwd=REPO, stdout=out, stderr=subprocess.STDOUT)
    handle = psutil.Process(proc.pid)
    try:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"the center exited ({proc.returncode}):\n{log.read_text()[-3000:]}")
            cpu = handle.cpu_times()
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    if response.status == 200:
                        break
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.05)
        wall = time.perf_counter() - t0
        return {"wall_s": wall, "cpu_s": cpu.user + cpu.system}
    finally:
        proc.send_signal(2)  # SIGINT: uvicorn's graceful stop (a profile is written on the way out)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# --- 2. phases


async def phases(config_dir: Path, data_dir: Path, database_url: str, redis_url: str) -> dict[str, float]:
    """The start-up's steps, timed one by one (the lifespan runs them in this order)."""
    from redis.asyncio import Redis

    from center_api.cameras.registry import CameraRegistry
    from center_api.consumer import ensure_group
    from center_api.grid import CellLocator, load_city
    from center_api.routing import AlertRouter
    from center_api.store.db import make_engine, migrate, session_factory
    from gridwatch.cli import _check_cameras_file

    cache_dir = data_dir / "cache"
    out: dict[str, float] = {}
    out["cameras.yaml check (CLI)"], _ = _timed(
        lambda: _check_cameras_file(config_dir / "cameras.yaml", cache_dir)
    )
    out["grid: load and validate"], city = _timed(lambda: load_city(config_dir))
    out["cell index (STRtree)"], locator = _timed(lambda: CellLocator(city, 50.0))
    engine = make_engine(database_url)
    redis = Redis.from_url(redis_url)
    try:
        t0 = time.perf_counter()
        await migrate(engine)
        out["schema (alembic)"] = time.perf_counter() - t0
        registry = CameraRegistry(session_factory(engine), AlertRouter(locator), redis)
        t0 = time.perf_counter()
        await registry.import_config(config_dir, cache_dir)
        out["cameras: import cameras.yaml"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        await registry.load()
        out["cameras: registry into router"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        await ensure_group(redis)
        out["consumer group"] = time.perf_counter() - t0
    finally:
        await redis.aclose()
        await engine.dispose()
    return out


def import_seconds() -> float:
    code = "import uvicorn, center_api.app, gridwatch.cli"
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True)
    return time.perf_counter() - t0


# --- 3. floor


def floor(config_dir: Path, cache_dir: Path) -> dict[str, float]:
    import yaml

    from center_api.grid.yamlfile import parse_yaml, read_yaml

    def read_all(cameras: Callable[[], Any]) -> None:
        json.loads((config_dir / "grid.geojson").read_bytes())
        parse_yaml((config_dir / "stations.yaml").read_bytes())
        cameras()

    cameras_yaml = config_dir / "cameras.yaml"
    return {
        "files, C loader": _timed(lambda: read_all(lambda: parse_yaml(cameras_yaml.read_bytes())))[0],
        "files, cameras.yaml from its parsed copy": _timed(
            lambda: read_all(lambda: read_yaml(cameras_yaml, cache_dir))
        )[0],
        "cameras.yaml, pure-Python loader (before)": _timed(
            lambda: yaml.load(cameras_yaml.read_bytes(), Loader=yaml.SafeLoader)
        )[0],
    }


# --- the run


@contextlib.contextmanager
def city_dir(given: Path | None) -> Iterator[Path]:
    if given is not None:
        yield given
        return
    from center_api.grid.generate import generate_city

    with tempfile.TemporaryDirectory(prefix="gridwatch-startup-city-") as tmp:
        generate_city(Path(tmp), seed=630100)
        yield Path(tmp)


@contextlib.contextmanager
def database_urls(sqlite: bool, work: Path) -> Iterator[tuple[str, str]]:
    """Two empty databases: one for the processes, one for the phases."""
    if sqlite:
        yield (f"sqlite+aiosqlite:///{work / 'proc.db'}", f"sqlite+aiosqlite:///{work / 'phases.db'}")
        return
    with postgres_service(durable=True) as pg, pg.database() as one, pg.database() as two:
        yield one, two


def print_table(title: str, rows: Sequence[tuple[str, ...]], head: tuple[str, ...]) -> None:
    widths = [max(len(str(r[i])) for r in [head, *rows]) for i in range(len(head))]
    print(f"\n{title}")
    for row in [head, *rows]:
        print(
            "  "
            + "  ".join(
                str(c).ljust(w) if i == 0 else str(c).rjust(w)
                for i, (c, w) in enumerate(zip(row, widths, strict=True))
            )
        )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--config-dir", type=Path, help="a city config (default: generate the reference city)"
    )
    parser.add_argument("--sqlite", action="store_true", help="SQLite instead of a private PostgreSQL")
    parser.add_argument("--restarts", type=int, default=3, help="restarts to time after the first start")
    parser.add_argument("--profile", action="store_true", help="profile one restart (cProfile)")
    args = parser.parse_args()

    with (
        tempfile.TemporaryDirectory(prefix="gridwatch-startup-") as tmp,
        city_dir(args.config_dir) as config_dir,
        RedisServer() as redis_server,
        database_urls(args.sqlite, Path(tmp)) as (proc_db, phase_db),
    ):
        work = Path(tmp)
        env = dict(
            os.environ,
            GRIDWATCH_REDIS_URL=redis_server.db_url(1),
            GRIDWATCH_DATABASE_URL=proc_db,
            GRIDWATCH_CONFIG_DIR=str(config_dir),
            GRIDWATCH_DATA_DIR=str(work / "data"),
            GRIDWATCH_JWT_SECRET=SECRET,
        )
        port = free_port()
        first = start_center(env, port, work / "first.log")
        restarts = [start_center(env, port, work / f"restart{i}.log") for i in range(args.restarts)]
        profile_rows: list[tuple[str, ...]] = []
        if args.profile:
            start_center(env, port, work / "profile.log", profile=work / "restart.prof")
            stats = pstats.Stats(str(work / "restart.prof")).sort_stats("cumulative")
            for (file, line, name), (_, _, _, cum, _) in list(stats.stats.items()):  # type: ignore[attr-defined]
                if file.startswith(REPO.as_posix()) and "site-packages" not in file and "/bench/" not in file:
                    profile_rows.append((f"{Path(file).relative_to(REPO)}:{line} {name}", f"{cum:.3f}"))
            profile_rows = sorted(profile_rows, key=lambda r: -float(r[1]))[:25]

        phase_data = work / "phases"
        runs = {
            "first start": asyncio.run(phases(config_dir, phase_data, phase_db, redis_server.db_url(2))),
            "restart": asyncio.run(phases(config_dir, phase_data, phase_db, redis_server.db_url(2))),
        }
        imports = import_seconds()
        floors = floor(config_dir, phase_data / "cache")
        shutil.rmtree(phase_data, ignore_errors=True)

    restart_wall = statistics.median(r["wall_s"] for r in restarts) if restarts else float("nan")
    restart_cpu = statistics.median(r["cpu_s"] for r in restarts) if restarts else float("nan")
    database = "SQLite" if args.sqlite else "PostgreSQL (fsync on)"
    print(f"gridwatch center start-up, reference city, {database}")
    print_table(
        "1. process start to /api/v1/health 200",
        [
            ("first start", f"{first['wall_s']:.2f}", f"{first['cpu_s']:.2f}"),
            *[
                (f"restart {i + 1}", f"{r['wall_s']:.2f}", f"{r['cpu_s']:.2f}")
                for i, r in enumerate(restarts)
            ],
        ],
        ("run", "wall s", "cpu s"),
    )
    names = list(runs["first start"])
    rows = [("imports (fresh interpreter)", f"{imports:.3f}", f"{imports:.3f}")]
    rows += [(n, f"{runs['first start'][n]:.3f}", f"{runs['restart'][n]:.3f}") for n in names]
    rows.append(
        (
            "sum",
            f"{imports + sum(runs['first start'].values()):.3f}",
            f"{imports + sum(runs['restart'].values()):.3f}",
        )
    )
    print_table("2. phases (seconds)", rows, ("phase", "first start", "restart"))
    print_table("3. floor (seconds)", [(k, f"{v:.3f}") for k, v in floors.items()], ("read", "seconds"))
    if profile_rows:
        print_table("profile of a restart (cProfile, cumulative s)", profile_rows, ("function", "cum s"))
    print(
        json.dumps(
            {
                "bench": "startup",
                "database": "sqlite" if args.sqlite else "postgresql",
                "first_start_s": round(first["wall_s"], 2),
                "first_start_cpu_s": round(first["cpu_s"], 2),
                "restart_s": round(restart_wall, 2),
                "restart_cpu_s": round(restart_cpu, 2),
                "imports_s": round(imports, 3),
                "phases_first_s": {k: round(v, 3) for k, v in runs["first start"].items()},
                "phases_restart_s": {k: round(v, 3) for k, v in runs["restart"].items()},
                "floor_s": {k: round(v, 3) for k, v in floors.items()},
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
