"""A gate against few-shot that cannot be measured is refused by `finetune validate` (issue 22), as far as the
spec and a local model folder tell; the trainer refuses the rest once it has read the model's config."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from finetune_api.validation import validate_document

FIELD = "spec.evaluation.gate.against"


def _job(model: str, task: dict[str, Any], metric: str) -> dict[str, Any]:
    return {
        "apiVersion": "finetune.dev/v1alpha1",
        "kind": "FineTuneJob",
        "metadata": {"name": "gate"},
        "spec": {
            "model": {"uri": model},
            "task": task,
            "dataset": {"train": "s3://data/t/train.jsonl", "eval": "s3://data/t/eval.jsonl"},
            "method": {"type": "lora"},
            "training": {"maxSteps": 10},
            "output": {"uri": "s3://models/out/gate/"},
            "evaluation": {"fewShot": {"shots": 4}, "gate": {"metric": metric, "against": "fewShot"}},
        },
    }


def _problems(doc: dict[str, Any]) -> list[str]:
    result = validate_document(doc)
    return [p.render() for p in result.problems if FIELD in p.render()]


def _model(folder: Path, model_type: str) -> str:
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": model_type}))
    return f"{folder}/"


CLASSIFY = {"type": "sequence-classification", "textColumn": "text", "labelColumn": "label"}


def test_a_local_encoder_classifier_cannot_be_gated_against_few_shot(tmp_path: Path) -> None:
    problems = _problems(_job(_model(tmp_path / "minilm", "bert"), CLASSIFY, "accuracy"))
    assert len(problems) == 1 and "bert is an encoder model" in problems[0] and "baseline" in problems[0], problems


@pytest.mark.parametrize("model_type", ["gpt2", "llama"])
def test_a_local_decoder_classifier_may_be(tmp_path: Path, model_type: str) -> None:
    result = validate_document(_job(_model(tmp_path / model_type, model_type), CLASSIFY, "accuracy"))
    assert result.ok, [p.render() for p in result.problems]


def test_a_remote_model_is_left_to_the_trainer() -> None:
    assert validate_document(_job("s3://models/all-minilm-l6-v2/", CLASSIFY, "accuracy")).ok


def test_plain_text_sft_has_no_prompt_for_demonstrations() -> None:
    task = {"type": "causal-lm", "format": "text", "textColumn": "text"}
    problems = _problems(_job("s3://models/smollm2/", task, "eval-loss"))
    assert len(problems) == 1 and "task.format text" in problems[0], problems
