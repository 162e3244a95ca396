"""Malformed data files fail before training with a clear message and the data-error exit code."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from finetune_api.spec.enums import FailureClass
from finetune_trainer.errors import EXIT_CODES
from finetune_trainer.main import RunOptions, execute
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
