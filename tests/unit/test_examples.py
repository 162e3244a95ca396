"""Every example validates, and each method and task format has one."""

from __future__ import annotations

from pathlib import Path

import pytest

from finetune_api.cli import main
from finetune_api.v1alpha1 import CausalFormat, MethodType
from finetune_api.validation import validate_file

EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "examples").glob("*.yaml"))


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_is_valid_and_commented(path: Path) -> None:
    (result,) = validate_file(path)
    assert result.ok, [p.render() for p in result.errors]
    assert result.name == path.stem, "an example's file is named after its metadata.name"
    assert path.read_text().startswith("# "), "each example opens with a comment saying what it shows"


def test_examples_cover_every_method_and_format() -> None:
    jobs = [validate_file(p)[0].job for p in EXAMPLES]
    methods = {j.spec.method.type for j in jobs if j}
    formats = {j.spec.task.format for j in jobs if j and j.spec.task.format}
    assert methods == set(MethodType)
    assert formats == set(CausalFormat)


def test_cli_validate_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", *map(str, EXAMPLES)]) == 0
    bad = tmp_path / "bad.yaml"
    bad.write_text(EXAMPLES[0].read_text().replace("type: lora", "type: lorra"))
    assert main(["validate", str(bad)]) == 1
    out = capsys.readouterr().out
    assert "spec.method.type" in out and "lorra" in out


def test_cli_rejects_other_kinds_and_empty_files(tmp_path: Path) -> None:
    other = tmp_path / "pod.yaml"
    other.write_text("apiVersion: v1\nkind: Pod\nmetadata: {name: x}\n")
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    broken = tmp_path / "broken.yaml"
    broken.write_text("spec: [unclosed\n")
    for path in (other, empty, broken):
        assert not validate_file(path)[0].ok
