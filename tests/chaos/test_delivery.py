"""Delivery under faults: every alert handed to the real publisher is stored exactly once, whatever dies.

Each case runs steady load through the publisher child against two center replicas, injects a few malformed
entries, applies one fault (`tests.chaos.faults`), lets the load go on, stops it, waits until the system
drained and checks the whole store and bus (`tests.chaos.verdict`): none lost, none twice, counts and rollup
consistent, nothing pending, exactly the injected entries dead-lettered, both replicas answering. The cases
share one stack; each first restarts whatever an earlier one left down.
"""

from __future__ import annotations

import pytest

from tests.chaos.faults import FAULTS, run_trial
from tests.chaos.harness import ChaosStack

pytestmark = pytest.mark.integration


@pytest.mark.timeout(120)
@pytest.mark.parametrize("fault", list(FAULTS), ids=lambda fault: fault.replace(" -9", "").replace(" ", "-"))
def test_nothing_handed_over_is_lost_or_stored_twice(chaos_stack: ChaosStack, fault: str) -> None:
    trial = run_trial(chaos_stack, fault)
    assert trial.problems == [], chaos_stack.logs()
    assert trial.handed >= 200 and trial.stored == trial.handed and trial.lost == 0
