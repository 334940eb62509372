"""The incident workflow as pure rules: statuses, allowed transitions, SLA clocks and escalation.

    new -> acknowledged -> dispatched -> resolved | false_alarm
                        \\-> resolved | false_alarm   (closed without dispatch)

Everything else is refused with `TransitionError` (the API answers 409). No I/O and no clock reads here:
`now` is passed in.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from enum import StrEnum

from center_api.errors import Conflict


class Status(StrEnum):
    new = "new"
    acknowledged = "acknowledged"
    dispatched = "dispatched"
    resolved = "resolved"
    false_alarm = "false_alarm"


OPEN_STATUSES = frozenset({Status.new, Status.acknowledged, Status.dispatched})
CLOSED_STATUSES = frozenset({Status.resolved, Status.false_alarm})

TRANSITIONS: Mapping[Status, frozenset[Status]] = {
    Status.new: frozenset({Status.acknowledged}),
    Status.acknowledged: frozenset({Status.dispatched, Status.resolved, Status.false_alarm}),
    Status.dispatched: frozenset({Status.resolved, Status.false_alarm}),
    Status.resolved: frozenset(),
    Status.false_alarm: frozenset(),
}

# Which timestamp column a transition into a status sets.
STAMP_COLUMN: Mapping[Status, str] = {
    Status.acknowledged: "acknowledged_at",
    Status.dispatched: "dispatched_at",
    Status.resolved: "resolved_at",
    Status.false_alarm: "resolved_at",
}


class TransitionError(Conflict):
    """A transition the workflow does not allow (409 `transition_not_allowed`)."""

    code = "transition_not_allowed"


def allowed_transitions(current: str) -> tuple[Status, ...]:
    """The statuses `current` may move to, in workflow order (the API lists them for the console)."""
    targets = TRANSITIONS[Status(current)]
    return tuple(status for status in Status if status in targets)


def check_transition(current: str, target: str) -> Status:
    """Return the target status if `current -> target` is allowed, else raise `TransitionError`."""
    try:
        src, dst = Status(current), Status(target)
    except ValueError as exc:
        raise TransitionError(str(exc)) from None
    if dst not in TRANSITIONS[src]:
        allowed = ", ".join(sorted(TRANSITIONS[src])) or "none (closed)"
        raise TransitionError(f"cannot go from {src} to {dst}; allowed: {allowed}")
    return dst


def fold_key(camera_id: str, rule: str | None, zone: str | None, kind: str) -> str:
    """Repeat alerts of the same (camera, rule, zone) fold into the open incident of this key."""
    return f"{camera_id}|{rule or kind}|{zone or ''}"


def ack_deadline(created_at: datetime, severity: int, limits: Mapping[int, float]) -> datetime | None:
    limit = limits.get(severity)
    return None if limit is None else created_at + timedelta(seconds=limit)


def is_escalation_due(
    status: str,
    severity: int,
    created_at: datetime,
    escalated_at: datetime | None,
    now: datetime,
    limits: Mapping[int, float],
) -> bool:
    """An incident still `new` past its severity's time-to-acknowledge escalates, once."""
    if status != Status.new or escalated_at is not None:
        return False
    deadline = ack_deadline(created_at, severity, limits)
    return deadline is not None and now >= deadline


def sla_seconds(start: datetime, end: datetime | None) -> float | None:
    return None if end is None else max(0.0, (end - start).total_seconds())
