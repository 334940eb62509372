"""Schemathesis against the center's OpenAPI document, for every kind of caller (fuzz_center.py): no server
error, every answer as documented (status, content type, body schema, headers), what the document refuses
is refused and what it takes is taken. A bounded run with a fixed seed; bench/fuzz.py runs longer.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi import FastAPI, Query

from center_api.errors import Conflict, error_responses, install_error_handlers
from center_api.grid import load_city
from tests.center_api.conftest import DEMO
from tests.center_api.fuzz_center import EXCLUDED, FuzzCenter, Role, roles, run_role
from tests.support.fixtures import entered_or_fail
from tests.support.redisdb import RedisDatabases

SEED = 20261203
# Generated cases per operation in the fuzzing phase: small enough for the suite (bench/fuzz.py: --examples).
EXAMPLES = 10
ROLES = roles(load_city(DEMO))
# The coverage phase's cases of a camera body (six kinds of rules, credentials) take a minute of CPU to
# build, per role: the suite leaves them to the fuzzing phase and bench/fuzz.py, which runs them all.
CAMERA_BODIES = (
    "POST /api/v1/cameras",
    "PUT /api/v1/cameras/{camera_id}",
    "PATCH /api/v1/cameras/{camera_id}",
)


@pytest.fixture(scope="module")
def center(redis_databases: RedisDatabases, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FuzzCenter]:
    """One running center for every role's run (their writes add to what the next role reads)."""
    with entered_or_fail(redis_databases.lease()) as url:
        fuzz = FuzzCenter(url, tmp_path_factory.mktemp("fuzz"))
        with fuzz.running():
            yield fuzz


def _operations(center: FuzzCenter) -> int:
    paths = center.app.openapi()["paths"]
    return sum(len(item) for item in paths.values()) - len(EXCLUDED)


@pytest.mark.integration
@pytest.mark.parametrize("role", ROLES, ids=[r.name for r in ROLES])
def test_every_operation_answers_as_documented(center: FuzzCenter, role: Role) -> None:
    """The coverage phase (each parameter's boundaries, wrong types, missing and extra fields, other methods)
    and the fuzzing phase (generated positive and negative requests), every check."""
    report = run_role(
        center.app,
        role,
        seed=SEED,
        examples=EXAMPLES,
        phases=("coverage", "fuzzing"),
        skip_coverage=CAMERA_BODIES,
        base_url=center.base_url,
    )
    assert report.operations == _operations(center)  # every operation ran, none was skipped
    assert report.cases >= report.operations * 5
    assert not report.errors, "\n".join(report.errors)  # an exception out of the app is a 500
    assert not report.findings, "\n\n".join(f.describe() for f in report.findings)


def _planted_faults() -> FastAPI:
    """An app with the center's error handler and two faults the run must report."""
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/count", responses=error_responses(404))
    async def count(n: int = Query(ge=0)) -> dict[str, int]:
        if n > 1000:  # an unchecked bound: the exception is a 500
            raise OverflowError(f"{n} does not fit")
        return {"n": n}

    @app.get("/held", responses=error_responses(404))
    async def held() -> dict[str, str]:
        raise Conflict("held elsewhere")  # 409, which the operation does not declare

    return app


def test_the_run_reports_a_server_error_and_an_undocumented_status() -> None:
    report = run_role(_planted_faults(), Role("anyone", {}), seed=SEED, examples=EXAMPLES)
    assert report.operations == 2
    assert any("OverflowError" in error or "does not fit" in error for error in report.errors), report.errors
    found = {(f.operation, f.check) for f in report.findings}
    assert ("GET /held", "status_code_conformance") in found, found
