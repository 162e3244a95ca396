"""Shared PEFT plumbing: the task type PEFT wants, and checking target module names against the model."""

from __future__ import annotations

from torch import nn

from finetune_api.v1alpha1.enums import TaskType

from ..errors import ConfigError


def peft_task_type(task: TaskType) -> str:
    return "SEQ_CLS" if task == TaskType.SEQUENCE_CLASSIFICATION else "CAUSAL_LM"


def check_targets(model: nn.Module, targets: list[str] | None, field: str = "targetModules") -> None:
    """Fail before training when a target name matches no module (PEFT would fail mid-setup, or silently)."""
    if not targets or targets == ["all-linear"]:
        return
    names = [n for n, _ in model.named_modules()]
    missing = [t for t in targets if not any(n == t or n.endswith("." + t) for n in names)]
    if missing:
        linear = sorted({n.rsplit(".", 1)[-1] for n, m in model.named_modules() if isinstance(m, nn.Linear)})
        raise ConfigError(
            f"spec.method.{field}: {missing} match no module of this model; linear layers here are named {linear}"
        )
