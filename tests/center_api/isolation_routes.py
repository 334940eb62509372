"""The tables of the isolation walk (tests/center_api/test_isolation.py): what each route of the app serves,
which roles are entitled to station B's data there, and which ids and query values name B.

A route, path parameter or query parameter of the app that these tables do not know fails the walk: add it
here, with the Kind that says who may see another station's data through it.
"""

from __future__ import annotations

import hashlib
import json
import re
import struct
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any

import httpx
from fastapi.routing import iter_route_contexts

from tests.center_api.conftest import WORKER, XIADU_2, clip_meta

B_STATION, B_CAMERA, A_CAMERA = "st-xiadu", "cam-xiadu-1", "cam-nanguan-1"
SNAPSHOT = b"\xff\xd8\xff\xe0" + b"XIADU-SNAPSHOT" * 8 + b"\xff\xd9"
ROLES = {
    "a_operator": ("operator", "st-nanguan", "a-op"),
    "a_admin": ("station_admin", "st-nanguan", "a-admin"),
    "b_operator": ("operator", B_STATION, "b-op"),
    "city": ("city_command", None, "chief"),
    "integrator": ("integrator", None, "vendor"),
    "worker": ("worker", None, "worker-1"),
}


def _box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", 8 + len(payload)) + kind + payload


# Station B's clip: as much of an MP4 as the center checks (its `ftyp` box first), carrying the snapshot's
# marker so that a served clip shows whose it is.
B_CLIP = _box(b"ftyp", b"isom\x00\x00\x02\x00isomiso2") + _box(b"free", b"XIADU-SNAPSHOT" * 4)


class Kind(Enum):
    """What a route serves, and so which roles are entitled to station B's data there."""

    PUBLIC = ("no token needed, no station's data (health, docs, console)", frozenset())
    DIRECTORY = ("every station by name, for every token (station ids are no secret)", frozenset())
    OWN = ("the caller's own claims", frozenset({"b_operator"}))
    INCIDENT_DATA = ("incidents, snapshots, stats, grid, feeds, live view", frozenset({"b_operator", "city"}))
    CAMERA_READ = (
        "the registry; integrators manage cameras city-wide",
        frozenset({"b_operator", "city", "integrator"}),
    )
    CAMERA_WRITE = ("changes to the registry", frozenset({"city", "integrator"}))
    CLIP_UPLOAD = (
        "the workers' clip uploads and failure reports; nothing is read back",
        frozenset({"worker"}),
    )
    PLATFORM = ("/metrics: the scrape token only, no user token at all", frozenset())

    @property
    def entitled(self) -> frozenset[str]:
        return self.value[1]


@dataclass
class Seed:
    incident_id: int
    a_incident_id: int
    session_id: str
    offer: str
    rtsp_url: str
    b_alerts: list[str]
    stop_alerts: set[str]  # the last alert of each station: a feed has replayed past every event by then
    clip_id: str = "0" * 64  # station B's clip (`seed_clip`), of its first incident

    def markers(self, station_too: bool = True) -> list[bytes]:
        found = ["c-xiadu", B_CAMERA, self.session_id, *self.b_alerts] + ([B_STATION] if station_too else [])
        return [m.encode() for m in found] + [b"XIADU-SNAPSHOT"]


def point(p: tuple[float, float]) -> dict[str, float]:
    return {"lat": p[0], "lon": p[1]}


@dataclass(frozen=True)
class Spec:
    kind: Kind
    write: int = 0  # 0: a read; n: a write, called after every read, in the order of n
    body: Callable[[Seed, str], Any] | None = None  # JSON, or (content type, text)
    feed: bool = False


ROUTES: dict[tuple[str, str], Spec] = {
    ("GET", "/openapi.json"): Spec(Kind.PUBLIC),
    ("GET", "/docs"): Spec(Kind.PUBLIC),
    ("GET", "/docs/oauth2-redirect"): Spec(Kind.PUBLIC),
    ("GET", "/redoc"): Spec(Kind.PUBLIC),
    ("GET", "/"): Spec(Kind.PUBLIC),
    ("GET", "/console/{name}"): Spec(Kind.PUBLIC),
    ("GET", "/api/v1/health"): Spec(Kind.PUBLIC),
    ("GET", "/api/v1/me"): Spec(Kind.OWN),
    ("GET", "/api/v1/stations"): Spec(Kind.DIRECTORY),
    ("GET", "/metrics"): Spec(Kind.PLATFORM),
    ("GET", "/api/v1/incidents"): Spec(Kind.INCIDENT_DATA),
    ("GET", "/api/v1/incidents/{incident_id}"): Spec(Kind.INCIDENT_DATA),
    ("GET", "/api/v1/incidents/{incident_id}/snapshot"): Spec(Kind.INCIDENT_DATA),
    ("GET", "/api/v1/incidents/{incident_id}/clips"): Spec(Kind.INCIDENT_DATA),
    ("GET", "/api/v1/incidents/{incident_id}/clips/{clip_id}"): Spec(Kind.INCIDENT_DATA),
    ("POST", "/api/v1/cameras/{camera_id}/clips"): Spec(
        Kind.INCIDENT_DATA, write=2, body=lambda s, r: {"seconds": 1, "note": r}
    ),
    # No `meta` (it is no station's data): the worker's upload is refused as invalid, after its role passed.
    ("PUT", "/api/v1/clips/{digest}"): Spec(
        Kind.CLIP_UPLOAD, write=6, body=lambda s, r: ("video/mp4", B_CLIP)
    ),
    ("POST", "/api/v1/clips/failures"): Spec(
        Kind.CLIP_UPLOAD,
        write=6,
        body=lambda s, r: {"camera_id": B_CAMERA, "alert_ids": [f"walk-{r}"], "reason": r},
    ),
    ("POST", "/api/v1/incidents/{incident_id}/transitions"): Spec(
        Kind.INCIDENT_DATA, write=1, body=lambda s, r: {"to": "acknowledged", "note": r}
    ),
    ("WS", "/api/v1/feed"): Spec(Kind.INCIDENT_DATA, feed=True),
    ("GET", "/api/v1/feed/sse"): Spec(Kind.INCIDENT_DATA, feed=True),
    ("GET", "/api/v1/grid/cells"): Spec(Kind.INCIDENT_DATA),
    ("GET", "/api/v1/grid/units"): Spec(Kind.INCIDENT_DATA),
    ("GET", "/api/v1/stats"): Spec(Kind.INCIDENT_DATA),
    ("GET", "/api/v1/stats/counts"): Spec(Kind.INCIDENT_DATA),
    ("GET", "/api/v1/live"): Spec(Kind.INCIDENT_DATA),
    ("POST", "/api/v1/cameras/{camera_id}/live"): Spec(
        Kind.INCIDENT_DATA, write=2, body=lambda s, r: {"sdp": s.offer, "type": "offer"}
    ),
    ("DELETE", "/api/v1/cameras/{camera_id}/live/{session_id}"): Spec(Kind.INCIDENT_DATA, write=3),
    ("GET", "/api/v1/cameras"): Spec(Kind.CAMERA_READ),
    ("GET", "/api/v1/cameras/{camera_id}"): Spec(Kind.CAMERA_READ),
    ("POST", "/api/v1/cameras"): Spec(
        Kind.CAMERA_WRITE,
        write=4,
        body=lambda s, r: {
            "id": f"cam-xiadu-{r}",
            "url": "rtsp://127.0.0.1:1/b",
            "location": point(XIADU_2),
        },
    ),
    ("PUT", "/api/v1/cameras/{camera_id}"): Spec(
        Kind.CAMERA_WRITE,
        write=4,
        body=lambda s, r: {"id": B_CAMERA, "url": s.rtsp_url, "location": point(XIADU_2)},
    ),
    ("PATCH", "/api/v1/cameras/{camera_id}"): Spec(Kind.CAMERA_WRITE, write=4, body=lambda s, r: {"name": r}),
    ("POST", "/api/v1/cameras/import"): Spec(
        Kind.CAMERA_WRITE,
        write=4,
        body=lambda s, r: (
            "text/csv",
            f"id,url,lat,lon\ncam-xiadu-i-{r},rtsp://127.0.0.1:1/i,{XIADU_2[0]},{XIADU_2[1]}\n",
        ),
    ),
    ("DELETE", "/api/v1/cameras/{camera_id}"): Spec(Kind.CAMERA_WRITE, write=5),
}
# Path parameters: station B's id, one that never existed (an outsider must not tell them apart), and station
# A's own (None: A has none). A route with several takes, besides B's ids for all, each of B's ids in turn
# with A's for the others: an outsider may name its own camera and B's live session.
PATH_PARAMS: dict[str, tuple[Callable[[Seed], object], object, Callable[[Seed], object] | None]] = {
    "incident_id": (lambda s: s.incident_id, 999_999, lambda s: s.a_incident_id),
    "camera_id": (lambda s: B_CAMERA, "cam-nobody", lambda s: A_CAMERA),
    "session_id": (lambda s: s.session_id, "no-such-session", None),
    "clip_id": (lambda s: s.clip_id, "0" * 64, None),
    "digest": (lambda s: s.clip_id, "0" * 64, None),
    "name": (lambda s: "console.js", "console.js", None),  # the console's static files: no station's
}
# Query parameters set to station B's value, one at a time; enumerations and booleans take every value.
B_QUERY = {"station": B_STATION, "cell": "c-xiadu-02", "community": "c-xiadu", "camera": B_CAMERA}
ALWAYS = {"after": "0"}  # feeds replay from the start, so B's events would be among the first messages
HARMLESS = {"street", "district", "kind", "severity", "status", "since", "until", "cursor", "limit", "top"}
HARMLESS |= {"meta", "sig", "exp"}  # a clip upload's description; a signed clip URL (its own test)
HARMLESS_HEADERS = {"Last-Event-ID"}


def route_table(app: Any) -> list[tuple[str, str, list[dict[str, str]]]]:
    """(method, path, query variants) of every route of the app; fails on what the tables do not know."""
    operations = app.openapi()["paths"]
    unknown: list[str] = []
    walked: list[tuple[str, str, list[dict[str, str]]]] = []
    for route in iter_route_contexts(app.routes):
        path = str(route.path)
        methods = sorted(set(route.methods or []) - {"HEAD"}) or (
            ["WS"] if "WebSocket" in type(route.original_route).__name__ else ["?"]
        )
        for method in methods:
            if (method, path) not in ROUTES:
                unknown.append(f"route {method} {path}: add it to ROUTES with its Kind")
            unknown += [
                f"path parameter {p!r} of {path}: add it to PATH_PARAMS"
                for p in re.findall(r"{(\w+)", path)
                if p not in PATH_PARAMS
            ]
            doc_path = (
                "/api/v1/feed/sse" if method == "WS" else path
            )  # the WebSocket takes the SSE's parameters
            params = (
                operations.get(doc_path, {})
                .get("get" if method == "WS" else method.lower(), {})
                .get("parameters", [])
            )
            variants: list[dict[str, str]] = [{}]
            for param in params:
                name, schema = param["name"], param.get("schema", {})
                if param["in"] == "path" or name in HARMLESS or name in HARMLESS_HEADERS or name in ALWAYS:
                    continue
                if name in B_QUERY:
                    variants.append({name: B_QUERY[name]})
                elif "enum" in schema:
                    variants += [{name: str(v)} for v in schema["enum"]]
                elif schema.get("type") == "boolean":
                    variants += [{name: "true"}, {name: "false"}]
                else:
                    unknown.append(
                        f"query parameter {name!r} of {method} {path}: add it to B_QUERY or HARMLESS"
                    )
            walked.append((method, path, variants))
    stale = set(ROUTES) - {(m, p) for m, p, _ in walked}
    unknown += [f"ROUTES names {m} {p}, which the app no longer has" for m, p in sorted(stale)]
    assert not unknown, (
        "the isolation walk does not know: "
        + "; ".join(unknown)
        + " (extend the tables in tests/center_api/isolation_routes.py)"
    )
    return walked


def path_variants(path: str) -> list[dict[str, str]]:
    """Whose id each path parameter takes ("b" or "a"): all B's, then each of B's with A's for the rest."""
    names = re.findall(r"{(\w+)", path)
    variants = [dict.fromkeys(names, "b")]
    if len(names) > 1:
        for name in names:
            if all(PATH_PARAMS[other][2] is not None for other in names if other != name):
                variants.append({other: "b" if other == name else "a" for other in names})
    return variants


def fill(path: str, seed: Seed, whose: dict[str, str]) -> str:
    def value(match: re.Match[str]) -> str:
        b, never, a = PATH_PARAMS[match[1]]
        chosen = {"b": lambda: b(seed), "never": lambda: never, "a": lambda: a(seed) if a else None}
        return str(chosen[whose[match[1]]]())

    return re.sub(r"{(\w+)[^}]*}", value, path)


async def seed_clip(client: httpx.AsyncClient, alert_id: str) -> str:
    """Upload station B's clip for one of its alerts, as a worker; its id."""
    digest = hashlib.sha256(B_CLIP).hexdigest()
    meta = clip_meta(B_CLIP, [alert_id], camera_id=B_CAMERA)
    r = await client.put(
        f"/api/v1/clips/{digest}",
        params={"meta": json.dumps(meta)},
        content=B_CLIP,
        headers={**WORKER, "Content-Type": "video/mp4"},
    )
    assert r.status_code == 201, r.text
    return digest
