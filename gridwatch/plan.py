"""`gridwatch plan`: size a deployment from the per-camera costs the benchmarks measure.

Defaults come from this project's benchmarks on a 2-core x86 machine (bench/ingest.py, bench/detect.py):
demuxing a 1080p25 4 Mbit/s stream costs ~0.35% of a core and decoding one sampled 1080p keyframe ~18 ms of
CPU, so a stream costs 0.35% + sample_fps x 1.8% (~1.25% at 0.5 samples/s); one YOLOv8n inference at 640
costs ~140 ms of CPU; with motion gating, still cameras send ~3% of their samples to the detector and active
ones all. This assumes keyframe sampling (the cameras' keyframe interval at most 1 / sample_fps): a camera
sampled faster than its keyframes is decoded whole, ~10-25% of a core. Measure your own cameras and model
and pass the figures in.
"""

from __future__ import annotations

import math

from pydantic import BaseModel, ConfigDict, Field


class PlanInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    cameras: int = Field(ge=1, description="Cameras to watch")
    sample_fps: float = Field(default=1.0, gt=0, le=30, description="Samples per second per camera")
    active_fraction: float = Field(default=0.2, ge=0, le=1, description="Cameras with activity at a time")
    still_inference_fraction: float = Field(default=0.03, ge=0, le=1, description="Still samples detected")
    demux_core_per_stream: float = Field(default=0.0035, ge=0, description="Cores to demux one stream")
    keyframe_decode_cpu_s: float = Field(default=0.018, gt=0, description="CPU seconds to decode one sample")
    inference_cpu_s: float = Field(default=0.14, gt=0, description="CPU seconds per inference")
    cores_per_host: int = Field(default=16, ge=1, description="Cores of one worker host")
    headroom: float = Field(default=0.3, ge=0, lt=1, description="Fraction of each host kept free")


class Plan(BaseModel):
    decode_cores: float
    detect_cores: float
    total_cores: float
    inferences_per_s: float
    hosts: int
    cameras_per_host: int
    processes_per_host: int


def read_cores_per_stream(spec: PlanInput) -> float:
    """Demux every packet, decode one keyframe per sample."""
    return spec.demux_core_per_stream + spec.sample_fps * spec.keyframe_decode_cpu_s


def plan(spec: PlanInput) -> Plan:
    decode = spec.cameras * read_cores_per_stream(spec)
    samples = spec.cameras * spec.sample_fps
    detected_fraction = spec.active_fraction + (1 - spec.active_fraction) * spec.still_inference_fraction
    inferences = samples * detected_fraction
    detect = inferences * spec.inference_cpu_s
    total = decode + detect
    usable = spec.cores_per_host * (1 - spec.headroom)
    hosts = max(1, math.ceil(total / usable))
    return Plan(
        decode_cores=round(decode, 1),
        detect_cores=round(detect, 1),
        total_cores=round(total, 1),
        inferences_per_s=round(inferences, 1),
        hosts=hosts,
        cameras_per_host=math.ceil(spec.cameras / hosts),
        processes_per_host=spec.cores_per_host,
    )


def describe(spec: PlanInput, result: Plan) -> str:
    decode_each = (
        f"{read_cores_per_stream(spec):.2%} each: demux {spec.demux_core_per_stream:.2%} + "
        f"{spec.sample_fps:g}/s x {spec.keyframe_decode_cpu_s * 1000:.0f} ms keyframe decode"
    )
    detect_each = f"{result.inferences_per_s:.0f} inferences/s at {spec.inference_cpu_s * 1000:.0f} ms CPU"
    return "\n".join(
        [
            f"{spec.cameras} cameras at {spec.sample_fps:g} samples/s, "
            f"{spec.active_fraction:.0%} active at a time",
            f"  reading streams   {result.decode_cores:>8.1f} cores  ({decode_each})",
            f"  detection         {result.detect_cores:>8.1f} cores  ({detect_each})",
            f"  total             {result.total_cores:>8.1f} cores",
            f"  => {result.hosts} worker host(s) of {spec.cores_per_host} cores "
            f"({spec.headroom:.0%} headroom), about {result.cameras_per_host} cameras each, "
            f"`gridwatch ingest --processes {result.processes_per_host}` on each",
        ]
    )
