"""Where the tests find the shared model (beside the repository, in ../shared/models)."""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SHARED_MODELS = REPO.parent / "shared" / "models"


def model_path(name: str = "yolov8n_int8.onnx") -> Path:
    """The model the tests use; `GRIDWATCH_TEST_MODEL` overrides. Fails loudly when it is missing."""
    path = Path(os.environ.get("GRIDWATCH_TEST_MODEL", SHARED_MODELS / name))
    if not path.is_file():
        raise FileNotFoundError(f"test model not found at {path}; put the shared models in ../shared/models")
    return path
