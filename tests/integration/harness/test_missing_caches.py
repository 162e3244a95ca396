"""Under pytest nothing heavy is built: a test whose cache is missing fails at once, naming the command
that builds it (python -m tests.setup), instead of building in silence inside a fixture for minutes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.caches import SETUP_COMMAND

REPO = Path(__file__).resolve().parents[3]


def _pytest_with_an_empty_cache(test: str, cache: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "FINETUNE_CACHE": str(cache)}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", test],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_a_control_plane_test_without_its_binaries_fails_naming_the_setup_command(tmp_path: Path) -> None:
    out = _pytest_with_an_empty_cache("tests/integration/controlplane/test_crd_server_side.py", tmp_path)
    assert out.returncode != 0, out.stdout[-2000:]
    assert SETUP_COMMAND in out.stdout and "'Go binaries'" in out.stdout, out.stdout[-3000:]
    assert not (tmp_path / "controlplane").exists(), "nothing was built"


@pytest.mark.skipif(os.geteuid() != 0, reason="the node tier needs root; without it its tests skip, not fail")
def test_a_node_test_without_its_images_fails_naming_the_setup_command(tmp_path: Path) -> None:
    out = _pytest_with_an_empty_cache(
        "tests/node/test_images.py::test_a_code_change_reuses_the_dependency_layers", tmp_path
    )
    assert out.returncode != 0, out.stdout[-2000:]
    assert SETUP_COMMAND in out.stdout and "'base and images'" in out.stdout, out.stdout[-3000:]
    assert not (tmp_path / "docker").exists(), "no Docker engine was started, let alone a build"
