"""Planning a FineTuneExperiment is pure: which variants start next, the comparison, the phase, the report Job."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from finetune_api.experiment.expand import Variant
from finetune_api.v1alpha1.enums import Metric, Phase
from finetune_api.validation.validate import validate_document
from finetune_operator.experiment import plan, report_job
from finetune_operator.handlers.experiments import needs_experiment_reconcile
from finetune_operator.naming import JOB_LABEL
from finetune_operator.settings import OperatorSettings

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "tweets-comparison.yaml"


def _variants() -> list[Variant]:
    result = validate_document(yaml.safe_load(EXAMPLE.read_text()))
    assert result.ok
    return result.variants


def _job(phase: str | None, metric: float | None = None, params: int | None = None) -> dict[str, Any]:
    status: dict[str, Any] = {}
    if phase:
        status["phase"] = phase
    if metric is not None:
        status["metrics"] = {"evalMetric": metric, "baselineMetric": 0.3, "trainableParameters": params}
    if phase == "Succeeded":
        status["output"] = {"uri": "s3://o/x/", "manifest": "s3://o/x/manifest.json"}
    return {"metadata": {"name": "x"}, "status": status}


def test_at_most_max_parallel_start_in_the_experiments_order() -> None:
    variants = _variants()
    names = [v.job_name for v in variants]
    assert [v.job_name for v in plan.to_start(variants, {}, 2)] == names[:2]
    running = {names[0]: _job("Running"), names[1]: _job(None)}  # not reconciled yet: still holds a slot
    assert plan.to_start(variants, running, 2) == []
    one_done = {names[0]: _job("Succeeded"), names[1]: _job("Running")}
    assert [v.job_name for v in plan.to_start(variants, one_done, 2)] == [names[2]]
    failed_frees_a_slot = {names[0]: _job("Failed"), names[1]: _job("Failed")}
    assert [v.job_name for v in plan.to_start(variants, failed_frees_a_slot, 2)] == names[2:]


def test_a_restart_that_lists_every_job_starts_nothing_and_loses_nothing() -> None:
    variants = _variants()
    jobs = {v.job_name: _job("Running") for v in variants}
    assert plan.to_start(variants, jobs, 4) == []
    comparison = plan.compare(variants, jobs, Metric.ACCURACY)
    assert [r.name for r in comparison.rows] == [v.name for v in variants] and not comparison.finished
    assert comparison.counts == plan.Counts(variant_count=4, running=4, succeeded=0, failed=0)


def test_comparison_and_phase_follow_the_variants() -> None:
    variants = _variants()
    names = [v.job_name for v in variants]
    assert plan.experiment_phase(plan.compare(variants, {}, Metric.ACCURACY), None)[0] == Phase.PENDING
    partial = {names[0]: _job("Succeeded", 0.70, 22_000_000)}
    comparison = plan.compare(variants, partial, Metric.ACCURACY)
    assert comparison.best is None, "no winner while variants still run"
    assert plan.experiment_phase(comparison, None) == (Phase.RUNNING, "1 of 4 variants finished, 0 running")
    done = {
        names[0]: _job("Succeeded", 0.70, 22_000_000),
        names[1]: _job("Succeeded", 0.69, 22_000_000),
        names[2]: _job("Succeeded", 0.72, 150_000),
        names[3]: {"status": {"phase": "Failed", "failure": {"reason": "OutOfMemory", "message": "boom"}}},
    }
    comparison = plan.compare(variants, done, Metric.ACCURACY)
    assert comparison.best is not None and comparison.best.variant == "lora"
    row = comparison.rows[2]
    assert (row.metric, row.baseline, row.trainable_parameters, row.method) == (0.72, 0.3, 150_000, "lora")
    assert comparison.rows[3].failure == "OutOfMemory: boom"
    assert plan.experiment_phase(comparison, None)[0] == Phase.RUNNING, "the report step is still to run"
    assert plan.experiment_phase(comparison, Phase.RUNNING)[0] == Phase.RUNNING
    assert plan.experiment_phase(comparison, Phase.SUCCEEDED)[0] == Phase.SUCCEEDED
    assert plan.experiment_phase(comparison, Phase.FAILED)[0] == Phase.FAILED
    nothing = plan.compare(variants, {n: _job("Failed") for n in names}, Metric.ACCURACY)
    assert plan.experiment_phase(nothing, Phase.SUCCEEDED)[0] == Phase.FAILED


def test_report_job_is_small_credentials_by_reference_and_not_a_trainer_job() -> None:
    result = validate_document(yaml.safe_load(EXAMPLE.read_text()))
    experiment = result.experiment
    assert experiment is not None
    experiment = experiment.model_copy(update={"metadata": experiment.metadata.model_copy(update={"namespace": "ml"})})
    job = report_job.job(experiment, OperatorSettings())
    assert job["metadata"]["name"] == "tweets-comparison-comparison"
    assert JOB_LABEL not in job["metadata"]["labels"] and JOB_LABEL not in job["spec"]["template"]["metadata"]["labels"]
    pod = job["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["command"][:3] == ["python", "-m", "finetune_trainer.experiment.step"]
    assert "nvidia.com/gpu" not in json.dumps(container["resources"]), "the report step needs no GPU"
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    env = {e["name"]: e for e in container["env"]}
    assert env["AWS_ACCESS_KEY_ID"]["valueFrom"]["secretKeyRef"]["name"] == "s3-credentials"
    assert pod["volumes"][0] == {"name": "config", "configMap": {"name": "tweets-comparison-comparison"}}
    cm = report_job.config_map(experiment, report_job.comparison_payload([], Metric.ACCURACY, None))
    assert yaml.safe_load(cm["data"]["experiment.yaml"])["kind"] == "FineTuneExperiment"


def test_only_new_or_changed_experiments_are_reconciled_on_their_own_events() -> None:
    body = {"metadata": {"generation": 1}, "status": {"observedGeneration": 1, "phase": "Running"}}
    assert needs_experiment_reconcile(None, body), "the initial listing converges everything"
    assert not needs_experiment_reconcile("MODIFIED", body), "our own status write"
    assert needs_experiment_reconcile("ADDED", {"metadata": {"generation": 1}})
    assert not needs_experiment_reconcile(None, {"metadata": {}, "status": {"phase": "Succeeded"}})
    assert not needs_experiment_reconcile("DELETED", {"metadata": {}})
