"""The pod contract: each side writes only its own status fields, and both read the same names."""

from __future__ import annotations

from pathlib import Path

import pytest

from finetune_api.measurements import RunMeasurements
from finetune_api.pod_contract import (
    CONFIG_FILE,
    CONTAINER,
    OPERATOR_FIELDS,
    OWNED,
    TERMINATION_LOG,
    TRAINER_FIELDS,
    Owner,
    published_output,
    status_patch,
)
from finetune_api.resolve import resolve_job
from finetune_api.v1alpha1.enums import FailureClass, Metric, Phase
from finetune_api.v1alpha1.experiment_status import FineTuneExperimentStatus, VariantStatus
from finetune_api.v1alpha1.status import FineTuneJobStatus, Progress
from finetune_api.validation import validate_file

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "tweets-lora.yaml"


def test_every_status_field_has_exactly_one_owner() -> None:
    assert set(FineTuneJobStatus.model_fields) == TRAINER_FIELDS | OPERATOR_FIELDS
    assert not TRAINER_FIELDS & OPERATOR_FIELDS
    assert {"phase", "conditions", "output", "failure"} <= OPERATOR_FIELDS


def test_a_side_cannot_write_the_other_sides_fields() -> None:
    with pytest.raises(ValueError, match="progress"):
        status_patch(FineTuneJobStatus(phase=Phase.RUNNING, progress=Progress(step=1)), Owner.OPERATOR)
    with pytest.raises(ValueError, match="phase"):
        status_patch(FineTuneJobStatus(phase=Phase.RUNNING), Owner.TRAINER)
    assert status_patch(FineTuneJobStatus(phase=Phase.RUNNING), Owner.OPERATOR) == {"phase": "Running"}


def test_an_experiments_status_is_the_operators_alone_and_goes_typed_on_the_wire() -> None:
    for model, owners in OWNED.items():
        assert set().union(*owners.values()) == set(model.model_fields), model.__name__
    row = VariantStatus(name="lora", job="cmp-lora", phase=Phase.SUCCEEDED, trainable_parameters=150_000)
    status = FineTuneExperimentStatus(phase=Phase.RUNNING, variant_count=1, variants=[row])
    with pytest.raises(ValueError, match="FineTuneExperimentStatus fields"):
        status_patch(status, Owner.TRAINER)
    assert status_patch(status, Owner.OPERATOR) == {
        "phase": "Running",
        "variantCount": 1,
        "variants": [{"name": "lora", "job": "cmp-lora", "phase": "Succeeded", "trainableParameters": 150000}],
    }


def test_the_trainers_status_write_holds_its_fields_only() -> None:
    from finetune_trainer.observability.kube_status import status_body
    from finetune_trainer.observability.progress import ProgressState

    state = ProgressState(
        phase="Succeeded", step=200, total_steps=200, measured=RunMeasurements(metric=Metric.ACCURACY), eval_metric=0.7
    )
    body = status_body(state)["status"]
    assert set(body) == {"progress", "metrics"}
    assert body["progress"]["summary"] == "100% 200/200" and body["progress"]["totalSteps"] == 200
    assert body["metrics"] == {"metricName": "accuracy", "evalMetric": 0.7}


def test_published_output_is_where_the_trainer_writes_the_manifest(tmp_path: Path) -> None:
    from finetune_trainer.artifacts import publish
    from finetune_trainer.artifacts.manifest import build_manifest
    from finetune_trainer.storage import open_store

    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "weights.txt").write_text("w")
    store = open_store(str(tmp_path / "published") + "/")
    staged = publish.stage(store, tmp_path / "out", "run-1")
    manifest_uri = publish.promote(store, staged, build_manifest(tmp_path / "out", {}))
    assert published_output(str(tmp_path / "published") + "/").manifest == manifest_uri
    assert Path(manifest_uri).is_file()


def test_the_termination_message_the_trainer_writes_is_the_one_the_operator_reads(tmp_path: Path) -> None:
    from finetune_operator.status.observe import failure_of
    from finetune_trainer.errors import write_termination_message

    log = tmp_path / "termination-log"
    write_termination_message(FailureClass.DATA_ERROR, "train.csv: row 3 has no label", str(log))
    terminated = {"exitCode": 11, "message": log.read_text()}
    pod = {"status": {"containerStatuses": [{"name": CONTAINER, "state": {"terminated": terminated}}]}}
    assert failure_of(pod) == (FailureClass.DATA_ERROR, "train.csv: row 3 has no label", 11)


def test_the_rendered_pod_uses_the_contracts_names() -> None:
    from finetune_operator.render import render
    from finetune_operator.settings import OperatorSettings

    job = validate_file(EXAMPLE)[0].job
    assert job is not None
    pod = render(resolve_job(job), OperatorSettings()).of_kind("Job")[0]["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["name"] == CONTAINER and container["terminationMessagePath"] == TERMINATION_LOG
    assert container["command"][-2:] == ["--config", CONFIG_FILE]


def test_the_trainers_storage_report_clears_with_explicit_nulls() -> None:
    from finetune_trainer.observability.kube_status import status_body
    from finetune_trainer.observability.progress import ProgressState

    failing = status_body(ProgressState(storage_retries={"upload": 3}, checkpoints_failing="not saved"))["status"]
    assert failing["storage"] == {"retries": 3, "retrying": None, "checkpointsFailing": "not saved"}
    # Once saved again, the merge patch must name the field null, or the old message would stay.
    saved = status_body(ProgressState(storage_retries={"upload": 3}))["status"]
    assert saved["storage"] == {"retries": 3, "retrying": None, "checkpointsFailing": None}
    assert "storage" not in status_body(ProgressState())["status"], "a run with no storage trouble reports none"
