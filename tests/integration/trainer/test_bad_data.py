"""Malformed data files fail before training with a clear message and the data-error exit code."""

from __future__ import annotations

import gzip
import hashlib
import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from finetune_api.v1alpha1.enums import FailureClass
from finetune_api.v1alpha1.job import FineTuneJob
from finetune_api.v1alpha1.storage import S3Spec
from finetune_trainer.errors import EXIT_CODES
from finetune_trainer.main import RunOptions, execute
from tests.conftest import merge
from tests.integration.trainer.jobs import tweets_job

GOOD = "text,sentiment\nI love it,positive\nI hate it,negative\nit is a tuesday,neutral\n"


def _run(
    tmp_path: Path, endpoint: str, train: Path, eval_file: Path | None = None, **changes: object
) -> tuple[int, str]:
    dataset: dict[str, object] = {"train": str(train), "eval": str(eval_file) if eval_file else None}
    if eval_file is None:
        dataset["evalSplit"] = 0.3
    job = tweets_job("bad-data", endpoint, dataset=dataset, **changes)
    term = tmp_path / "termination"
    code, _ = execute(job, RunOptions(work_dir=tmp_path / "work", progress_bar=False, termination_log=str(term)))
    return code, json.loads(term.read_text())["message"] if term.exists() else ""


@pytest.fixture
def good_eval(tmp_path: Path) -> Path:
    path = tmp_path / "eval.csv"
    path.write_text("text,sentiment\nlovely day,positive\nawful day,negative\n")
    return path


def test_missing_column(tmp_path: Path, shipped_s3: str, good_eval: Path) -> None:
    train = tmp_path / "train.csv"
    train.write_text("text,label\nI love it,positive\n")
    code, message = _run(tmp_path, shipped_s3, train, good_eval)
    assert code == EXIT_CODES[FailureClass.DATA_ERROR]
    assert str(train) in message and "'sentiment'" in message and "labelColumn" in message


def test_unknown_label(tmp_path: Path, shipped_s3: str, good_eval: Path) -> None:
    train = tmp_path / "train.csv"
    train.write_text(GOOD + "meh,sarcastic\n")
    code, message = _run(tmp_path, shipped_s3, train, good_eval, task={"labels": ["negative", "neutral", "positive"]})
    assert code == EXIT_CODES[FailureClass.DATA_ERROR]
    assert "'sarcastic'" in message and "row" in message and str(train) in message


def test_empty_file(tmp_path: Path, shipped_s3: str, good_eval: Path) -> None:
    train = tmp_path / "train.csv"
    train.write_text("")
    code, message = _run(tmp_path, shipped_s3, train, good_eval)
    assert code == EXIT_CODES[FailureClass.DATA_ERROR]
    assert "empty" in message and str(train) in message


def test_an_eval_file_whose_rows_are_all_blank_is_named(tmp_path: Path, shipped_s3: str) -> None:
    train, evaluation = tmp_path / "train.csv", tmp_path / "eval.csv"
    train.write_text(GOOD)
    evaluation.write_text("text,sentiment\n,\n   ,\n")
    code, message = _run(tmp_path, shipped_s3, train, evaluation)
    assert code == EXIT_CODES[FailureClass.DATA_ERROR]
    assert message.startswith(f"{evaluation}: every one of its 2 rows is empty or blank"), message
    assert "evalSplit" in message


def test_a_json_file_holding_one_object_is_named_as_such(tmp_path: Path, shipped_s3: str, good_eval: Path) -> None:
    train = tmp_path / "train.json"
    train.write_text(json.dumps({"text": "I love it", "sentiment": "positive", "tags": ["a", "b"]}))
    code, message = _run(tmp_path, shipped_s3, train, good_eval)
    assert code == EXIT_CODES[FailureClass.DATA_ERROR]
    assert f"{train}: holds one JSON object (keys text, sentiment, tags) where a list of records belongs" in message
    assert "JSON Lines" in message


def test_broken_json_lines(tmp_path: Path, shipped_s3: str) -> None:
    train = tmp_path / "train.jsonl"
    train.write_text('{"text": "fine", "sentiment": "positive"}\n{"text": "broken", "sentiment": \n')
    code, message = _run(tmp_path, shipped_s3, train)
    assert code == EXIT_CODES[FailureClass.DATA_ERROR]
    assert "line 2" in message and "not valid JSON" in message


def test_latin1_csv_read_as_utf8(tmp_path: Path, shipped_s3: str, good_eval: Path) -> None:
    train = tmp_path / "train.csv"
    train.write_bytes((GOOD + "caf\xe9 au lait,positive\n").encode("latin-1"))
    code, message = _run(tmp_path, shipped_s3, train, good_eval)
    assert code == EXIT_CODES[FailureClass.DATA_ERROR]
    assert "utf-8" in message and "latin-1" in message and "line 5" in message


def test_train_eval_leakage_is_refused(tmp_path: Path, shipped_s3: str) -> None:
    train = tmp_path / "train.csv"
    train.write_text(GOOD)
    leaky = tmp_path / "eval.csv"
    leaky.write_text("text,sentiment\nI love it,positive\nI hate it,negative\nnew one,neutral\n")
    code, message = _run(tmp_path, shipped_s3, train, leaky)
    assert code == EXIT_CODES[FailureClass.DATA_ERROR]
    assert message.startswith("2 evaluation rows") and "allowOverlap" in message


# --- hostile inputs (issue 12): each refused before training, with its failure class, naming what to fix ---

DATA, CONFIG, STORAGE = (
    EXIT_CODES[c] for c in (FailureClass.DATA_ERROR, FailureClass.CONFIG_ERROR, FailureClass.STORAGE_ERROR)
)
SECRET = "hunter2"


def _execute(tmp_path: Path, job: FineTuneJob) -> tuple[int, str]:
    term = tmp_path / "termination"
    term.unlink(missing_ok=True)
    code, _ = execute(job, RunOptions(work_dir=tmp_path / "work", progress_bar=False, termination_log=str(term)))
    return code, json.loads(term.read_text())["message"] if term.exists() else ""


def _chat_job(endpoint: str, train: Path, task: dict[str, Any] | None = None) -> FineTuneJob:
    # The rows are refused before the model is fetched, so the shipped encoder stands in for a causal model.
    job = tweets_job(
        "bad-chat",
        endpoint,
        task=task or {"type": "causal-lm", "format": "chat", "textColumn": None, "labelColumn": None},
        dataset={"train": str(train), "eval": None, "evalSplit": 0.5},
    )
    return job


def test_jsonl_text_that_is_a_number(tmp_path: Path, shipped_s3: str) -> None:
    train = tmp_path / "train.jsonl"
    rows = [{"text": "fine", "sentiment": "positive"}, {"text": 42, "sentiment": "negative"}] * 3
    train.write_text("".join(json.dumps(r) + "\n" for r in rows))
    code, message = _run(tmp_path, shipped_s3, train)
    assert code == DATA
    assert f"{train}: line 2, column 'text' (spec.task.textColumn): is a number (42), not text" in message


def test_duplicate_csv_columns(tmp_path: Path, shipped_s3: str, good_eval: Path) -> None:
    train = tmp_path / "train.csv"
    train.write_text("text,sentiment,text\nI love it,positive,x\n")
    code, message = _run(tmp_path, shipped_s3, train, good_eval)
    assert code == DATA and "names column 'text' twice" in message


def test_header_with_a_stray_space(tmp_path: Path, shipped_s3: str, good_eval: Path) -> None:
    train = tmp_path / "train.csv"
    train.write_text("text, sentiment\nI love it,positive\n")
    code, message = _run(tmp_path, shipped_s3, train, good_eval)
    assert code == DATA and "has ' sentiment': the header has stray spaces" in message


def test_parquet_text_column_of_list_type(tmp_path: Path, shipped_s3: str, good_eval: Path) -> None:
    train = tmp_path / "train.parquet"
    pd.DataFrame({"text": [["I", "love"], ["it"]], "sentiment": ["positive", "negative"]}).to_parquet(train)
    code, message = _run(tmp_path, shipped_s3, train, good_eval)
    assert code == DATA and "row index 0, column 'text'" in message and "is a list" in message


def test_gzip_named_csv_and_a_folder(tmp_path: Path, shipped_s3: str, good_eval: Path) -> None:
    train = tmp_path / "train.csv"
    train.write_bytes(gzip.compress(GOOD.encode()))
    code, message = _run(tmp_path, shipped_s3, train, good_eval)
    assert code == DATA and "is gzip-compressed" in message
    folder = tmp_path / "folder.csv"
    folder.mkdir()
    code, message = _run(tmp_path, shipped_s3, folder, good_eval)
    assert code == DATA and "is a folder, not a file" in message


@pytest.mark.parametrize(
    ("messages", "expected"),
    [
        ([{"role": "user", "content": 7}, {"role": "assistant", "content": "b"}], "content is a number"),
        ([{"role": "wizard", "content": "a"}, {"role": "assistant", "content": "b"}], "role 'wizard' is not one of"),
        ([{"role": "user", "content": "a"}], "no assistant reply"),
    ],
    ids=["content-not-string", "unknown-role", "no-assistant"],
)
def test_broken_chat_rows(tmp_path: Path, shipped_s3: str, messages: list[dict[str, Any]], expected: str) -> None:
    good = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]
    train = tmp_path / "chat.jsonl"
    train.write_text("".join(json.dumps({"messages": m}) + "\n" for m in (good, good, messages, good)))
    code, message = _execute(tmp_path, _chat_job(shipped_s3, train))
    assert code == DATA and "line 3, column 'messages'" in message and expected in message


def test_empty_completion(tmp_path: Path, shipped_s3: str) -> None:
    train = tmp_path / "pc.jsonl"
    rows = [{"prompt": "say hi", "completion": "hi"}, {"prompt": "say bye", "completion": ""}]
    train.write_text("".join(json.dumps(r) + "\n" for r in rows * 2))
    task = {"type": "causal-lm", "format": "prompt-completion", "textColumn": None, "labelColumn": None}
    code, message = _execute(tmp_path, _chat_job(shipped_s3, train, task))
    assert code == DATA and "line 2, column 'completion'" in message and "the completion is empty" in message


def test_max_samples_that_cannot_keep_the_eval_labels(tmp_path: Path, shipped_s3: str) -> None:
    code, message = _execute(tmp_path, tweets_job("bad-sampling", shipped_s3, dataset={"maxSamples": 2}))
    assert code == DATA and "spec.dataset.maxSamples" in message and "would lose" in message


def test_unknown_encoding(tmp_path: Path, shipped_s3: str, good_eval: Path) -> None:
    train = tmp_path / "train.csv"
    train.write_text(GOOD)
    dataset = {"train": str(train), "eval": str(good_eval), "encoding": "utf-9"}
    code, message = _execute(tmp_path, tweets_job("bad-encoding", shipped_s3, dataset=dataset))
    assert code == CONFIG and "'utf-9' is not a known text encoding" in message


SHIPPED_MODEL = "all-minilm-l6-v2"  # where the shipped_s3 fixture put the MiniLM in s3://models


def _shipped_model_files(s3: Any) -> dict[str, bytes]:
    listing = s3.list_objects_v2(Bucket="models", Prefix=f"{SHIPPED_MODEL}/")["Contents"]
    return {o["Key"].split("/", 1)[1]: s3.get_object(Bucket="models", Key=o["Key"])["Body"].read() for o in listing}


def _model_copy(s3: Any, prefix: str, drop: tuple[str, ...] = (), **replace: bytes) -> str:
    """The shipped MiniLM under s3://models/<prefix>/, less `drop`, with some files replaced."""
    for name, body in _shipped_model_files(s3).items():
        if name not in drop:
            s3.put_object(Bucket="models", Key=f"{prefix}/{name}", Body=replace.get(name.replace(".", "_"), body))
    return f"s3://models/{prefix}/"


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("no-tokenizer", "has no tokenizer"),
        ("corrupt-safetensors", "model.safetensors is not a valid safetensors file"),
        ("config-not-json", "config.json is not valid JSON"),
        ("remote-code", "trustRemoteCode is false"),
    ],
)
def test_broken_model_folders(tmp_path: Path, shipped_s3: str, s3_client: Any, case: str, expected: str) -> None:
    config = json.loads(_shipped_model_files(s3_client)["config.json"])
    uri = {
        "no-tokenizer": lambda: _model_copy(
            s3_client, case, drop=("tokenizer.json", "tokenizer_config.json", "vocab.txt")
        ),
        "corrupt-safetensors": lambda: _model_copy(s3_client, case, model_safetensors=b"\x10" * 64),
        "config-not-json": lambda: _model_copy(s3_client, case, config_json=b"{not json"),
        "remote-code": lambda: _model_copy(
            s3_client, case, config_json=json.dumps({**config, "auto_map": {"AutoModel": "m.X"}}).encode()
        ),
    }[case]()
    code, message = _execute(tmp_path, tweets_job(f"bad-{case}", shipped_s3, model={"uri": uri}))
    assert code == CONFIG, message
    assert expected in message and "spec.model" in message


def test_hub_model_without_network(tmp_path: Path, shipped_s3: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)  # tests never leave 127.0.0.1
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    code, message = _execute(tmp_path, tweets_job("bad-hub", shipped_s3, model={"uri": "someorg/some-model"}))
    assert code == CONFIG and "the Hub model 'someorg/some-model' cannot be fetched" in message


def test_output_that_is_an_existing_file(tmp_path: Path, shipped_s3: str) -> None:
    existing = tmp_path / "out"
    existing.write_text("")
    code, message = _execute(tmp_path, tweets_job("bad-out", shipped_s3, output={"uri": str(existing) + "/"}))
    assert code == STORAGE and "is an existing file, but the output is a folder" in message


def test_endpoint_with_credentials_is_refused_and_never_echoed(
    tmp_path: Path, shipped_s3: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Built past `finetune validate` (which refuses it too): the trainer still refuses it, redacted.
    job = tweets_job("bad-endpoint", shipped_s3, s3={"endpoint": shipped_s3.replace("://", f"://u:{SECRET}@")})
    code, message = _execute(tmp_path, job)
    assert code == CONFIG and "carries credentials" in message and SECRET not in message
    monkeypatch.setenv("AWS_ENDPOINT_URL", shipped_s3.replace("://", f"://u:{SECRET}@"))
    code, message = _execute(tmp_path, tweets_job("bad-env", shipped_s3, s3=None))
    assert code == CONFIG and "AWS_ENDPOINT_URL" in message and SECRET not in message


def _hub_cache_model(tmp_path: Path, s3: Any) -> Path:
    """The shipped MiniLM laid out as the Hugging Face cache: snapshots/<rev>/<file> -> ../../blobs/<sha>."""
    repo = tmp_path / "hub" / "models--sentence-transformers--all-MiniLM-L6-v2"
    snapshot = repo / "snapshots" / "0123abc"
    (repo / "blobs").mkdir(parents=True)
    snapshot.mkdir(parents=True)
    for name, body in _shipped_model_files(s3).items():
        blob = repo / "blobs" / hashlib.sha256(body).hexdigest()
        blob.write_bytes(body)
        (snapshot / name).symlink_to(Path("../../blobs") / blob.name)
    return snapshot


@pytest.mark.training
def test_hub_cache_model_trains_and_another_runs_checkpoints_are_refused(
    tmp_path: Path, shipped_s3: str, s3_client: Any
) -> None:
    from finetune_trainer.storage import open_store
    from finetune_trainer.training.checkpoints import CheckpointStore

    quick: dict[str, Any] = {
        "model": {"uri": str(_hub_cache_model(tmp_path, s3_client)) + "/"},
        "dataset": {"maxSamples": 48, "maxEvalSamples": 16},
        "training": {"maxSteps": 2, "batchSize": 8, "loggingSteps": 1},
        "output": {"uri": "s3://models/out/owned/", "checkpointEvery": 1},
    }
    code, message = _execute(tmp_path, tweets_job("owned", shipped_s3, **quick))
    assert code == 0, message
    checkpoints = CheckpointStore(open_store("s3://models/out/owned/checkpoints/", S3Spec(endpoint=shipped_s3)), 2)
    before = [(c.step, c.fingerprint) for c in checkpoints.complete()]
    assert before and all(fp for _, fp in before)

    changed = merge(quick, {"training": {"maxSteps": 3}})
    code, message = _execute(tmp_path, tweets_job("owned", shipped_s3, **changed))
    assert code == CONFIG
    assert "holds the published output (manifest.json) of an earlier run of tests/owned" in message
    assert "spec.output.uri" in message
    code, message = _execute(tmp_path, tweets_job("other", shipped_s3, **quick))
    assert code == CONFIG and "of job tests/owned" in message
    assert [(c.step, c.fingerprint) for c in checkpoints.complete()] == before, "another run's checkpoints changed"
