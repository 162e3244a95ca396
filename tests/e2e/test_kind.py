"""The whole loop on kind: images, chart, S3, a CPU FineTuneJob to Succeeded, adapter and manifest in S3."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.kind
HERE = Path(__file__).resolve().parent


def _docker_works() -> bool:
    if shutil.which("docker") is None:
        return False
    return subprocess.run(["docker", "info"], capture_output=True, check=False, timeout=20).returncode == 0


def test_end_to_end_on_kind() -> None:
    missing = [tool for tool in ("kind", "kubectl", "helm") if shutil.which(tool) is None]
    if not _docker_works():
        pytest.skip(
            "no running Docker engine on this machine: kind cannot create a cluster "
            "(run tests/e2e/run.sh where Docker is)"
        )
    if missing:
        pytest.skip(f"{', '.join(missing)} not on PATH: install them to run the kind end-to-end test")
    out = subprocess.run([str(HERE / "run.sh")], capture_output=True, text=True, check=False, timeout=3600)
    assert out.returncode == 0 and "e2e: ok" in out.stdout, out.stdout[-3000:] + out.stderr[-3000:]
