"""A real RTSP server for tests: GStreamer's gst-rtsp-server, run by the system Python (python3-gi).

    with RtspServer({"/cam1": clip_path}) as server:
        url = server.url("/cam1")
        server.stop_process()   # SIGSTOP: a stall with the socket open
        server.cont_process()   # SIGCONT
        server.kill()           # the camera goes away
        server.restart()        # same port, same mounts

If the server cannot start (packages missing), `RtspServer` raises with the install command: tests fail,
they never skip.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import gridwatch.demo as _demo

SYSTEM_PYTHON = os.environ.get("GRIDWATCH_GST_PYTHON", "/usr/bin/python3")
SCRIPT = Path(_demo.__file__).parent / "rtsp_server.py"  # run as a script, not imported: it needs gi
INSTALL_HINT = (
    "apt-get install -y python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-good "
    "gstreamer1.0-plugins-bad gstreamer1.0-tools"
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RtspServer:
    def __init__(self, mounts: dict[str, Path], port: int | None = None, ready_timeout: float = 20.0) -> None:
        self.mounts = dict(mounts)
        self.port = port or free_port()
        self.ready_timeout = ready_timeout
        self.proc: subprocess.Popen[str] | None = None

    def url(self, mount: str) -> str:
        return f"rtsp://127.0.0.1:{self.port}{mount}"

    def start(self) -> RtspServer:
        if not Path(SYSTEM_PYTHON).exists():
            raise RuntimeError(f"RTSP server needs {SYSTEM_PYTHON} with python3-gi; run: {INSTALL_HINT}")
        args = [SYSTEM_PYTHON, str(SCRIPT), "--port", str(self.port)]
        for mount, path in self.mounts.items():
            args += ["--mount", f"{mount}={path}"]
        self.proc = subprocess.Popen(
            args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
        )
        deadline = time.monotonic() + self.ready_timeout
        assert self.proc.stdout is not None
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if line.startswith("READY"):
                return self
            if not line and self.proc.poll() is not None:
                err = self.proc.stderr.read() if self.proc.stderr else ""
                raise RuntimeError(
                    f"RTSP server exited ({self.proc.returncode}): {err.strip()}\n{INSTALL_HINT}"
                )
        self.kill()
        raise RuntimeError(f"RTSP server did not become ready in {self.ready_timeout} s")

    def stop_process(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGSTOP)

    def cont_process(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGCONT)

    def kill(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc.wait(timeout=10)
        for pipe in (self.proc.stdout, self.proc.stderr):
            if pipe:
                pipe.close()
        self.proc = None

    def restart(self) -> RtspServer:
        self.kill()
        return self.start()

    def __enter__(self) -> RtspServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.kill()
