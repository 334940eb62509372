"""Delivery chaos benchmark: the faults of tests/chaos/test_delivery.py, longer and repeatedly, timed.

    .venv/bin/python bench/chaos.py [--trials 3] [--duration 6] [--rate 200] [--fault "kill -9 redis" ...]

One stack for the whole run (tests/chaos/harness.py): a private Redis with AOF (appendfsync always), a private
PostgreSQL (fsync on), two `gridwatch center` replicas sharing the consumer group and the database, and a
publisher child that hands RATE alerts a second to the real RedisAlertPublisher. Each trial: load for half of
DURATION seconds, a few malformed entries injected, the fault (the load goes on), load for the other half,
then the load stops, the system drains and the store is judged (tests/chaos/verdict.py). Faults: kill -9
Redis, each replica in turn, the publisher (restarted on its journal), the PostgreSQL postmaster; SIGSTOP a
replica that holds pending entries and row locks until the other has claimed and stored them.

Table: fault, trials, alerts handed over, stored, lost, duplicated (counted into incidents twice), time to
recover (from the fault's end until every alert handed over by then is stored: median and worst), trials
that failed a check (their alerts are not in the other columns). "fault s" is how long the fault lasted
(median): down time and restart, or for the pause the time until the other replica had claimed and stored
the paused one's entries. Then one JSON line.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.chaos.faults import FAULTS, Trial, run_trial  # noqa: E402
from tests.chaos.harness import ChaosStack  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--trials", type=int, default=3, help="trials per fault")
    parser.add_argument(
        "--duration", type=float, default=6.0, help="seconds of load per trial, fault between"
    )
    parser.add_argument("--rate", type=int, default=200, help="alerts handed over per second")
    parser.add_argument("--fault", action="append", choices=list(FAULTS), help="only these (repeatable)")
    args = parser.parse_args()
    faults = args.fault or list(FAULTS)
    results: dict[str, list[Trial]] = {fault: [] for fault in faults}
    failures: dict[str, list[str]] = {fault: [] for fault in faults}
    started = time.monotonic()
    with (
        tempfile.TemporaryDirectory(prefix="gw-bench-chaos-") as tmp,
        ChaosStack(Path(tmp), args.rate) as stack,
    ):
        for n in range(args.trials):
            for fault in faults:
                try:
                    trial = run_trial(stack, fault, before_s=args.duration / 2, after_s=args.duration / 2)
                except (AssertionError, TimeoutError) as exc:  # the next trial brings back what is down
                    failures[fault].append(str(exc).splitlines()[0][:300])
                    print(f"trial {n + 1}: {fault:<22} FAILED {failures[fault][-1]}", flush=True)
                    continue
                results[fault].append(trial)
                if trial.problems:
                    failures[fault].append("; ".join(trial.problems)[:300])
                print(
                    f"trial {n + 1}: {fault:<22} handed {trial.handed:>6} lost {trial.lost} "
                    f"recovered in {trial.recover_s:.2f} s {'; '.join(trial.problems)}",
                    flush=True,
                )
    print(f"\n{args.trials} trials per fault, {args.rate} alerts/s, {args.duration:.0f} s of load each")
    print(
        f"{'fault':<22}{'trials':>7}{'handed':>9}{'stored':>9}{'lost':>6}{'dup':>5}"
        f"{'fault s':>9}{'recover p50':>13}{'max':>8}{'failed':>8}"
    )
    summary: dict[str, object] = {"trials": args.trials, "rate": args.rate, "duration_s": args.duration}
    for fault in faults:
        trials = results[fault]
        recover = [t.recover_s for t in trials] or [float("nan")]
        row = {
            "trials": args.trials,
            "handed": sum(t.handed for t in trials),
            "stored": sum(t.stored for t in trials),
            "lost": sum(t.lost for t in trials),
            "duplicated": sum(t.duplicated for t in trials),
            "fault_p50_s": round(statistics.median([t.fault_s for t in trials] or [float("nan")]), 2),
            "recover_p50_s": round(statistics.median(recover), 2),
            "recover_max_s": round(max(recover), 2),
            "failed": len(failures[fault]),
        }
        print(
            f"{fault:<22}{row['trials']:>7}{row['handed']:>9}{row['stored']:>9}{row['lost']:>6}"
            f"{row['duplicated']:>5}{row['fault_p50_s']:>8.2f}s{row['recover_p50_s']:>12.2f}s{row['recover_max_s']:>7.2f}s{row['failed']:>8}"
        )
        summary[fault.replace(" ", "_").replace("-", "")] = row
    summary["wall_s"] = round(time.monotonic() - started, 1)
    print(json.dumps(summary))
    return 0 if not any(failures.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
