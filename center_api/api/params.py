"""Typed request parameters that several routers share (the live view's router too, which takes no
dependency of `center_api.api.deps`).

    CameraIdPath         a camera id in a path, as `contracts.Camera.id` allows it (422 otherwise)
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Path

CAMERA_ID_PATTERN = r"^[A-Za-z0-9_.:-]+$"  # `contracts.Camera.id`'s

# Refused as invalid (422) before a handler looks it up: a NUL byte would reach PostgreSQL, which refuses it
# in text (a 500).
CameraIdPath = Annotated[
    str, Path(min_length=1, max_length=128, pattern=CAMERA_ID_PATTERN, description="Camera id")
]
