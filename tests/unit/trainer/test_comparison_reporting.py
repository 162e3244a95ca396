"""One record of what a run measured reaches every view of it: model card, run summary, status, Prometheus,
metrics.json, the manifest and an experiment's comparison row."""

from __future__ import annotations

import io
import json
from pathlib import Path

import yaml

from finetune_api.experiment.compare import variant_row
from finetune_api.experiment.expand import Variant
from finetune_api.measurements import (
    Cost,
    FewShot,
    Forgetting,
    RunMeasurements,
    manifest_metrics,
    status_metrics,
)
from finetune_api.v1alpha1.enums import Metric, Phase
from finetune_api.v1alpha1.job import FineTuneJob
from finetune_api.v1alpha1.status import FineTuneJobStatus
from finetune_trainer.artifacts.report import model_card
from finetune_trainer.cli import print_summary
from finetune_trainer.observability.kube_status import status_body
from finetune_trainer.observability.progress import ProgressState
from finetune_trainer.observability.prometheus import PrometheusSink
from finetune_trainer.training.results import RunResult, metrics_json

REPO = Path(__file__).resolve().parents[3]
MEASURED = RunMeasurements(
    metric=Metric.PERPLEXITY,
    baseline={"eval_loss": 2.0, "eval_perplexity": 7.389},
    few_shot=FewShot(shots=3, scores={"eval_loss": 1.8, "eval_perplexity": 6.05}, demonstrations=2.5),
    tuned={"eval_loss": 1.5, "eval_perplexity": 4.48},
    forgetting=Forgetting(reference="built-in: wiki", tokens=1024, before=20.0, after=22.0),
    steps=4,
    cost=Cost(trainable_parameters=10, total_parameters=100, train_seconds=3.04, tokens_per_second=812.26),
)


def test_model_card_has_a_few_shot_column_and_the_forgetting_figures() -> None:
    card = model_card("job", "spec: {}", MEASURED, "s3://m/")
    assert "| metric | baseline (untouched) | few-shot (3 shots) | tuned |" in card
    assert "| loss | 2.0000 | 1.8000 | 1.5000 |" in card
    assert "20.0000 -> 22.0000 (+10.0%)" in card and "built-in: wiki" in card
    assert "trainable parameters: 10 of 100 (10.00%)" in card and "steps: 4" in card


def test_model_card_says_what_sharing_the_cluster_cost() -> None:
    assert "shared cluster" not in model_card("job", "spec: {}", MEASURED, "s3://m/"), "not queued: not a word"
    queued = MEASURED.model_copy(
        update={"cost": MEASURED.cost.model_copy(update={"queued_seconds": 312.4, "preemptions": 1})}
    )
    card = model_card("job", "spec: {}", queued, "s3://m/")
    assert "shared cluster (Kueue): 312 s queued before admission, preempted 1 time" in card, card


def test_encoder_few_shot_is_shown_as_not_applicable_with_its_reason() -> None:
    measured = MEASURED.model_copy(
        update={"few_shot": FewShot(shots=3, not_applicable="bert is an encoder model"), "forgetting": None}
    )
    card = model_card("job", "spec: {}", measured, "s3://m/")
    assert "| n/a |" in card and "not applicable: bert is an encoder model" in card
    out = io.StringIO()
    print_summary(RunResult("s3://o/", None, measured), out=out)
    assert "few-shot: not applicable: bert is an encoder model" in out.getvalue()


def test_run_summary_prints_zero_shot_few_shot_tuned_and_forgetting() -> None:
    out = io.StringIO()
    print_summary(RunResult("s3://o/", "s3://o/manifest.json", MEASURED), out=out)
    text = out.getvalue()
    assert "few-shot (3)" in text and "1.8000" in text
    assert "forgetting: reference perplexity 20.0000 -> 22.0000 (+10.0%)" in text
    assert "trainable parameters: 10 of 100; steps: 4; 3 s" in text


def test_status_and_prometheus_carry_few_shot_and_reference_perplexity() -> None:
    state = ProgressState(measured=MEASURED.model_copy(update={"tuned": {}}))
    patch = status_body(state)["status"]["metrics"]
    assert patch["fewShotMetric"] == 6.05 and patch["referencePerplexityAfter"] == 22.0
    assert patch["baselineMetric"] == 7.389 and patch["tokensPerSecond"] == 812.3 and patch["trainSeconds"] == 3.0
    FineTuneJobStatus.model_validate({"metrics": patch})  # the CRD's status schema accepts them
    sink = PrometheusSink("ns", "job", port=0)
    sink.update(state)
    labels = {"namespace": "ns", "finetunejob": "job"}
    get = sink.registry.get_sample_value
    assert get("finetune_trainer_few_shot_metric", {**labels, "metric": "perplexity"}) == 6.05
    assert get("finetune_trainer_reference_perplexity", {**labels, "when": "after"}) == 22.0
    assert get("finetune_trainer_tokens_per_second", labels) == 812.26


def test_metrics_json_and_the_manifest_are_the_record_itself() -> None:
    job = FineTuneJob.model_validate(yaml.safe_load((REPO / "examples" / "tweets-lora.yaml").read_text()))
    written = json.loads(metrics_json(job, MEASURED))
    assert written.pop("spec")["method"]["type"] == "lora"
    assert RunMeasurements.model_validate({k: v for k, v in written.items()}) == MEASURED
    assert written["forgetting"]["relative_change"] == 0.10000000000000009
    recorded = manifest_metrics(MEASURED)
    assert set(recorded) == {"metric", "baseline", "few_shot", "tuned", "forgetting", "gate"}
    assert recorded["few_shot"] == written["few_shot"]


def test_the_local_runner_and_the_operator_build_the_same_row() -> None:
    variant = Variant("lora", "cmp-lora", {"method": {"type": "lora"}}, {"spec": {"method": {"type": "lora"}}})
    local = variant_row(variant, Phase.SUCCEEDED, status_metrics(MEASURED))
    # What the operator reads back: the trainer's status patch, through the API server's JSON.
    patched = status_body(ProgressState(measured=MEASURED))["status"]["metrics"]
    remote = variant_row(variant, Phase.SUCCEEDED, FineTuneJobStatus.model_validate({"metrics": patched}).metrics)
    assert local == remote
    assert (local.metric, local.baseline, local.trainable_parameters) == (4.48, 7.389, 10)
