"""The detector seam: load a model in any format Ultralytics reads and detect on a batch.

The one module that runs an Ultralytics model; `tracking` uses Ultralytics' ByteTrack (and the demo's clip
maker reads a picture shipped with the package).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, cast

import numpy as np

from detection.types import Detections

if TYPE_CHECKING:
    import torch
    from ultralytics.engine.results import Results

log = logging.getLogger(__name__)


class Detector(Protocol):
    """Takes a batch of BGR images, returns one `Detections` per image, in order."""

    name: str
    names: tuple[str, ...]

    def detect(self, images: Sequence[np.ndarray[Any, Any]]) -> list[Detections]: ...


class UltralyticsDetector:
    """YOLO through Ultralytics (`.pt`, `.onnx`, OpenVINO directory, TensorRT `.engine`, or a model `.yaml`).

    One `detect` call per batch: Ultralytics runs a batch-capable model on the whole batch at once and a
    model exported with a fixed batch of one image by image inside the same call.
    """

    def __init__(
        self,
        model: Path | str,
        *,
        imgsz: int = 640,
        device: str = "cpu",
        conf: float = 0.25,
        classes: Sequence[str] | None = None,
    ) -> None:
        from ultralytics import YOLO  # heavy import, kept at the edge

        self.name = Path(str(model)).name
        self._model = YOLO(str(model), task="detect")
        self.imgsz, self.device, self.conf = imgsz, device, conf
        raw = self._model.names
        self.names: tuple[str, ...] = (
            tuple(raw[i] for i in sorted(raw)) if isinstance(raw, dict) else tuple(raw)
        )
        self._class_ids: list[int] | None = None
        if classes is not None:
            unknown = set(classes) - set(self.names)
            if unknown:
                raise ValueError(f"model {self.name} has no classes {sorted(unknown)}")
            self._class_ids = [self.names.index(c) for c in classes]
        log.info("detector %s loaded on %s (imgsz %d, %d classes)", self.name, device, imgsz, len(self.names))

    def detect(self, images: Sequence[np.ndarray[Any, Any]]) -> list[Detections]:
        if not images:
            return []
        # Not streaming and not embedding, `predict` returns one `Results` per image (typed as a union with
        # generators and raw tensors for those other modes).
        results = cast(
            "list[Results]",
            self._model.predict(
                list(images),
                imgsz=self.imgsz,
                device=self.device,
                conf=self.conf,
                classes=self._class_ids,
                verbose=False,
            ),
        )
        out: list[Detections] = []
        for result in results:
            boxes = result.boxes
            assert boxes is not None  # a detect model's result always has boxes (maybe none of them)
            h, w = result.orig_shape
            xyxy = _numpy(boxes.xyxy).astype(np.float32).reshape(-1, 4)
            xyxy /= np.array([w, h, w, h], np.float32)
            out.append(
                Detections(
                    xyxy.clip(0, 1),
                    _numpy(boxes.conf).astype(np.float32),
                    _numpy(boxes.cls).astype(np.int64),
                    self.names,
                )
            )
        return out


def _numpy(values: torch.Tensor | np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """A box field as a NumPy array (Ultralytics holds predictions as tensors, possibly on the GPU)."""
    return values if isinstance(values, np.ndarray) else values.cpu().numpy()
