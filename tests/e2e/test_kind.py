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


KIND_NODE_IMAGE = "kindest/node"


def _has_kind_node_image() -> bool:
    out = subprocess.run(
        ["docker", "image", "ls", "--format={{.Repository}}", KIND_NODE_IMAGE],
        capture_output=True,
        text=True,
        check=False,
        timeout=20,
    )
    return out.returncode == 0 and KIND_NODE_IMAGE in out.stdout


def test_end_to_end_on_kind() -> None:
    missing = [tool for tool in ("kind", "kubectl", "helm") if shutil.which(tool) is None]
    if not _docker_works():
        pytest.skip(
            "no Docker engine on the default socket: kind cannot create a cluster (tests/node runs the same "
            "journey on a real kubelet instead; run tests/e2e/run.sh where Docker and an image registry are)"
        )
    if not _has_kind_node_image():
        pytest.skip(
            f"kind needs its node image ({KIND_NODE_IMAGE}), which only an image registry serves and none is "
            "reachable here; tests/node runs the same journey on a real kubelet instead"
        )
    if missing:
        pytest.skip(f"{', '.join(missing)} not on PATH: install them to run the kind end-to-end test")
    out = subprocess.run([str(HERE / "run.sh")], capture_output=True, text=True, check=False, timeout=3600)
    assert out.returncode == 0 and "e2e: ok" in out.stdout, out.stdout[-3000:] + out.stderr[-3000:]
