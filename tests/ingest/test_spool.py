"""The clip spool: atomic content-addressed adds, one entry per content, bounds that drop the oldest (counted,
reported), one process per directory, and recovery of whatever a kill -9 left (also a real SIGKILL)."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from contracts import ClipFailure, ClipMeta
from ingest.spool import ClipSpool, SpoolInUse
from tests.support.fixtures import kill_after_lines

REPO = Path(__file__).resolve().parents[2]


def make_meta(size: int, camera_id: str = "cam-1", alert_id: str = "a1") -> ClipMeta:
    return ClipMeta(
        camera_id=camera_id,
        alert_ids=(alert_id,),
        alert_offsets_s=(5.0,),
        started_at=datetime(2024, 5, 1, 12, 0, tzinfo=UTC),
        duration_s=20.0,
        bytes=size,
        codec="h264",
        worker_id="w1",
    )


def stage(spool: ClipSpool, content: bytes) -> Path:
    path = spool.staging_path()
    path.write_bytes(content)
    return path


def add(spool: ClipSpool, content: bytes, alert_id: str = "a1") -> str:
    return spool.add(stage(spool, content), make_meta(len(content), alert_id=alert_id))


@pytest.fixture
def spool(tmp_path: Path) -> Iterator[ClipSpool]:
    s = ClipSpool(tmp_path / "spool")
    yield s
    s.close()


def names(directory: Path) -> set[str]:
    return {p.name for p in directory.iterdir()} - {"lock"}


def test_add_is_content_addressed_and_leaves_no_temp_files(spool: ClipSpool) -> None:
    content = b"\x00\x00\x00\x18ftypisom" + os.urandom(5000)
    staged = stage(spool, content)
    assert staged.parent == spool.directory
    digest = spool.add(staged, make_meta(len(content)))
    assert digest == hashlib.sha256(content).hexdigest()
    assert names(spool.directory) == {f"{digest}.mp4", f"{digest}.json"}
    assert (spool.directory / f"{digest}.mp4").read_bytes() == content
    item = spool.checkout()
    assert item is not None and item.kind == "clip" and item.name == digest and item.size == len(content)
    assert spool.meta(item) == make_meta(len(content))
    spool.finish(item, remove=True)
    assert names(spool.directory) == set() and len(spool) == 0


def test_the_same_content_twice_is_one_entry_with_the_alerts_of_both(spool: ClipSpool) -> None:
    content = os.urandom(3000)
    first, second, third = add(spool, content, "a1"), add(spool, content, "a2"), add(spool, content, "a1")
    assert first == second == third
    assert len(spool) == 1
    assert names(spool.directory) == {f"{first}.mp4", f"{first}.json"}  # the other staging files are gone
    item = spool.checkout()
    assert item is not None and spool.meta(item).alert_ids == ("a1", "a2")
    assert spool.meta(item).alert_offsets_s == (5.0, 5.0)


def test_alerts_that_join_a_clip_in_flight_send_it_again(spool: ClipSpool) -> None:
    content = os.urandom(3000)
    digest = add(spool, content, "a1")
    item = spool.checkout()
    assert item is not None
    add(spool, content, "a2")  # while the uploader sends the meta it read before
    spool.finish(item, remove=True)
    again = spool.checkout()
    assert again is not None and again.name == digest  # once more, so the center links a2 too
    assert spool.meta(again).alert_ids == ("a1", "a2")
    spool.finish(again, remove=True)
    assert len(spool) == 0


def test_meta_bytes_follow_the_file(spool: ClipSpool) -> None:
    content = os.urandom(1000)
    spool.add(stage(spool, content), make_meta(999))
    item = spool.checkout()
    assert item is not None and spool.meta(item).bytes == 1000


@pytest.mark.parametrize(
    ("bounds", "sizes", "kept", "dropped_bytes"),
    [
        ({"max_files": 3}, [100, 100, 100, 100, 100], [2, 3, 4], 200),
        ({"max_bytes": 1000}, [400, 400, 400], [1, 2], 400),
        ({"max_bytes": 1000}, [300, 300, 900], [2], 600),
    ],
)
def test_bounds_drop_the_oldest_count_and_report(
    tmp_path: Path, bounds: dict[str, int], sizes: list[int], kept: list[int], dropped_bytes: int
) -> None:
    spool = ClipSpool(tmp_path / "spool", **bounds)
    try:
        digests = [add(spool, os.urandom(size), f"a{i}") for i, size in enumerate(sizes)]
        stats = spool.stats()
        assert stats.dropped_clips == len(sizes) - len(kept)
        assert stats.dropped_bytes == dropped_bytes
        assert stats.clips == len(kept) and stats.clip_bytes == sum(sizes[i] for i in kept)
        clips: list[str] = []
        reported: set[str] = set()
        while (item := spool.checkout()) is not None:
            if item.kind == "clip":
                clips.append(item.name)
            else:
                reported.update(spool.failure(item).alert_ids)
            spool.finish(item, remove=True)
        assert clips == [digests[i] for i in kept]
        # the center learns that the dropped clips will not come
        assert reported == {f"a{i}" for i in range(len(sizes)) if i not in kept}
    finally:
        spool.close()


def test_a_clip_larger_than_the_spool_is_dropped_and_reported(tmp_path: Path) -> None:
    spool = ClipSpool(tmp_path / "spool", max_bytes=100)
    try:
        add(spool, os.urandom(50), "small")
        add(spool, os.urandom(500), "huge")
        stats = spool.stats()
        assert (stats.clips, stats.dropped_clips, stats.dropped_bytes, stats.failures) == (1, 1, 500, 1)
        assert [n for n in names(spool.directory) if n.startswith("tmp-")] == []
    finally:
        spool.close()


def test_the_item_in_flight_is_never_dropped(tmp_path: Path) -> None:
    spool = ClipSpool(tmp_path / "spool", max_files=1)
    try:
        first = add(spool, os.urandom(100))
        item = spool.checkout()
        assert item is not None and item.name == first
        second = add(spool, os.urandom(100), "a2")
        assert spool.stats().clips == 2  # over the bound while the first is being sent
        spool.finish(item, remove=False)  # not delivered: now the bound takes the oldest
        stats = spool.stats()
        assert (stats.clips, stats.dropped_clips) == (1, 1)
        left = spool.checkout()
        assert left is not None and left.name == second
    finally:
        spool.close()


def test_failure_reports_are_durable_and_bounded(tmp_path: Path) -> None:
    spool = ClipSpool(tmp_path / "spool", max_failures=2)
    for i in range(3):
        spool.add_failure(ClipFailure(camera_id="cam-1", alert_ids=(f"a{i}",), reason="camera went away"))
    assert spool.stats().dropped_failures == 1
    spool.close()
    again = ClipSpool(tmp_path / "spool", max_failures=2)
    try:
        got = []
        while (item := again.checkout()) is not None:
            got.append(again.failure(item).alert_ids)
            again.finish(item, remove=True)
        assert got == [("a1",), ("a2",)]
    finally:
        again.close()


def test_one_process_per_directory(tmp_path: Path) -> None:
    first = ClipSpool(tmp_path / "spool")
    with pytest.raises(SpoolInUse):
        ClipSpool(tmp_path / "spool")
    first.close()
    ClipSpool(tmp_path / "spool").close()


# --- recovery ------------------------------------------------------------------------------------------
def _leave(directory: Path, state: str) -> str:
    """Leave what a process killed at `state` would; the digest concerned."""
    content = os.urandom(2000)
    digest = hashlib.sha256(content).hexdigest()
    meta = make_meta(len(content)).model_dump_json()
    if state == "staging":  # killed while recording or hashing
        (directory / "tmp-123-abc.mp4").write_bytes(content[:700])
    elif state == "meta_tmp":  # killed while writing the meta
        (directory / "tmp-123-abc.mp4").write_bytes(content)
        (directory / "tmp-def.json").write_text(meta[:20])
    elif state == "meta_only":  # killed between the meta's rename and the MP4's
        (directory / "tmp-123-abc.mp4").write_bytes(content)
        (directory / f"{digest}.json").write_text(meta)
    elif state == "mp4_only":  # a removal killed between its two unlinks (MP4 last would leave this)
        (directory / f"{digest}.mp4").write_bytes(content)
    elif state == "torn":  # a power cut: the name is there, the content is not all of it
        (directory / f"{digest}.mp4").write_bytes(content[:1000] + bytes(1000))
        (directory / f"{digest}.json").write_text(meta)
    elif state == "bad_meta":
        (directory / f"{digest}.mp4").write_bytes(content)
        (directory / f"{digest}.json").write_text(meta[:30])
    return digest


@pytest.mark.parametrize(
    ("state", "corrupt"),
    [
        ("staging", 0),
        ("meta_tmp", 0),
        ("meta_only", 0),
        ("mp4_only", 1),
        ("torn", 1),
        ("bad_meta", 1),
    ],
)
def test_opening_removes_what_a_kill_left_and_keeps_complete_clips(
    tmp_path: Path, state: str, corrupt: int
) -> None:
    directory = tmp_path / "spool"
    spool = ClipSpool(directory)
    kept = [add(spool, os.urandom(1500), f"k{i}") for i in range(2)]
    spool.close()
    _leave(directory, state)
    again = ClipSpool(directory)
    try:
        assert names(directory) == {f"{d}.{ext}" for d in kept for ext in ("mp4", "json")}
        assert again.stats().dropped_corrupt == corrupt
        order = []
        while (item := again.checkout()) is not None:
            order.append(item.name)
            again.finish(item, remove=True)
        assert order == kept  # oldest first, as before
    finally:
        again.close()


def _child_adds(directory: str) -> None:
    """Run in a child process: add clips as fast as it can, printing each digest once `add` returned."""
    spool = ClipSpool(Path(directory))
    n = 0
    while True:
        n += 1
        content = hashlib.sha256(str(n).encode()).digest() * 20_000  # 640 KB, different each time
        digest = spool.add(stage(spool, content), make_meta(len(content), alert_id=f"a{n}"))
        print(digest, flush=True)


@pytest.mark.parametrize("kill_after", [1, 3, 7])
def test_a_spool_killed_with_sigkill_while_adding_keeps_every_acknowledged_clip(
    tmp_path: Path, kill_after: int
) -> None:
    directory = tmp_path / "spool"
    code = f"from tests.ingest.test_spool import _child_adds; _child_adds({str(directory)!r})"
    acknowledged = kill_after_lines(code, kill_after, REPO)
    spool = ClipSpool(directory)
    try:
        held = []
        while (item := spool.checkout()) is not None:
            held.append(item.name)
            content = spool.clip_path(item).read_bytes()
            assert hashlib.sha256(content).hexdigest() == item.name
            assert spool.meta(item).bytes == len(content)
            spool.finish(item, remove=True)
        assert held[: len(acknowledged)] == acknowledged
        assert len(held) - len(acknowledged) in (0, 1)  # the one being added may have made it whole
        assert not [n for n in names(directory) if n.startswith("tmp-")]
    finally:
        spool.close()
