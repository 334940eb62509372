"""The incident state machine, folding keys, escalation timing and tokens (pure, no servers)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import jwt
import pytest

from center_api.auth import Role, TokenError, decode_token, issue_token
from center_api.workflow import TransitionError, check_transition, fold_key, is_escalation_due

T0 = datetime(2026, 1, 1, tzinfo=UTC)
LIMITS = {1: 60.0, 2: 180.0}


@pytest.mark.parametrize(
    ("src", "dst", "ok"),
    [
        ("new", "acknowledged", True),
        ("acknowledged", "dispatched", True),
        ("dispatched", "resolved", True),
        ("dispatched", "false_alarm", True),
        ("acknowledged", "false_alarm", True),
        ("acknowledged", "resolved", True),
        ("new", "resolved", False),
        ("new", "dispatched", False),
        ("new", "false_alarm", False),
        ("resolved", "acknowledged", False),
        ("false_alarm", "new", False),
        ("dispatched", "acknowledged", False),
        ("new", "nonsense", False),
    ],
)
def test_transitions(src: str, dst: str, ok: bool) -> None:
    if ok:
        assert check_transition(src, dst) == dst
    else:
        with pytest.raises(TransitionError):
            check_transition(src, dst)


def test_fold_key() -> None:
    assert fold_key("cam", "r", "z", "intrusion") == fold_key("cam", "r", "z", "loitering")
    assert fold_key("cam", None, None, "tamper") != fold_key("cam", None, None, "camera_offline")
    assert fold_key("cam", "r", "z1", "intrusion") != fold_key("cam", "r", "z2", "intrusion")


@pytest.mark.parametrize(
    ("status", "severity", "age_s", "escalated", "due"),
    [
        ("new", 1, 59, False, False),
        ("new", 1, 60, False, True),
        ("new", 2, 120, False, False),
        ("new", 2, 181, False, True),
        ("new", 1, 600, True, False),  # once only
        ("acknowledged", 1, 600, False, False),
        ("new", 3, 10_000, False, False),  # no limit configured
    ],
)
def test_escalation_due(status: str, severity: int, age_s: float, escalated: bool, due: bool) -> None:
    now = T0 + timedelta(seconds=age_s)
    assert is_escalation_due(status, severity, T0, T0 if escalated else None, now, LIMITS) is due


def test_token_round_trip() -> None:
    tok = issue_token("s" * 32, subject="alice", role="operator", station_id="st-1")
    p = decode_token("s" * 32, tok)
    assert (p.subject, p.role, p.station_id, p.station_scope) == ("alice", Role.operator, "st-1", "st-1")
    city = decode_token("s" * 32, issue_token("s" * 32, subject="c", role="city_command", station_id=None))
    assert city.station_scope is None and city.may_see_station("anything")


@pytest.mark.parametrize(
    "bad",
    [
        lambda: issue_token("x" * 32, subject="a", role="operator", station_id=None),
        lambda: issue_token("x" * 32, subject="a", role="janitor", station_id="s"),
    ],
)
def test_token_issue_refuses(bad) -> None:
    with pytest.raises(ValueError):
        bad()


def test_token_decode_refuses() -> None:
    tok = issue_token("a" * 32, subject="a", role="operator", station_id="s")
    with pytest.raises(TokenError):
        decode_token("b" * 32, tok)
    expired = jwt.encode(
        {"sub": "a", "role": "operator", "station": "s", "exp": 1}, "a" * 32, algorithm="HS256"
    )
    with pytest.raises(TokenError):
        decode_token("a" * 32, expired)
    no_station = jwt.encode({"sub": "a", "role": "operator", "exp": 2**40}, "a" * 32, algorithm="HS256")
    with pytest.raises(TokenError):
        decode_token("a" * 32, no_station)
