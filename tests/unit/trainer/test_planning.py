"""Layer-wise learning rates, precision planning, the gate and the adapter-target table: pure decisions."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from finetune_api.v1alpha1.defaults import IA3_TARGETS, LORA_TARGETS
from finetune_api.v1alpha1.enums import Metric, Precision, TaskType
from finetune_api.v1alpha1.evaluation import GateSpec
from finetune_api.v1alpha1.method import MethodSpec
from finetune_trainer.errors import ConfigError
from finetune_trainer.evaluation.gate import judge
from finetune_trainer.methods.base import MethodContext
from finetune_trainer.methods.layerwise import LayerwiseLR
from finetune_trainer.training import precision


class Tiny(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(10, 4)
        self.layers = nn.ModuleList(nn.Linear(4, 4) for _ in range(3))
        self.norm = nn.LayerNorm(4)
        self.head = nn.Linear(4, 2)


def test_layerwise_rates_shrink_by_decay_from_the_head_down() -> None:
    ctx = MethodContext(TaskType.SEQUENCE_CLASSIFICATION, "", learning_rate=1.0, weight_decay=0.1)
    groups = LayerwiseLR().parameter_groups(Tiny(), MethodSpec(type="layerwise-lr", decay=0.5), ctx)
    rate = {g["layer"]: g["lr"] for g in groups}
    # embeddings 0, blocks 1..3, head and final norm 4: each level is `decay` times the one above.
    assert rate == {0: 0.5**4, 1: 0.5**3, 2: 0.5**2, 3: 0.5, 4: 1.0}
    for group in groups:
        ndims = {p.ndim for p in group["params"]}
        assert group["weight_decay"] == (0.1 if ndims == {2} else 0.0), "no decay on biases and norms"
    assert sum(len(g["params"]) for g in groups) == len(list(Tiny().parameters())), "every weight trains"


def _gpu(monkeypatch: pytest.MonkeyPatch, available: bool, bf16: bool = False) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: available)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: bf16)


def test_precision_auto_follows_the_hardware(monkeypatch: pytest.MonkeyPatch) -> None:
    _gpu(monkeypatch, available=False)
    assert precision.plan_precision(Precision.AUTO).name == "fp32"
    _gpu(monkeypatch, available=True, bf16=True)
    assert precision.plan_precision(Precision.AUTO).name == "bf16"
    _gpu(monkeypatch, available=True, bf16=False)
    plan = precision.plan_precision(Precision.AUTO)
    assert plan.name == "fp16" and plan.on_gpu


def test_precision_that_the_hardware_cannot_do_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    _gpu(monkeypatch, available=False)
    with pytest.raises(ConfigError, match="fp16 needs a GPU"):
        precision.plan_precision(Precision.FP16)
    assert precision.plan_precision(Precision.BF16).name == "bf16", "bf16 on CPU is slow but works"
    _gpu(monkeypatch, available=True, bf16=False)
    with pytest.raises(ConfigError, match="no bf16 support"):
        precision.plan_precision(Precision.BF16)


def test_the_gate_compares_in_the_metrics_own_direction() -> None:
    better = judge(GateSpec(metric=Metric.ACCURACY, min_improvement=0.02), baseline=0.60, tuned=0.65)
    assert better.passed and better.improvement == pytest.approx(0.05)
    assert "gate met" in better.explain()
    loss = judge(GateSpec(metric=Metric.EVAL_LOSS, min_improvement=0.1), baseline=2.0, tuned=1.95)
    assert not loss.passed and loss.improvement == pytest.approx(0.05), "lower loss is better"
    assert "gate not met" in loss.explain()
    assert judge(GateSpec(metric=Metric.PERPLEXITY), baseline=10.0, tuned=10.0).passed, "0 means not worse"


def test_the_adapter_target_table_matches_peft() -> None:
    from peft.utils.constants import (
        TRANSFORMERS_MODELS_TO_IA3_FEEDFORWARD_MODULES_MAPPING as IA3_FF,
    )
    from peft.utils.constants import (
        TRANSFORMERS_MODELS_TO_IA3_TARGET_MODULES_MAPPING as IA3,
    )
    from peft.utils.constants import (
        TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING as LORA,
    )

    for model_type, targets in LORA_TARGETS.items():
        assert list(targets) == LORA[model_type], model_type
    for model_type, (targets, feedforward) in IA3_TARGETS.items():
        assert (list(targets), list(feedforward)) == (IA3[model_type], IA3_FF[model_type]), model_type
