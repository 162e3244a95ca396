"""Causal-LM SFT of the shipped SmolLM2-135M-Instruct with LoRA: prompt-completion (Alpaca) and chat."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest

from finetune_api.resolve import resolve_job
from finetune_api.v1alpha1.job import FineTuneJob
from finetune_trainer.main import RunOptions, execute
from finetune_trainer.storage import open_store
from tests.conftest import merge

pytestmark = pytest.mark.training


@pytest.fixture(scope="module")
def sft_s3(shipped_s3: str) -> str:
    from finetune_api.v1alpha1.storage import S3Spec
    from tests.support import assets

    spec = S3Spec(endpoint=shipped_s3)
    open_store("s3://models/smollm2-135m-instruct/", spec).upload_all(assets.smollm2())
    sft = assets.alpaca()
    for name in ("alpaca_en_demo.json", "v1_sft_demo.jsonl"):
        open_store("s3://data/sft/", spec).upload(sft / name, name)
    return shipped_s3


def sft_job(
    name: str, endpoint: str, task: dict[str, Any], train: str, extra: dict[str, Any] | None = None
) -> FineTuneJob:
    doc = {
        "apiVersion": "finetune.dev/v1alpha1",
        "kind": "FineTuneJob",
        "metadata": {"name": name},
        "spec": {
            "model": {"uri": "s3://models/smollm2-135m-instruct/"},
            "task": task,
            "dataset": {"train": train, "evalSplit": 0.1, "maxSamples": 48, "maxEvalSamples": 16, "maxLength": 128},
            "method": {"type": "lora", "r": 8, "alpha": 16, "targetModules": ["q_proj", "v_proj"]},
            "training": {"maxSteps": 10, "batchSize": 4, "learningRate": 1e-3, "loggingSteps": 2},
            "evaluation": {"gate": {"metric": "eval-loss", "minImprovement": 0.0}},
            "output": {"uri": f"s3://models/out/{name}/"},
            "s3": {"endpoint": endpoint},
        },
    }
    return FineTuneJob.model_validate(merge(doc, extra or {}))


def _reload_eval_loss(job: FineTuneJob, adapter_dir: Path, work: Path, merged: bool = False) -> float:
    """Load base + adapter with peft (or, `merged`, the folder alone with plain transformers), evaluate on the
    same eval rows the trainer used."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, Trainer, TrainingArguments

    from finetune_trainer.data.collate import PadToLongest
    from finetune_trainer.training.data_plan import load_records, tokenize
    from finetune_trainer.training.model_loading import fetch_model, load_tokenizer, model_facts

    base_dir, _ = fetch_model(job.spec, work / "model")
    tokenizer = load_tokenizer(base_dir, job.spec)
    job = resolve_job(job, model_facts(base_dir, job.spec, tokenizer))  # the same rows the trainer read
    data = load_records(job.spec, work)
    tokenize(data, job.spec, tokenizer)
    if merged:
        model = AutoModelForCausalLM.from_pretrained(adapter_dir)
    else:
        model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base_dir), adapter_dir)
    args = TrainingArguments(
        output_dir=str(work / "eval"),
        per_device_eval_batch_size=8,
        use_cpu=True,
        report_to="none",
        label_names=["labels"],
    )
    trainer = Trainer(
        model=model, args=args, eval_dataset=data.eval, data_collator=PadToLongest(tokenizer.pad_token_id)
    )
    return float(trainer.evaluate()["eval_loss"])


def test_alpaca_prompt_completion_lora(sft_s3: str, tmp_path: Path) -> None:
    task = {
        "type": "causal-lm",
        "format": "prompt-completion",
        "promptColumn": "instruction",
        "inputColumn": "input",
        "completionColumn": "output",
    }
    # The adapter, and the merged model beside it (issue 24).
    both = {"spec": {"output": {"save": "both"}}}
    job = sft_job("sft-alpaca", sft_s3, task, "s3://data/sft/alpaca_en_demo.json", both)
    code, result = execute(
        job, RunOptions(work_dir=tmp_path / "run", progress_bar=False, termination_log=str(tmp_path / "t"))
    )
    assert code == 0 and result is not None, (tmp_path / "t").read_text()
    base, tuned = result.measured.baseline["eval_loss"], result.measured.tuned["eval_loss"]
    assert tuned < base, f"eval loss {base:.4f} -> {tuned:.4f}"
    published, store = tmp_path / "published", open_store(job.spec.output.uri, job.spec.s3)
    store.download_all(published)
    reloaded = _reload_eval_loss(job, published / "adapter", tmp_path / "reload")
    assert reloaded == pytest.approx(tuned, rel=1e-3), "the published adapter does not reproduce the logged eval loss"
    # The merged weights load with plain transformers, no PEFT, and score what the adapter scored: merging
    # folds B @ A * alpha / r into each weight, exact up to fp32 rounding, hence the tolerance of 1e-4.
    merged = _reload_eval_loss(job, published / "model", tmp_path / "reload", merged=True)
    assert merged == pytest.approx(reloaded, rel=1e-4), f"merged {merged:.6f} vs adapter {reloaded:.6f}"
    assert not (published / "model" / "adapter_config.json").exists()
    manifest = json.loads(store.read_bytes("manifest.json"))
    listed = {f["path"] for f in manifest["files"]}
    assert {"model/model.safetensors", "adapter/adapter_model.safetensors"} <= listed, sorted(listed)
    assert manifest["serving"] == [
        {"path": "adapter/", "form": "vllm-lora", "maxLoraRank": 8},
        {"path": "model/", "form": "vllm-model"},
    ]
    card = (published / "README.md").read_text()
    serve = "vllm serve ./base --enable-lora --lora-modules sft-alpaca=./sft-alpaca --max-lora-rank 8"
    assert serve in card and "aws s3 sync s3://models/out/sft-alpaca/adapter/ ./sft-alpaca" in card, card
    assert "kind: LLMInferenceService" in card and "uri: s3://models/out/sft-alpaca/adapter/" in card, card
    print(card[card.index("## Serving") : card.index("## Data hygiene")])


def test_chat_lora_packing_asked_on_sdpa(sft_s3: str, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """packing: true where the model runs SDPA (no variable-length kernel): the run trains on
    length-grouped batches instead, says so, and reports packed: false."""
    job = sft_job(
        "sft-chat",
        sft_s3,
        {"type": "causal-lm", "format": "chat", "messagesColumn": "messages"},
        "s3://data/sft/v1_sft_demo.jsonl",
    )
    packed = job.spec.training.model_copy(update={"packing": True})
    job = job.model_copy(update={"spec": job.spec.model_copy(update={"training": packed})})
    with caplog.at_level(logging.WARNING, logger="finetune_trainer.training.loop"):
        code, result = execute(
            job, RunOptions(work_dir=tmp_path, progress_bar=False, termination_log=str(tmp_path / "t"))
        )
    assert code == 0 and result is not None, (tmp_path / "t").read_text()
    assert result.measured.tuned["eval_loss"] < result.measured.baseline["eval_loss"]
    assert result.measured.cost.packed is False
    assert "sdpa attention has no variable-length kernel" in caplog.text
    assert "length-grouped padded batches" in caplog.text
    assert 0.0 <= (result.measured.cost.padding_fraction or 0.0) < 0.5
