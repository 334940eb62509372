"""`ClipUploader`: a thread that hands spooled clips to the center, oldest first, and removes what it took.

    PUT  {center}/api/v1/clips/{sha256}?meta=<ClipMeta JSON>   body: the MP4, streamed from the spool
    POST {center}/api/v1/clips/failures                        body: a ClipFailure (JSON)

Both carry `Authorization: Bearer <worker token>`. What the answer means:
  200 / 201 / 202     the center has it (201: stored now; 200: it had that digest; 202: a failure report)
  401 / 403           the token is refused: kept, retried every `auth_retry_s`; logged once, counted
  404 not_found, 405  the center has no such route (older than the worker): kept, retried like 401
  408 / 425 / 429     the center asks for patience: kept, retried with backoff (also 400 upload_incomplete:
                      the body did not arrive whole)
  507, other 4xx      refused for good (station quota, a bad meta): removed, counted, logged with the code
  5xx, no connection, a timeout: kept, retried with capped exponential backoff and full jitter

Exactly-once as far as the center sees: a clip leaves the spool only after the center answered for it, and
the center files clips by their digest, so a clip sent twice (a kill -9 between its answer and its removal)
is stored once. A failure report sent twice marks the same alerts unavailable twice, which changes nothing.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Iterator
from dataclasses import dataclass, fields
from pathlib import Path

import httpx
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from pydantic import SecretStr, ValidationError

from ingest.clip_requests import ClipRequestListener, ListenerCounts
from ingest.spool import ClipSpool, SpoolItem

log = logging.getLogger(__name__)

_CHUNK = 256 * 1024
_DELIVERED = frozenset({200, 201, 202, 204})
_AUTH = frozenset({401, 403})
_PATIENCE = frozenset({408, 425, 429})


@dataclass
class UploadCounts:
    uploaded: int = 0  # clips the center stored on this upload
    duplicates: int = 0  # clips the center already had
    failures_reported: int = 0  # ClipFailure reports the center took
    failed_final: int = 0  # items the center refused for good (removed)
    retries: int = 0  # attempts that will be made again (outage, 5xx, refused token)
    auth_refused: int = 0  # answers 401/403


class ClipUploader:
    def __init__(
        self,
        spool: ClipSpool,
        center_url: str,
        token: SecretStr | str,
        *,
        timeout_s: float = 30.0,
        connect_timeout_s: float = 5.0,
        backoff_initial_s: float = 1.0,
        backoff_max_s: float = 60.0,
        auth_retry_s: float = 60.0,
        idle_poll_s: float = 5.0,
        transport: httpx.BaseTransport | None = None,
        rng: random.Random | None = None,
    ) -> None:
        if not center_url.startswith(("http://", "https://")):
            raise ValueError("center_url must be an http:// or https:// URL")
        if not 0 < backoff_initial_s <= backoff_max_s:
            raise ValueError("need 0 < backoff_initial_s <= backoff_max_s")
        self.spool = spool
        self.center_url = center_url.rstrip("/")
        self._token = token if isinstance(token, SecretStr) else SecretStr(token)
        self.backoff_initial_s, self.backoff_max_s = backoff_initial_s, backoff_max_s
        self.auth_retry_s, self.idle_poll_s = auth_retry_s, idle_poll_s
        self.counts = UploadCounts()
        self._timeout = httpx.Timeout(timeout_s, connect=connect_timeout_s)
        self._transport = transport
        self._rng = rng or random.Random()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._attempt = 0  # consecutive transient failures: the backoff's exponent
        self._state = "ok"  # ok | unreachable | auth: logged once per change

    # --- lifecycle -------------------------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="clip-uploader", daemon=True)
        self._thread.start()
        log.info("uploading clips to %s", self.center_url)

    def stop(self, timeout: float = 30.0) -> None:
        """Stop after the request in flight (whose item stays in the spool unless the center took it)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.error("clip uploader did not stop within %.0f s", timeout)
            self._thread = None

    def _run(self) -> None:
        headers = {"Authorization": f"Bearer {self._token.get_secret_value()}"}
        # trust_env off: no proxy or .netrc from the environment; the worker talks to the configured URL only
        with httpx.Client(
            headers=headers, timeout=self._timeout, transport=self._transport, trust_env=False
        ) as client:
            while not self._stop.is_set():
                delay = self.step(client)
                if delay is None:
                    self.spool.wait(self.idle_poll_s)
                elif delay > 0:
                    self._stop.wait(delay)

    # --- one attempt -----------------------------------------------------------------------------------
    def step(self, client: httpx.Client) -> float | None:
        """Send the oldest item once; the seconds to wait before the next attempt (0: go on at once), or
        None when the spool is empty."""
        item = self.spool.checkout()
        if item is None:
            return None
        remove, delay = False, 0.0
        try:
            remove, delay = self._deliver(client, item)
        finally:
            self.spool.finish(item, remove=remove)
        return delay

    def _deliver(self, client: httpx.Client, item: SpoolItem) -> tuple[bool, float]:
        """(whether the item leaves the spool, seconds to wait before the next attempt)."""
        try:
            response = self._send(client, item)
        except httpx.TransportError as exc:  # refused, reset, timed out: the center is away
            self._to_state("unreachable", f"{type(exc).__name__}: {exc}")
            return False, self._retry_later()
        except (OSError, ValueError) as exc:  # our own file went bad: nothing to send
            log.error("clip spool item %s cannot be read (%s): removed", item.name, exc)
            self.counts.failed_final += 1
            return True, 0.0
        status = response.status_code
        if status in _DELIVERED:
            self._to_state("ok", "")
            self._attempt = 0
            if item.kind == "failure":
                self.counts.failures_reported += 1
            elif status == 200:
                self.counts.duplicates += 1
            else:
                self.counts.uploaded += 1
            return True, 0.0
        code = _error_code(response)
        if status in _AUTH or _no_route(status, code):
            self.counts.auth_refused += status in _AUTH
            self.counts.retries += 1
            self._to_state("auth" if status in _AUTH else "no_route", f"HTTP {status} {code}")
            return False, self.auth_retry_s
        if status in _PATIENCE or (status >= 500 and status != 507) or code == "upload_incomplete":
            self._to_state("unreachable", f"HTTP {status} {code}")
            return False, self._retry_later()
        self.counts.failed_final += 1
        log.warning(
            "center refused %s %s for good (HTTP %d, %s): removed from the spool",
            item.kind,
            item.name,
            status,
            code,
        )
        return True, 0.0

    def _send(self, client: httpx.Client, item: SpoolItem) -> httpx.Response:
        if item.kind == "failure":
            body = self.spool.failure(item).model_dump_json()
            return client.post(
                f"{self.center_url}/api/v1/clips/failures",
                content=body,
                headers={"Content-Type": "application/json"},
            )
        try:
            meta = self.spool.meta(item).model_dump_json()
        except ValidationError as exc:
            raise ValueError(f"bad meta: {exc.error_count()} errors") from None
        path = self.spool.clip_path(item)
        size = path.stat().st_size
        return client.put(
            f"{self.center_url}/api/v1/clips/{item.name}",
            params={"meta": meta},
            content=_chunks(path),
            headers={"Content-Type": "video/mp4", "Content-Length": str(size)},
        )

    def _retry_later(self) -> float:
        """Full jitter: uniform in [0, min(max, initial * 2^attempt)]."""
        self.counts.retries += 1
        cap = min(self.backoff_max_s, self.backoff_initial_s * 2 ** min(self._attempt, 30))
        self._attempt += 1
        return self._rng.uniform(0, cap)

    def _to_state(self, state: str, detail: str) -> None:
        """One log line per change of the center's state (not per attempt)."""
        if state == self._state:
            return
        previous, self._state = self._state, state
        if state == "ok":
            log.info("center %s takes clips again (was %s)", self.center_url, previous)
        elif state == "no_route":
            log.error(
                "center %s has no clip upload route (%s; older than this worker?): clips are kept and "
                "retried",
                self.center_url,
                detail,
            )
        elif state == "auth":
            log.error(
                "center %s refuses the worker token (%s): clips are kept and retried", self.center_url, detail
            )
        else:
            log.warning("center %s unreachable (%s): clips wait in the spool", self.center_url, detail)


def _chunks(path: Path) -> Iterator[bytes]:
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            yield chunk


def _no_route(status: int, code: str) -> bool:
    """The center does not know the route at all (an older center): keep the clips for the upgraded one. A
    404 of the route itself has a specific code (`camera_not_found`, ...)."""
    return status == 405 or (status == 404 and code == "not_found")


def _error_code(response: httpx.Response) -> str:
    """The center's error code (`{"detail": ..., "code": ...}`), or what the body starts with."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:200] or "no body"
    if isinstance(body, dict) and isinstance(body.get("code"), str):
        return str(body["code"])
    return str(body)[:200]


class ClipCollector(Collector):
    """Prometheus metrics of the spool, its uploader and the clip request listener (read at scrape time)."""

    def __init__(
        self,
        spool: ClipSpool,
        uploader: ClipUploader | None,
        worker_id: str,
        listener: ClipRequestListener | None = None,
    ) -> None:
        self.spool, self.uploader, self.worker_id, self.listener = spool, uploader, worker_id, listener

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        wid = [self.worker_id]
        stats = self.spool.stats()
        gauges = {
            "gridwatch_clip_spool_files": ("Clips waiting in the spool", stats.clips),
            "gridwatch_clip_spool_bytes": ("MP4 bytes waiting in the spool", stats.clip_bytes),
            "gridwatch_clip_spool_failures": ("Failure reports waiting in the spool", stats.failures),
            "gridwatch_clip_spool_oldest_age_seconds": ("Age of the oldest spooled item", stats.oldest_age_s),
        }
        for name, (doc, value) in gauges.items():
            gauge = GaugeMetricFamily(name, doc, labels=["worker"])
            gauge.add_metric(wid, value)
            yield gauge
        counters = {
            "gridwatch_clip_spool_dropped_clips": (
                "Clips dropped (spool full), oldest first",
                stats.dropped_clips,
            ),
            "gridwatch_clip_spool_dropped_bytes": (
                "Bytes of the clips dropped (spool full)",
                stats.dropped_bytes,
            ),
            "gridwatch_clip_spool_dropped_failures": ("Failure reports dropped", stats.dropped_failures),
            "gridwatch_clip_spool_dropped_corrupt": (
                "Torn or orphaned clips dropped at start",
                stats.dropped_corrupt,
            ),
        }
        if self.uploader is not None:
            for field in fields(UploadCounts):
                counters[f"gridwatch_clip_upload_{field.name}"] = (
                    f"Clip uploads: {field.name.replace('_', ' ')}",
                    getattr(self.uploader.counts, field.name),
                )
        if self.listener is not None:
            for field in fields(ListenerCounts):
                counters[f"gridwatch_clip_requests_{field.name}"] = (
                    f"On-demand clip requests: {field.name.replace('_', ' ')}",
                    getattr(self.listener.counts, field.name),
                )
        for name, (doc, value) in counters.items():
            counter = CounterMetricFamily(name, doc, labels=["worker"])
            counter.add_metric(wid, value)
            yield counter
