"""What the trainer sends to MLflow and reports of it, as pure functions (issue 24)."""

from __future__ import annotations

from finetune_api.measurements import Cost, FewShot, RunMeasurements
from finetune_api.resolve import resolve_job
from finetune_api.v1alpha1.enums import Metric
from finetune_api.v1alpha1.job import FineTuneJob
from finetune_trainer.observability.kube_status import status_body
from finetune_trainer.observability.progress import ProgressState
from finetune_trainer.tracking.job_run import experiment_name, final_metrics, registered_model_name
from finetune_trainer.tracking.tracker import flatten


def _job(tracking: dict[str, object]) -> FineTuneJob:
    return FineTuneJob.model_validate(
        {
            "apiVersion": "finetune.dev/v1alpha1",
            "kind": "FineTuneJob",
            "metadata": {"name": "tweets", "namespace": "team-a"},
            "spec": {
                "model": {"uri": "s3://models/m/"},
                "task": {"type": "sequence-classification"},
                "dataset": {"train": "s3://data/t/train.csv"},
                "method": {"type": "lora"},
                "training": {"maxSteps": 4},
                "output": {"uri": "s3://models/out/tweets/"},
                "tracking": tracking,
            },
        }
    )


def test_tracking_names_default_to_the_namespace_and_the_job() -> None:
    plain = resolve_job(_job({"mlflow": {}}))
    assert (experiment_name(plain), registered_model_name(plain)) == ("team-a", "tweets")
    named = resolve_job(_job({"mlflow": {"experiment": "sentiment", "registeredModel": "tweets-sentiment"}}))
    assert (experiment_name(named), registered_model_name(named)) == ("sentiment", "tweets-sentiment")


def test_params_are_dotted_keys_and_lists_are_json() -> None:
    spec = {"method": {"type": "lora", "targetModules": ["query", "value"]}, "training": {"maxSteps": 4}}
    assert dict(flatten(spec)) == {
        "method.type": "lora",
        "method.targetModules": '["query", "value"]',
        "training.maxSteps": 4,
    }


def test_final_metrics_name_each_number_once() -> None:
    measured = RunMeasurements(
        metric=Metric.ACCURACY,
        baseline={"eval_accuracy": 0.5, "eval_loss": 0.9},
        tuned={"eval_accuracy": 0.8},
        few_shot=FewShot(shots=4, scores={"eval_accuracy": 0.6}),
        cost=Cost(train_seconds=12.5, trainable_parameters=1000, packed=False),
    )
    metrics = final_metrics(measured)
    assert metrics["baseline.eval_accuracy"] == 0.5 and metrics["tuned.eval_accuracy"] == 0.8
    assert metrics["few_shot.eval_accuracy"] == 0.6 and metrics["cost.train_seconds"] == 12.5
    assert "cost.packed" not in metrics, "a flag is not a metric"


def test_a_tracking_server_back_clears_failing_in_the_status_patch() -> None:
    failing = ProgressState(tracking_run_id="r1", tracking_failing="MLflow at http://m:5000 failed on parameters")
    assert status_body(failing)["status"]["tracking"] == {
        "runId": "r1",
        "failing": "MLflow at http://m:5000 failed on parameters",
    }
    back = status_body(ProgressState(tracking_run_id="r1", tracking_url="http://m:5000/#/experiments/1/runs/r1"))
    assert back["status"]["tracking"] == {
        "failing": None,
        "runId": "r1",
        "url": "http://m:5000/#/experiments/1/runs/r1",
    }
