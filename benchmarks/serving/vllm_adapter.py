"""Does vLLM load what this trainer publishes? The SFT LoRA output served by `vllm serve --enable-lora`, and one
chat request to the adapter (issue 24). For the GPU device machine only: vLLM is installed there, never in CI.

    python -m benchmarks.serving.vllm_adapter OUT_DIR            # the whole check (GPU, pip install vllm)
    python -m benchmarks.serving.vllm_adapter OUT_DIR --no-vllm  # only the adapter it would serve (CPU)

It needs nothing outside the checkout: the base model is a small Llama with random weights and a byte-level
tokenizer trained here (the device reaches no model hub), tuned for a few steps with `finetune run` (LoRA, rank
8, causal-lm chat). OUT_DIR/vllm.json records each stage: trained, installed, served, answered, and whether
vLLM listed the adapter and answered through it.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import yaml

ADAPTER = "sft"
CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}<|end|>{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)
TOPICS = ["rivers", "bridges", "clocks", "gardens", "trains", "violins", "glaciers", "lanterns"]


def _chats() -> list[dict[str, Any]]:
    return [
        {"messages": [
            {"role": "user", "content": f"Tell me one fact about {topic} number {i}."},
            {"role": "assistant", "content": f"Fact {i} about {topic}: they are older than most people think."},
        ]}
        for i in range(64) for topic in TOPICS
    ]  # fmt: skip


def build_base(folder: Path) -> None:
    """A 4-layer Llama with random weights and a byte-level BPE tokenizer trained on the chats."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    texts = [m["content"] for chat in _chats() for m in chat["messages"]]
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    special = ["<|pad|>", "<|end|>", "<|user|>", "<|assistant|>", "<|system|>"]
    tokenizer.train_from_iterator(texts, trainers.BpeTrainer(vocab_size=512, special_tokens=special))
    fast = PreTrainedTokenizerFast(tokenizer_object=tokenizer, pad_token="<|pad|>", eos_token="<|end|>")  # type: ignore[no-untyped-call]  # noqa: S106
    fast.chat_template = CHAT_TEMPLATE
    fast.model_max_length = 512
    fast.save_pretrained(folder)
    config = LlamaConfig(
        vocab_size=len(fast), hidden_size=256, intermediate_size=512, num_hidden_layers=4, num_attention_heads=4,
        num_key_value_heads=4, max_position_embeddings=512, pad_token_id=fast.pad_token_id,
        eos_token_id=fast.eos_token_id, tie_word_embeddings=False,
    )  # fmt: skip
    LlamaForCausalLM(config).save_pretrained(folder)


def train_adapter(work: Path) -> Path:
    base, data = work / "base", work / "chats.jsonl"
    build_base(base)
    data.write_text("".join(json.dumps(chat) + "\n" for chat in _chats()))
    job = {
        "apiVersion": "finetune.dev/v1alpha1",
        "kind": "FineTuneJob",
        "metadata": {"name": ADAPTER},
        "spec": {
            "model": {"uri": f"{base}/"},
            "task": {"type": "causal-lm", "format": "chat", "messagesColumn": "messages"},
            "dataset": {"train": str(data), "evalSplit": 0.1, "maxLength": 128},
            "method": {"type": "lora", "r": 8, "alpha": 16, "targetModules": ["q_proj", "v_proj"]},
            "training": {"maxSteps": 30, "batchSize": 16, "learningRate": 1e-3},
            "evaluation": {"baseline": False},
            "output": {"uri": f"{work / 'out'}/", "serving": "vllm"},
        },
    }
    (work / "job.yaml").write_text(yaml.safe_dump(job))
    finetune = shutil.which("finetune") or "finetune"
    command = [finetune, "run", str(work / "job.yaml"), "--no-progress", "--work-dir", str(work / "run")]
    subprocess.run(command, check=True)  # noqa: S603 - our own CLI, on a file written here
    return work / "out" / "adapter"


def _get(url: str, body: dict[str, Any] | None = None, timeout: float = 30) -> dict[str, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})  # noqa: S310
    with urllib.request.urlopen(request, timeout=timeout) as answer:  # noqa: S310 - the local vLLM server
        result: dict[str, Any] = json.loads(answer.read())
        return result


def serve_and_ask(work: Path, adapter: Path, record: dict[str, Any]) -> None:
    pip = [sys.executable, "-m", "pip", "install", "-q", "vllm"]
    installed = subprocess.run(pip, capture_output=True, text=True, timeout=300, check=False)  # noqa: S603
    record["installed"] = installed.returncode == 0
    if not record["installed"]:
        record["reason"] = f"pip install vllm failed: {installed.stderr.strip()[-500:]}"
        return
    port = 8011
    log = (work / "vllm.log").open("wb")
    server = subprocess.Popen(  # noqa: S603 - vllm, with arguments made here
        [shutil.which("vllm") or "vllm", "serve", str(work / "base"), "--port", str(port), "--enable-lora",
         "--lora-modules", f"{ADAPTER}={adapter}", "--max-lora-rank", "8", "--max-model-len", "512",
         "--gpu-memory-utilization", "0.3"],
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and server.poll() is None:
            try:
                models = _get(f"{url}/v1/models", timeout=5)
                break
            except OSError:
                time.sleep(2)
        else:
            record["reason"] = f"vllm serve did not answer (exit {server.poll()}); see vllm.log"
            return
        record["served"] = True
        record["models"] = [m["id"] for m in models.get("data", [])]
        record["adapter_listed"] = ADAPTER in record["models"]
        answer = _get(f"{url}/v1/chat/completions", {
            "model": ADAPTER, "max_tokens": 16,
            "messages": [{"role": "user", "content": "Tell me one fact about rivers number 3."}],
        })  # fmt: skip
        record["answered"] = True
        record["adapter_loaded"] = record["adapter_listed"] and answer.get("model") == ADAPTER
        record["reply"] = answer["choices"][0]["message"]["content"]
    finally:
        server.terminate()
        server.wait(30)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="benchmarks.serving.vllm_adapter")
    parser.add_argument("out", type=Path)
    parser.add_argument("--no-vllm", action="store_true", help="train and check the adapter only")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    work = args.out / "vllm-work"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    record: dict[str, Any] = {"trained": False, "installed": None, "served": False, "adapter_loaded": None}
    try:
        adapter = train_adapter(work)
        record["trained"] = True
        manifest = json.loads((work / "out" / "manifest.json").read_text())
        record["serving"] = manifest["serving"]
        if not args.no_vllm:
            serve_and_ask(work, adapter, record)
    except Exception as exc:  # noqa: BLE001 - the record says which stage failed, for the note
        record["reason"] = f"{type(exc).__name__}: {str(exc)[:500]}"
    (args.out / "vllm.json").write_text(json.dumps(record, indent=2))
    print(json.dumps(record))
    return 0 if record["trained"] else 1


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    sys.exit(main())
