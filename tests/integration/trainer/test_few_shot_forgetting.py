"""Fine-tune or prompt, and did it forget: the few-shot baseline and the forgetting check on shipped models."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from finetune_api.v1alpha1.enums import FailureClass
from finetune_api.v1alpha1.job import FineTuneJob
from finetune_trainer.errors import EXIT_CODES
from finetune_trainer.main import RunOptions, execute
from finetune_trainer.storage import open_store
from tests.conftest import merge
from tests.integration.trainer.jobs import tweets_job

pytestmark = pytest.mark.training


@pytest.fixture(scope="module")
def smollm_s3(shipped_s3: str) -> str:
    from finetune_api.v1alpha1.storage import S3Spec
    from tests.support import assets

    spec = S3Spec(endpoint=shipped_s3)
    open_store("s3://models/smollm2-135m-instruct/", spec).upload_all(assets.smollm2())
    open_store("s3://data/sft/", spec).upload(assets.alpaca() / "alpaca_en_demo.json", "alpaca_en_demo.json")
    return shipped_s3


def _alpaca_job(name: str, endpoint: str, evaluation: dict[str, object], **changes: Any) -> FineTuneJob:
    doc = {
        "apiVersion": "finetune.dev/v1alpha1",
        "kind": "FineTuneJob",
        "metadata": {"name": name},
        "spec": {
            "model": {"uri": "s3://models/smollm2-135m-instruct/"},
            "task": {
                "type": "causal-lm",
                "format": "prompt-completion",
                "promptColumn": "instruction",
                "inputColumn": "input",
                "completionColumn": "output",
            },
            "dataset": {
                "train": "s3://data/sft/alpaca_en_demo.json",
                "evalSplit": 0.1,
                "maxSamples": 32,
                "maxEvalSamples": 4,
                "maxLength": 512,  # room for a demonstration or two of Alpaca's long rows
            },
            "method": {"type": "lora", "r": 4, "alpha": 8, "targetModules": ["q_proj", "v_proj"]},
            "training": {"maxSteps": 2, "batchSize": 4, "learningRate": 1e-3, "loggingSteps": 1},
            "evaluation": evaluation,
            "output": {"uri": f"s3://models/out/{name}/"},
            "s3": {"endpoint": endpoint},
        },
    }
    return FineTuneJob.model_validate(merge(doc, {"spec": changes}))


def test_gate_against_few_shot_by_an_impossible_margin_ends_gate_not_met_without_manifest(
    smollm_s3: str, tmp_path: Path
) -> None:
    job = _alpaca_job(
        "beat-few-shot",
        smollm_s3,
        {
            "fewShot": {"shots": 2},
            "forgetting": {"maxTokens": 256},
            "gate": {"metric": "eval-loss", "against": "fewShot", "minImprovement": 100.0},
        },
    )
    term = tmp_path / "t"
    code, _ = execute(job, RunOptions(work_dir=tmp_path, progress_bar=False, termination_log=str(term)))
    assert code == EXIT_CODES[FailureClass.GATE_NOT_MET] == 15, term.read_text()
    out = open_store(job.spec.output.uri, job.spec.s3)
    assert not out.exists("manifest.json")
    staged = [o.key for o in out.list_objects(".staging/")]
    note = json.loads(out.read_bytes(next(k for k in staged if k.endswith("GATE_NOT_MET.json"))))
    assert not note["passed"] and note["checks"][0]["against"] == "fewShot"
    assert "few-shot prompting" in json.loads(term.read_text())["message"]
    metrics = json.loads(out.read_bytes(next(k for k in staged if k.endswith("/metrics.json"))))
    few, forgot = metrics["few_shot"], metrics["forgetting"]
    assert few["shots"] == 2 and few["demonstrations"] > 0
    assert few["scores"]["eval_loss"] > 0 and few["scores"]["eval_loss"] != metrics["baseline"]["eval_loss"]
    assert forgot["before"] > 1 and forgot["after"] > 1 and forgot["tokens"] == 256
    assert "wiki_demo" in forgot["reference"] and forgot["reference"].startswith("built-in")
    # Stored beside the checkpoints, so a resumed attempt skips both passes (as it skips the baseline).
    checkpoints = open_store(job.spec.output.uri + "checkpoints/", job.spec.s3)
    assert json.loads(checkpoints.read_bytes("few_shot.json"))["scores"] == few["scores"]
    assert json.loads(checkpoints.read_bytes("forgetting_before.json"))["before"] == forgot["before"]


def test_forgetting_beyond_max_increase_fails_the_gate(smollm_s3: str, tmp_path: Path) -> None:
    """A high learning rate on full fine-tuning raises general-text perplexity; a 0% allowance refuses it."""
    job = _alpaca_job(
        "forgot",
        smollm_s3,
        {"forgetting": {"maxTokens": 256, "maxIncrease": 0.0}},
        method={"type": "full", "r": None, "alpha": None, "targetModules": None},
        training={"learningRate": 1e-3},
    )
    term = tmp_path / "t"
    code, _ = execute(job, RunOptions(work_dir=tmp_path, progress_bar=False, termination_log=str(term)))
    assert code == EXIT_CODES[FailureClass.GATE_NOT_MET], term.read_text()
    assert "reference-perplexity-increase" in json.loads(term.read_text())["message"]


def test_encoder_classifier_reports_few_shot_not_applicable(shipped_s3: str, tmp_path: Path) -> None:
    job = tweets_job("few-shot-minilm", shipped_s3, training={"maxSteps": 1}, evaluation={"fewShot": {"shots": 4}})
    code, result = execute(job, RunOptions(work_dir=tmp_path, progress_bar=False, termination_log=str(tmp_path / "t")))
    assert code == 0 and result is not None
    few = result.measured.few_shot
    assert few is not None and "encoder" in (few.not_applicable or "") and not few.scores


def test_a_gate_against_few_shot_that_cannot_apply_is_refused_before_the_baseline(
    shipped_s3: str, tmp_path: Path
) -> None:
    """MiniLM is an encoder: no few-shot to gate against. Refused once its config is read, before the baseline
    or any step is paid for (issue 22), not after training as it was."""
    evaluation = {"fewShot": {"shots": 4}, "gate": {"metric": "accuracy", "against": "fewShot"}}
    job = tweets_job("gate-no-few-shot", shipped_s3, training={"maxSteps": 1}, evaluation=evaluation)
    status = tmp_path / "status.json"
    options = RunOptions(work_dir=tmp_path / "w", progress_bar=False, termination_log=str(tmp_path / "t"))
    options.status_file = status
    code, _ = execute(job, options)
    assert code == EXIT_CODES[FailureClass.CONFIG_ERROR]
    message = json.loads((tmp_path / "t").read_text())["message"]
    assert "gate.against fewShot" in message and "encoder" in message and "use baseline" in message, message
    assert json.loads(status.read_text())["measured"]["baseline"] == {}, "the baseline was measured before refusing"
    assert not open_store(job.spec.output.uri, job.spec.s3).list_objects(), "the refused run wrote to its output"


def test_decoder_classifier_scores_labels_in_context(smollm_s3: str, tmp_path: Path) -> None:
    job = tweets_job(
        "few-shot-smollm",
        smollm_s3,
        model={"uri": "s3://models/smollm2-135m-instruct/"},
        dataset={"maxSamples": 64, "maxEvalSamples": 12, "maxLength": 256},
        method={"type": "lora", "r": 4, "alpha": 8, "targetModules": ["q_proj", "v_proj"]},
        training={"maxSteps": 1, "batchSize": 4},
        evaluation={"fewShot": {"shots": 3}},
    )
    code, result = execute(job, RunOptions(work_dir=tmp_path, progress_bar=False, termination_log=str(tmp_path / "t")))
    assert code == 0 and result is not None, (tmp_path / "t").read_text()
    few = result.measured.few_shot
    assert few is not None and 0.0 <= few.scores["eval_accuracy"] <= 1.0 and 0.0 <= few.scores["eval_macro_f1"] <= 1.0
    assert few.demonstrations == 3  # short tweets: every demonstration fits
    # 12 rows, 3 labels: accuracy is a multiple of 1/12, the proof each row was scored once.
    assert abs(few.scores["eval_accuracy"] * 12 - round(few.scores["eval_accuracy"] * 12)) < 1e-9


def test_chat_demonstrations_sit_between_the_system_prompt_and_the_own_turns() -> None:
    """task.format chat: the demonstrations become earlier turns of each eval conversation, through the
    model's real chat template; their system prompts are dropped and only the eval row's reply is scored."""
    from transformers import AutoTokenizer

    from finetune_api.v1alpha1.enums import CausalFormat
    from finetune_trainer.data.records import Record
    from finetune_trainer.data.tokenize import IGNORE
    from finetune_trainer.evaluation.few_shot import causal_few_shot_set, select_demonstrations
    from tests.support import assets

    tokenizer = AutoTokenizer.from_pretrained(assets.smollm2())

    def chat(i: int, system: str | None = None) -> Record:
        turns = [
            {"role": "user", "content": f"What is {i} plus {i}?"},
            {"role": "assistant", "content": f"It is {2 * i}."},
        ]
        return Record(
            {"messages": ([{"role": "system", "content": system}] if system else []) + turns}, row=f"line {i}"
        )

    evaluation = [chat(1, system="You add numbers."), chat(2)]
    train = [chat(i, system="A demonstration's own system prompt.") for i in range(10, 40)]
    demos = select_demonstrations(train, evaluation, shots=2, seed=0)
    rows, mean_used = causal_few_shot_set(evaluation, demos, tokenizer, CausalFormat.CHAT, max_length=512)
    assert mean_used == 2 and len(rows) == 2
    for example, record, own in zip(rows.examples, evaluation, demos, strict=True):
        ids, labels = example["input_ids"], example["labels"]
        assert isinstance(ids, list) and isinstance(labels, list)
        text = tokenizer.decode(ids)
        scored = tokenizer.decode([t for t in labels if t != IGNORE])
        reply = record.fields["messages"][-1]["content"]
        assert reply in scored and not any(d.fields["messages"][-1]["content"] in scored for d in own)
        assert "A demonstration's own system prompt." not in text
        # In order: the eval row's system prompt (if any), each demonstration, then the row's own question.
        marks = [d.fields["messages"][-2]["content"] for d in own] + [record.fields["messages"][-2]["content"]]
        if record.fields["messages"][0]["role"] == "system":
            marks.insert(0, "You add numbers.")
        positions = [text.index(m) for m in marks]
        assert positions == sorted(positions), text
