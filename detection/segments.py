"""The alert journal's files: segments of checksummed, length-prefixed records, and a head pointer.

A segment is an 8-byte magic, then records, little-endian:

    [crc32 u32][seq u64][alert length u32][snapshot length u32][alert JSON][snapshot JPEG]

The CRC covers everything after itself, so a record a crash cut short, or a page that never reached the disk,
is told apart from a whole one. `scan` reads a segment back and cuts it at the first record that does not hold
(nothing after a torn record can be trusted to be in order); `rewrite` replaces a segment with some of its
records, atomically (a new file renamed over the old). The head file is one seq and its CRC.
"""

from __future__ import annotations

import fcntl
import logging
import os
import struct
import zlib
from pathlib import Path

log = logging.getLogger(__name__)

MAGIC = b"GWJLOG1\n"
_CRC = struct.Struct("<I")
_FIELDS = struct.Struct("<QII")  # seq, alert length, snapshot length
HEADER_BYTES = _CRC.size + _FIELDS.size
MAX_FIELD = 64 * 2**20  # a longer alert or snapshot is not ours: garbage where a length should be
_HEAD = struct.Struct("<QI")
_OPEN = os.O_RDWR | os.O_APPEND


class Segment:
    """One open segment file; `size` is where the next record goes, `dirty` that it awaits an fsync."""

    __slots__ = ("path", "fd", "size", "last_seq", "dirty")

    def __init__(self, path: Path, fd: int, size: int) -> None:
        self.path, self.fd, self.size = path, fd, size
        self.last_seq = -1  # the last record's seq (-1: none)
        self.dirty = False

    @classmethod
    def create(cls, path: Path) -> Segment:
        seg = cls(path, os.open(path, _OPEN | os.O_CREAT | os.O_TRUNC, 0o644), 0)
        seg.dirty = True
        seg.size = write_all(seg.fd, [MAGIC])
        return seg

    @property
    def number(self) -> int:
        return int(self.path.stem)


def encode(seq: int, alert_json: bytes, snapshot: bytes) -> list[bytes]:
    """The record as the parts `writev` takes (no copy of the payloads)."""
    fields = _FIELDS.pack(seq, len(alert_json), len(snapshot))
    crc = zlib.crc32(snapshot, zlib.crc32(alert_json, zlib.crc32(fields)))
    return [_CRC.pack(crc) + fields, alert_json, snapshot]


def write_all(fd: int, parts: list[bytes]) -> int:
    """Write `parts` in order with one `writev` (short writes are rare on files, and finished here)."""
    total = sum(map(len, parts))
    written = os.writev(fd, parts)
    if written < total:
        rest = memoryview(b"".join(parts))
        while written < total:
            written += os.write(fd, rest[written:])
    return total


def scan(path: Path, after_seq: int) -> tuple[Segment | None, list[tuple[int, int, int, int]]]:
    """Open a segment and read its records, (seq, offset, alert length, snapshot length) in order.

    Stops at the first record whose lengths or CRC do not hold, or whose seq is not above the one before (the
    first one's must be above `after_seq`, the previous segment's last), and truncates the file there. A file
    without the magic is no segment: removed when no longer than the magic (a creation a crash interrupted),
    else renamed `*.corrupt` for a person to look at; either way the answer is (None, [])."""
    fd = os.open(path, _OPEN)
    size = os.fstat(fd).st_size
    records: list[tuple[int, int, int, int]] = []
    last = after_seq
    with os.fdopen(os.dup(fd), "rb", buffering=2**20) as fh:
        if fh.read(len(MAGIC)) != MAGIC:
            os.close(fd)
            if size > len(MAGIC):
                log.error("journal segment %s has no journal magic: renamed *.corrupt", path)
                path.rename(path.with_suffix(".corrupt"))
            else:
                path.unlink()
            return None, []
        seg = Segment(path, fd, len(MAGIC))
        while seg.size + HEADER_BYTES <= size:
            header = fh.read(HEADER_BYTES)
            (crc,) = _CRC.unpack_from(header)
            seq, alert_len, snap_len = _FIELDS.unpack_from(header, _CRC.size)
            length = HEADER_BYTES + alert_len + snap_len
            if not 0 < alert_len <= MAX_FIELD or snap_len > MAX_FIELD or seq <= last:
                break
            if seg.size + length > size:
                break
            body = fh.read(alert_len + snap_len)
            if zlib.crc32(body, zlib.crc32(header[_CRC.size :])) != crc:
                break
            records.append((seq, seg.size, alert_len, snap_len))
            seg.last_seq = last = seq
            seg.size += length
    if seg.size < size:
        log.warning("journal segment %s: cut a torn tail of %d bytes", path, size - seg.size)
        os.ftruncate(fd, seg.size)
        seg.dirty = True
    return seg, records


def read(fd: int, offset: int, alert_len: int, snap_len: int) -> tuple[bytes, bytes]:
    """The alert and the snapshot (b"": none) of the record at `offset`; OSError when the file ends first."""
    want = HEADER_BYTES + alert_len + snap_len
    data = os.pread(fd, want, offset)
    if len(data) != want:
        raise OSError(f"journal record at {offset} is cut short ({len(data)} of {want} bytes)")
    return data[HEADER_BYTES : HEADER_BYTES + alert_len], data[HEADER_BYTES + alert_len :]


def open_all(directory: Path) -> list[tuple[Segment, list[tuple[int, int, int, int]]]]:
    """Every segment of `directory` in order, each with its records (`scan`); removes the `*.tmp` files a
    rewrite left when it was interrupted."""
    for tmp in directory.glob("*.tmp"):
        tmp.unlink(missing_ok=True)
    opened, last = [], 0
    for path in sorted((p for p in directory.glob("*.seg") if p.stem.isdigit()), key=lambda p: int(p.stem)):
        seg, records = scan(path, last)
        if seg is not None:
            opened.append((seg, records))
            last = max(last, seg.last_seq)
    return opened


def file_pairs(directory: Path) -> list[tuple[bytes, bytes]]:
    """The entries of the file-per-alert journal this log replaced (`<seq>.json` + `<seq>.jpg`), oldest first:
    (alert JSON, snapshot or b"")."""
    entries = []
    for _, path in sorted((int(p.stem), p) for p in directory.glob("*.json") if p.stem.isdigit()):
        jpg = path.with_suffix(".jpg")
        alert_json = path.read_bytes()
        if alert_json:
            entries.append((alert_json, jpg.read_bytes() if jpg.exists() else b""))
    return entries


def remove_file_pairs(directory: Path) -> None:
    """Delete those files (and pictures whose alert file is gone: that format wrote the picture first)."""
    for path in [*directory.glob("*.json"), *directory.glob("*.jpg")]:
        if path.stem.isdigit():
            path.unlink()


def rewrite(seg: Segment, records: list[tuple[int, int, int, int]]) -> list[int]:
    """Replace `seg` by a file of `records` (seq, offset, alert length, snapshot length to keep: 0 or all of
    it), fsynced before the rename; their new offsets. The directory entry is the caller's to fsync."""
    tmp = seg.path.with_name(seg.path.name + ".tmp")
    fd = os.open(tmp, _OPEN | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        offsets, size = [], write_all(fd, [MAGIC])
        for seq, offset, alert_len, snap_len in records:
            start = offset + HEADER_BYTES
            alert = os.pread(seg.fd, alert_len, start)
            snap = os.pread(seg.fd, snap_len, start + alert_len) if snap_len else b""
            offsets.append(size)
            size += write_all(fd, encode(seq, alert, snap))
        os.fsync(fd)
        os.replace(tmp, seg.path)
    except BaseException:
        os.close(fd)
        tmp.unlink(missing_ok=True)
        raise
    os.close(seg.fd)
    seg.fd, seg.size, seg.dirty = fd, size, False
    return offsets


def try_lock(path: Path) -> int | None:
    """A descriptor holding an exclusive flock on `path` (released when it is closed, or the process dies);
    None when someone else holds it."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def read_head(fd: int) -> int:
    """The seq the head file holds; 0 (everything) when it is empty or torn."""
    data = os.pread(fd, _HEAD.size, 0)
    if len(data) != _HEAD.size:
        return 0
    seq, crc = _HEAD.unpack(data)
    return seq if zlib.crc32(seq.to_bytes(8, "little")) == crc else 0


def write_head(fd: int, seq: int) -> None:
    os.pwrite(fd, _HEAD.pack(seq, zlib.crc32(seq.to_bytes(8, "little"))), 0)


def fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
