"""What the suite's fixtures share: a server (or a database on one) that cannot be had fails the test."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from pathlib import Path
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


def kill_after_lines(code: str, lines: int, cwd: Path) -> list[str]:
    """Run `python -c code` in a child that prints one line per durable step, SIGKILL it after `lines` of them
    (while it works on the next) and return every line it printed: all of them were acknowledged."""
    child = subprocess.Popen(
        [sys.executable, "-c", code], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    acknowledged: list[str] = []
    try:
        assert child.stdout is not None
        while len(acknowledged) < lines:
            line = child.stdout.readline()
            if not line:
                pytest.fail(f"the child ended early: {child.stderr.read().decode() if child.stderr else ''}")
            acknowledged.append(line.decode().strip())
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.kill()
        child.wait()
        if child.stdout is not None:  # what it printed before it died: acknowledged too
            acknowledged += [
                line.strip() for line in child.stdout.read().decode().splitlines() if line.strip()
            ]
        for stream in (child.stdout, child.stderr):
            if stream is not None:
                stream.close()
    return acknowledged
