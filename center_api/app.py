"""The app factory. `create_app(settings)` builds the FastAPI app of the center.

It loads and validates the city at once (a bad grid or stations file fails here), keeps the settings, the
metrics and the city on `app.state`, installs the one error handler (`center_api.errors`) and includes
the routers: the REST API, the feeds, the live view and the console page. Its lifespan
(`center_api.lifespan`) builds the `CenterServices` the routes use and runs the background tasks.
"""

from __future__ import annotations

from fastapi import FastAPI

from center_api.api import cameras, clip_requests, clips, feed, grid, incidents, stats, system
from center_api.cameras.bulk import ImportTooLarge
from center_api.clips.intake import ClipTooLarge
from center_api.console import console_router
from center_api.errors import install_error_handlers
from center_api.grid import load_city
from center_api.lifespan import center_lifespan
from center_api.limits import BodyLimit, RequestBodyLimit
from center_api.live.access import center_live_router
from center_api.metrics import CenterMetrics
from center_api.settings import CenterSettings
from center_api.throttle import TokenFailureThrottle

API_DESCRIPTION = """GridWatch monitoring center: grid-routed incidents, workflow, live feeds, statistics
and the camera registry. Every endpoint but `/api/v1/health` needs a bearer token.

Errors answer `{"detail": "...", "code": "..."}`; `code` is stable and machine-readable. Request validation
errors answer FastAPI's 422 `{"detail": [...]}`. A request body over its limit (1 MiB by default; the camera
import and the clip upload have their own) is refused with 413 before it is read."""


def create_app(settings: CenterSettings) -> FastAPI:
    """Build the app; raises `GridConfigError` at once for an invalid grid or stations file."""
    app = FastAPI(
        title="GridWatch center", version="1", description=API_DESCRIPTION, lifespan=center_lifespan
    )
    app.state.settings = settings  # auth reads the token secret here, also before start-up
    app.state.metrics = CenterMetrics()
    app.state.city = load_city(settings.config_dir)  # GridConfigError names the file and feature
    app.state.services = None  # set by the lifespan while the center runs
    # failed token checks per client address: auth counts them also before start-up
    app.state.token_throttle = TokenFailureThrottle(
        settings.token_failures_max,
        settings.token_failure_window_s,
        settings.token_block_s,
        settings.token_failure_addresses,
    )
    app.state.ready = False
    install_error_handlers(app)
    app.add_middleware(
        RequestBodyLimit,
        default=BodyLimit(settings.max_body_bytes),
        routes={
            cameras.IMPORT_PATH: BodyLimit(settings.import_max_bytes, "import_max_bytes", ImportTooLarge.code)
        },
        # The upload streams its body to disk and bounds it itself: here only a declared length is checked.
        prefixes={
            clips.CLIPS_PREFIX: BodyLimit(
                settings.clip_max_bytes, "clip_max_bytes", ClipTooLarge.code, streamed=True
            )
        },
    )
    app.include_router(system.router)
    app.include_router(system.metrics_router)
    app.include_router(incidents.router)
    app.include_router(feed.router)
    app.include_router(grid.router)
    app.include_router(stats.router)
    app.include_router(cameras.router)
    app.include_router(clips.router)
    app.include_router(clip_requests.router)
    app.include_router(center_live_router(settings.live))
    app.include_router(console_router())
    return app
