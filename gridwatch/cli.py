"""The `gridwatch` command: the composition root that wires ingest to detection and starts processes.

gridwatch up [--demo]            the whole stack on one machine (embedded Valkey, SQLite)
gridwatch center                 the center API (alert consumer, incidents, feeds)
gridwatch ingest                 ingest workers with detection (one process per core)
gridwatch token issue            a JWT for an operator, station admin, city command, integrator or worker
gridwatch cameras health|probe   stream health of every camera; probe one stream
gridwatch grid generate|validate a reference-scale synthetic city; check a grid
"""

from __future__ import annotations

import logging
import socket
import sys
from pathlib import Path
from typing import Annotated

import typer

from contracts import Camera, CameraConfigError
from gridwatch.settings import GridwatchSettings, default_consumer_name, default_worker_id

# A traceback never prints local variables: the settings hold the database URL with its password.
app = typer.Typer(
    help="GridWatch: city-scale video-surveillance monitoring backend.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
token_app = typer.Typer(help="Access tokens.", no_args_is_help=True)
cameras_app = typer.Typer(help="Cameras: health and stream probes.", no_args_is_help=True)
grid_app = typer.Typer(help="The city grid.", no_args_is_help=True)
app.add_typer(token_app, name="token")
app.add_typer(cameras_app, name="cameras")
app.add_typer(grid_app, name="grid")

log = logging.getLogger("gridwatch")


def _setup_logging(verbose: bool = False) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def _fail(message: str) -> typer.Exit:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    return typer.Exit(code=2)


@app.command()
def up(
    demo: Annotated[
        bool, typer.Option(help="Serve a demo camera (a generated clip of real people) over RTSP")
    ] = False,
) -> None:
    """Run the whole stack here: Valkey (embedded unless GRIDWATCH_REDIS_URL), center API, one worker."""
    _setup_logging()
    from gridwatch.demo.stack import DemoError, run_stack

    try:
        code = run_stack(GridwatchSettings(), demo=demo)
    except (DemoError, FileNotFoundError) as exc:
        raise _fail(str(exc)) from None
    raise typer.Exit(code)


def _center_settings(settings: GridwatchSettings):  # -> CenterSettings
    from pydantic import SecretStr

    from center_api.live.settings import IceServer, LiveSettings
    from center_api.settings import CenterSettings

    urls = settings.ice_server_urls()
    ice = (
        [IceServer(urls=urls, username=settings.ice_username, credential=settings.ice_credential)]
        if urls
        else []
    )
    return CenterSettings(
        redis_url=settings.resolved_redis_url(),
        database_url=settings.resolved_database_url(),
        config_dir=settings.config_dir,
        data_dir=settings.data_dir,
        jwt_secret=SecretStr(settings.resolved_jwt_secret()),
        consumer_name=settings.consumer_name or default_consumer_name(),
        claim_idle_ms=settings.claim_idle_ms,
        reap_idle_ms=settings.reap_idle_ms,
        stream_keep_acked_s=settings.stream_keep_acked_s,
        snapshot_retention_days=settings.snapshot_retention_days,
        # one setting for both sides: an operator may save at most what the workers' rings keep
        clip_preroll_s=settings.clip_preroll_s,
        clip_station_quota_bytes=int(settings.clip_station_quota_gb * 2**30),
        clip_retention_days=settings.clip_retention_days,
        clip_pending_timeout_s=settings.clip_pending_timeout_s,
        metrics_token=settings.metrics_token,
        feed_clients_per_subject=settings.feed_clients_per_subject,
        token_failures_max=settings.token_failures_max,
        token_failure_window_s=settings.token_failure_window_s,
        token_block_s=settings.token_block_s,
        live=LiveSettings(ice_servers=ice),
    )


def _load_cameras(path: Path, cache_dir: Path | None = None) -> list[Camera]:
    """Parse a camera file; errors name the file and the camera (`CameraConfigError`), never a traceback.
    With `cache_dir`, an unchanged file is read from the parsed copy kept there (`read_yaml`)."""
    import yaml

    from center_api.grid.yamlfile import read_yaml
    from contracts import parse_cameras

    try:
        data = read_yaml(path, cache_dir)
    except yaml.YAMLError as exc:
        raise CameraConfigError(f"{path}: not valid YAML: {exc}") from None
    return parse_cameras(data, str(path))


def _check_cameras_file(path: Path, cache_dir: Path) -> None:
    """Refuse a bad camera file up front, with the file and camera named (not a traceback at start-up).
    The parsed copy it leaves in `cache_dir` spares the registry's import a second parse."""
    if path.exists():
        _load_cameras(path, cache_dir)


@app.command()
def center(
    host: Annotated[str | None, typer.Option(help="Bind address (default GRIDWATCH_API_HOST)")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default GRIDWATCH_API_PORT)")] = None,
) -> None:
    """Run the center API: alert consumer, grid routing, incidents, feeds."""
    _setup_logging()
    import uvicorn

    from center_api.app import create_app
    from center_api.grid import GridConfigError

    settings = GridwatchSettings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    try:
        _check_cameras_file(settings.config_dir / "cameras.yaml", settings.data_dir / "cache")
        application = create_app(_center_settings(settings))
    except (GridConfigError, CameraConfigError) as exc:
        raise _fail(str(exc)) from None
    uvicorn.run(application, host=host or settings.api_host, port=port or settings.api_port, log_level="info")


@app.command()
def ingest(
    cameras: Annotated[
        Path | None, typer.Option(help="Camera YAML file (standalone); default: the registry in Redis")
    ] = None,
    processes: Annotated[
        int, typer.Option(min=1, help="Worker processes (one per core is the sweet spot)")
    ] = 1,
    worker_id: Annotated[
        str | None, typer.Option(help="Worker id, stable across restarts (default: the host name)")
    ] = None,
    sharded: Annotated[bool, typer.Option(help="Share cameras with other workers through Redis")] = False,
    metrics_port: Annotated[int | None, typer.Option(help="Serve Prometheus metrics on this port")] = None,
) -> None:
    """Run ingest workers: read the cameras' streams, detect, apply rules, push alerts to Redis."""
    _setup_logging()
    settings = GridwatchSettings()
    if processes > 1:
        raise typer.Exit(_run_worker_processes(cameras, processes, worker_id, metrics_port))
    _run_worker(settings, cameras, worker_id or default_worker_id(), sharded, metrics_port)


def _run_worker_processes(
    cameras: Path | None, processes: int, worker_id: str | None, metrics_port: int | None
) -> int:
    from gridwatch.supervisor import Supervisor

    supervisor = Supervisor()
    supervisor.install_signal_handlers()
    base = worker_id or socket.gethostname()  # stable per index: a restart takes back its cameras
    try:
        for index in range(processes):
            args = [
                sys.executable,
                "-m",
                "gridwatch",
                "ingest",
                "--sharded",
                "--worker-id",
                f"{base}-{index}",
            ]
            if cameras is not None:
                args += ["--cameras", str(cameras)]
            if metrics_port is not None:
                args += ["--metrics-port", str(metrics_port + index)]
            supervisor.spawn(f"ingest-{index}", args)
        return supervisor.wait()
    finally:
        supervisor.stop()


def _run_worker(
    settings: GridwatchSettings, cameras: Path | None, worker_id: str, sharded: bool, metrics_port: int | None
) -> None:
    import redis
    from pydantic import ValidationError

    from detection.config import DetectionConfig
    from detection.journal import JournalInUse
    from detection.metrics import DetectionCollector
    from detection.pipeline import DetectionPipeline
    from detection.publisher import RedisAlertPublisher
    from gridwatch.worker_clips import clip_side
    from ingest.cameras import RedisCameraSource, YamlCameraSource
    from ingest.config import IngestConfig
    from ingest.run import serve
    from ingest.spool import SpoolInUse
    from ingest.worker import IngestWorker

    try:
        clip_config = settings.clip_config()
        model = settings.resolved_model()
    except FileNotFoundError as exc:
        raise _fail(str(exc)) from None
    except ValidationError as exc:
        raise _fail(f"clip settings (GRIDWATCH_CLIP_*, GRIDWATCH_RING_*): {exc.errors()[0]['msg']}") from None
    redis_url = settings.resolved_redis_url()
    client = redis.Redis.from_url(redis_url, socket_timeout=5, socket_connect_timeout=5)
    try:
        source = YamlCameraSource(cameras) if cameras is not None else RedisCameraSource(client)
        source.load()
    except (CameraConfigError, OSError) as exc:
        raise _fail(str(exc)) from None
    try:
        publisher = RedisAlertPublisher(redis_url, settings.data_dir / "journal" / worker_id)
    except JournalInUse:
        raise _fail(
            f"worker id {worker_id!r} is in use by another worker on this host (its alert journal is open); "
            "give each worker its own --worker-id"
        ) from None
    detection_config = DetectionConfig(
        model=model, imgsz=settings.imgsz, device=settings.device, worker_id=worker_id
    )
    try:
        with clip_side(settings, clip_config, worker_id, publisher, client) as clips:
            alerts, recorder, collectors = clips
            pipeline = DetectionPipeline(detection_config, alerts)
            config = IngestConfig(
                worker_id=worker_id, sharded=sharded, metrics_port=metrics_port, clips=clip_config
            )
            worker = IngestWorker(config, source, pipeline, alerts, client, clips=recorder)
            pipeline.start()
            try:
                serve(worker, collectors=[DetectionCollector(pipeline, publisher), *collectors])
            finally:
                pipeline.stop()  # before the recorder closes: no alert reaches a closed recorder
    except SpoolInUse:
        raise _fail(
            f"worker id {worker_id!r} is in use by another worker on this host (its clip spool is open)"
        ) from None
    finally:
        publisher.close()
        client.close()


@token_app.command("issue")
def token_issue(
    role: Annotated[
        str, typer.Option(help="operator | station_admin | city_command | integrator | worker")
    ] = "operator",
    station: Annotated[str | None, typer.Option(help="Station id the token is scoped to")] = None,
    subject: Annotated[
        str, typer.Option("--subject", "--sub", help="User name recorded in the audit trail")
    ] = "operator",
    ttl: Annotated[int, typer.Option(min=60, help="Lifetime in seconds")] = 86400,
) -> None:
    """Print a signed JWT (secret from GRIDWATCH_JWT_SECRET, or the one kept in the data directory)."""
    from center_api.auth import Role, issue_token

    if role not in {r.value for r in Role}:
        raise _fail(f"unknown role {role!r}; one of: {', '.join(r.value for r in Role)}")
    settings = GridwatchSettings()
    if role in ("operator", "station_admin") and not station:
        raise _fail(f"the {role} role is scoped to a station: add --station")
    typer.echo(
        issue_token(settings.resolved_jwt_secret(), subject=subject, role=role, station_id=station, ttl_s=ttl)
    )


@cameras_app.command("health")
def cameras_health() -> None:
    """Print every camera's stream health as the workers last reported it."""
    import redis

    from ingest.health import format_health_table, read_health

    client = redis.Redis.from_url(GridwatchSettings().resolved_redis_url(), socket_timeout=5)
    try:
        typer.echo(format_health_table(read_health(client)))
    except redis.RedisError as exc:
        raise _fail(f"cannot read health from Redis: {exc}") from None
    finally:
        client.close()


@cameras_app.command("probe")
def cameras_probe(
    url: Annotated[str, typer.Argument(help="Stream URL (rtsp://, http://, file)")],
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the stream")] = 10.0,
) -> None:
    """Open a stream and report codec, resolution, fps, keyframe interval and bitrate."""
    from ingest.probe import ProbeError, probe

    try:
        info = probe(url, timeout_s=timeout)
    except ProbeError as exc:  # its message starts with the redacted URL
        raise _fail(str(exc)) from None
    typer.echo(info.describe())


@grid_app.command("generate")
def grid_generate(
    out: Annotated[Path, typer.Option(help="Output directory")] = Path("configs/xining"),
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same city)")] = 630100,
) -> None:
    """Generate a reference-scale city (143 communities, 1,037 cells, 40 stations, 8,502 cameras)."""
    _setup_logging()
    from center_api.grid.generate import generate_city

    summary = generate_city(out, seed=seed)
    typer.echo(f"wrote {out}: {summary}")


@grid_app.command("validate")
def grid_validate(
    config_dir: Annotated[Path, typer.Argument(help="Directory with grid.geojson and stations.yaml")] = Path(
        "configs/demo"
    ),
) -> None:
    """Validate a grid and print a report that names every bad feature."""
    from center_api.grid import validate_city

    report = validate_city(config_dir)
    typer.echo(report.as_text())
    if not report.ok:
        raise typer.Exit(code=1)


@app.command()
def simulate(
    rate: Annotated[float, typer.Option(min=0.1, help="Alerts per second")] = 5.0,
    count: Annotated[int, typer.Option(min=1, help="How many alerts to send")] = 100,
    seed: Annotated[int | None, typer.Option(help="Random seed (same seed, same alerts)")] = None,
    snapshots: Annotated[bool, typer.Option(help="Attach a drawn JPEG snapshot to each alert")] = True,
) -> None:
    """Push synthetic alerts from the configured city's cameras onto gw:alerts, as workers would."""
    import redis

    from gridwatch.simulate import simulate as run_simulation

    settings = GridwatchSettings()
    path = settings.config_dir / "cameras.yaml"
    try:
        cameras = _load_cameras(path, settings.data_dir / "cache")
    except (CameraConfigError, OSError) as exc:
        raise _fail(str(exc)) from None
    client = redis.Redis.from_url(settings.resolved_redis_url(), socket_timeout=5, socket_connect_timeout=5)

    def progress(sent: int, elapsed: float) -> None:
        if sent == count or sent % max(1, int(rate * 5)) == 0:
            typer.echo(f"{sent}/{count} alerts sent ({sent / max(elapsed, 1e-6):.1f}/s)")

    try:
        run_simulation(
            client, cameras, rate=rate, count=count, seed=seed, snapshots=snapshots, progress=progress
        )
    except redis.RedisError as exc:
        raise _fail(f"cannot write to Redis at {settings.resolved_redis_url()}: {exc}") from None
    finally:
        client.close()


@app.command()
def plan(
    cameras: Annotated[int, typer.Option(min=1, help="Cameras to watch")] = 8502,
    sample_fps: Annotated[float, typer.Option(help="Samples per second per camera")] = 1.0,
    active_fraction: Annotated[float, typer.Option(help="Fraction of cameras with activity at a time")] = 0.2,
    inference_ms: Annotated[
        float, typer.Option(help="CPU milliseconds per inference (bench/detect.py)")
    ] = 140.0,
    decode_ms: Annotated[
        float, typer.Option(help="CPU milliseconds to decode one sampled keyframe (1080p ~18, 720p ~10)")
    ] = 18.0,
    cores_per_host: Annotated[int, typer.Option(min=1, help="Cores of one worker host")] = 16,
) -> None:
    """Size the worker fleet: cores for reading streams and for detection, hosts and processes."""
    from pydantic import ValidationError

    from gridwatch.plan import PlanInput, describe
    from gridwatch.plan import plan as make_plan

    try:
        spec = PlanInput(
            cameras=cameras,
            sample_fps=sample_fps,
            active_fraction=active_fraction,
            inference_cpu_s=inference_ms / 1000,
            keyframe_decode_cpu_s=decode_ms / 1000,
            cores_per_host=cores_per_host,
        )
    except ValidationError as exc:
        raise _fail(str(exc.errors()[0]["loc"][0]) + ": " + exc.errors()[0]["msg"]) from None
    typer.echo(describe(spec, make_plan(spec)))


def main() -> None:
    app()
