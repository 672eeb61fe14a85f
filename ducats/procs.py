"""Child processes of the pipeline (Faust workers), started and stopped for real.

Used by ``ducats demo`` and by the end-to-end tests, which kill workers with
SIGKILL to prove crash recovery.
"""
from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now (for a child's web or metrics port)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class WorkerProcess:
    """A ``ducats <command> [args]`` subprocess (a worker by default) with its own environment and log file."""

    def __init__(self, *, env: dict[str, str], log_path: Path, command: str = "worker",
                 args: tuple[str, ...] = ()) -> None:
        self.env = env
        self.log_path = log_path
        self.command = command
        self.args = args
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> WorkerProcess:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "cli", self.command, *self.args],
            env={**os.environ, **self.env}, stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )
        log.close()
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None, "start() first"
        return self.proc.pid

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def children(self) -> list[int]:
        """The pids of its child processes now (Linux; the ledger's is its ducat-state sink)."""
        kids: list[int] = []
        for task in Path(f"/proc/{self.pid}/task").glob("*"):
            with contextlib.suppress(OSError):
                kids += [int(c) for c in (task / "children").read_text().split()]
        return kids

    def post_mortem(self, lines: int = 30) -> str:
        """How it ended, for an assertion message: the exit code and its log's last lines."""
        code = None if self.proc is None else self.proc.poll()
        try:
            tail = self.log_path.read_text(errors="replace").splitlines()[-lines:]
        except OSError as e:
            tail = [f"(no log: {e})"]
        return "\n".join([f"ducats {self.command} (exit code {code}), the end of {self.log_path}:", *tail])

    def stop(self, timeout: float = 60.0) -> int | None:
        """SIGTERM and wait: Faust commits offsets and flushes on the way out."""
        return self._signal(signal.SIGTERM, timeout)

    def kill(self) -> int | None:
        """SIGKILL: a crash, with no chance to commit or flush anything."""
        return self._signal(signal.SIGKILL, 30.0)

    def _signal(self, sig: signal.Signals, timeout: float) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(30)
        return self.proc.returncode

    def __enter__(self) -> WorkerProcess:
        return self.start()

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


def post_mortems(procs: Iterable[WorkerProcess]) -> str:
    """The post mortems of those of ``procs`` that are not running."""
    return "\n".join(p.post_mortem() for p in procs if not p.alive)
