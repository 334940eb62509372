"""The operator console: a static web page (HTML, JS, CSS; no CDN, no build step) served by the center API."""

from __future__ import annotations

from center_api.console.router import STATIC_DIR, console_router

__all__ = ["STATIC_DIR", "console_router"]
