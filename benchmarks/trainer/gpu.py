"""GPU scale: Llama-architecture models of ~0.5B and ~1B parameters built from a config (random
weights: throughput does not depend on them), LoRA and full fine-tuning in bf16 on the Alpaca demo
rows, (b) a tuned plain Trainer against (c) this trainer.

MFU = non-pad tokens/s x FLOPs per token / the GPU's dense bf16 peak, with 6N FLOPs per token for
full fine-tuning and 4N for LoRA (no weight gradients for the frozen base). N counts every weight
matmul, the tied LM head included; the attention score term is left out, so MFU is understated.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .harness import SEED, Stats

MAX_LENGTH = 1024
LR = {"lora": 2e-4, "full": 2e-5}
TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]

# Shapes of the usual ~0.5B and ~1B Llama-family models, with SmolLM2's 49,152-token vocabulary so
# the shipped tokenizer drives them. "tiny" exists to exercise this path on a CPU.
SHAPES: dict[str, dict[str, int]] = {
    "0.5b": {"hidden_size": 1280, "intermediate_size": 5120, "num_hidden_layers": 20,
             "num_attention_heads": 20, "num_key_value_heads": 4},
    "1b": {"hidden_size": 2048, "intermediate_size": 8192, "num_hidden_layers": 16,
           "num_attention_heads": 32, "num_key_value_heads": 8},
    "tiny": {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
             "num_attention_heads": 4, "num_key_value_heads": 2},
}  # fmt: skip

# Dense bf16 peak FLOP/s (no sparsity) by the device name torch reports.
PEAKS = {"H200": 989e12, "H100 SXM": 989e12, "H100 80GB HBM3": 989e12, "H100 PCIe": 756e12, "H100": 989e12,
         "A100": 312e12, "L40S": 362e12}  # fmt: skip


def peak_flops(device_name: str) -> float | None:
    return next((peak for key, peak in PEAKS.items() if key in device_name), None)


def model_dir(shape: str) -> Path:
    """Where the shape's model is kept for every variant of one run: built once, not once per process."""
    import tempfile

    return Path(tempfile.gettempdir()) / "finetune-bench-models" / f"llama-{shape}"


def build_model(shape: str, dest: Path) -> Path:
    """A random-init Llama of the given shape, saved as safetensors with the shipped tokenizer."""
    import shutil

    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from tests.support import assets

    if (dest / "config.json").exists():
        return dest
    final, dest = dest, dest.with_name(dest.name + ".partial")  # renamed when complete
    shutil.rmtree(dest, ignore_errors=True)
    torch.manual_seed(SEED)
    shape_args: dict[str, Any] = dict(SHAPES[shape])
    config = LlamaConfig(vocab_size=49152, max_position_embeddings=MAX_LENGTH * 2, tie_word_embeddings=True,
                         **shape_args)  # fmt: skip
    model: Any = LlamaForCausalLM(config)
    model.to(torch.bfloat16).save_pretrained(dest, safe_serialization=True)
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        if (assets.smollm2() / name).exists():
            shutil.copy(assets.smollm2() / name, dest / name)
    dest.rename(final)
    return final


def _spec(model: Path, method: str, steps: int, batch: int) -> dict[str, Any]:
    from tests.support import assets

    lora = {"r": 16, "alpha": 32, "dropout": 0.0, "targetModules": TARGETS} if method == "lora" else {}
    return {
        "model": {"uri": f"{model}/"},
        "task": {"type": "causal-lm", "format": "prompt-completion", "promptColumn": "instruction",
                 "inputColumn": "input", "completionColumn": "output"},
        "dataset": {"train": str(assets.alpaca() / "alpaca_en_demo.json"), "evalSplit": 0.05,
                    "maxEvalSamples": 16, "maxLength": MAX_LENGTH},
        "method": {"type": method, **lora},
        "training": {"maxSteps": steps, "batchSize": batch, "learningRate": LR[method], "seed": SEED,
                     "packing": True, "precision": "auto", "loggingSteps": 10_000},
        "evaluation": {"baseline": False},
    }  # fmt: skip


def _tokens_in_steps(train: Any, steps: int, batch: int) -> tuple[int, int]:
    """Samples and non-pad tokens in `steps` batches, cycling through the rows as the epochs do."""
    lengths = [len(e["input_ids"]) for e in train.examples]
    samples = steps * batch
    return samples, sum(lengths[i % len(lengths)] for i in range(samples))


def _prepared(spec: dict[str, Any], work: Path) -> tuple[Any, Any]:
    from finetune_api.resolve import resolve_job
    from finetune_api.v1alpha1.job import FineTuneJob
    from finetune_trainer.training.data_plan import load_records, tokenize
    from finetune_trainer.training.model_loading import load_tokenizer, model_facts

    job = FineTuneJob.model_validate(
        {"apiVersion": "finetune.dev/v1alpha1", "kind": "FineTuneJob", "metadata": {"name": "bench"},
         "spec": {**spec, "output": {"uri": f"{work / 'out'}/"}}}
    )  # fmt: skip
    model_dir = spec["model"]["uri"].rstrip("/")
    tokenizer = load_tokenizer(model_dir, job.spec)
    job = resolve_job(job, model_facts(model_dir, job.spec, tokenizer))
    data = load_records(job.spec, work)
    tokenize(data, job.spec, tokenizer)
    return tokenizer, data.train


def _mfu(stats: Stats, method: str, parameters: int) -> dict[str, Any]:
    import torch

    name = torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"
    peak = peak_flops(name)
    flops_per_token = (6 if method == "full" else 4) * parameters
    mfu = stats.tokens_per_s * flops_per_token / peak if peak else None
    return {"device": name, "parameters": parameters, "mfu": mfu}


def plain(shape: str, method: str, steps: int, batch: int, work: Path) -> Stats:
    """(b): bf16, fused AdamW, dynamic padding, SDPA: what a careful plain-Trainer user sets."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, DataCollatorForSeq2Seq, set_seed

    from .plain import PlainRun

    set_seed(SEED)
    model_path = build_model(shape, model_dir(shape))
    tokenizer, train = _prepared(_spec(model_path, method, steps, batch), work / "data")
    on_gpu = torch.cuda.is_available()
    model: Any = AutoModelForCausalLM.from_pretrained(
        model_path, dtype=torch.bfloat16 if on_gpu else torch.float32, attn_implementation="sdpa"
    )
    parameters = sum(p.numel() for p in model.parameters())
    if method == "lora":
        model = get_peft_model(model, LoraConfig(task_type="CAUSAL_LM", r=16, lora_alpha=32, target_modules=TARGETS))
    collator = DataCollatorForSeq2Seq(tokenizer, padding="longest", pad_to_multiple_of=8)
    run = PlainRun(
        model=model, train=list(train.examples), evaluation=list(train.examples)[:8], collator=collator,
        steps=steps, batch=batch, learning_rate=LR[method], seed=SEED, bf16=on_gpu,
        optim="adamw_torch_fused" if on_gpu else "adamw_torch",
    )  # fmt: skip
    seconds, _ = run.train_and_predict()
    samples, tokens = _tokens_in_steps(train, steps, batch)
    stats = Stats(seconds, samples, tokens, {}, padding=run.padding)
    stats.extra = _mfu(stats, method, parameters)
    return stats


def ours(shape: str, method: str, steps: int, batch: int, work: Path) -> Stats:
    from .ours import run_job

    spec = _spec(build_model(shape, model_dir(shape)), method, steps, batch)
    _, train = _prepared(spec, work / "data")
    metrics = run_job(spec)
    samples, tokens = _tokens_in_steps(train, steps, batch)
    # Packed batches hold no padding by construction; unpacked, DataLoader workers keep the count (None).
    padding = 0.0 if metrics.cost.packed else metrics.cost.padding_fraction
    stats = Stats((metrics.cost.train_seconds or 0.0), samples, tokens, {}, padding=padding)
    trainable, total = metrics.cost.trainable_parameters or 0, metrics.cost.total_parameters or 0
    base = total - (trainable if method == "lora" else 0)  # N is the base model's, as in (b)
    stats.extra = {**_mfu(stats, method, int(base)), "packed": metrics.cost.packed,
                   "precision": metrics.cost.precision}  # fmt: skip
    return stats


def record(results: dict[str, dict[str, Stats]], path: Path) -> None:
    """Keep the GPU figures beside the benchmark, named by the device that produced them."""
    rows = {key: {v: {"tokens_per_s": s.tokens_per_s, "peak_mib": s.peak_mib, **s.extra} for v, s in by.items()}
            for key, by in results.items()}  # fmt: skip
    path.write_text(json.dumps(rows, indent=2) + "\n")
