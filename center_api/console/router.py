"""Serves the console: `GET /` is the page, `GET /console/{name}` its scripts, styles and icons.

Only the files that ship in `static/` are served (a fixed table built at start, no path joining with
user input). The page itself holds no data: it signs in with a token and talks to the `/api/v1` routes.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Response
from fastapi.responses import HTMLResponse

from center_api.errors import NotFound

STATIC_DIR = Path(__file__).parent / "static"
MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
}
# The page may load only what the center serves: no CDN, no third-party tiles (works offline by design).
CSP = (
    "default-src 'self'; img-src 'self' blob: data:; media-src 'self' blob:; connect-src 'self' ws: wss:; "
    "style-src 'self'; script-src 'self'; frame-ancestors 'none'; base-uri 'none'"
)


def _static_files(root: Path) -> dict[str, tuple[bytes, str]]:
    files: dict[str, tuple[bytes, str]] = {}
    for path in sorted(root.iterdir()):
        media_type = MEDIA_TYPES.get(path.suffix)
        if path.is_file() and media_type:
            files[path.name] = (path.read_bytes(), media_type)
    return files


def console_router(static_dir: Path = STATIC_DIR) -> APIRouter:
    """The console's routes; the files are read once, when the router is built."""
    files = _static_files(static_dir)
    if "index.html" not in files:
        raise FileNotFoundError(f"console page missing: {static_dir / 'index.html'}")
    router = APIRouter(tags=["console"])
    headers = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff"}
    headers["Cache-Control"] = "no-cache"

    @router.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def console_page() -> Response:
        body, media_type = files["index.html"]
        return Response(body, media_type=media_type, headers=headers)

    @router.get("/console/{name}", include_in_schema=False)
    async def console_file(name: str) -> Response:
        found = files.get(name)
        if found is None:
            raise NotFound("no such console file", code="console_file_not_found")
        return Response(found[0], media_type=found[1], headers=headers)

    return router
