"""`finetune run --output/--s3-endpoint` pass the same checks as the spec itself."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from finetune_api.validation import validate_document
from finetune_trainer.errors import ConfigError
from finetune_trainer.experiment.cli import prepared
from finetune_trainer.job_file import load_job
from finetune_trainer.overrides import with_overrides

REPO = Path(__file__).resolve().parents[3]


def _local_job(tmp_path: Path) -> Path:
    text = (REPO / "examples" / "tweets-lora.yaml").read_text()
    text = text.replace("s3://data/tweets/train.csv", str(tmp_path / "data" / "train.csv"))
    text = text.replace("s3://data/tweets/eval.csv", str(tmp_path / "data" / "eval.csv"))
    path = tmp_path / "job.yaml"
    path.write_text(text)
    return path


def test_output_that_is_the_dataset_folder_is_refused(tmp_path: Path) -> None:
    job = load_job(_local_job(tmp_path))
    with pytest.raises(ConfigError) as err:
        with_overrides(job, str(tmp_path / "data") + "/", None)
    assert "--output (spec.output.uri): overlaps spec.dataset.train" in err.value.message
    assert with_overrides(job, str(tmp_path / "elsewhere") + "/", None).spec.output.uri.endswith("elsewhere/")
    # A subfolder beside the data files mixes with nothing (issue 21: a common layout).
    runs = with_overrides(job, str(tmp_path / "data" / "runs" / "lora-1") + "/", None)
    assert runs.spec.output.uri.endswith("data/runs/lora-1/")


def test_endpoint_override_obeys_the_no_credentials_rule(tmp_path: Path) -> None:
    job = load_job(_local_job(tmp_path))
    with pytest.raises(ConfigError) as err:
        with_overrides(job, None, "http://minio:hunter2@127.0.0.1:9000")
    assert "--s3-endpoint (spec.s3.endpoint): must not carry credentials" in err.value.message
    assert "hunter2" not in err.value.message
    assert with_overrides(job, None, "http://127.0.0.1:9000").spec.s3 is not None


def test_experiment_overrides_are_validated_again_and_name_the_flag() -> None:
    example = REPO / "examples" / "tweets-comparison.yaml"
    with pytest.raises(ConfigError) as err:
        prepared(example, "s3://data/tweets/", None)
    assert "--output (spec.output.uri): overlaps spec.dataset.train" in err.value.message
    with pytest.raises(ConfigError) as err:
        prepared(example, None, "http://minio:hunter2@127.0.0.1:9000")
    assert "--s3-endpoint (spec.s3.endpoint): must not carry credentials" in err.value.message
    assert "hunter2" not in err.value.message


def test_experiment_overrides_reach_every_variant() -> None:
    experiment, variants = prepared(REPO / "examples" / "tweets-comparison.yaml", "s3://models/elsewhere/", None)
    assert experiment.spec.template.output.uri == "s3://models/elsewhere/"
    assert [v.document["spec"]["output"]["uri"] for v in variants] == [
        f"s3://models/elsewhere/{v.name}/" for v in variants
    ]


@pytest.mark.parametrize(
    ("output", "overlaps"),
    [
        ("s3://data/tweets/runs/lora-1/", None),  # beside the data files, in a subfolder: issue 21's layout
        ("s3://data/other/", None),
        ("s3://data/tweets/", "spec.dataset.train"),  # the data's own folder: files would land beside it
        ("s3://data/", "spec.dataset.train"),  # above the data
        ("s3://models/all-minilm-l6-v2/out/", "spec.model.uri"),  # inside the model, which is read whole
        ("s3://models/", "spec.model.uri"),
    ],
)
def test_an_output_overlaps_only_what_it_would_write_over_or_beside(output: str, overlaps: str | None) -> None:
    doc = yaml.safe_load((REPO / "examples" / "tweets-lora.yaml").read_text())
    doc["spec"]["output"]["uri"] = output
    problems = [p.render() for p in validate_document(doc, "job.yaml").errors]
    found = [p for p in problems if "overlaps" in p]
    if overlaps is None:
        assert found == [], found
    else:
        assert found and f"overlaps {overlaps}" in found[0], problems
