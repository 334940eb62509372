"""Event clips: workers upload them and report the ones they cannot make; incident viewers list and play them.

    PUT  /api/v1/clips/{digest}                        worker: the MP4 body, `meta` = ClipMeta JSON
    POST /api/v1/clips/failures                        worker: a ClipFailure
    GET  /api/v1/incidents/{id}/clips                  the incident's clips, each with a signed URL
    GET  /api/v1/incidents/{id}/clips/{clip_id}        the MP4, with HTTP Range; a bearer token or the
                                                       signed `exp`/`sig` of the list

Station scope as on every incident route: another station's incident or clip is 404, as one that never
existed. The upload's refusals come from `center_api.clips.intake` as they are (400, 413, 415, 507); its
body is bounded by `clip_max_bytes`, not by the API's `max_body_bytes`.
"""

from __future__ import annotations

import json
import os
import time
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response, status
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from starlette.requests import ClientDisconnect
from starlette.responses import FileResponse, MalformedRangeHeader
from starlette.responses import RangeNotSatisfiable as UnsatisfiableRange

from center_api.api.deps import IncidentViewerDep, ServicesDep, WorkerDep, route_errors
from center_api.api.incidents import IncidentId, visible_incident
from center_api.auth import (
    INCIDENT_ROLES,
    Principal,
    count_failed_credential,
    optional_principal,
    refuse_if_throttled,
)
from center_api.clips import signing
from center_api.clips.intake import ClipTooLarge
from center_api.clips.schemas import ClipFailureRecorded, ClipPublic, ClipStored
from center_api.errors import (
    BODY_ERRORS,
    BadRequest,
    Forbidden,
    NotFound,
    RangeNotSatisfiable,
    Unauthorized,
)
from center_api.services import CenterServices
from center_api.store import clips as index
from center_api.store.models import Clip
from contracts import ClipFailure, ClipMeta

router = APIRouter(tags=["clips"])
CLIPS_PREFIX = "/api/v1/clips/"  # the upload's body limit is its own (`center_api.limits`)
MAX_LISTED = 200  # clips listed for one incident

DigestPath = Annotated[
    str, Path(min_length=64, max_length=64, pattern=r"^[0-9a-f]{64}$", description="The clip's SHA-256 (hex)")
]
MetaQuery = Annotated[
    str,
    Query(
        min_length=2,
        max_length=32_768,  # 256 alert ids of 64 characters fit; the server's request line takes ~64 KiB
        description="The clip's `contracts.ClipMeta` as JSON (camera, alert ids and offsets, start, "
        "duration, bytes, codec, size); an invalid one is 422",
    ),
]
# The body is read as a stream, so FastAPI does not document it: say what it takes (an MP4; its content type
# is not checked, its `ftyp` box is).
_MP4 = {"schema": {"type": "string", "format": "binary", "description": "The MP4 file"}}
UPLOAD_BODY = {
    "requestBody": {"required": True, "content": {"video/mp4": _MP4, "application/octet-stream": _MP4}}
}


def _meta(raw: str) -> ClipMeta:
    try:
        return ClipMeta.model_validate_json(raw)
    except ValidationError as exc:
        # The meta is part of the request: answer as FastAPI answers an invalid parameter (422, its array).
        errors = json.loads(exc.json(include_input=False, include_url=False))
        raise RequestValidationError(
            [{**e, "loc": ["query", "meta", *e.get("loc", [])]} for e in errors]
        ) from None


@router.put(
    CLIPS_PREFIX + "{digest}",
    response_model=ClipStored,
    status_code=status.HTTP_201_CREATED,
    summary="Upload an event clip (worker); the same digest again is 200 and links its new alert ids",
    description="The body is the MP4 itself, streamed to disk while hashed and bounded by clip_max_bytes "
    "(413 clip_too_large). Refused: a body whose SHA-256 is not the path's (400 digest_mismatch), whose size "
    "is not meta.bytes (400 size_mismatch), that is not an MP4 (415 not_mp4), or that the station's clip "
    "quota cannot take after evicting clips of closed incidents (507 clip_quota_exceeded; its alerts then "
    "say so).",
    responses={
        200: {"model": ClipStored, "description": "Stored before: used again, new alert ids linked"},
        **route_errors(400, 404, 413, 415, 422, 507),
    },
    openapi_extra=UPLOAD_BODY,
)
async def upload_clip(
    digest: DigestPath,
    meta: MetaQuery,
    request: Request,
    response: Response,
    services: ServicesDep,
    principal: WorkerDep,
) -> ClipStored:
    parsed = _meta(meta)
    intake = services.clips
    if parsed.bytes > intake.max_bytes:
        intake.refuse("too_large")
        raise ClipTooLarge(f"clip of {parsed.bytes} bytes over clip_max_bytes ({intake.max_bytes})")
    try:
        filed = await intake.upload(digest, parsed, request.stream(), datetime.now(UTC))
    except ClientDisconnect:
        raise BadRequest("the upload ended before its body did", code="upload_incomplete") from None
    await services.hub.publish(filed.events)
    intake.raise_if_refused(filed)
    response.status_code = status.HTTP_201_CREATED if filed.created else status.HTTP_200_OK
    return ClipStored(id=filed.digest, incidents=filed.incidents)


@router.post(
    CLIPS_PREFIX + "failures",
    response_model=ClipFailureRecorded,
    status_code=status.HTTP_202_ACCEPTED,
    summary="Report clips a worker promised and cannot deliver (worker); their incidents say why",
    responses=route_errors(*BODY_ERRORS),
)
async def report_failure(
    report: ClipFailure, services: ServicesDep, principal: WorkerDep
) -> ClipFailureRecorded:
    incidents, events = await services.clips.failure(report, datetime.now(UTC))
    await services.hub.publish(events)
    return ClipFailureRecorded(alert_ids=len(set(report.alert_ids)), incidents=incidents)


def _public(
    services: CenterServices, incident_id: int, clip: Clip, offsets: list[float], expires: int
) -> ClipPublic:
    secret = services.settings.jwt_secret.get_secret_value()
    url = f"/api/v1/incidents/{incident_id}/clips/{clip.digest}?" + signing.signed_query(
        secret, incident_id, clip.digest, expires
    )
    return ClipPublic(
        id=clip.digest,
        camera_id=clip.camera_id,
        started_at=clip.started_at,
        duration_s=clip.duration_s,
        alert_offsets_s=offsets,
        bytes=clip.size,
        codec=clip.codec,
        width=clip.width,
        height=clip.height,
        short_reason=clip.short_reason,
        url=url,
        download_url=url + "&download=1",
        expires_at=datetime.fromtimestamp(expires, UTC),
    )


@router.get(
    "/api/v1/incidents/{incident_id}/clips",
    response_model=list[ClipPublic],
    summary="The incident's clips (oldest first, at most 200), each with a short-lived signed URL",
    responses=route_errors(404),
)
async def list_clips(
    incident_id: IncidentId, services: ServicesDep, principal: IncidentViewerDep
) -> list[ClipPublic]:
    await visible_incident(services, principal, incident_id)
    async with services.sessions() as session:
        found = await index.clips_of_incident(session, incident_id, MAX_LISTED)
    expires = int(time.time() + services.settings.clip_link_ttl_s)
    return [_public(services, incident_id, clip, offsets, expires) for clip, offsets in found]


class ClipFileResponse(FileResponse):
    """Starlette's file response (single and multiple ranges, suffix ranges, 416 with `Content-Range: bytes
    */size`, If-Range), except that a Range header it cannot parse is ignored and the whole file served, as
    RFC 9110 (14.2) says, instead of a bare 400."""

    @classmethod
    def _parse_range_header(cls, http_range: str, file_size: int) -> list[tuple[int, int]]:
        try:
            return super()._parse_range_header(http_range, file_size)
        except MalformedRangeHeader:
            return []


def _check_range(request: Request, size: int) -> None:
    """A range past the end is 416 with the center's error body (Starlette's own has none); with If-Range
    the response decides, as the validator may ask for the whole file instead."""
    asked = request.headers.get("range")
    if asked is None or "if-range" in request.headers:
        return
    try:
        ClipFileResponse._parse_range_header(asked, size)
    except UnsatisfiableRange:
        raise RangeNotSatisfiable(
            f"the range starts past the clip's {size} bytes", headers={"Content-Range": f"bytes */{size}"}
        ) from None


SigQuery = Annotated[
    str | None,
    Query(
        min_length=signing.SIG_CHARS,
        max_length=signing.SIG_CHARS,
        pattern=r"^[A-Za-z0-9_-]+$",
        description="Signature of a URL from the clip list (instead of a bearer token)",
    ),
]
ExpQuery = Annotated[
    int | None, Query(ge=0, le=2**53, description="Expiry (Unix seconds) of a URL from the clip list")
]
RANGE_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {"video/mp4": {}}, "description": "The whole clip"},
    206: {"content": {"video/mp4": {}}, "description": "The byte range asked for (Range: bytes=...)"},
}


async def _authorize(
    request: Request,
    services: CenterServices,
    principal: Principal | None,
    incident_id: int,
    clip_id: str,
    sig: str | None,
    exp: int | None,
) -> None:
    """A bearer token of a role that reads incidents, scoped to the incident's station; else the signature."""
    if principal is not None:
        if principal.role not in INCIDENT_ROLES:
            raise Forbidden(f"role {principal.role} may not do this", code="role_not_allowed")
        await visible_incident(services, principal, incident_id)
        return
    if sig is None and exp is None:
        raise Unauthorized("missing bearer token or signed clip link", code="missing_token")
    refuse_if_throttled(request)
    try:
        if sig is None or exp is None:
            raise signing.ClipLinkInvalid("a signed clip link needs exp and sig", code="clip_link_invalid")
        secret = services.settings.jwt_secret.get_secret_value()
        signing.check(secret, incident_id, clip_id, exp, sig, time.time())
    except Unauthorized:
        count_failed_credential(request)
        raise


@router.get(
    "/api/v1/incidents/{incident_id}/clips/{clip_id}",
    response_class=Response,
    summary="One clip of the incident (video/mp4, HTTP Range); ?download=1 as an attachment",
    description="Takes a bearer token (header or ?token=) of a role that reads incidents, or the signed exp "
    "and sig of a URL from the clip list, which need no token. Range: bytes=0-99, a middle range, a suffix "
    "(bytes=-500) and several ranges are 206; one past the end is 416.",
    responses={**RANGE_RESPONSES, **route_errors(404, 416)},
)
async def get_clip(
    incident_id: IncidentId,
    clip_id: DigestPath,
    request: Request,
    services: ServicesDep,
    principal: Annotated[Principal | None, Depends(optional_principal)],
    sig: SigQuery = None,
    exp: ExpQuery = None,
    download: Annotated[bool, Query(description="Serve as an attachment (Content-Disposition)")] = False,
) -> Response:
    await _authorize(request, services, principal, incident_id, clip_id, sig, exp)
    async with services.sessions() as session:
        clip = await index.clip_of_incident(session, incident_id, clip_id)
    if clip is None:
        raise NotFound("no such clip of this incident", code="clip_not_found")
    path = services.clips.store.path(clip_id)
    try:
        stat = os.stat(path)
    except FileNotFoundError:
        raise NotFound("the clip's file is missing from the store", code="clip_missing") from None
    _check_range(request, stat.st_size)
    return ClipFileResponse(
        path,
        media_type="video/mp4",
        stat_result=stat,
        filename=f"incident-{incident_id}-clip-{clip_id[:12]}.mp4" if download else None,
        headers={"ETag": f'"{clip_id}"', "Cache-Control": "private, max-age=300"},
    )
