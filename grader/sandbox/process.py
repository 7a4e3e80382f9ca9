"""One sandboxed command: its limits, the process while it runs, and what it did."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO

OUTPUT_KEPT = 200_000  # bytes of each stream kept (the tail); the rest is read and dropped
RESULT_BYTES = 64 * 1024**2  # at most this much of a result descriptor is read


@dataclass(frozen=True)
class Limits:
    """Resource limits of one sandboxed command."""

    wall_seconds: float = 300.0
    cpu_seconds: int = 600
    memory_bytes: int = 4 * 1024**3
    processes: int = 128
    file_bytes: int = 256 * 1024**2


@dataclass
class RunResult:
    """What a sandboxed command did: exit code, output, whether it ran out of time."""

    command: list[str]
    returncode: int
    stdout: str
    stderr: str
    seconds: float
    timed_out: bool = False
    result_text: str | None = None  # what it wrote to its result descriptor (`result_fd=True`)
    stopped: str | None = None  # why the sandbox killed it (its folder grew past the caps)

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out and self.stopped is None

    def tail(self, lines: int = 15) -> str:
        """The last lines of stderr and stdout, for the student's feedback."""
        text = "\n".join(part for part in (self.stdout.strip(), self.stderr.strip()) if part)
        return "\n".join(text.splitlines()[-lines:])

    def describe(self) -> str:
        """One line: how the command ended."""
        shown = " ".join(self.command)
        if self.stopped:
            return f"`{shown}` was stopped: {self.stopped}"
        if self.timed_out:
            return f"`{shown}` did not finish within {self.seconds:.0f} s"
        if self.returncode < 0:
            name = signal.Signals(-self.returncode).name
            return f"`{shown}` was killed by {name} (a resource limit?)"
        return f"`{shown}` exited with code {self.returncode}"


class Tail:
    """Drains a pipe in a thread, keeping only its last `keep` bytes: the grader's memory stays
    flat whatever the child prints (1 GB of output, measured: ~1 s)."""

    def __init__(self, stream: IO[bytes], keep: int = OUTPUT_KEPT) -> None:
        self.stream = stream
        self.keep = keep
        self.buffer = bytearray()
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._drain, daemon=True)
        self.thread.start()

    def _drain(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            while chunk := self.stream.read1(1 << 16):  # type: ignore[attr-defined]
                with self.lock:
                    self.buffer += chunk
                    if len(self.buffer) > 2 * self.keep:
                        del self.buffer[: -self.keep]

    def text(self, timeout: float | None = None) -> str:
        """The kept tail; with `timeout`, once the pipe is closed or `timeout` s have passed
        (a grandchild that escaped the kill may hold it open)."""
        if timeout is not None:
            self.thread.join(timeout)
        with self.lock:
            return bytes(self.buffer[-self.keep :]).decode(errors="replace")

    def close(self) -> None:
        """Close the pipe once drained (else closing would wait for the blocked read)."""
        if not self.thread.is_alive():
            with contextlib.suppress(OSError):
                self.stream.close()


class Process:
    """A sandboxed command running in the background (`Sandbox.start`)."""

    def __init__(
        self,
        proc: subprocess.Popen[bytes],
        command: list[str],
        limits: Limits,
        started: float,
        result_file: IO[bytes] | None = None,
        over_caps: Callable[[], str | None] | None = None,
    ) -> None:
        self.proc = proc
        self.command = command
        self.limits = limits
        self.started = started
        self.result_file = result_file
        self.over_caps = over_caps
        self.stopped: str | None = None  # set by the sandbox's watchdog before it kills
        assert proc.stdout is not None and proc.stderr is not None
        self._out = Tail(proc.stdout)
        self._err = Tail(proc.stderr)
        self._result: RunResult | None = None

    @property
    def done(self) -> bool:
        return self._result is not None

    @property
    def running(self) -> bool:
        return self.proc.returncode is None

    def wait(self, stdin: str | None = None) -> RunResult:
        """Write `stdin` (if its input was kept open), wait within the wall-clock limit."""
        if self._result is not None:
            return self._result
        proc = self.proc
        if proc.stdin is not None:
            with contextlib.suppress(BrokenPipeError, ValueError, OSError):
                if stdin:
                    proc.stdin.write(stdin.encode())
                proc.stdin.close()
        remaining = max(0.0, self.started + self.limits.wall_seconds - time.monotonic())
        timed_out = False
        try:
            proc.wait(timeout=remaining)
        except subprocess.TimeoutExpired:
            timed_out = True
            self.kill()
            proc.wait()
        if self.stopped is None and self.over_caps is not None:
            self.stopped = self.over_caps()  # it passed the caps and ended before the watchdog saw
        stdout, stderr = self._out.text(5.0), self._err.text(5.0)
        self._out.close()
        self._err.close()
        result_text = None
        if self.result_file is not None:
            self.result_file.seek(0)
            result_text = self.result_file.read(RESULT_BYTES).decode(errors="replace")
            self.result_file.close()
        self._result = RunResult(
            command=self.command,
            returncode=proc.returncode,
            stdout=stdout,
            stderr=stderr,
            seconds=time.monotonic() - self.started,
            timed_out=timed_out,
            result_text=result_text,
            stopped=self.stopped,
        )
        return self._result

    def kill(self) -> None:
        """Kill its process group (no-op once it has exited)."""
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
