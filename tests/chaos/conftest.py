"""The chaos cases share one stack (servers, replicas, publisher): starting it is most of a case's time."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.chaos.harness import ChaosStack
from tests.support.fixtures import entered_or_fail


@pytest.fixture(scope="module")
def chaos_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChaosStack]:
    """Redis (AOF), PostgreSQL, two center replicas and a publisher child's place (`tests.chaos.harness`)."""
    stack = ChaosStack(tmp_path_factory.mktemp("chaos"))
    with entered_or_fail(stack, "cannot start the chaos stack: ") as started:
        yield started
