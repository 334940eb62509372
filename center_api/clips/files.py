"""The clip files: a `ContentStore` of MP4s under `<data_dir>/clips/ab/<sha256>.mp4`.

An upload is received as a stream into a temporary file of the claimed digest's shard while it is hashed,
never held in memory, and bounded: `receive` stops reading past `max_bytes`. What arrived is checked
(`Received.refusal`: size, digest, an MP4's `ftyp` box) before it is moved into place; the temporary file is
removed on every other way out. Retention and the quota are the database's (`center_api.store.clips`):
`delete` removes a file they gave up, and the sweep of `ContentStore` removes only stale temporary files
and files no row names any more.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from center_api.blobs import ContentStore

WRITE_CHUNK = 1 << 20  # bytes gathered before one write-and-hash step in a thread
MP4_BRAND = b"ftyp"  # an ISO BMFF file starts with its file-type box: size (4 bytes), then 'ftyp'


class ClipTooLargeError(Exception):
    """The body ran past `max_bytes` (the receiver stopped reading)."""


@dataclass(frozen=True, slots=True)
class Received:
    """An upload on disk, not yet in place: its temporary file, real digest, size and first bytes."""

    tmp: Path
    digest: str
    size: int
    head: bytes

    def refusal(self, claimed: str, declared_size: int) -> tuple[str, str] | None:
        """(code, message) of the first check it fails, or None."""
        if self.size != declared_size:
            return "size_mismatch", f"the body has {self.size} bytes, the meta says {declared_size}"
        if self.digest != claimed:
            return "digest_mismatch", f"the body's sha256 is {self.digest}, not the digest in the path"
        if self.head[4:8] != MP4_BRAND:
            return "not_mp4", "the body is not an MP4 (no 'ftyp' box at its start)"
        return None


class ClipStore(ContentStore):
    def __init__(self, data_dir: Path) -> None:
        super().__init__(Path(data_dir) / "clips", ".mp4")

    def exists(self, digest: str) -> bool:
        return self.path(digest).is_file()

    async def receive(self, claimed: str, chunks: AsyncIterator[bytes], max_bytes: int) -> Received:
        """Write the stream to a temporary file while hashing it; `ClipTooLargeError` past `max_bytes`.
        The caller places or discards the result; on an error the temporary file is gone already."""
        tmp = await asyncio.to_thread(self.temporary, claimed)
        digest = hashlib.sha256()
        size, head, pending = 0, b"", bytearray()
        out = await asyncio.to_thread(open, tmp, "wb")
        try:
            async for chunk in chunks:
                size += len(chunk)
                if size > max_bytes:
                    raise ClipTooLargeError(f"clip over {max_bytes} bytes (clip_max_bytes)")
                if len(head) < 8:
                    head = (head + chunk)[:8]
                pending += chunk
                if len(pending) >= WRITE_CHUNK:
                    await asyncio.to_thread(_write, out, digest, bytes(pending))
                    pending.clear()
            await asyncio.to_thread(_write, out, digest, bytes(pending))
            await asyncio.to_thread(_close, out)
        except BaseException:
            out.close()
            self.discard(tmp)
            raise
        return Received(tmp, digest.hexdigest(), size, head)

    @staticmethod
    def discard(tmp: Path) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def _write(out: BinaryIO, digest: hashlib._Hash, data: bytes) -> None:
    digest.update(data)
    out.write(data)


def _close(out: BinaryIO) -> None:
    out.flush()
    os.fsync(out.fileno())  # the clip is evidence: on disk before the database says it is there
    out.close()
