from __future__ import annotations

from pathlib import Path

import pytest

from gridwatch.demo.clips import Scene, make_clip
from tests.support.paths import model_path


@pytest.fixture(scope="session")
def fp32_model() -> Path:
    return model_path("yolov8n_fp32.onnx")


@pytest.fixture(scope="session")
def clip_cache(tmp_path_factory: pytest.TempPathFactory):
    """make(name, scene) -> path; each clip is rendered once per session."""
    root = tmp_path_factory.mktemp("clips")
    made: dict[str, Path] = {}

    def make(name: str, scene: Scene) -> Path:
        if name not in made:
            made[name] = make_clip(root / f"{name}.mp4", scene)
        return made[name]

    return make
