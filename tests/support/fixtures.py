"""What the suite's fixtures share: a server (or a database on one) that cannot be had fails the test."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from typing import TypeVar

import pytest

from tests.support.servers import ServerError

T = TypeVar("T")


@contextmanager
def entered_or_fail(manager: AbstractContextManager[T], reason: str = "") -> Iterator[T]:
    """Enter `manager` and hand out its value. A `ServerError` while entering fails the test with `reason`
    before its message and no traceback (a server that cannot start is the test's failure, not a bug in it);
    what the test itself raises passes through as it is."""
    with ExitStack() as stack:
        try:
            value = stack.enter_context(manager)
        except ServerError as exc:
            pytest.fail(f"{reason}{exc}", pytrace=False)
        yield value
