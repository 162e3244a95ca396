"""`python -m tests.node.cluster down` stops processes an earlier command started, by PID: only while the PID still
names the process that was recorded (its start time), never one the kernel gave that PID to since."""

from __future__ import annotations

import subprocess

from tests.controlplane.cluster import AdoptedProcess, stop_processes


def _sleeper() -> subprocess.Popen[bytes]:
    return subprocess.Popen(["sleep", "60"], start_new_session=True)


def test_an_adopted_process_is_stopped_by_its_pid() -> None:
    proc = _sleeper()
    adopted = AdoptedProcess.of(proc)
    assert adopted.poll() is None
    stop_processes([adopted], timeout=5)
    assert proc.wait(timeout=5) == -15, "SIGTERM to its process group"
    assert adopted.poll() == 0, "an ended (or zombie) process reads as ended"


def test_a_reused_pid_is_never_signalled() -> None:
    proc = _sleeper()
    try:
        recorded = AdoptedProcess.of(proc)
        other = AdoptedProcess(recorded.pid, recorded.started - 1)  # the same PID, another process's start time
        assert other.poll() == 0
        stop_processes([other], timeout=1)
        assert proc.poll() is None, "the process now holding the PID was left alone"
    finally:
        proc.kill()
        proc.wait()
