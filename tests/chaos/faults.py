"""The delivery faults, and one trial: load, a fault in the middle of it, recovery, drain, verdict.

Each fault runs while the publisher child keeps publishing, and returns when the fault has ended (the killed
part restarted, the paused one resumed): `run_trial` measures the time to recover from there, until every
alert handed over before that moment is stored. The test (`test_delivery.py`) runs each once; the benchmark
(`bench/chaos.py`) runs them repeatedly and longer.
"""

from __future__ import annotations

import random
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass

from tests.chaos.harness import CLAIM_IDLE_MS, ChaosStack, wait_for

DOWN_S = 1.0  # how long a killed part stays down while the load goes on
FROZEN_S = 0.1  # a transaction idle this long in a stopped replica is taken for that replica's
CLAIM_EVERY_S = 5.0  # the center's claim loop period (CenterSettings.claim_every_s, not set from the env)


def kill_redis(stack: ChaosStack) -> None:
    stack.kill_redis()
    time.sleep(DOWN_S)
    stack.start_redis()


def kill_replicas(stack: ChaosStack) -> None:
    """One replica, back under its own consumer name, then the other."""
    for name in stack.replicas:
        stack.replicas[name].kill9()
        time.sleep(DOWN_S)
        stack.start_replica(name)


def kill_publisher(stack: ChaosStack) -> None:
    """The worker's publisher, restarted on the same journal directory (its journal replays first)."""
    assert stack.load is not None
    stack.load.kill9()
    time.sleep(DOWN_S)
    stack.load.start()


def kill_postgres(stack: ChaosStack) -> None:
    stack.kill_postgres()
    time.sleep(DOWN_S)
    stack.start_postgres()


def pause_replica(stack: ChaosStack, name: str = "a", tries: int = 300) -> None:
    """SIGSTOP replica `name` at a moment it holds pending entries (read, not yet acknowledged) and is inside
    a transaction that holds row locks (an open incident locked for a fold, say): the worst moment, since the
    other replica's writer needs those rows. The other must claim the entries (after `CLAIM_IDLE_MS`, in its
    next claim round) and store everything handed over before the pause while this one is still stopped.
    Then SIGCONT."""
    replica, consumer = stack.replicas[name], f"chaos-{name}"
    for _ in range(tries):
        replica.signal(signal.SIGSTOP)
        time.sleep(FROZEN_S)  # the other replica's transactions end meanwhile; this one's cannot
        if stack.group_state()[2].get(consumer, 0) > 0 and stack.frozen_writers(FROZEN_S):
            break
        replica.signal(signal.SIGCONT)
        time.sleep(random.uniform(0.0, 0.03))
    else:
        raise AssertionError(f"replica {name} was never caught holding entries and row locks ({tries} tries)")
    try:
        assert stack.load is not None
        handed = stack.load.handed()
        limit = CLAIM_IDLE_MS / 1000 + CLAIM_EVERY_S + 30
        wait_for(lambda: stack.group_state()[2].get(consumer, 0) == 0, limit, f"{consumer}'s entries claimed")
        stack.wait_stored(handed, 30)  # by the other replica, this one still stopped
    finally:
        replica.signal(signal.SIGCONT)


FAULTS: dict[str, Callable[[ChaosStack], None]] = {
    "kill -9 redis": kill_redis,
    "kill -9 each replica": kill_replicas,
    "kill -9 publisher": kill_publisher,
    "kill -9 postgres": kill_postgres,
    "SIGSTOP replica": pause_replica,
}


@dataclass
class Trial:
    fault: str
    handed: int  # alerts handed over during this trial
    stored: int  # of those, stored
    lost: int
    duplicated: int  # alerts counted into incidents twice during this trial
    fault_s: float  # from the fault's start to its end (for a pause: until the other replica caught up)
    recover_s: float  # from the fault's end until everything handed over by then was stored
    problems: list[str]


def run_trial(
    stack: ChaosStack, fault: str, before_s: float = 1.0, after_s: float = 1.0, patience_s: float = 40.0
) -> Trial:
    """Load for `before_s`, inject malformed entries, the fault, load for `after_s` more (the recovery is
    timed meanwhile), stop the load, wait until the system drained, and judge. Recovering and draining may
    take `patience_s` each; a system that does not get there fails with the verdict so far."""
    assert stack.load is not None
    stack.ensure_running()
    first, twice = len(stack.load.handed()), stack.facts().duplicated
    stack.start_load()
    time.sleep(before_s)
    stack.inject_malformed()
    began = time.monotonic()
    FAULTS[fault](stack)
    ended, backlog = time.monotonic(), stack.load.handed()
    stack.wait_stored(backlog, patience_s)
    recover_s = time.monotonic() - ended
    time.sleep(max(0.0, after_s - recover_s))
    stack.stop_load()
    stack.wait_drained(patience_s)
    verdict = stack.verdict()
    mine = set(stack.load.handed()[first:])
    return Trial(
        fault=fault,
        handed=len(mine),
        stored=len(mine) - len(mine & set(verdict.lost)),
        lost=len(mine & set(verdict.lost)),
        duplicated=verdict.duplicated - twice,
        fault_s=ended - began,
        recover_s=recover_s,
        problems=verdict.problems(),
    )
