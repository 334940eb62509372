"""Failed token checks per client address: an address that keeps presenting bad tokens is refused for a while.

`TokenFailureThrottle.refusal(address, now)` says how many seconds an address is still refused (None: not
refused); `failed(address, now)` counts one bad token. `max_failures` failures within `window_s` of an
address's first one refuse it for `block_s` (answered 429 with `Retry-After` by `center_api.auth`); a failure
outside the window starts a new one. Addresses that present good tokens are never counted.

The table is bounded: at most `max_addresses` addresses are tracked, and when a new one comes the one whose
last failure is oldest is forgotten (an attacker with more addresses than that gains nothing a per-address
limit could stop anyway). Time is passed in (`time.monotonic()` in the app), so tests drive it.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from dataclasses import dataclass

log = logging.getLogger(__name__)


@dataclass(slots=True)
class _Record:
    window_start: float
    failures: int
    blocked_until: float = 0.0


class TokenFailureThrottle:
    def __init__(self, max_failures: int, window_s: float, block_s: float, max_addresses: int) -> None:
        if max_failures < 1 or window_s <= 0 or block_s <= 0 or max_addresses < 1:
            raise ValueError("max_failures and max_addresses must be >= 1; window_s and block_s > 0")
        self.max_failures = max_failures
        self.window_s = window_s
        self.block_s = block_s
        self.max_addresses = max_addresses
        self._records: OrderedDict[str, _Record] = OrderedDict()  # least recently failed first
        self.forgotten = 0  # addresses evicted to keep the table bounded

    def __len__(self) -> int:
        return len(self._records)

    def refusal(self, address: str, now: float) -> float | None:
        """Seconds `address` is still refused, or None when it may present a token."""
        record = self._records.get(address)
        if record is None or record.blocked_until <= now:
            return None
        return record.blocked_until - now

    def failed(self, address: str, now: float) -> bool:
        """Count one bad token of `address`; True when this failure starts a refusal."""
        record = self._records.pop(address, None)
        if record is None or now - record.window_start >= self.window_s:
            blocked_until = record.blocked_until if record is not None else 0.0
            record = _Record(window_start=now, failures=0, blocked_until=blocked_until)
        record.failures += 1
        self._records[address] = record  # (re)inserted last: the most recently failed
        while len(self._records) > self.max_addresses:
            self._records.popitem(last=False)
            self.forgotten += 1
        if record.failures >= self.max_failures and record.blocked_until <= now:
            record.blocked_until = now + self.block_s
            record.window_start, record.failures = now, 0
            log.warning(
                "client %s refused for %.0f s after %d failed token checks within %.0f s",
                address,
                self.block_s,
                self.max_failures,
                self.window_s,
            )
            return True
        return False
