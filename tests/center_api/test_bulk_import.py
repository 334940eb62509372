"""Camera bulk import under hostile input: rows named by their line, bytes that are not UTF-8 refused with
their row, every body the parsers reject answered 4xx with a stable code, and every size bounded."""

from __future__ import annotations

import json
import random

import pytest

from center_api.cameras.bulk import ImportLimits, parse_import, parse_rows
from center_api.errors import CenterError
from tests.center_api.conftest import NANGUAN_1, auth

INT = {**auth("integrator", None, "vendor")}
CSV = {**INT, "Content-Type": "text/csv"}
LAT, LON = NANGUAN_1
# Small limits, so that each is easy to pass: the import's and the rest of the API's
LIMITS = ImportLimits(max_bytes=64 * 1024, max_rows=50, max_line_chars=512)
SETTINGS = dict(import_max_bytes=LIMITS.max_bytes, import_max_rows=LIMITS.max_rows, import_max_line_chars=512)


def row(i: int, name: str = "cam") -> str:
    return f"imp-{i},{name},rtsp://10.0.0.{i % 250}/s,{LAT},{LON}\n"


HEADER = "id,name,url,lat,lon\n"


def feature(i: int, geometry: object = None, **props: object) -> dict:
    geometry = geometry if geometry is not None else {"type": "Point", "coordinates": [LON, LAT]}
    return {
        "type": "Feature",
        "geometry": geometry,
        "properties": {"id": f"g-{i}", "url": "rtsp://h/s", **props},
    }


def collection(*features: dict) -> bytes:
    return json.dumps({"type": "FeatureCollection", "features": list(features)}).encode()


def report(body: bytes, content_type: str = "text/csv") -> tuple[list[str], dict[int, str]]:
    good, errors = parse_rows(parse_import(body, content_type, LIMITS))
    return [c.id for _, c in good], {e.row: e.error for e in errors}


# -- rows by their line, bytes that are not UTF-8 by their row -----------------------------------------------


@pytest.mark.parametrize(
    ("body", "ids", "bad_rows"),
    [
        # blank lines count: the bad record (no url) is on line 5 of the file
        (HEADER + row(1) + "\n\n" + "imp-2,x,,1,2\n" + row(3), ["imp-1", "imp-3"], {5: "url"}),
        # a quoted field over three lines (a name may not hold line breaks): the next record starts on line 5
        (
            HEADER + 'imp-1,"a\nb\nc",rtsp://h/s,,\n' + "imp-2,x,,,\n" + row(3),
            ["imp-3"],
            {2: "control characters", 5: "url"},
        ),
        # CRLF line ends and a blank line before the header
        ("\r\n" + HEADER.replace("\n", "\r\n") + "imp-1,x,rtsp://h/s,91,0\r\n", [], {3: "location.lat"}),
        # one lat without its lon; a record with a field too many
        (
            HEADER + "imp-1,x,rtsp://h/s,1,\n" + "imp-2,x,rtsp://h/s,1,2,3\n",
            [],
            {2: "both lat", 3: "6 fields"},
        ),
        # control characters (a NUL in the name) are refused, not stored
        (HEADER + "imp-1,a\x00b,rtsp://h/s,,\n" + row(2), ["imp-2"], {2: "control characters"}),
    ],
)
def test_csv_rows_are_named_by_the_line_where_they_start(body: str, ids: list[str], bad_rows: dict) -> None:
    good, errors = report(body.encode())
    assert good == ids
    assert sorted(errors) == sorted(bad_rows)
    for line, words in bad_rows.items():
        assert words in errors[line], (line, errors[line])


@pytest.mark.parametrize(
    ("body", "bad_row"),
    [
        (HEADER.encode() + row(1).encode() + b"imp-2,Caf\xe9,rtsp://h/s,,\n" + row(3).encode(), 3),  # Latin-1
        (HEADER.encode() + b"\n" + b"imp-2,\xff\xfe,rtsp://h/s,,\n" + row(3).encode() + row(1).encode(), 3),
        (HEADER.encode() + b'imp-2,"two\n\xc3(",rtsp://h/s,,\n' + row(1).encode() + row(3).encode(), 2),
    ],
)
def test_bytes_that_are_not_utf8_are_refused_with_their_row(body: bytes, bad_row: int) -> None:
    good, errors = report(body)
    assert sorted(good) == ["imp-1", "imp-3"]
    assert list(errors) == [bad_row] and "not UTF-8" in errors[bad_row]


def test_a_feature_with_a_lone_surrogate_or_bad_geometry_is_refused_with_its_index() -> None:
    body = collection(
        feature(1),
        feature(2, name="\udcff"),  # JSON `\udcff`: no character
        feature(3, geometry={"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 0]]]}),
        feature(4, geometry={"type": "Point", "coordinates": ["x", 1]}),
        feature(5, geometry={"type": "Point", "coordinates": [LON, 91]}),
        feature(6),
    )
    good, errors = report(body, "application/geo+json")
    assert good == ["g-1", "g-6"]
    assert sorted(errors) == [2, 3, 4, 5]
    assert "not UTF-8" in errors[2] and "Point" in errors[3] and "Point" in errors[4] and "lat" in errors[5]


def test_the_records_keep_their_real_text() -> None:
    body = (HEADER + "imp-1,Nánguān 南关 ✓,rtsp://h/s,,\n").encode()
    good, _ = parse_rows(parse_import(b"\xef\xbb\xbf" + body, "text/csv", LIMITS))  # with a BOM
    assert [c.name for _, c in good] == ["Nánguān 南关 ✓"]


# -- bodies the parsers reject, and the limits: a 4xx with a stable code -------------------------------------

RNG = random.Random(11)
REFUSED = {
    "random-bytes": (RNG.randbytes(20_000), 400, "unparsable_import"),
    "nul-bytes": (b"\x00" * 300 + b"\n" + b"\x00,\x00\n", 400, "unparsable_import"),
    "one-huge-line": (b"id,url," + b"x" * 10_000 + b"\n", 413, "import_line_too_long"),
    "one-huge-field": (
        HEADER.encode() + b'imp-1,"' + b"y\n" * 5_000 + b'",rtsp://h/s,,\n',
        413,
        "import_line_too_long",
    ),
    "unterminated-quote": (HEADER.encode() + b'imp-1,"open,rtsp://h/s,,\n', 400, "unparsable_import"),
    "unknown-column": (b"id,url,colour\nimp-1,rtsp://h/s,red\n", 400, "unparsable_import"),
    "header-not-utf8": (b"id,url,n\xe4me\n", 400, "unparsable_import"),
    "no-header": (b"\n\n", 400, "unparsable_import"),
    "too-many-rows": ((HEADER + "".join(row(i) for i in range(51))).encode(), 413, "import_too_many_rows"),
    "too-many-features": (collection(*[feature(i) for i in range(51)]), 413, "import_too_many_rows"),
    "too-many-bytes": ((HEADER + "z" * 70_000).encode(), 413, "import_too_large"),
    "geojson-nested-deep": (b'{"a":' + b"[" * 50_000, 400, "unparsable_import"),
    "json-not-a-collection": (b'{"type": "Feature"}', 400, "unparsable_import"),
    "json-broken": (b'{"type": "FeatureCollection", "features": [', 400, "unparsable_import"),
    "features-not-a-list": (b'{"type": "FeatureCollection", "features": {}}', 400, "unparsable_import"),
}


@pytest.mark.parametrize(("body", "status", "code"), REFUSED.values(), ids=list(REFUSED))
def test_a_body_the_parsers_reject_is_a_4xx_with_a_stable_code(body: bytes, status: int, code: str) -> None:
    with pytest.raises(CenterError) as err:
        parse_rows(parse_import(body, "text/csv", LIMITS))
    assert (err.value.status, err.value.code) == (status, code), err.value.message
    if status == 413:  # the detail names the limit
        assert "import_max_" in err.value.message


@pytest.mark.integration
async def test_the_import_endpoint_answers_each_refusal_and_keeps_serving(
    center_factory, database_url
) -> None:
    center = await center_factory(database_url, **SETTINGS)
    c = center.client
    for case, (body, status, code) in REFUSED.items():
        r = await c.post("/api/v1/cameras/import", content=body, headers=CSV)
        assert (r.status_code, r.json()["code"]) == (status, code), (case, r.text[:300])
        assert r.json()["detail"]
    # (a chunked body over the limit: test_body_limits) and the center goes on: an import within every limit
    body = (HEADER + row(1) + "\n" + "imp-2,Caf\xe9,rtsp://h/s,,\n").encode("latin-1")
    ok = await c.post("/api/v1/cameras/import", content=body, headers=CSV)
    assert ok.status_code == 200, ok.text
    assert ok.json()["created"] == 1 and [(e["row"], e["id"]) for e in ok.json()["errors"]] == [(4, "imp-2")]
    geo = await c.post(
        "/api/v1/cameras/import", content=collection(feature(1), feature(2, name="\udcff")), headers=INT
    )
    assert geo.status_code == 200 and geo.json()["created"] == 1 and geo.json()["errors"][0]["row"] == 2
    listing = await c.get("/api/v1/cameras", headers=INT)
    assert "\ufffd" not in listing.text and {"imp-1", "g-1"} <= {i["id"] for i in listing.json()["items"]}
