"""Few-shot and forgetting numbers reach every report: model card, run summary, status patch, Prometheus."""

from __future__ import annotations

import io
from typing import Any

from finetune_api.v1alpha1.status import FineTuneJobStatus
from finetune_trainer.artifacts.report import model_card
from finetune_trainer.cli import print_summary
from finetune_trainer.observability.kube_status import status_body
from finetune_trainer.observability.progress import ProgressState
from finetune_trainer.observability.prometheus import PrometheusSink
from finetune_trainer.training.results import RunResult

METRICS: dict[str, Any] = {
    "metric": "perplexity",
    "baseline": {"eval_loss": 2.0, "eval_perplexity": 7.389},
    "few_shot": {"shots": 3, "eval_loss": 1.8, "eval_perplexity": 6.05, "demonstrations": 2.5},
    "tuned": {"eval_loss": 1.5, "eval_perplexity": 4.48},
    "forgetting": {
        "reference": "built-in: wiki",
        "tokens": 1024,
        "before": 20.0,
        "after": 22.0,
        "relative_change": 0.1,
    },
    "steps": 4,
    "train_runtime_s": 3.0,
    "parameters": {"trainable": 10, "total": 100},
}


def test_model_card_has_a_few_shot_column_and_the_forgetting_figures() -> None:
    card = model_card("job", "spec: {}", METRICS, [], {"trainable": 10, "total": 100}, "s3://m/")
    assert "| metric | baseline (untouched) | few-shot (3 shots) | tuned |" in card
    assert "| loss | 2.0000 | 1.8000 | 1.5000 |" in card
    assert "20.0000 -> 22.0000 (+10.0%)" in card and "built-in: wiki" in card


def test_encoder_few_shot_is_shown_as_not_applicable_with_its_reason() -> None:
    metrics = {**METRICS, "few_shot": {"shots": 3, "not_applicable": "bert is an encoder model"}, "forgetting": {}}
    card = model_card("job", "spec: {}", metrics, [], {"trainable": 10, "total": 100}, "s3://m/")
    assert "| n/a |" in card and "not applicable: bert is an encoder model" in card
    out = io.StringIO()
    print_summary(RunResult("s3://o/", None, metrics), out=out)
    assert "few-shot: not applicable: bert is an encoder model" in out.getvalue()


def test_run_summary_prints_zero_shot_few_shot_tuned_and_forgetting() -> None:
    out = io.StringIO()
    print_summary(RunResult("s3://o/", "s3://o/manifest.json", METRICS), out=out)
    text = out.getvalue()
    assert "few-shot (3)" in text and "1.8000" in text
    assert "forgetting: reference perplexity 20.0000 -> 22.0000 (+10.0%)" in text


def test_status_and_prometheus_carry_few_shot_and_reference_perplexity() -> None:
    state = ProgressState(
        metric_name="perplexity",
        baseline_metric=7.4,
        few_shot_metric=6.05,
        forgetting_before=20.0,
        forgetting_after=22.0,
    )
    patch = status_body(state)["status"]["metrics"]
    assert patch["fewShotMetric"] == 6.05 and patch["referencePerplexityAfter"] == 22.0
    FineTuneJobStatus.model_validate({"metrics": patch})  # the CRD's status schema accepts them
    sink = PrometheusSink("ns", "job", port=0)
    sink.update(state)
    labels = {"namespace": "ns", "finetunejob": "job"}
    get = sink.registry.get_sample_value
    assert get("finetune_trainer_few_shot_metric", {**labels, "metric": "perplexity"}) == 6.05
    assert get("finetune_trainer_reference_perplexity", {**labels, "when": "after"}) == 22.0
