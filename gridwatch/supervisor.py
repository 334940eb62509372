"""Starts GridWatch's processes, watches them, and stops every one of them on SIGINT/SIGTERM.

Children are started with PR_SET_PDEATHSIG on Linux: even a supervisor killed by SIGKILL leaves no orphan.
"""

from __future__ import annotations

import ctypes
import logging
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

log = logging.getLogger(__name__)


def _die_with_parent() -> None:  # runs in the child between fork and exec
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


@dataclass
class Child:
    name: str
    proc: subprocess.Popen[bytes]


@dataclass
class Supervisor:
    stop_timeout_s: float = 15.0
    children: list[Child] = field(default_factory=list)
    stopping: threading.Event = field(default_factory=threading.Event)

    def spawn(self, name: str, args: Sequence[str], env: dict[str, str] | None = None) -> Child:
        preexec = _die_with_parent if sys.platform.startswith("linux") else None
        proc = subprocess.Popen(list(args), env=env, preexec_fn=preexec)  # noqa: PLW1509 - prctl only
        child = Child(name, proc)
        self.children.append(child)
        log.info("started %s (pid %d)", name, proc.pid)
        return child

    def install_signal_handlers(self) -> None:
        def handler(signum: int, _frame: object) -> None:
            log.info("received %s, stopping", signal.Signals(signum).name)
            self.stopping.set()

        signal.signal(signal.SIGINT, handler)
        signal.signal(signal.SIGTERM, handler)

    def first_exited(self) -> Child | None:
        """A child that exited on its own (the supervisor then stops the rest), or None."""
        for child in self.children:
            if child.proc.poll() is not None:
                self.stopping.set()
                return child
        return None

    def wait(self, poll_s: float = 0.5) -> int:
        """Block until a stop signal or a child exits on its own; returns that child's exit code, else 0."""
        while not self.stopping.wait(poll_s):
            exited = self.first_exited()
            if exited is not None:
                log.error("%s exited with code %s; stopping everything", exited.name, exited.proc.returncode)
                return exited.proc.returncode or 1
        return 0

    def stop(self) -> None:
        """SIGTERM every child (newest first), wait, then SIGKILL what is left."""
        for child in reversed(self.children):
            if child.proc.poll() is None:
                child.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self.stop_timeout_s
        for child in reversed(self.children):
            remaining = max(0.1, deadline - time.monotonic())
            try:
                child.proc.wait(timeout=remaining)
            except subprocess.TimeoutExpired:
                log.warning("%s did not stop in time; killing it", child.name)
                child.proc.kill()
                child.proc.wait(timeout=5)
            log.info("stopped %s (exit %s)", child.name, child.proc.returncode)
