"""Each package owns its command line: `finetune` (the API) finds the trainer's `run` by entry point."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest

from finetune_api import cli

REPO = Path(__file__).resolve().parents[2]


def _declared() -> list[EntryPoint]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    group = project["entry-points"][cli.COMMANDS]
    return [EntryPoint(name, target, cli.COMMANDS) for name, target in group.items()]


def test_the_trainer_registers_run(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli, "entry_points", lambda group: _declared())
    args = cli.build_parser().parse_args(["run", "job.yaml", "--s3-endpoint", "http://127.0.0.1:9000"])
    assert args.command == "run" and args.file == "job.yaml" and args.s3_endpoint == "http://127.0.0.1:9000"
    assert args.func.__module__ == "finetune_trainer.cli"


def test_a_command_whose_package_cannot_load_says_so(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = EntryPoint("run", "finetune_no_such_package.cli:register", cli.COMMANDS)
    monkeypatch.setattr(cli, "entry_points", lambda group: [broken])
    assert cli.main(["run", "job.yaml"]) == cli.EXIT_USAGE
    assert "finetune_no_such_package" in capsys.readouterr().err


def test_listing_the_commands_loads_no_torch() -> None:
    # The operator image has the trainer's modules but not torch: `finetune --help` must still work.
    code = "import sys, finetune_trainer.cli; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
