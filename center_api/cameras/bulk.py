"""Parse camera bulk imports (CSV or GeoJSON points) into `Camera`s with a per-row error report.

CSV: a header line, then one record per camera. Columns: id, url, and optionally name, site_type, site_id,
lat, lon, cell_id, sample_fps, enabled, username, password (credentials in the URL work too: they are split
off, see `contracts.camera`). GeoJSON: a FeatureCollection of Point features whose properties are the same
fields (lat/lon from the geometry). A row is named by the line where its CSV record starts (the header is
line 1) or by its feature's 1-based index.

The body is bytes, decoded here: UTF-8, strictly. A record with bytes that are not UTF-8 is refused with its
line, the others go on. Everything is bounded (`ImportLimits`, from the settings): bytes (the route reads no
further), records or features, and the characters of one CSV record. The refusals:

    UnparsableImport     400 unparsable_import      not CSV or GeoJSON of the expected shape, bad header
    ImportTooLarge       413 import_too_large       over import_max_bytes (the body-limit middleware too)
    ImportTooManyRows    413 import_too_many_rows   over import_max_rows records or features
    ImportLineTooLong    413 import_line_too_long   a CSV record over import_max_line_chars characters
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from center_api.cameras.schemas import RowError
from center_api.errors import BadRequest, PayloadTooLarge
from contracts import Camera

COLUMNS = frozenset(
    {"id", "url", "name", "site_type", "site_id", "lat", "lon", "cell_id", "sample_fps", "enabled"}
    | {"username", "password"}
)
# A byte that is not UTF-8 decodes (`surrogateescape`) to U+DC80..U+DCFF; a JSON `\udxxx` escape that is
# not half of a pair gives a lone surrogate too. Neither can be stored or answered with.
_NOT_UTF8 = re.compile("[\ud800-\udfff]")


class UnparsableImport(BadRequest, code="unparsable_import"):
    """An import body that is not CSV or GeoJSON of the expected shape (400 `unparsable_import`)."""


class ImportTooLarge(PayloadTooLarge, code="import_too_large"):
    """An import body over `import_max_bytes` (413 `import_too_large`)."""


class ImportTooManyRows(PayloadTooLarge, code="import_too_many_rows"):
    """An import of more records or features than `import_max_rows` (413 `import_too_many_rows`)."""


class ImportLineTooLong(PayloadTooLarge, code="import_line_too_long"):
    """A CSV record longer than `import_max_line_chars` (413 `import_line_too_long`)."""


@dataclass(frozen=True, slots=True)
class ImportLimits:
    max_bytes: int = 16 * 2**20
    max_rows: int = 20_000
    max_line_chars: int = 8192


@dataclass(frozen=True, slots=True)
class RawRow:
    """One record or feature: its row number (line or feature index), its fields, or why it is refused."""

    row: int
    fields: dict[str, Any]
    problem: str | None = None


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group(0))
    return f"\\x{code - 0xDC00:02x}" if 0xDC80 <= code <= 0xDCFF else f"\\u{code:04x}"


def shown(text: str) -> str:
    """`text` safe to answer with: a byte that was not UTF-8 as `\\xNN`, a lone surrogate as `\\udxxx`."""
    return _NOT_UTF8.sub(_escape, text)


def _not_utf8(value: object) -> bool:
    if isinstance(value, str):
        return _NOT_UTF8.search(value) is not None
    if isinstance(value, Mapping):
        return any(_not_utf8(k) or _not_utf8(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_not_utf8(v) for v in value)
    return False


def _problems(exc: ValidationError) -> str:
    text = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or '(root)'}: {e['msg']}" for e in exc.errors())
    return shown(text)[:1000]


def _camera(raw: dict[str, Any]) -> Camera:
    data = {k: v for k, v in raw.items() if v not in (None, "")}
    lat, lon = data.pop("lat", None), data.pop("lon", None)
    if (lat is None) != (lon is None):
        raise ValueError("give both lat and lon, or neither")
    if lat is not None:
        data["location"] = {"lat": float(lat), "lon": float(lon)}
    if isinstance(data.get("enabled"), str):
        data["enabled"] = data["enabled"].strip().lower() in ("1", "true", "yes", "y")
    if isinstance(data.get("sample_fps"), str):  # CSV text; the camera takes a number only
        data["sample_fps"] = float(data["sample_fps"])
    username, password = data.pop("username", None), data.pop("password", None)
    if username is not None or password is not None:
        data["credentials"] = {"username": username, "password": password}
    return Camera.model_validate(data)


def parse_rows(rows: list[RawRow]) -> tuple[list[tuple[int, Camera]], list[RowError]]:
    good: list[tuple[int, Camera]] = []
    errors: list[RowError] = []
    seen: set[str] = set()
    for raw in rows:
        cid = raw.fields.get("id")
        cid = shown(cid) if isinstance(cid, str) and cid else None
        if raw.problem is not None:
            errors.append(RowError(row=raw.row, id=cid, error=raw.problem))
            continue
        try:
            cam = _camera(raw.fields)
        except ValidationError as exc:
            errors.append(RowError(row=raw.row, id=cid, error=_problems(exc)))
            continue
        except (ValueError, TypeError, OverflowError) as exc:
            errors.append(RowError(row=raw.row, id=cid, error=shown(str(exc))[:300]))
            continue
        if cam.id in seen:
            errors.append(RowError(row=raw.row, id=cam.id, error="duplicate id in this import"))
            continue
        seen.add(cam.id)
        good.append((raw.row, cam))
    return good, errors


class _Lines:
    """The lines of a CSV text for `csv.reader`, counting them and bounding each record's characters."""

    def __init__(self, text: str, max_chars: int) -> None:
        self._lines = iter(io.StringIO(text, newline=""))
        self.max_chars = max_chars
        self.line = 0  # lines handed out so far
        self.record_chars = 0  # characters of the record being read

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        text = next(self._lines)
        self.line += 1
        self.record_chars += len(text)
        if self.record_chars > self.max_chars:
            raise ImportLineTooLong(
                f"line {self.line}: a record over {self.max_chars} characters (import_max_line_chars)"
            )
        return text


def parse_csv(text: str, limits: ImportLimits) -> list[RawRow]:
    lines = _Lines(text, limits.max_line_chars)
    reader = csv.reader(lines, strict=True)
    header: list[str] | None = None
    rows: list[RawRow] = []
    while True:
        start, lines.record_chars = lines.line + 1, 0
        try:
            record = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            raise UnparsableImport(f"line {lines.line}: not CSV: {exc}") from None
        if not record:
            continue  # a blank line
        if header is None:
            header = _header(record)
            continue
        if len(rows) >= limits.max_rows:
            raise ImportTooManyRows(f"line {start}: over {limits.max_rows} records (import_max_rows)")
        fields = dict(zip(header, record, strict=False))
        bad = [name for name, value in fields.items() if _NOT_UTF8.search(value)]
        problem = f"not UTF-8 in column {bad[0]!r}" if bad else None
        if len(record) > len(header):
            problem = f"{len(record)} fields, the header has {len(header)}"
        rows.append(RawRow(start, fields, problem))
    if header is None:
        raise UnparsableImport("empty import: no header line")
    return rows


def _header(record: list[str]) -> list[str]:
    names = [name.strip() for name in record]
    if any(_NOT_UTF8.search(name) for name in names):
        raise UnparsableImport("line 1: the header is not UTF-8")
    unknown = sorted(set(names) - COLUMNS)
    if unknown:
        raise UnparsableImport(
            f"unknown column {shown(unknown[0])[:64]!r} in the header; columns: {', '.join(sorted(COLUMNS))}"
        )
    if len(set(names)) != len(names):
        raise UnparsableImport("a column appears twice in the header")
    if "id" not in names or "url" not in names:
        raise UnparsableImport("the header needs the columns id and url")
    return names


def parse_geojson(text: str, limits: ImportLimits) -> list[RawRow]:
    try:
        data = json.loads(text)
    except RecursionError:
        raise UnparsableImport("not GeoJSON: nested too deeply") from None
    except ValueError as exc:
        raise UnparsableImport(f"not JSON: {exc}") from None
    if not isinstance(data, dict) or data.get("type") != "FeatureCollection":
        raise UnparsableImport("expected a GeoJSON FeatureCollection")
    features = data.get("features")
    if not isinstance(features, list):
        raise UnparsableImport("a FeatureCollection needs a list of features")
    if len(features) > limits.max_rows:
        raise ImportTooManyRows(f"{len(features)} features, over {limits.max_rows} (import_max_rows)")
    return [_feature(index, feature) for index, feature in enumerate(features, start=1)]


def _feature(index: int, feature: object) -> RawRow:
    if not isinstance(feature, dict):
        return RawRow(index, {}, "a feature must be an object")
    props = feature.get("properties") or {}
    if not isinstance(props, dict):
        return RawRow(index, {}, "properties must be an object")
    if _not_utf8(props):
        return RawRow(index, {}, "not UTF-8 (or a lone surrogate escape) in the properties")
    geometry = feature.get("geometry")
    if geometry is None:
        return RawRow(index, dict(props))
    coords = geometry.get("coordinates") if isinstance(geometry, dict) else None
    if (
        not isinstance(geometry, dict)
        or geometry.get("type") != "Point"
        or not isinstance(coords, list)
        or len(coords) not in (2, 3)
        or not all(isinstance(c, int | float) and not isinstance(c, bool) for c in coords)
    ):
        return RawRow(index, dict(props), "geometry must be a Point with [lon, lat] coordinates")
    return RawRow(index, {**props, "lat": coords[1], "lon": coords[0]})


def parse_import(body: bytes, content_type: str, limits: ImportLimits) -> list[RawRow]:
    """The rows of an import: GeoJSON for a JSON content type or a body that opens with `{`, else CSV.

    Bytes that are not UTF-8 survive decoding as lone surrogates (`surrogateescape`), so that the record
    holding them is refused with its line rather than the whole import without one.
    """
    if len(body) > limits.max_bytes:
        raise ImportTooLarge(f"import over {limits.max_bytes} bytes (import_max_bytes)")
    text = body.decode("utf-8", "surrogateescape").removeprefix("\ufeff")
    if "json" in content_type.lower() or text.lstrip().startswith("{"):
        return parse_geojson(text, limits)
    return parse_csv(text, limits)
