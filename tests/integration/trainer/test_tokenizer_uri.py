"""spec.model.tokenizerUri: a tokenizer kept in its own S3 folder is fetched, used and recorded in the
lineage; a folder without one is refused before training, naming the field."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from finetune_api.v1alpha1.enums import FailureClass
from finetune_api.v1alpha1.storage import S3Spec
from finetune_trainer.errors import EXIT_CODES
from finetune_trainer.main import RunOptions, execute
from finetune_trainer.storage import open_store
from finetune_trainer.training.model_files import TOKENIZER_FILES
from finetune_trainer.training.model_loading import TOKENIZER_ETAG_PREFIX
from tests.integration.trainer.jobs import tweets_job
from tests.support import assets

pytestmark = pytest.mark.training
WEIGHTS = "s3://models/minilm-weights-only/"
TOKENIZER = "s3://models/minilm-tokenizer/"


@pytest.fixture
def split_model(shipped_s3: str) -> str:
    """The shipped MiniLM split in two folders: weights and config in one, the tokenizer in the other."""
    spec = S3Spec(endpoint=shipped_s3)
    for path in sorted(assets.minilm().iterdir()):
        target = TOKENIZER if path.name in TOKENIZER_FILES or "token" in path.name else WEIGHTS
        open_store(target, spec).upload(path, path.name)
    return shipped_s3


def _run(tmp_path: Path, endpoint: str, model: dict[str, Any]) -> tuple[int, Any, dict[str, Any]]:
    job = tweets_job("split-tokenizer", endpoint, model=model, training={"maxSteps": 2}, evaluation={"baseline": False})
    log = tmp_path / "termination-log"
    code, result = execute(job, RunOptions(work_dir=tmp_path / "work", progress_bar=False, termination_log=str(log)))
    return code, result, json.loads(log.read_text()) if log.exists() else {}


def test_a_tokenizer_from_its_own_folder_is_used_and_recorded(split_model: str, tmp_path: Path) -> None:
    weights = [o.key for o in open_store(WEIGHTS, S3Spec(endpoint=split_model)).list_objects()]
    assert not set(weights) & TOKENIZER_FILES, "the weights folder must hold no tokenizer for this test"
    code, result, _ = _run(tmp_path, split_model, {"uri": WEIGHTS, "tokenizerUri": TOKENIZER})
    assert code == 0 and result is not None
    out = open_store(result.output_uri, S3Spec(endpoint=split_model))
    manifest = json.loads(out.read_bytes("manifest.json"))
    assert manifest["baseModel"]["tokenizerUri"] == TOKENIZER
    tokenizer_keys = {k for k in manifest["baseModel"]["etags"] if k.startswith(TOKENIZER_ETAG_PREFIX)}
    assert f"{TOKENIZER_ETAG_PREFIX}tokenizer.json" in tokenizer_keys
    # The model folder's own files keep their plain keys, so the two folders stay told apart.
    assert "config.json" in manifest["baseModel"]["etags"]
    assert f"{TOKENIZER_ETAG_PREFIX}config.json" not in manifest["baseModel"]["etags"]
    # The published model is complete on its own: the tokenizer travels with it.
    assert {"tokenizer.json", "tokenizer_config.json"} <= {f["path"].rsplit("/", 1)[-1] for f in manifest["files"]}


def test_without_a_tokenizer_anywhere_the_run_names_the_fix(split_model: str, tmp_path: Path) -> None:
    code, result, message = _run(tmp_path, split_model, {"uri": WEIGHTS})
    assert code == EXIT_CODES[FailureClass.CONFIG_ERROR] and result is None
    assert "has no tokenizer" in message["message"] and "spec.model.tokenizerUri" in message["message"]

    code, result, message = _run(tmp_path, split_model, {"uri": WEIGHTS, "tokenizerUri": "s3://models/out/"})
    assert code == EXIT_CODES[FailureClass.CONFIG_ERROR] and result is None
    assert message["message"].startswith("spec.model.tokenizerUri (s3://models/out/) has no tokenizer")
