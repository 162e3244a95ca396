"""A FineTuneExperiment expands into the FineTuneJobs it names, and one bad variant rejects it all."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from finetune_api.cli import main
from finetune_api.experiment.compare import best_variant, text_table
from finetune_api.v1alpha1.enums import Metric, Phase
from finetune_api.v1alpha1.experiment_status import VariantStatus
from finetune_api.validation.validate import validate_document

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "tweets-comparison.yaml"


def _doc() -> dict[str, Any]:
    return dict(yaml.safe_load(EXAMPLE.read_text()))


def _errors(doc: dict[str, Any]) -> list[str]:
    return [p.render() for p in validate_document(doc).errors]


def test_the_guides_comparison_expands_into_four_fine_tune_jobs() -> None:
    result = validate_document(_doc())
    assert result.ok, _errors(_doc())
    names = [v.job_name for v in result.variants]
    assert names == [f"tweets-comparison-{v}" for v in ("full", "layerwise-lr", "lora", "prompt-tuning")]
    full, layerwise, lora, prompt = (v.document["spec"] for v in result.variants)
    assert [s["method"]["type"] for s in (full, layerwise, lora, prompt)] == [
        "full",
        "layerwise-lr",
        "lora",
        "prompt-tuning",
    ]
    # Shared: model, data; own: output prefix and the selected metric as headline metric.
    assert {s["model"]["uri"] for s in (full, lora)} == {"s3://models/all-minilm-l6-v2/"}
    assert lora["output"]["uri"] == "s3://models/out/tweets-comparison/lora/"
    assert all(s["evaluation"]["metric"] == "accuracy" for s in (full, layerwise, lora, prompt))
    # Training overrides merge into the template: batch size kept, learning rate replaced.
    assert lora["training"] == {**lora["training"], "batchSize": 32, "learningRate": 3e-4, "epochs": 1}
    assert prompt["training"]["epochs"] == 2
    meta = result.variants[2].document["metadata"]
    assert meta["labels"] == {"finetune.dev/experiment": "tweets-comparison", "finetune.dev/variant": "lora"}


def test_max_steps_in_a_variant_replaces_the_templates_epochs() -> None:
    doc = _doc()
    doc["spec"]["variants"][0]["training"] = {"maxSteps": 5}
    result = validate_document(doc)
    assert result.ok, _errors(doc)
    training = result.variants[0].document["spec"]["training"]
    assert training["maxSteps"] == 5 and "epochs" not in training


def test_a_variant_invalid_only_once_merged_names_the_variant_and_field() -> None:
    doc = _doc()
    doc["spec"]["template"]["resources"] = {"gpus": 0}
    doc["spec"]["variants"][3]["method"] = {"type": "prefix-tuning"}
    doc["spec"]["variants"][3]["training"]["gradientCheckpointing"] = True
    (error,) = _errors(doc)
    assert error.startswith("variant prompt-tuning: FineTuneJob tweets-comparison-prompt-tuning:")
    assert "spec.training.gradientCheckpointing" in error
    assert validate_document(doc).variants == [], "an invalid experiment yields no variants to create"


def test_a_method_parameter_of_another_method_names_the_variant() -> None:
    doc = _doc()
    doc["spec"]["variants"][2]["method"]["decay"] = 0.5
    (error,) = _errors(doc)
    assert error.startswith("spec.variants[2]('lora').method.decay") and "layerwise-lr" in error


def test_a_template_problem_is_reported_once_not_per_variant() -> None:
    doc = _doc()
    doc["spec"]["template"]["evaluation"] = {"gate": {"metric": "accuracy", "minImprovement": 2}}
    (error,) = _errors(doc)
    assert error.startswith("spec.template: spec.evaluation.gate.minImprovement")


def test_grid_is_the_product_of_its_axes_and_reads_values_as_their_type() -> None:
    doc = _doc()
    del doc["spec"]["variants"]
    doc["spec"]["grid"] = [
        {"path": "training.learningRate", "values": ["1e-4", "3e-4"]},
        {"path": "method.r", "values": ["8", "16"]},
    ]
    result = validate_document(doc)
    assert result.ok, _errors(doc)
    assert [v.name for v in result.variants] == ["g0", "g1", "g2", "g3"]
    specs = [v.document["spec"] for v in result.variants]
    assert [(s["training"]["learningRate"], s["method"]["r"]) for s in specs] == [
        (1e-4, 8),
        (1e-4, 16),
        (3e-4, 8),
        (3e-4, 16),
    ]
    assert result.variants[3].summary == "training.learningRate=0.0003 method.r=16"


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"grid": [{"path": "training.learningRate", "values": ["fast"]}]}, "spec.grid[0].values[0]"),
        ({"grid": [{"path": "method.r", "values": [str(i) for i in range(1, 9)]}] * 1}, None),
        (
            {"grid": [{"path": "method.r", "values": [str(i) for i in range(1, 9)]},
                      {"path": "training.seed", "values": [str(i) for i in range(5)]}]},
            "40 variants",
        ),
        ({"grid": [{"path": "method.type", "values": ["lora", "qlora"]}], "cpu": True},
         "variant g1 (method.type=qlora)"),
        ({"grid": [{"path": "training.bogus", "values": ["1"]}]}, "spec.grid[0].path"),
    ],
)  # fmt: skip
def test_grid_problems(change: dict[str, Any], expected: str | None) -> None:
    doc = _doc()
    del doc["spec"]["variants"]
    doc["spec"]["grid"] = change["grid"]
    if change.get("cpu"):
        doc["spec"]["template"]["resources"] = {"gpus": 0}
    errors = _errors(doc)
    if expected is None:
        assert errors == []
    else:
        assert any(expected in e for e in errors), errors


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (lambda d: d["spec"].update(grid=[{"path": "method.r", "values": ["8"]}]), "exactly one of spec.variants"),
        (lambda d: d["spec"]["variants"][0].update(name="comparison"), "taken by the experiment's report"),
        (lambda d: d["spec"]["variants"][0].update(evaluation={"metric": "eval-loss"}), "evaluation.metric"),
        (lambda d: d["metadata"].update(name="x" * 40), "49 characters"),
        (lambda d: d["spec"]["promote"].update(uri="s3://models/out/tweets-comparison/best/"), "spec.promote.uri"),
        (lambda d: d["spec"].update(maxParallel=0), "spec.maxParallel"),
    ],
)
def test_experiment_level_problems(edit: Any, expected: str) -> None:
    doc = copy.deepcopy(_doc())
    edit(doc)
    errors = _errors(doc)
    assert any(expected in e for e in errors), errors


def test_cli_validate_takes_experiments(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(EXAMPLE)]) == 0
    bad = tmp_path / "bad.yaml"
    bad.write_text(EXAMPLE.read_text().replace("virtualTokens: 20", "virtualTokens: 20\n        r: 4"))
    assert main(["validate", str(bad)]) == 1
    out = capsys.readouterr().out
    assert "prompt-tuning" in out and "method.r" in out


def _row(name: str, metric: float | None, params: int, phase: Phase = Phase.SUCCEEDED) -> VariantStatus:
    return VariantStatus(name=name, job=f"x-{name}", phase=phase, metric=metric, trainable_parameters=params)


def test_best_is_the_highest_accuracy_of_the_succeeded_ties_to_fewer_parameters() -> None:
    rows = [
        _row("full", 0.71, 22_000_000),
        _row("lora", 0.71, 150_000),
        _row("broken", 0.99, 10, Phase.FAILED),
        _row("prompt", 0.60, 8_000),
    ]
    best = best_variant(rows, Metric.ACCURACY)
    assert best is not None and best.variant == "lora" and "runner-up full 0.7100" in best.reason
    loss = best_variant(rows, Metric.EVAL_LOSS)
    assert loss is not None and loss.variant == "prompt", "lower is better for eval-loss"
    table = text_table(rows, Metric.ACCURACY, best)
    assert "lora *" in table and "Failed" in table and table.splitlines()[0].split()[3] == "accuracy"
    assert best_variant([_row("a", None, 1)], Metric.ACCURACY) is None
