"""Schemathesis against the center's OpenAPI document, one run per role: what tests/center_api/test_fuzz.py
and bench/fuzz.py share.

`FuzzCenter` runs the real app under uvicorn on a free port of 127.0.0.1, in a thread of this process (a
private Redis DB, SQLite in a temporary directory, the demo city; the lifespan starts and stops once, as in
production, not through schemathesis' ASGI transport, whose lifespan shutdown once hung a run) and stores a
few incidents through the real consumer before the first run, so reads have data. `roles(city)` gives one
caller per kind of token: an operator of each station, a station admin, city command, an integrator, no token,
an expired token and a token signed with another key. `run_role` runs schemathesis' engine (examples, coverage
and fuzzing phases, every check) with that caller's headers and returns what failed, one `Finding` per
operation and check.
"""

from __future__ import annotations

import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
import redis
import requests
import schemathesis
import uvicorn
from fastapi import FastAPI
from hypothesis.configuration import set_hypothesis_home_dir
from schemathesis.config import SchemathesisConfig
from schemathesis.engine import events, from_schema
from schemathesis.engine.recorder import ScenarioRecorder

from center_api.app import create_app
from center_api.auth import ALGORITHM, issue_token
from center_api.grid import City
from tests.center_api.conftest import NANGUAN_1, SECRET, XIADU_2, make_alert, make_settings, xadd
from tests.support.rtsp import free_port

JPEG = b"\xff\xd8\xff\xe0" + b"f" * 64 + b"\xff\xd9"
OTHER_SECRET = "another-secret-of-sufficient-length-for-hs256"
SCRAPE_TOKEN = "fuzz-scrape-token-of-the-platform"

# Operations left out of schemathesis, each with why (never to hide a finding):
EXCLUDED = [
    # The SSE feed never ends: schemathesis would wait for its stream to close. Its refusals (bad
    # Last-Event-ID, station out of scope, every token error) are answered before the stream starts and
    # are tested in tests/center_api/test_feeds.py; the WebSocket feed is not in the OpenAPI document.
    {"include-name": "GET /api/v1/feed/sse", "enabled": False},
]

# What `positive_data_acceptance` takes as an answer to a request the document says is valid: its default
# (2xx, 3xx, 401, 403, 404, 409, 429, 5xx; a 5xx fails `not_a_server_error` anyway) plus, for a few
# operations, the refusals of what JSON Schema cannot say. Each is documented on the operation.
_ACCEPTED = ["2xx", "3xx", "401", "403", "404", "409", "429", "5xx"]
DOMAIN_REFUSALS = [
    # A cursor is an opaque token of this server: a string of its alphabet that it did not write is 400.
    ("GET", "/api/v1/incidents", ["400"]),
    # A CSV or GeoJSON body's content (a header line, the columns) is not in the schema: 400 unparsable.
    ("POST", "/api/v1/cameras/import", ["400"]),
    # A camera's cell must be one of the city's (422 unknown_cell), PUT's body id must be the path's
    # (422 id_mismatch): the grid is data, not schema.
    ("POST", "/api/v1/cameras", ["422"]),
    ("PUT", "/api/v1/cameras/{camera_id}", ["422"]),
    ("PATCH", "/api/v1/cameras/{camera_id}", ["422"]),
    # An SDP offer's content is not in the schema: no H.264/VP8 in it is 415, one that does not parse 400.
    ("POST", "/api/v1/cameras/{camera_id}/live", ["400", "415"]),
    # The seconds an operator may save are the workers' pre-roll, a setting (422 clip_seconds_over_preroll).
    ("POST", "/api/v1/cameras/{camera_id}/clips", ["422"]),
]


def _operations(skip_coverage: Sequence[str] = ()) -> list[dict[str, Any]]:
    refusals = [
        {
            # One include filter (several would match any of them): the operation's own label.
            "include-name": f"{method} {path}",
            "checks": {"positive_data_acceptance": {"expected-statuses": _ACCEPTED + statuses}},
        }
        for method, path, statuses in DOMAIN_REFUSALS
    ]
    skips = [{"include-name": name, "phases": {"coverage": {"enabled": False}}} for name in skip_coverage]
    return [*EXCLUDED, *refusals, *skips]


@dataclass(frozen=True)
class Role:
    """One kind of caller: a name for the report and the headers it sends."""

    name: str
    headers: dict[str, str]


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def roles(city: City) -> list[Role]:
    """Every kind of caller: an operator of each station, a station admin, city command, an integrator,
    no token, an expired token, a token signed with another key, and the metrics scrape token."""
    stations = sorted(s.id for s in city.stations.values() if not s.city_command)
    callers = [
        Role(f"operator@{s}", _bearer(issue_token(SECRET, subject="op", role="operator", station_id=s)))
        for s in stations
    ]
    now = datetime.now(UTC)
    expired = jwt.encode(
        {
            "sub": "late",
            "role": "city_command",
            "station": None,
            "iat": int((now - timedelta(hours=2)).timestamp()),
            "exp": int((now - timedelta(hours=1)).timestamp()),
        },
        SECRET,
        algorithm=ALGORITHM,
    )
    callers += [
        Role(
            "station_admin",
            _bearer(issue_token(SECRET, subject="adm", role="station_admin", station_id=stations[0])),
        ),
        Role(
            "city_command", _bearer(issue_token(SECRET, subject="cc", role="city_command", station_id=None))
        ),
        Role("integrator", _bearer(issue_token(SECRET, subject="int", role="integrator", station_id=None))),
        Role("no_token", {}),
        Role("expired", _bearer(expired)),
        Role(
            "other_key",
            _bearer(issue_token(OTHER_SECRET, subject="cc", role="city_command", station_id=None)),
        ),
        Role("scraper", _bearer(SCRAPE_TOKEN)),  # the platform's Prometheus scrape of /metrics
    ]
    return callers


@dataclass(frozen=True)
class Finding:
    """One check that failed on one operation: the first failing request of it, as schemathesis gave it."""

    operation: str
    check: str
    title: str
    message: str
    request: str
    status: int | None
    body: str

    def describe(self) -> str:
        return (
            f"{self.operation} [{self.check}] {self.title}\n  {self.request[:600]}\n"
            f"  -> {self.status} {self.body[:300]}\n  {self.message[:600]}"
        )


@dataclass
class RoleReport:
    role: str
    operations: int = 0
    cases: int = 0
    findings: list[Finding] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # schemathesis could not test an operation
    seconds: float = 0.0


PHASES = ("examples", "coverage", "fuzzing")  # stateful runs follow links, which the document has none of


def fuzz_config(
    role: Role,
    *,
    seed: int,
    examples: int,
    phases: Sequence[str] = PHASES,
    skip_coverage: Sequence[str] = (),
) -> SchemathesisConfig:
    """`phases` (all by default; the coverage phase not for the operations named in `skip_coverage`), every
    check, positive and negative data, a fixed seed."""
    return SchemathesisConfig.from_dict(
        {
            # No on-disk cache: it would replay the last run's requests first (a run depends only on the
            # seed) and write `.schemathesis/` into the working tree.
            "cache": {"enabled": False},
            "seed": seed,
            "headers": role.headers,
            # Every check; `max_response_time` stays off (it needs a limit, and a time limit would make the
            # result depend on the machine's load, which a test must not). `use_after_free` and
            # `ensure_resource_availability` judge a sequence of calls: they act in the stateful phase,
            # which needs links between operations, and the document declares none.
            "checks": {"enabled": True},
            # No example database either (`.hypothesis/examples`): each run stands alone.
            "generation": {
                "mode": "all",
                "max-examples": examples,
                "deterministic": True,
                "database": "none",
            },
            "phases": {phase: {"enabled": phase in phases} for phase in (*PHASES, "stateful")},
            "operations": _operations(skip_coverage),
            "request-timeout": 30,
        }
    )


def run_role(
    app: FastAPI,
    role: Role,
    *,
    seed: int,
    examples: int,
    phases: Sequence[str] = PHASES,
    skip_coverage: Sequence[str] = (),
    base_url: str | None = None,
) -> RoleReport:
    """Run schemathesis against `app` as `role`: over HTTP at `base_url` (a `FuzzCenter`), or in-process
    through schemathesis' ASGI transport (an app without a lifespan of its own)."""
    config = fuzz_config(role, seed=seed, examples=examples, phases=phases, skip_coverage=skip_coverage)
    if base_url is None:
        schema = schemathesis.openapi.from_asgi("/openapi.json", app, config=config)
    else:
        schema = schemathesis.openapi.from_dict(app.openapi(), config=config)
        schema.config.update(base_url=base_url)
    report = RoleReport(role.name)
    labels: set[str] = set()
    started = time.monotonic()
    with _hypothesis_home():
        for event in from_schema(schema).execute():
            if isinstance(event, events.ScenarioFinished) and event.label:
                labels.add(event.label)
                report.cases += len(event.recorder.interactions)
                _record_findings(event.recorder, report)
            elif isinstance(event, events.NonFatalError):
                # An exception out of the app (in-process, a 500 surfaces as the exception), a connection the
                # server dropped, or schemathesis' own.
                report.errors.append(f"{event.label}: {event.info.message}")
            elif isinstance(event, events.FatalError):
                report.errors.append(f"fatal: {event.exception!r}")
    report.operations = len(labels)
    report.seconds = time.monotonic() - started
    return report


@contextmanager
def _hypothesis_home() -> Iterator[None]:
    """Hypothesis keeps caches under `.hypothesis/` of the working directory: a temporary one instead, so
    that a run leaves the working tree as it found it."""
    with tempfile.TemporaryDirectory(prefix="gridwatch-hypothesis-") as home:
        set_hypothesis_home_dir(home)
        try:
            yield
        finally:
            set_hypothesis_home_dir(None)


def _record_findings(recorder: ScenarioRecorder, report: RoleReport) -> None:
    """The first failure of each check on the recorder's operation (later ones of a pair add nothing)."""
    known = {(f.operation, f.check) for f in report.findings}
    for case_id, checks in recorder.checks.items():
        for check in checks:
            info = check.failure_info
            if info is None or (recorder.label, check.name) in known:
                continue
            known.add((recorder.label, check.name))
            response = recorder.find_response(case_id=case_id)
            report.findings.append(
                Finding(
                    operation=recorder.label,
                    check=check.name,
                    title=info.failure.title,
                    message=info.failure.message,
                    request=info.code_sample,
                    status=None if response is None else response.status_code,
                    body="" if response is None else response.content[:300].decode("utf-8", "replace"),
                )
            )


def _alerts() -> list[tuple[Any, bytes | None]]:
    """Incidents in each station and one outside every cell (city command's), some with a snapshot."""
    return [
        (make_alert(NANGUAN_1, camera_id="demo-cam-1", severity=1), JPEG),
        (make_alert(NANGUAN_1, camera_id="demo-cam-1", rule="r2", zone="z2"), None),
        (make_alert(XIADU_2, camera_id="demo-cam-2"), JPEG),
        (make_alert(XIADU_2, camera_id="demo-cam-2", rule="r3", zone="z3", severity=4), None),
        (make_alert((36.9, 102.2), camera_id="far-cam"), JPEG),
    ]


class FuzzCenter:
    """The real app under uvicorn in a thread of this process, with incidents stored by its consumer."""

    def __init__(self, redis_url: str, directory: Path, database_url: str | None = None) -> None:
        self.redis_url = redis_url
        database_url = database_url or f"sqlite+aiosqlite:///{directory / 'center.db'}"
        self.settings = make_settings(
            directory,
            database_url,
            redis_url=redis_url,
            metrics_token=SCRAPE_TOKEN,
            # Every request comes from one address: the bad-token throttle (tested in its own tests) would
            # answer 429 to everything after 20 bad tokens, hiding what the routes answer.
            token_failures_max=1_000_000,
        )
        self.app = create_app(self.settings)
        self.city: City = self.app.state.city
        self.base_url = ""  # while `running`

    @contextmanager
    def running(self, within_s: float = 60.0) -> Iterator[FuzzCenter]:
        """Serve the app on a free port until the block ends (`base_url` meanwhile)."""
        port = free_port()
        server = uvicorn.Server(
            uvicorn.Config(self.app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
        )
        thread = threading.Thread(target=server.run, name="fuzz-center", daemon=True)
        thread.start()
        deadline = time.monotonic() + within_s
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise AssertionError(f"the center did not start within {within_s} s")
            time.sleep(0.05)
        self.base_url = f"http://127.0.0.1:{port}"
        client = requests.Session()
        try:
            self._store_incidents(client, within_s)
            yield self
        finally:
            client.close()
            server.should_exit = True
            thread.join(within_s)
            if thread.is_alive():
                raise AssertionError(f"the center did not stop within {within_s} s")

    def _store_incidents(self, client: requests.Session, within_s: float) -> None:
        alerts = _alerts()
        bus = redis.Redis.from_url(self.redis_url, socket_timeout=10)
        try:
            for alert, snapshot in alerts:
                xadd(bus, alert, snapshot)
        finally:
            bus.close()
        headers = _bearer(issue_token(SECRET, subject="seed", role="city_command", station_id=None))
        deadline = time.monotonic() + within_s
        while time.monotonic() < deadline:
            page = client.get(f"{self.base_url}/api/v1/incidents", headers=headers, timeout=30)
            if page.status_code == 200 and len(page.json()["items"]) >= len(alerts):
                return
            time.sleep(0.1)
        raise AssertionError(f"the consumer did not store {len(alerts)} incidents within {within_s} s")
