"""A pytest stopped by SIGTERM (a `timeout`, a cancelled CI job) still stops what its fixtures started.

Before tests/conftest.py turned SIGTERM into Ctrl-C, such a pytest died without teardown: etcd,
kube-apiserver, the controller manager, the scheduler and kwok ran on in their own sessions, holding
ports, memory and the binaries (a rebuild then failed with "text file busy").
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import wait_for
from tests.controlplane.cluster import ROOT_PARENT, ROOT_PREFIX

pytestmark = pytest.mark.controlplane
REPO = Path(__file__).resolve().parents[3]
CHILD = "tests/integration/operator/test_operator_lifecycle.py"  # minutes long: the operator runs in-process


def _processes_under(root: Path) -> dict[int, str]:
    """The processes that name `root` (each component of a control plane does): pid -> command line."""
    found = {}
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            args = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue  # gone meanwhile
        if str(root) in args:
            found[int(cmdline.parent.name)] = args[:200]
    return found


@pytest.mark.parametrize("when", ["while it starts", "while a test runs"])
def test_sigterm_stops_the_control_plane_it_started(when: str) -> None:
    before = set(ROOT_PARENT.glob(ROOT_PREFIX + "*"))
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", CHILD],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:

        def new_root() -> Path | None:
            return next(iter(set(ROOT_PARENT.glob(ROOT_PREFIX + "*")) - before), None)

        root: Path = wait_for(new_root, "the child pytest's control plane", 60)
        ready = "kubeconfig-admin" if when == "while a test runs" else "etcd.log"
        wait_for(lambda: (root / ready).exists() and _processes_under(root), f"{ready} and a component", 60)
        if when == "while a test runs":
            time.sleep(25)  # the control plane is up, the operator runs in-process, its first tests run
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=90)
        removed = not root.exists()
    finally:
        if proc.poll() is None:
            proc.kill()
    leaked = _processes_under(root)
    for pid in leaked:  # a failing run must not leave them to the next test
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    shutil.rmtree(root, ignore_errors=True)
    assert proc.returncode != 0, out[-2000:]
    assert list(leaked.values()) == [], out[-2000:]
    assert removed, "the control plane's folder goes with it"
