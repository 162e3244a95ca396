"""Long builds made visible: their own milestone lines, and a heartbeat whenever they go quiet.

A build that prints nothing for minutes looks exactly like a hang. Every heavy step of the test
setup runs through here: the lines that mark progress (Go's package names as a count, docker
build's `Step n/m`, the steps' own `==>` lines) are shown or counted, and a step that has printed
nothing for `HEARTBEAT_S` says so, with how long it has run and the last thing it did.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

HEARTBEAT_S = 30.0
INDENT = "    "


class CommandFailed(RuntimeError):
    """A build command exited non-zero; the message holds its command and the end of its output."""


class Progress:
    """One step's output: what it prints, and a heartbeat line when it has been quiet too long."""

    def __init__(self, label: str, every: float = HEARTBEAT_S) -> None:
        self.label = label
        self.every = every
        self.started = time.monotonic()
        self._last_print = self.started
        self._status = ""
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"heartbeat {label}", daemon=True)

    def __enter__(self) -> Progress:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()

    def say(self, line: str) -> None:
        with self._lock:
            sys.stdout.write(f"{INDENT}{line}\n")
            sys.stdout.flush()
            self._last_print = time.monotonic()

    def note(self, status: str) -> None:
        """What the heartbeat reports next (a count, the last package); not printed by itself."""
        with self._lock:
            self._status = status

    def _beat(self) -> None:
        while not self._done.wait(1.0):
            with self._lock:
                quiet = time.monotonic() - self._last_print
                status = self._status
            if quiet >= self.every:
                elapsed = time.monotonic() - self.started
                self.say(f"... {self.label}: {elapsed:.0f} s so far{f', {status}' if status else ''}")

    def run(  # noqa: PLR0913 - subprocess.run's own options, passed through
        self,
        args: Sequence[str],
        *,
        show: Callable[[str], bool] = lambda line: False,
        counted: str = "lines of output",
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        stdin: int | None = None,
    ) -> list[str]:
        """Run a command to the end: lines that `show` picks are printed, the others counted for the heartbeat.
        Returns the output's last lines; raises CommandFailed with them when it fails."""
        tail: deque[str] = deque(maxlen=60)
        kept: list[str] = []
        count = 0
        proc = subprocess.Popen(
            list(args),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=stdin,
            text=True,
            errors="replace",
            env=dict(env) if env is not None else None,
            cwd=cwd,
        )
        assert proc.stdout is not None
        for raw in proc.stdout:
            line = raw.rstrip()
            if not line:
                continue
            tail.append(line)
            if show(line):
                self.say(line)
                kept.append(line)
            else:
                count += 1
                self.note(f"{count} {counted} (last: {line[:120]})")
        if proc.wait() != 0:
            shown = "\n".join(tail)
            raise CommandFailed(f"{' '.join(args)} failed with exit code {proc.returncode}; its last lines:\n{shown}")
        self.note("")
        return [*kept, *tail]


_active: list[Progress] = []


@contextmanager
def step(label: str, every: float = HEARTBEAT_S) -> Iterator[Progress]:
    """The progress of one named step; `current()` inside it returns the same object."""
    with Progress(label, every) as progress:
        _active.append(progress)
        try:
            yield progress
        finally:
            _active.pop()


@contextmanager
def current(label: str) -> Iterator[Progress]:
    """The enclosing step's progress, or one of its own for code run outside any step."""
    if _active:
        yield _active[-1]
    else:
        with step(label) as progress:
            yield progress
