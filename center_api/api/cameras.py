"""Camera registry for integrators: CRUD, bulk import (CSV/GeoJSON, dry run), health; URLs redacted.

Errors are the tree's (`center_api.errors`): an unknown or out-of-scope camera 404, an id that exists 409,
a fixed cell the grid lacks 422 `unknown_cell` (from the registry), an unparsable import 400."""

from __future__ import annotations

import asyncio
import json
from typing import Annotated

from fastapi import APIRouter, Query, Request, status
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from center_api.api.deps import CameraManagerDep, CameraViewerDep, ServicesDep, route_errors
from center_api.api.params import CAMERA_ID_PATTERN, CameraIdPath
from center_api.auth import Principal, Role
from center_api.cameras.bulk import ImportLimits, ImportTooLarge, parse_import, parse_rows
from center_api.cameras.registry import CameraRecord, UnknownCell
from center_api.cameras.schemas import (
    CameraPage,
    CameraPatch,
    CameraPublic,
    CredentialsPublic,
    ImportReport,
    RowError,
)
from center_api.errors import BODY_ERRORS, Conflict, Forbidden, NotFound, Unprocessable
from center_api.schemas import Printable
from center_api.services import CenterServices
from contracts import Camera, StreamHealth, health_key

router = APIRouter(prefix="/api/v1/cameras", tags=["cameras"])
IMPORT_PATH = "/api/v1/cameras/import"  # its body limit is its own (`center_api.limits`)


async def _health(services: CenterServices, ids: list[str]) -> dict[str, StreamHealth]:
    if not ids:
        return {}
    try:
        values = await services.redis.mget([health_key(i) for i in ids])
    except (RedisConnectionError, RedisTimeoutError, OSError):
        return {}
    out: dict[str, StreamHealth] = {}
    for cid, raw in zip(ids, values, strict=True):
        if raw:
            try:
                out[cid] = StreamHealth.model_validate_json(raw)
            except ValidationError:
                continue
    return out


def _public(rec: CameraRecord, health: StreamHealth | None) -> CameraPublic:
    c = rec.camera
    return CameraPublic(
        id=c.id,
        name=c.name,
        url=c.url,  # without credentials (the contract splits them off on the way in)
        credentials=CredentialsPublic.model_validate(c.credentials.summary()) if c.credentials else None,
        site_type=c.site_type,
        site_id=c.site_id,
        location=c.location,
        cell_id=rec.cell_id,
        cell_fixed=rec.cell_fixed,
        station_id=rec.station_id,
        sample_fps=c.sample_fps,
        rules=[r.model_dump(mode="json") for r in c.rules],
        enabled=c.enabled,
        updated_at=rec.updated_at,
        health=health,
    )


def _scope(principal: Principal) -> str | None:
    return principal.station_id if principal.role in (Role.operator, Role.station_admin) else None


@router.get(
    "",
    response_model=CameraPage,
    summary="Cameras (operators: their station's), with health",
    responses=route_errors(),
)
async def list_cameras(
    services: ServicesDep,
    principal: CameraViewerDep,
    cell: Annotated[Printable | None, Query(max_length=128, description="Grid cell id")] = None,
    station: Annotated[Printable | None, Query(max_length=64, description="Police station id")] = None,
    cursor: Annotated[
        str | None,
        Query(
            max_length=128, pattern=CAMERA_ID_PATTERN, description="The `next_cursor` of the previous page"
        ),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> CameraPage:
    scope = _scope(principal)
    if scope is not None and station not in (None, scope):
        raise Forbidden("token is scoped to another station", code="station_out_of_scope")
    records = await services.cameras.list(
        station_id=scope or station, cell_id=cell, after=cursor, limit=limit + 1
    )
    more = len(records) > limit
    records = records[:limit]
    health = await _health(services, [r.camera.id for r in records])
    return CameraPage(
        items=[_public(r, health.get(r.camera.id)) for r in records],
        next_cursor=records[-1].camera.id if more and records else None,
    )


def _no_camera() -> NotFound:
    return NotFound("no such camera", code="camera_not_found")


@router.get("/{camera_id}", response_model=CameraPublic, responses=route_errors(404))
async def get_camera(
    camera_id: CameraIdPath, services: ServicesDep, principal: CameraViewerDep
) -> CameraPublic:
    rec = await services.cameras.get(camera_id)
    scope = _scope(principal)
    # Out of scope looks the same as absent.
    if rec is None or (scope is not None and rec.station_id != scope):
        raise _no_camera()
    return _public(rec, (await _health(services, [camera_id])).get(camera_id))


async def _save(services: CenterServices, camera: Camera) -> CameraPublic:
    (rec,) = await services.cameras.save([camera])  # UnknownCell (422) as it is
    return _public(rec, None)


@router.post(
    "",
    response_model=CameraPublic,
    status_code=status.HTTP_201_CREATED,
    responses=route_errors(*BODY_ERRORS, 409, 422),
)
async def create_camera(camera: Camera, services: ServicesDep, principal: CameraManagerDep) -> CameraPublic:
    if await services.cameras.get(camera.id) is not None:
        raise Conflict("camera id exists; use PUT to replace it", code="camera_exists")
    return await _save(services, camera)


@router.put(
    "/{camera_id}",
    response_model=CameraPublic,
    summary="Replace a camera (create if absent)",
    responses=route_errors(*BODY_ERRORS, 404, 422),
)
async def put_camera(
    camera_id: CameraIdPath, camera: Camera, services: ServicesDep, principal: CameraManagerDep
) -> CameraPublic:
    if camera.id != camera_id:
        raise Unprocessable("body id differs from the path", code="id_mismatch")
    return await _save(services, camera)


@router.patch(
    "/{camera_id}",
    response_model=CameraPublic,
    summary="Change some fields of a camera",
    responses=route_errors(*BODY_ERRORS, 404, 422),
)
async def patch_camera(
    camera_id: CameraIdPath,
    services: ServicesDep,
    principal: CameraManagerDep,
    changes: CameraPatch,  # type: ignore[valid-type]  # a model derived from Camera's fields
) -> CameraPublic:
    rec = await services.cameras.get(camera_id)
    if rec is None:
        raise _no_camera()
    data = json.loads(rec.camera.model_dump_json())
    # JSON values (credentials in clear, as the stored dump has them) of the fields given, nothing else
    given = changes.model_dump(mode="json", exclude_unset=True)  # type: ignore[attr-defined]
    if given.pop("id", camera_id) != camera_id:
        raise Unprocessable("body id differs from the path", code="id_mismatch")
    data.update(given)
    try:
        camera = Camera.model_validate(data)
    except ValidationError as exc:
        # The merged camera is the request's body as the registry sees it: answer as FastAPI answers an
        # invalid body (422 with the error array), not as a domain error.
        raise RequestValidationError(json.loads(exc.json(include_input=False))) from None
    return await _save(services, camera)


@router.delete("/{camera_id}", status_code=status.HTTP_204_NO_CONTENT, responses=route_errors(404))
async def delete_camera(camera_id: CameraIdPath, services: ServicesDep, principal: CameraManagerDep) -> None:
    if not await services.cameras.delete(camera_id):
        raise _no_camera()


# The import reads its body itself (streamed, bounded), so FastAPI does not document it: say what it takes.
IMPORT_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "text/csv": {
                "schema": {
                    "type": "string",
                    "description": "A header line naming the columns (id, url; name, site_type, site_id, "
                    "lat, lon, cell_id, sample_fps, enabled), then one camera a record",
                }
            },
            "application/geo+json": {
                "schema": {
                    "type": "object",
                    "required": ["type", "features"],
                    "properties": {
                        "type": {"type": "string", "enum": ["FeatureCollection"]},
                        "features": {
                            "type": "array",
                            # Any item: one that is not a Point feature is refused in the report, by row.
                            "items": {
                                "description": "A Feature with a Point geometry ([lon, lat]); its properties "
                                "are the CSV columns",
                            },
                        },
                    },
                }
            },
        },
    }
}


async def _import_body(request: Request, max_bytes: int) -> bytes:
    """The body, read as a stream and no further than `max_bytes` (`ImportTooLarge` past it)."""
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > max_bytes:
        raise ImportTooLarge(f"import over {max_bytes} bytes (import_max_bytes)")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > max_bytes:
            raise ImportTooLarge(f"import over {max_bytes} bytes (import_max_bytes)")
    return bytes(body)


@router.post(
    IMPORT_PATH.removeprefix(router.prefix),
    response_model=ImportReport,
    summary="Bulk import from CSV (text/csv) or GeoJSON (application/geo+json); ?dry_run=true validates",
    description="The body is UTF-8 (a record with other bytes is refused in the report, by its line). "
    "Bounded by the settings import_max_bytes (413 import_too_large), import_max_rows (413 "
    "import_too_many_rows) and, for CSV, import_max_line_chars per record (413 import_line_too_long); "
    "a body that is not CSV or a GeoJSON FeatureCollection of Points: 400 unparsable_import.",
    responses=route_errors(400, 413),
    openapi_extra=IMPORT_BODY,
)
async def import_cameras(
    request: Request, services: ServicesDep, principal: CameraManagerDep, dry_run: bool = False
) -> ImportReport:
    s = request.app.state.settings
    limits = ImportLimits(s.import_max_bytes, s.import_max_rows, s.import_max_line_chars)
    body = await _import_body(request, limits.max_bytes)
    # UnparsableImport (400) and the limits' errors (413) as they are. Parsing and validating 20,000 rows
    # takes seconds of CPU: in a thread, so that the event loop goes on serving everyone else meanwhile.
    rows = await asyncio.to_thread(parse_import, body, request.headers.get("content-type", ""), limits)
    del body
    good, errors = await asyncio.to_thread(parse_rows, rows)
    registry = services.cameras
    valid: list[Camera] = []
    cells: dict[str, int] = {}
    for n, (index, cam) in enumerate(good, start=1):
        if n % 500 == 0:
            await asyncio.sleep(0)  # placing is CPU on the loop (the router's state): let others in between
        try:
            cell_id, _, _ = registry.placement(cam)
        except UnknownCell as exc:
            errors.append(RowError(row=index, id=cam.id, error=str(exc)))
            continue
        cells[cell_id] = cells.get(cell_id, 0) + 1
        valid.append(cam)
    errors.sort(key=lambda e: e.row)
    report = ImportReport(dry_run=dry_run, total=len(rows), valid=len(valid), errors=errors, cells=cells)
    if not dry_run and valid:
        existing = {r.camera.id for r in await registry.list(limit=10**9)} if valid else set()
        for start in range(0, len(valid), 1000):
            await registry.save(valid[start : start + 1000])
        report.updated = sum(1 for c in valid if c.id in existing)
        report.created = len(valid) - report.updated
    return report
