"""One incident model: the writer's rows are `Incident`s of every column, and the public model reads them,
allowed transitions included (pure, no servers)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from center_api.grid.locate import Placement
from center_api.schemas import FeedEventType, FeedMessage, IncidentPublic
from center_api.store.models import Incident
from center_api.store.queries import incident_public
from center_api.store.rows import (
    FOLD_COLUMNS,
    INCIDENTS,
    INSERT_COLUMNS,
    fold_into,
    fold_params,
    insert_params,
    new_incident,
)
from center_api.workflow import OPEN_STATUSES, TRANSITIONS, Status
from contracts import Alert, AlertKind, DetectedObject, GeoPoint

T0 = datetime(2026, 3, 1, 8, tzinfo=UTC)
PLACE = Placement("c1", "cm1", "s1", "d1", "st-a")
PERSON = DetectedObject(cls="person", confidence=0.91, box=(0.1, 0.2, 0.3, 0.6), track_id=7)


def make_alert(**kw: object) -> Alert:
    fields: dict[str, object] = dict(
        kind=AlertKind.intrusion, severity=2, camera_id="cam-1", captured_at=T0, rule="r1", zone="z1"
    )
    fields.update(kw)
    return Alert(**fields)  # type: ignore[arg-type]


def stored(status: Status = Status.new) -> Incident:
    """An incident as the writer returns it: id assigned, with a snapshot, a location and one object."""
    alert = make_alert(location=GeoPoint(lat=36.61, lon=101.77), objects=(PERSON,))
    incident = new_incident(alert, PLACE, "ab" * 32, "k", T0)
    incident.id = 42
    incident.status = status.value
    return incident


def test_new_incident_sets_every_column_and_nothing_else() -> None:
    incident = new_incident(make_alert(), PLACE, None, "cam-1|r1|z1", T0)
    values = {k: v for k, v in vars(incident).items() if not k.startswith("_sa_")}
    assert set(values) == set(INCIDENTS.c.keys())
    assert set(insert_params(incident)) == set(INCIDENTS.c.keys()) - {"id"} == set(INSERT_COLUMNS)


def test_fold_writes_back_what_it_changes() -> None:
    incident = new_incident(make_alert(severity=3), PLACE, None, "k", T0)
    later = make_alert(severity=1, captured_at=T0 + timedelta(seconds=5), objects=(PERSON,), detail="again")
    fold_into(incident, later, "cd" * 32)
    assert set(FOLD_COLUMNS) <= set(INCIDENTS.c.keys())
    assert fold_params(incident) == {
        "b_id": 0,
        "b_count": 2,
        "b_last_seen": later.captured_at,
        "b_first_seen": T0,
        "b_objects": [PERSON.model_dump(mode="json")],
        "b_detail": "again",
        "b_snapshot": "cd" * 32,
        "b_severity": 1,
    }


def test_fold_of_an_earlier_alert_moves_only_first_seen_and_severity() -> None:
    first = make_alert(severity=2, detail="first", objects=(PERSON,))
    incident = new_incident(first, PLACE, "ab" * 32, "k", T0)
    fold_into(incident, make_alert(severity=4, captured_at=T0 - timedelta(hours=1), detail="late"), "cd" * 32)
    fold_into(incident, make_alert(severity=1, captured_at=T0 - timedelta(minutes=5)), None)
    assert (incident.count, incident.first_seen, incident.last_seen) == (3, T0 - timedelta(hours=1), T0)
    assert (incident.severity, incident.detail, incident.snapshot) == (1, "first", "ab" * 32)
    assert incident.objects == [PERSON.model_dump(mode="json")]


@pytest.mark.parametrize("status", list(Status))
def test_public_incident_lists_the_workflow_transitions(status: Status) -> None:
    public = incident_public(stored(status))
    assert public.status is status
    assert set(public.allowed_transitions) == TRANSITIONS[status]
    assert public.allowed_transitions == [s for s in Status if s in TRANSITIONS[status]]  # in workflow order
    assert public.open is (status in OPEN_STATUSES)


def test_public_incident_derives_url_location_and_escalation() -> None:
    incident = stored()
    public = incident_public(incident)
    assert public.snapshot_url == "/api/v1/incidents/42/snapshot"
    assert public.location == GeoPoint(lat=36.61, lon=101.77)
    assert public.objects == [PERSON] and public.escalated is False
    incident.snapshot, incident.lat, incident.escalated_at = None, None, T0
    again = incident_public(incident)
    assert (again.snapshot_url, again.location, again.escalated) == (None, None, True)


def test_public_incident_reads_back_from_its_json() -> None:
    """Replicas relay feed messages as JSON: what the model writes, it reads back unchanged."""
    message = FeedMessage(event=FeedEventType.created, event_id=3, incident=incident_public(stored()))
    assert FeedMessage.model_validate_json(message.model_dump_json()) == message
    schema = IncidentPublic.model_json_schema(mode="serialization")
    assert schema["properties"]["objects"]["items"] == {"$ref": "#/$defs/DetectedObject"}
    assert "cls" in schema["$defs"]["DetectedObject"]["properties"]
