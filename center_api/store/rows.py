"""Incidents as the batch writer handles them: `Incident` instances that never join a session, written by
Core statements whose column lists come from `Incident.__table__` (no ORM unit of work per alert, and no
field listed twice).

The writer reads the open incidents of a batch as rows of every column (`loaded`), makes new ones from
alerts (`new_incident`), folds repeats into either (`fold_into`), then inserts the new ones (`insert_params`)
and updates the folded ones (`FOLD_UPDATE` with `fold_params`) in one statement each.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Row, RowMapping, Table, bindparam, update
from sqlalchemy.orm import attributes, configure_mappers

from center_api.grid.locate import Placement
from center_api.store.models import Incident
from center_api.workflow import STAMP_COLUMN, Status
from contracts import Alert

# Declarative types `__table__` as FromClause; for a mapped class it is always a Table.
INCIDENTS = cast(Table, Incident.__table__)
INSERT_COLUMNS = tuple(column.key for column in INCIDENTS.c if not column.primary_key)
# What `fold_into` changes, and so what a fold writes back.
FOLD_COLUMNS = ("count", "last_seen", "first_seen", "objects", "detail", "snapshot", "severity")
FOLD_UPDATE = (
    update(INCIDENTS)
    .where(INCIDENTS.c.id == bindparam("b_id"))
    .values({name: bindparam(f"b_{name}") for name in FOLD_COLUMNS})
)


# `_incident` bypasses `Incident.__init__`, which is what configures the mappers on first use.
configure_mappers()
_MANAGER = Incident.__mapper__.class_manager


def _incident(values: Mapping[str, Any] | RowMapping) -> Incident:
    """An `Incident` holding `values` (every column) as its loaded state, built as SQLAlchemy's loader builds
    the instances it loads. `Incident(**values)` costs about twenty times as much (an attribute event per
    column), and this runs for every incident of every batch."""
    incident = cast(Incident, _MANAGER.new_instance())
    attributes.instance_dict(incident).update(values)
    return incident


def loaded(row: Row[Any]) -> Incident:
    """An `Incident` from a Core row of every column of the table (`select(INCIDENTS)`)."""
    return _incident(row._mapping)


def insert_params(incident: Incident) -> dict[str, Any]:
    values = attributes.instance_dict(incident)
    return {name: values[name] for name in INSERT_COLUMNS}


def fold_params(incident: Incident) -> dict[str, Any]:
    values = attributes.instance_dict(incident)
    return {"b_id": incident.id, **{f"b_{name}": values[name] for name in FOLD_COLUMNS}}


def objects_of(alert: Alert) -> list[dict[str, Any]]:
    return [o.model_dump(mode="json") for o in alert.objects]


# The times a new incident has not reached yet: every workflow stamp, and escalation.
_NOT_YET = dict.fromkeys(sorted({*STAMP_COLUMN.values(), "escalated_at"}))


def new_incident(
    alert: Alert, placement: Placement, snapshot: str | None, key: str, now: datetime
) -> Incident:
    """The incident a first alert opens; `id` is 0 until the insert returns it."""
    a, p = alert, placement
    return _incident(
        dict(
            id=0,
            alert_id=a.id,
            kind=a.kind.value,
            severity=a.severity,
            status=Status.new.value,
            camera_id=a.camera_id,
            site_id=a.site_id,
            rule=a.rule,
            zone=a.zone,
            cell_id=p.cell_id,
            community_id=p.community_id,
            street_id=p.street_id,
            district_id=p.district_id,
            station_id=p.station_id,
            lat=a.location.lat if a.location else None,
            lon=a.location.lon if a.location else None,
            first_seen=a.captured_at,
            last_seen=a.captured_at,
            count=1,
            objects=objects_of(a),
            detail=a.detail,
            snapshot=snapshot,
            created_at=now,
            open_key=key,
            **_NOT_YET,
        )
    )


def fold_into(incident: Incident, alert: Alert, snapshot: str | None) -> None:
    """A repeat alert: count it; the newest gives objects, detail and snapshot; keep the worst severity.

    Sets only what changes: this runs per alert, and each set of a mapped attribute costs an event."""
    at = alert.captured_at
    incident.count = (incident.count or 0) + 1
    if at >= incident.last_seen:
        incident.last_seen = at
        incident.objects = objects_of(alert)
        if alert.detail:
            incident.detail = alert.detail
        if snapshot:
            incident.snapshot = snapshot
    elif at < incident.first_seen:
        incident.first_seen = at
    if alert.severity < incident.severity:
        incident.severity = alert.severity
