"""Schemathesis against the center, longer than the suite's bounded run, for every kind of caller.

  .venv/bin/python bench/fuzz.py [--examples 300] [--seed 1] [--database sqlite|postgres]
                                 [--phases examples,coverage,fuzzing] [--roles city_command,no_token]

The same run as tests/center_api/test_fuzz.py (tests/center_api/fuzz_center.py: the real app under uvicorn, a
private Redis, the demo city, incidents stored by the real consumer, every check of schemathesis) with
`--examples` cases per operation and phase and every phase for every role. `--database postgres` runs on a
private PostgreSQL (tests/support), which refuses some input SQLite takes (a NUL byte in text). Prints a
table, one row per role (operations, cases, failures, server errors, seconds), each failure below it, then
one JSON line. Exits 1 when anything failed.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.center_api.fuzz_center import PHASES, FuzzCenter, RoleReport, roles, run_role  # noqa: E402


@contextmanager
def _servers(database: str) -> Iterator[tuple[str, str | None]]:
    """A Redis DB and, for `postgres`, a database: the suite's private servers (or those its env names)."""
    from tests.support.pgdb import postgres_service
    from tests.support.redisdb import redis_service

    with ExitStack() as stack:
        redis_url = stack.enter_context(stack.enter_context(redis_service()).lease())
        database_url = None
        if database == "postgres":
            database_url = stack.enter_context(
                stack.enter_context(postgres_service()).database("gridwatch_fuzz")
            )
        yield redis_url, database_url


def _table(reports: list[RoleReport]) -> str:
    lines = [f"{'role':<22} {'operations':>10} {'cases':>8} {'failures':>8} {'errors':>7} {'seconds':>8}"]
    for r in reports:
        lines.append(
            f"{r.role:<22} {r.operations:>10} {r.cases:>8} {len(r.findings):>8} {len(r.errors):>7} "
            f"{r.seconds:>8.1f}"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--examples", type=int, default=300, help="cases per operation and phase")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--database", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--phases", default=",".join(PHASES), help="comma-separated: " + ",".join(PHASES))
    parser.add_argument("--roles", default="", help="comma-separated role names (default: all)")
    args = parser.parse_args()
    phases = [p for p in args.phases.split(",") if p]
    if not set(phases) <= set(PHASES) or args.examples < 1:
        parser.error(f"--phases takes {', '.join(PHASES)}; --examples at least 1")
    wanted = {r for r in args.roles.split(",") if r}

    started = time.monotonic()
    reports: list[RoleReport] = []
    with _servers(args.database) as (redis_url, database_url), tempfile.TemporaryDirectory() as tmp:
        center = FuzzCenter(redis_url, Path(tmp), database_url)
        callers = [r for r in roles(center.city) if not wanted or r.name in wanted]
        if wanted - {r.name for r in callers}:
            parser.error(f"unknown roles: {sorted(wanted - {r.name for r in callers})}")
        with center.running():
            for role in callers:
                report = run_role(
                    center.app,
                    role,
                    seed=args.seed,
                    examples=args.examples,
                    phases=phases,
                    base_url=center.base_url,
                )
                reports.append(report)
                print(
                    f"{role.name}: {report.cases} cases, {len(report.findings)} failures, "
                    f"{len(report.errors)} errors, {report.seconds:.0f} s",
                    file=sys.stderr,
                    flush=True,
                )
    run = f"{args.database}, seed {args.seed}, {args.examples} examples, phases {','.join(phases)}"
    print(f"schemathesis against the center: {run}")
    print(_table(reports))
    for report in reports:
        for finding in report.findings:
            print(f"\n[{report.role}] {finding.describe()}")
        for error in report.errors:
            print(f"\n[{report.role}] server error: {error[:2000]}")
    failed = sum(len(r.findings) + len(r.errors) for r in reports)
    summary = {
        "bench": "fuzz",
        "database": args.database,
        "seed": args.seed,
        "examples": args.examples,
        "phases": phases,
        "roles": {
            r.role: {
                "operations": r.operations,
                "cases": r.cases,
                "failures": len(r.findings),
                "errors": len(r.errors),
                "seconds": round(r.seconds, 1),
            }
            for r in reports
        },
        "cases": sum(r.cases for r in reports),
        "failures": failed,
        "seconds": round(time.monotonic() - started, 1),
    }
    print(json.dumps(summary))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
