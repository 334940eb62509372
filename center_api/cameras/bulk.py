"""Parse camera bulk imports (CSV or GeoJSON points) into `Camera`s with a per-row error report.

CSV columns: id, url, and optionally name, site_type, site_id, lat, lon, cell_id, sample_fps, enabled.
GeoJSON: a FeatureCollection of Points whose properties are the same fields (lat/lon from the geometry).
`parse_import` picks the format and raises `UnparsableImport` (400) for a body that is neither.
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from pydantic import ValidationError

from center_api.cameras.schemas import RowError
from center_api.errors import BadRequest
from contracts import Camera


class UnparsableImport(BadRequest):
    """An import body that is not CSV or GeoJSON of the expected shape (400 `unparsable_import`)."""

    code = "unparsable_import"


def _problems(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(str(p) for p in e['loc']) or '(root)'}: {e['msg']}" for e in exc.errors())


def _camera(raw: dict[str, Any]) -> Camera:
    data = {k: v for k, v in raw.items() if v not in (None, "")}
    lat, lon = data.pop("lat", None), data.pop("lon", None)
    if (lat is None) != (lon is None):
        raise ValueError("give both lat and lon, or neither")
    if lat is not None:
        data["location"] = {"lat": float(lat), "lon": float(lon)}
    if isinstance(data.get("enabled"), str):
        data["enabled"] = data["enabled"].strip().lower() in ("1", "true", "yes", "y")
    return Camera.model_validate(data)


def parse_rows(rows: list[dict[str, Any]]) -> tuple[list[tuple[int, Camera]], list[RowError]]:
    good: list[tuple[int, Camera]] = []
    errors: list[RowError] = []
    seen: set[str] = set()
    for index, raw in enumerate(rows, start=1):
        cid = raw.get("id") or None
        try:
            cam = _camera(raw)
        except ValidationError as exc:
            errors.append(RowError(row=index, id=cid, error=_problems(exc)))
            continue
        except (ValueError, TypeError) as exc:
            errors.append(RowError(row=index, id=cid, error=str(exc)))
            continue
        if cam.id in seen:
            errors.append(RowError(row=index, id=cam.id, error="duplicate id in this import"))
            continue
        seen.add(cam.id)
        good.append((index, cam))
    return good, errors


def parse_csv(text: str) -> list[dict[str, Any]]:
    return [dict(r) for r in csv.DictReader(io.StringIO(text))]


def parse_geojson(text: str) -> list[dict[str, Any]]:
    data = json.loads(text)
    rows: list[dict[str, Any]] = []
    for feat in data.get("features", []) if isinstance(data, dict) else []:
        props = dict(feat.get("properties") or {})
        geom = feat.get("geometry") or {}
        if geom.get("type") == "Point":
            lon, lat = geom["coordinates"][:2]
            props.update(lat=lat, lon=lon)
        rows.append(props)
    return rows


def parse_import(body: str, content_type: str) -> list[dict[str, Any]]:
    """The rows of an import: GeoJSON for a JSON content type or a body that opens with `{`, else CSV."""
    try:
        if "json" in content_type or body.lstrip().startswith("{"):
            return parse_geojson(body)
        return parse_csv(body)
    # json and csv errors, and features of the wrong shape (a geometry that is not an object, ...)
    except (ValueError, KeyError, TypeError, AttributeError, csv.Error) as exc:
        raise UnparsableImport(f"cannot parse the import: {exc}") from None
