"""The setup stage's pure parts: progress that never goes quiet, image keys, the step table, caches-only mode."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

from tests.conftest import _tier
from tests.node.docker_engine import image_inputs, tagged_images
from tests.node.kubelet import _marker, missing_imports
from tests.setup import Outcome, Step, run_step, table
from tests.support import assets, caches, visible


def test_a_quiet_command_gets_a_heartbeat_with_its_count_and_last_line(capsys: pytest.CaptureFixture[str]) -> None:
    script = "import time\nfor i in range(3): print(f'pkg/{i}', flush=True)\ntime.sleep(2.5)\nprint('==> done')"
    with visible.step("demo", every=1.0) as progress:
        lines = progress.run([sys.executable, "-c", script], show=lambda line: line.startswith("==>"), counted="pkgs")
    out = capsys.readouterr().out
    assert "    ==> done" in out
    assert "pkg/0" not in out.replace("last: pkg/", "")  # counted, not printed one by one
    assert "... demo:" in out and "3 pkgs (last: pkg/2)" in out
    assert lines[-1] == "==> done"


def test_a_failed_command_raises_with_its_last_lines() -> None:
    with visible.step("fails", every=60) as progress, pytest.raises(visible.CommandFailed, match="boom") as err:
        progress.run([sys.executable, "-c", "print('boom'); raise SystemExit(3)"])
    assert "exit code 3" in str(err.value)


def test_current_reuses_the_enclosing_step() -> None:
    with visible.step("outer", every=60) as outer, visible.current("inner") as inner:
        assert inner is outer


def test_image_inputs_change_with_copied_sources_only(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile.x").write_text("FROM ${BASE}\nCOPY app /src/app\nCOPY --from=deps /r.txt /r.txt\n")
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "main.py").write_text("print(1)\n")
    (tmp_path / "unrelated.txt").write_text("a")
    key = image_inputs("Dockerfile.x", "base:1", tmp_path)
    (tmp_path / "unrelated.txt").write_text("b")
    (tmp_path / "app" / "__pycache__").mkdir()
    (tmp_path / "app" / "__pycache__" / "main.cpython-311.pyc").write_bytes(b"\0")
    assert image_inputs("Dockerfile.x", "base:1", tmp_path) == key, "files the build never copies do not count"
    assert image_inputs("Dockerfile.x", "base:2", tmp_path) != key, "a new base rebuilds"
    (tmp_path / "app" / "main.py").write_text("print(2)\n")
    assert image_inputs("Dockerfile.x", "base:1", tmp_path) != key, "a code change rebuilds"


def test_a_cached_step_is_one_line_and_a_built_one_says_what_and_why(capsys: pytest.CaptureFixture[str]) -> None:
    built: list[str] = []
    step = Step("thing", "the thing", lambda: [] if built else ["thing.bin"], lambda: built.append("x"))
    first, second = run_step(step), run_step(step)
    out = capsys.readouterr().out.splitlines()
    assert (first.state, second.state) == ("built", "cached")
    assert out[0] == "==> thing: building the thing; missing: thing.bin"
    assert out[1].startswith("==> thing: built in ")
    assert out[2].startswith("==> thing: cached (") and len(out) == 3


def test_a_build_that_leaves_its_cache_missing_is_an_error() -> None:
    with pytest.raises(RuntimeError, match="still missing after its build: x"):
        run_step(Step("broken", "nothing", lambda: ["x"], lambda: None))


def test_the_table_lists_every_step_and_the_total() -> None:
    text = table([Outcome("virtualenv", "cached", 1.0), Outcome("Go binaries", "built", 400.0)])
    assert "Go binaries  built       400.0" in text
    assert text.splitlines()[-1].split() == ["total", "401.0"]


def test_under_pytest_a_missing_asset_names_the_setup_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FINETUNE_CACHE", str(tmp_path))
    assert caches.caches_only(), "tests/conftest.py turns building off for the whole session"
    with pytest.raises(caches.MissingCache, match=re.escape(caches.SETUP_COMMAND)) as err:
        assets.minilm()
    assert "models and data" in str(err.value)
    assert not (tmp_path / "assets" / "models" / "all-minilm-l6-v2").exists()


def test_tiers_come_from_the_test_path() -> None:
    assert _tier("tests/unit/trainer/test_x.py::test_y") == "unit"
    assert _tier("tests/integration/chart/test_chart.py::test_z") == "integration/chart"
    assert _tier("tests/node/test_journey.py::test_a[b]") == "node"


def test_the_node_caches_are_read_from_disk_without_a_daemon(tmp_path: Path) -> None:
    image_id = "sha256:" + "ab" * 32
    data_root = tmp_path / "docker"
    (data_root / "image" / "overlay2").mkdir(parents=True)
    (data_root / "image" / "overlay2" / "repositories.json").write_text(
        json.dumps({"Repositories": {"app": {"app:test": image_id}}})
    )
    assert tagged_images(data_root) == {"app:test": image_id}
    node_root = tmp_path / "node"
    blobs = node_root / "containerd" / "io.containerd.content.v1.content" / "blobs" / "sha256"
    blobs.mkdir(parents=True)
    assert missing_imports(("app:test", "other:x"), node_root, data_root) == ["app:test", "other:x"]
    _marker(node_root, "app:test", image_id).parent.mkdir(parents=True)
    _marker(node_root, "app:test", image_id).touch()
    assert missing_imports(("app:test",), node_root, data_root) == ["app:test"], "marked but not in containerd"
    (blobs / image_id.removeprefix("sha256:")).touch()
    assert missing_imports(("app:test",), node_root, data_root) == []
