"""The console's scripts hold no copy of the workflow: what an incident may become, and whether it is open,
come with the incident from the API (`allowed_transitions`, `open`)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from center_api.workflow import Status

STATIC = Path(__file__).resolve().parents[2] / "center_api" / "console" / "static"
SCRIPTS = sorted(STATIC.glob("*.js"))
STATUS = "|".join(s.value for s in Status)
# `acknowledged: [` (a status keyed to a list of statuses), or a list or set of two or more statuses.
TABLE_ENTRY = re.compile(rf"\b({STATUS})\b\s*:\s*\[")
STATUS_LIST = re.compile(rf"""["']({STATUS})["']\s*,\s*["']({STATUS})["']""")


def test_there_are_scripts_to_check() -> None:
    assert {"console.js", "util.js"} <= {p.name for p in SCRIPTS}


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_no_script_holds_a_transition_table(script: Path) -> None:
    text = script.read_text()
    assert not TABLE_ENTRY.search(text), TABLE_ENTRY.search(text)
    assert not STATUS_LIST.search(text), STATUS_LIST.search(text)
    assert "TRANSITIONS" not in text


def test_console_reads_the_incidents_own_transitions() -> None:
    text = (STATIC / "console.js").read_text()
    assert "incident.allowed_transitions" in text
    assert "o.class" not in text  # the objects' class field is `cls`, as the API documents it
