"""Write ring packets to an MP4 by remuxing: the compressed packets are copied, never decoded or encoded.

This is the only module of GridWatch that writes with PyAV. The recipe (PyAV 18): a stream without a codec
context (`add_mux_stream`), the stream's time base, each packet's pts/dts shifted so the clip starts at 0,
and `movflags=+faststart` (FFmpeg moves `moov` before `mdat` at close: it re-reads the file, so the output is
a path, never a BytesIO).

Parameter sets: PyAV cannot set a mux stream's extradata, so FFmpeg's mp4 muxer builds `avcC`/`hvcC` from
the first packet's in-band SPS/PPS (and VPS for H.265), converting Annex B to length-prefixed NAL units
itself. RTSP cameras send Annex B; where the first keyframe carries no parameter sets (a camera that sends
them only in the SDP) they are prepended from the stream's extradata. A source that is already
length-prefixed (an MP4 file: extradata is an `avcC`/`hvcC` record) is turned into Annex B first.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import av

from ingest.ring import RingPacket, StreamParams

START_CODE = b"\x00\x00\x00\x01"
# NAL unit types of parameter sets: H.264 SPS/PPS; H.265 VPS/SPS/PPS
_PARAMETER_SETS = {"h264": frozenset((7, 8)), "hevc": frozenset((32, 33, 34))}


class RemuxError(Exception):
    """The packets could not be written as an MP4 (`str()` says why, for a `ClipFailure`)."""


@dataclass(frozen=True, slots=True)
class RemuxResult:
    nbytes: int  # size of the MP4
    duration_s: float  # presentation span of the clip
    packets: int  # packets written
    cpu_ms: float  # CPU of this thread spent remuxing
    start_pts: int  # the source pts that became 0 (the first keyframe's)


def remux(path: Path, params: StreamParams, packets: Sequence[RingPacket]) -> RemuxResult:
    """Writes `packets` (decode order, from a keyframe) to an MP4 at `path`, timestamps from 0."""
    started = time.thread_time()
    if not packets or not packets[0].key:
        raise RemuxError("a clip must start at a keyframe")
    if params.codec not in _PARAMETER_SETS:
        raise RemuxError(f"cannot remux {params.codec!r} (h264 and hevc only)")
    base = packets[0].pts
    # leading pictures of an open GOP (after the keyframe in decode order, before it in display order)
    # reference the previous GOP, which the clip does not have: drop them
    kept = _complete_tail([p for p in packets if p.pts >= base])
    datas = _annexb(params, kept)
    tb = params.time_base
    try:
        with av.open(str(path), "w", format="mp4", options={"movflags": "+faststart"}) as out:
            stream = out.add_mux_stream(params.codec, width=params.width or 0, height=params.height or 0)
            stream.time_base = tb
            for packet, data in zip(kept, datas, strict=True):
                out_packet = av.Packet(data)
                out_packet.pts = packet.pts - base
                out_packet.dts = packet.dts - base
                out_packet.duration = packet.duration
                out_packet.time_base = tb
                out_packet.is_keyframe = packet.key
                out_packet.stream = stream
                out.mux(out_packet)
    except (av.error.FFmpegError, ValueError, OSError) as exc:
        raise RemuxError(f"remux failed: {type(exc).__name__}: {exc}"[:300]) from exc
    end = max(p.pts + (p.duration or _frame_ticks(kept)) for p in kept)
    return RemuxResult(
        nbytes=path.stat().st_size,
        duration_s=float((end - base) * tb),
        packets=len(kept),
        cpu_ms=(time.thread_time() - started) * 1000,
        start_pts=base,
    )


def _complete_tail(packets: list[RingPacket]) -> list[RingPacket]:
    """Without the frames shown after a hole at the end.

    A clip ends at a packet in decode order; with B-frames some frames shown before its last packets come
    later in decode order and are missing (P8 taken, B7 not). Only a frame shown after the last packet's
    dts can be missing that way, so only there is a hole looked for; frames shown after it are dropped.
    """
    last_dts = packets[-1].dts
    shown = sorted(p.pts for p in packets)
    step = _frame_ticks(packets)
    for before, after in zip(shown, shown[1:], strict=False):
        if after > last_dts and after - before > 1.5 * step:
            return [p for p in packets if p.pts <= before]
    return packets


def _frame_ticks(packets: Sequence[RingPacket]) -> int:
    """A frame's duration where packets carry none: the typical gap between presentation times."""
    times = sorted({p.pts for p in packets})
    gaps = sorted(b - a for a, b in zip(times, times[1:], strict=False))
    return gaps[len(gaps) // 2] if gaps else 1


def _annexb(params: StreamParams, packets: Sequence[RingPacket]) -> list[bytes]:
    """Each packet's data in Annex B, the first keyframe carrying the parameter sets."""
    extradata = params.extradata or b""
    if extradata[:1] == b"\x01":  # avcC / hvcC: length-prefixed packets (an MP4 or MKV source)
        length_size, parameter_sets = _parse_config_record(params.codec, extradata)
        datas = [_length_prefixed_to_annexb(bytes(p.data), length_size) for p in packets]
        header = b"".join(START_CODE + nal for nal in parameter_sets)
    else:
        datas = [bytes(p.data) for p in packets]  # the ring holds views of the demuxer's buffers
        header = extradata
    if header and not _has_parameter_sets(params.codec, datas[0]):
        datas[0] = header + datas[0]
    return datas


def _nal_types(codec: str, data: bytes) -> set[int]:
    types: set[int] = set()
    i = data.find(b"\x00\x00\x01")
    while i >= 0 and i + 3 < len(data):
        head = data[i + 3]
        types.add(head & 0x1F if codec == "h264" else (head >> 1) & 0x3F)
        i = data.find(b"\x00\x00\x01", i + 3)
    return types


def _has_parameter_sets(codec: str, data: bytes) -> bool:
    return bool(_nal_types(codec, data) & _PARAMETER_SETS[codec])


def _length_prefixed_to_annexb(data: bytes, length_size: int) -> bytes:
    parts: list[bytes] = []
    i, n = 0, len(data)
    while i + length_size <= n:
        size = int.from_bytes(data[i : i + length_size], "big")
        i += length_size
        if size <= 0 or i + size > n:
            raise RemuxError("a length-prefixed packet is truncated")
        parts.append(START_CODE)
        parts.append(data[i : i + size])
        i += size
    return b"".join(parts)


def _parse_config_record(codec: str, record: bytes) -> tuple[int, list[bytes]]:
    """(NAL length size, parameter set NAL units) of an `avcC` (H.264) or `hvcC` (H.265) record."""
    try:
        if codec == "h264":
            length_size = (record[4] & 0x03) + 1
            nals: list[bytes] = []
            i = 5
            for count_mask in (0x1F, 0xFF):  # SPS count (low 5 bits), then PPS count
                count = record[i] & count_mask
                i += 1
                for _ in range(count):
                    size = int.from_bytes(record[i : i + 2], "big")
                    nals.append(record[i + 2 : i + 2 + size])
                    i += 2 + size
            return length_size, nals
        length_size = (record[21] & 0x03) + 1
        nals = []
        i = 23
        for _ in range(record[22]):  # arrays of one NAL type each
            count = int.from_bytes(record[i + 1 : i + 3], "big")
            i += 3
            for _ in range(count):
                size = int.from_bytes(record[i : i + 2], "big")
                nals.append(record[i + 2 : i + 2 + size])
                i += 2 + size
        return length_size, nals
    except IndexError as exc:
        raise RemuxError(f"unreadable {codec} configuration record") from exc
