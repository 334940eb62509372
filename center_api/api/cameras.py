"""Camera registry for integrators: CRUD, bulk import (CSV/GeoJSON, dry run), health; URLs redacted."""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, Body, HTTPException, Query, Request, status
from pydantic import ValidationError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from center_api.auth import CameraManager, CameraReader, Principal, Role
from center_api.cameras.bulk import parse_csv, parse_geojson, parse_rows
from center_api.cameras.registry import CameraRecord, CameraRegistry, UnknownCell
from center_api.cameras.schemas import CameraPage, CameraPublic, ImportReport, RowError
from center_api.state import CenterState, StateDep
from contracts import Camera, StreamHealth, health_key

router = APIRouter(prefix="/api/v1/cameras", tags=["cameras"])


def _registry(state: CenterState) -> CameraRegistry:
    assert isinstance(state.cameras, CameraRegistry)
    return state.cameras


async def _health(state: CenterState, ids: list[str]) -> dict[str, StreamHealth]:
    if not ids or state.redis is None:
        return {}
    try:
        values = await state.redis.mget([health_key(i) for i in ids])
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
        url=c.redacted_url,
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


@router.get("", response_model=CameraPage, summary="Cameras (operators: their station's), with health")
async def list_cameras(
    state: StateDep,
    principal: CameraReader,
    cell: str | None = None,
    station: str | None = None,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> CameraPage:
    scope = _scope(principal)
    if scope is not None and station not in (None, scope):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "token is scoped to another station")
    records = await _registry(state).list(
        station_id=scope or station, cell_id=cell, after=cursor, limit=limit + 1
    )
    more = len(records) > limit
    records = records[:limit]
    health = await _health(state, [r.camera.id for r in records])
    return CameraPage(
        items=[_public(r, health.get(r.camera.id)) for r in records],
        next_cursor=records[-1].camera.id if more and records else None,
    )


@router.get("/{camera_id}", response_model=CameraPublic)
async def get_camera(camera_id: str, state: StateDep, principal: CameraReader) -> CameraPublic:
    rec = await _registry(state).get(camera_id)
    scope = _scope(principal)
    if rec is None or (scope is not None and rec.station_id != scope):
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such camera")
    return _public(rec, (await _health(state, [camera_id])).get(camera_id))


async def _save(state: CenterState, camera: Camera) -> CameraPublic:
    try:
        (rec,) = await _registry(state).save([camera])
    except UnknownCell as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None
    return _public(rec, None)


@router.post("", response_model=CameraPublic, status_code=status.HTTP_201_CREATED)
async def create_camera(camera: Camera, state: StateDep, principal: CameraManager) -> CameraPublic:
    if await _registry(state).get(camera.id) is not None:
        raise HTTPException(status.HTTP_409_CONFLICT, "camera id exists; use PUT to replace it")
    return await _save(state, camera)


@router.put("/{camera_id}", response_model=CameraPublic, summary="Replace a camera (create if absent)")
async def put_camera(
    camera_id: str, camera: Camera, state: StateDep, principal: CameraManager
) -> CameraPublic:
    if camera.id != camera_id:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "body id differs from the path")
    return await _save(state, camera)


@router.patch("/{camera_id}", response_model=CameraPublic, summary="Change some fields of a camera")
async def patch_camera(
    camera_id: str, state: StateDep, principal: CameraManager, changes: Annotated[dict[str, object], Body()]
) -> CameraPublic:
    rec = await _registry(state).get(camera_id)
    if rec is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such camera")
    data = json.loads(rec.camera.model_dump_json())
    data.update({k: v for k, v in changes.items() if k != "id"})
    try:
        camera = Camera.model_validate(data)
    except ValidationError as exc:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT, json.loads(exc.json(include_input=False))
        ) from None
    return await _save(state, camera)


@router.delete("/{camera_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_camera(camera_id: str, state: StateDep, principal: CameraManager) -> None:
    if not await _registry(state).delete(camera_id):
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such camera")


@router.post(
    "/import",
    response_model=ImportReport,
    summary="Bulk import from CSV (text/csv) or GeoJSON (application/geo+json); ?dry_run=true validates",
)
async def import_cameras(
    request: Request, state: StateDep, principal: CameraManager, dry_run: bool = False
) -> ImportReport:
    body = (await request.body()).decode("utf-8-sig", errors="replace")
    ctype = request.headers.get("content-type", "")
    try:
        rows = parse_geojson(body) if "json" in ctype or body.lstrip().startswith("{") else parse_csv(body)
    except (ValueError, KeyError, TypeError) as exc:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, f"cannot parse the import: {exc}") from None
    good, errors = parse_rows(rows)
    registry = _registry(state)
    valid: list[Camera] = []
    cells: dict[str, int] = {}
    for index, cam in good:
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
