"""Every default the spec leaves to the system, in one table.

The field descriptions (`kubectl explain`, docs/spec-reference.md) are written from these values, and
finetune_api.resolve fills a spec with them; tests/unit/test_defaults.py fails when the two disagree.
"""

from __future__ import annotations

from .enums import CausalFormat, MethodType, Metric, TaskType

M = MethodType

# Peak learning rate per method: adapters and heads train far fewer weights and tolerate (need) more.
LEARNING_RATES: dict[MethodType, float] = {
    M.FULL: 2e-5,
    M.FEATURE_EXTRACTION: 1e-3,
    M.PARTIAL: 5e-5,
    M.LAYERWISE_LR: 5e-5,
    M.LORA: 2e-4,
    M.QLORA: 2e-4,
    M.IA3: 3e-3,
    M.PROMPT_TUNING: 3e-2,
    M.PREFIX_TUNING: 1e-2,
}
LORA_R = 16
LORA_ALPHA_PER_R = 2  # alpha = 2 x r: the scale alpha / r stays 2 whatever the rank
LORA_DROPOUT = 0.05
PARTIAL_LAYERS = 2
LAYERWISE_DECAY = 0.8
VIRTUAL_TOKENS = 20

# Adapter targets per architecture (config.json's model_type), as PEFT chooses them; a model type
# not listed here keeps PEFT's own choice. tests/unit/trainer checks the table against PEFT's.
_QV = ("q_proj", "v_proj")
LORA_TARGETS: dict[str, tuple[str, ...]] = {
    "bert": ("query", "value"),
    "roberta": ("query", "value"),
    "xlm-roberta": ("query", "value"),
    "electra": ("query", "value"),
    "deberta-v2": ("query_proj", "value_proj"),
    "llama": _QV,
    "mistral": _QV,
    "mixtral": _QV,
    "qwen2": _QV,
    "qwen3": _QV,
    "gemma": _QV,
    "gemma2": _QV,
    "opt": _QV,
    "gpt2": ("c_attn",),
    "gpt_neox": ("query_key_value",),
    "falcon": ("query_key_value",),
    "bloom": ("query_key_value",),
}
# IA3: (target modules, the feed-forward ones among them).
IA3_TARGETS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "bert": (("key", "value", "output.dense"), ("output.dense",)),
    "roberta": (("key", "value", "output.dense"), ("output.dense",)),
    "deberta-v2": (("key_proj", "value_proj", "output.dense"), ("output.dense",)),
    "llama": (("k_proj", "v_proj", "down_proj"), ("down_proj",)),
    "mistral": (("k_proj", "v_proj", "down_proj"), ("down_proj",)),
    "qwen2": (("q_proj", "v_proj", "down_proj"), ("down_proj",)),
    "gpt2": (("c_attn", "mlp.c_proj"), ("mlp.c_proj",)),
}

TEXT_COLUMN = "text"
LABEL_COLUMN = "label"
PROMPT_COLUMN = "prompt"
COMPLETION_COLUMN = "completion"
MESSAGES_COLUMN = "messages"
CAUSAL_FORMAT = CausalFormat.PROMPT_COMPLETION

# What a trainer pod gets when neither the spec nor the operator's settings (the chart's values) say.
TRAINER_IMAGE = "ghcr.io/finetune-dev/trainer:0.1.0"
POD_CPU = "4"
POD_MEMORY = "16Gi"

EVAL_SPLIT = 0.1
MAX_LENGTH_CAP = 1024  # tokens; the tokenizer's own limit lowers it (and any maxLength) further
WARMUP_RATIO = 0.0
CHECKPOINTS = "checkpoints"  # under output.uri
HEADLINE_METRIC: dict[TaskType, Metric] = {
    TaskType.SEQUENCE_CLASSIFICATION: Metric.ACCURACY,
    TaskType.CAUSAL_LM: Metric.PERPLEXITY,
}


def sci(value: float) -> str:
    """A default as the descriptions write it: 2e-5, not 2e-05 or 0.00002."""
    mantissa, exponent = f"{value:.0e}".split("e")
    text = f"{mantissa}e{int(exponent)}"
    if float(text) != value:
        raise ValueError(f"{value} needs more than one significant digit; widen sci()")
    return text


def learning_rates_text() -> str:
    """'2e-5 for full, 5e-5 for partial/layerwise-lr, ...': methods sharing a rate listed together."""
    by_rate: dict[float, list[str]] = {}
    for method, rate in LEARNING_RATES.items():
        by_rate.setdefault(rate, []).append(str(method))
    return ", ".join(f"{sci(rate)} for {'/'.join(methods)}" for rate, methods in by_rate.items())
