"""Serving clips: the incident's list with signed URLs, the MP4 with HTTP Range (what a browser's seeking
asks), station scope, signed URLs that expire and cannot be altered, and lists that stay one query a page."""

from __future__ import annotations

import hashlib
import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import event

from center_api.clips import signing
from tests.center_api.conftest import (
    NANGUAN_1,
    SECRET,
    WORKER,
    XIADU_2,
    auth,
    clip_meta,
    make_alert,
    mp4_variant,
    poll,
    put_clip,
    xadd,
)
from tests.center_api.test_clips import PENDING, _stored

pytestmark = pytest.mark.integration

B_OPERATOR = auth("operator", "st-xiadu", "bob")
OTHER = "another-secret-of-sufficient-length-for-hs256"


async def _incident_with_clip(
    center: Any, redis_db: Any, data: bytes, point=NANGUAN_1, camera="cam-s"
) -> tuple:
    alert = make_alert(point, camera_id=camera, clip=PENDING)
    xadd(redis_db, alert)
    item = await _stored(center, alert.id)
    r = await put_clip(center.client, data, clip_meta(data, [alert.id], camera_id=camera))
    assert r.status_code == 201, r.text
    return item, hashlib.sha256(data).hexdigest()


async def test_ranges_as_a_browser_asks_them(center_factory, database_url, redis_db, clip_mp4) -> None:
    center = await center_factory(database_url)
    item, digest = await _incident_with_clip(center, redis_db, clip_mp4)
    url, size, c = f"/api/v1/incidents/{item['id']}/clips/{digest}", len(clip_mp4), center.client
    assert size > 3000

    whole = await c.get(url, headers=auth())
    assert whole.status_code == 200 and whole.content == clip_mp4
    assert whole.headers["content-type"] == "video/mp4" and whole.headers["accept-ranges"] == "bytes"
    assert whole.headers["etag"] == f'"{digest}"' and "content-disposition" not in whole.headers

    cases = [
        ("bytes=0-99", 0, 100),  # the first bytes
        ("bytes=1000-1999", 1000, 2000),  # the middle
        ("bytes=-500", size - 500, size),  # a suffix: the last 500 bytes (the moov of a non-faststart file)
        (f"bytes={size - 10}-", size - 10, size),  # to the end
        (f"bytes=100-{size + 1000}", 100, size),  # an end past the file is cut to it
    ]
    for header, start, end in cases:
        r = await c.get(url, headers={**auth(), "Range": header})
        assert r.status_code == 206, (header, r.status_code)
        assert r.headers["content-range"] == f"bytes {start}-{end - 1}/{size}", header
        assert r.content == clip_mp4[start:end], header
        assert int(r.headers["content-length"]) == end - start

    for header in (f"bytes={size}-", f"bytes={size + 5}-{size + 10}", "bytes=-0"):
        r = await c.get(url, headers={**auth(), "Range": header})
        assert (r.status_code, r.json()["code"]) == (416, "range_not_satisfiable"), header
        assert r.headers["content-range"] == f"bytes */{size}", header

    for header in ("bytes=abc", "pages=1-2", "bytes=5-2"):  # not understood: ignored, the whole file
        r = await c.get(url, headers={**auth(), "Range": header})
        assert (r.status_code, len(r.content)) == (200, size), header

    # If-Range with the ETag: the range; with another validator: the whole file.
    r = await c.get(url, headers={**auth(), "Range": "bytes=0-9", "If-Range": f'"{digest}"'})
    assert r.status_code == 206
    r = await c.get(url, headers={**auth(), "Range": "bytes=0-9", "If-Range": '"other"'})
    assert r.status_code == 200

    download = await c.get(url, params={"download": "1"}, headers=auth())
    assert download.status_code == 200
    assert download.headers["content-disposition"].startswith("attachment; filename=")


async def test_another_stations_token_sees_nothing(
    center_factory, any_database_url, redis_db, clip_mp4
) -> None:
    center = await center_factory(any_database_url)
    c = center.client
    item, digest = await _incident_with_clip(center, redis_db, clip_mp4)
    b_item, b_digest = await _incident_with_clip(
        center, redis_db, mp4_variant(clip_mp4, "xiadu"), point=XIADU_2, camera="cam-b"
    )
    a, b = item["id"], b_item["id"]
    for url in (f"/api/v1/incidents/{a}/clips", f"/api/v1/incidents/{a}/clips/{digest}"):
        r = await c.get(url, headers=B_OPERATOR)
        assert (r.status_code, r.json()["code"]) == (404, "incident_not_found"), url
        never = await c.get(url.replace(f"/{a}/", "/999999/"), headers=B_OPERATOR)
        assert (never.status_code, never.json()["code"]) == (404, "incident_not_found")
    # Its own incident, another station's clip: not a clip of this incident.
    r = await c.get(f"/api/v1/incidents/{b}/clips/{digest}", headers=B_OPERATOR)
    assert (r.status_code, r.json()["code"]) == (404, "clip_not_found")
    r = await c.get(f"/api/v1/incidents/{b}/clips/{b_digest}", headers=B_OPERATOR)
    assert r.status_code == 200
    # The city command sees both; a worker neither.
    assert (
        await c.get(f"/api/v1/incidents/{a}/clips/{digest}", headers=auth("city_command", None))
    ).status_code == 200
    r = await c.get(f"/api/v1/incidents/{a}/clips/{digest}", headers=WORKER)
    assert (r.status_code, r.json()["code"]) == (403, "role_not_allowed")
    assert (await c.get(f"/api/v1/incidents/{a}/clips", headers=WORKER)).status_code == 403


async def test_signed_urls_play_without_a_token_and_only_as_signed(
    center_factory, database_url, redis_db, clip_mp4
) -> None:
    center = await center_factory(database_url, clip_link_ttl_s=60)
    c = center.client
    item, digest = await _incident_with_clip(center, redis_db, clip_mp4)
    other, other_digest = await _incident_with_clip(
        center, redis_db, mp4_variant(clip_mp4, "o"), camera="cam-o"
    )
    (listed,) = (await c.get(f"/api/v1/incidents/{item['id']}/clips", headers=auth())).json()
    assert "token" not in listed["url"] and "Bearer" not in listed["url"]
    query = parse_qs(urlsplit(listed["url"]).query)
    exp = int(query["exp"][0])
    assert time.time() + 50 < exp <= time.time() + 61

    played = await c.get(listed["url"], headers={"Range": "bytes=0-99"})  # no Authorization: a <video>
    assert (played.status_code, played.content) == (206, clip_mp4[:100])
    saved = await c.get(listed["download_url"])
    assert saved.status_code == 200 and saved.headers["content-disposition"].startswith("attachment")

    base = f"/api/v1/incidents/{item['id']}/clips/{digest}"
    sig = query["sig"][0]
    tampered = sig[:-1] + ("A" if sig[-1] != "A" else "B")
    past = int(time.time()) - 1
    refused = {
        "tampered": (f"{base}?exp={exp}&sig={tampered}", "clip_link_invalid"),
        "longer": (f"{base}?exp={exp + 3600}&sig={sig}", "clip_link_invalid"),
        "expired": (
            f"{base}?exp={past}&sig={signing.signature(SECRET, item['id'], digest, past)}",
            "clip_link_expired",
        ),
        "other secret": (
            f"{base}?exp={exp}&sig={signing.signature(OTHER, item['id'], digest, exp)}",
            "clip_link_invalid",
        ),
        "other incident": (
            f"/api/v1/incidents/{other['id']}/clips/{digest}?exp={exp}&sig={sig}",
            "clip_link_invalid",
        ),
        "other clip": (
            f"/api/v1/incidents/{item['id']}/clips/{other_digest}?exp={exp}&sig={sig}",
            "clip_link_invalid",
        ),
        "no exp": (f"{base}?sig={sig}", "clip_link_invalid"),
        "nothing": (base, "missing_token"),
    }
    for what, (url, code) in refused.items():
        r = await c.get(url)
        assert (r.status_code, r.json()["code"]) == (401, code), what


async def test_lists_take_the_same_queries_for_any_page_size(
    center_factory, database_url, redis_db, clip_mp4
) -> None:
    """The clip state of a page is one query, not one per incident (no N+1)."""
    center = await center_factory(database_url)
    alerts = [make_alert(NANGUAN_1, camera_id=f"cam-{i}", clip=PENDING) for i in range(12)]
    for alert in alerts:
        xadd(redis_db, alert)

    async def all_stored() -> bool:
        r = await center.client.get("/api/v1/incidents", params={"limit": 100}, headers=auth())
        return len(r.json()["items"]) == len(alerts)

    await poll(all_stored)
    for i, alert in enumerate(alerts[:6]):
        data = mp4_variant(clip_mp4, f"n{i}")
        assert (await put_clip(center.client, data, clip_meta(data, [alert.id]))).status_code == 201
    engine = center.app.state.services.engine.sync_engine
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        per_page = {}
        for limit in (2, 12):
            statements.clear()
            r = await center.client.get("/api/v1/incidents", params={"limit": limit}, headers=auth())
            assert len(r.json()["items"]) == limit
            states = {i["clip_state"] for i in r.json()["items"]}
            per_page[limit] = len(statements)
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert per_page[2] == per_page[12] <= 3, per_page  # the page, its clip states (and no more per row)
    assert states == {"present", "pending"}
