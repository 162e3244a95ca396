"""Job files are read with limits and as strictly as the API server reads them; refusals are quick and clear."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import yaml

from finetune_api.validation import validate_file
from finetune_api.validation.validate import ValidationResult
from finetune_trainer.job_file import load_job

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = (REPO / "examples" / "tweets-lora.yaml").read_text()


def _validate(tmp_path: Path, text: str) -> list[ValidationResult]:
    path = tmp_path / "job.yaml"
    path.write_text(text)
    started = time.monotonic()
    results = validate_file(path)
    assert time.monotonic() - started < 5, "a hostile file must be refused quickly"
    return results


def _only_error(results: list[ValidationResult]) -> str:
    (result,) = results
    assert not result.ok
    return " | ".join(p.render() for p in result.errors)


def test_alias_bomb_is_refused_quickly(tmp_path: Path) -> None:
    lines = ['a0: &a0 ["x","x","x","x","x","x","x","x","x"]']
    lines += [f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 9)]
    text = "\n".join(lines) + "\n"
    assert len(text) < 1024
    assert "expands to more than" in _only_error(_validate(tmp_path, text))


def test_deep_nesting_is_refused_not_a_traceback(tmp_path: Path) -> None:
    assert "nested deeper than" in _only_error(_validate(tmp_path, "a: " + "[" * 5000 + "]" * 5000 + "\n"))


def test_a_second_training_key_is_an_error(tmp_path: Path) -> None:
    message = _only_error(_validate(tmp_path, EXAMPLE + "  training:\n    epochs: 3\n"))
    assert "key 'training' appears twice in the same mapping" in message


def test_a_date_key_is_refused_with_the_fix(tmp_path: Path) -> None:
    text = EXAMPLE.replace("metadata:\n", "metadata:\n  annotations:\n    2024-01-01: release\n", 1)
    message = _only_error(_validate(tmp_path, text))
    assert "key '2024-01-01' is read as a date, not a string" in message and "quote it" in message


def test_scalar_metadata(tmp_path: Path) -> None:
    doc = yaml.safe_load(EXAMPLE)
    doc["metadata"] = "tweets"
    assert "metadata: is str 'tweets', not a mapping" in _only_error(_validate(tmp_path, yaml.safe_dump(doc)))


def test_a_list_is_checked_item_by_item(tmp_path: Path) -> None:
    doc = yaml.safe_load(EXAMPLE)
    broken = yaml.safe_load(EXAMPLE)
    broken["spec"]["method"]["r"] = 0
    listing = {"apiVersion": "v1", "kind": "List", "items": [doc, broken]}
    first, second = _validate(tmp_path, yaml.safe_dump(listing))
    assert first.ok and first.source.endswith("items[0]")
    assert not second.ok and any(p.path == "spec.method.r" for p in second.errors)
    (empty,) = _validate(tmp_path, "apiVersion: v1\nkind: List\nitems: []\n")
    assert not empty.ok and "non-empty list of items" in empty.errors[0].render()


def test_unknown_encoding(tmp_path: Path) -> None:
    doc = yaml.safe_load(EXAMPLE)
    doc["spec"]["dataset"]["encoding"] = "utf-9"
    message = _only_error(_validate(tmp_path, yaml.safe_dump(doc)))
    assert "spec.dataset.encoding: 'utf-9' is not a known text encoding" in message


@pytest.mark.parametrize("text", ["spec: [unclosed\n", "\tkey: tab\n"])
def test_broken_yaml_names_the_line(tmp_path: Path, text: str) -> None:
    assert "is not valid YAML: line " in _only_error(_validate(tmp_path, text))


@pytest.mark.parametrize(("written", "value"), [("2e-5", 2e-5), ("1E-3", 1e-3), ("3e-4", 3e-4), ("-1e+2", -100.0)])
def test_a_number_with_an_exponent_is_read_as_kubectl_reads_it(tmp_path: Path, written: str, value: float) -> None:
    """YAML 1.1 (PyYAML) needs a dot in a float; kubectl and the API server (YAML 1.2, JSON) do not."""
    text = EXAMPLE.replace("learningRate: 3.0e-4", f"learningRate: {written}")
    assert f"learningRate: {written}" in text
    if value > 0:
        (result,) = _validate(tmp_path, text)
        assert result.ok, [p.render() for p in result.errors]
        assert load_job(tmp_path / "job.yaml").spec.training.learning_rate == value
    else:  # still a number: the schema's own bound answers, not 'input should be a valid number'
        message = _only_error(_validate(tmp_path, text))
        assert "learningRate" in message and "valid number" not in message, message


def test_a_json_job_file_is_read_as_the_api_server_reads_it(tmp_path: Path) -> None:
    doc = yaml.safe_load(EXAMPLE)
    doc["spec"]["training"]["learningRate"] = 5e-05
    path = tmp_path / "job.json"
    path.write_text(json.dumps(doc, indent=2))
    assert '"learningRate": 5e-05' in path.read_text(), "json.dumps writes an exponent without a dot"
    (result,) = validate_file(path)
    assert result.ok, [p.render() for p in result.errors]
    assert load_job(path).spec.training.learning_rate == 5e-05


def test_a_quoted_exponent_stays_a_string(tmp_path: Path) -> None:
    text = EXAMPLE.replace("learningRate: 3.0e-4", "learningRate: '3e-4'")
    assert "learningRate" in _only_error(_validate(tmp_path, text))
