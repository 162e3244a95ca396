"""The resolved FineTuneJob: the spec's shape with every default filled in and typed as set.

`finetune_api.resolve` builds it; nothing else does. Each section narrows the spec's type: a field a
default fills is no longer Optional, the task is one of four shapes (classification, prompt-completion,
chat, text) and the method one class per family, so a reader matches on the type instead of checking
fields. The wire form is the spec's own (the same camelCase fields), so the operator's ConfigMap and
the trainer's manifest carry a resolved spec that `finetune validate` accepts as it stands.

Two things stay optional because their absence is a choice, not a missing default: a LoRA/IA3 target
list (none: PEFT's own table for an architecture ours does not list) and the user's opt-in sections
(gate, few-shot, forgetting, early stopping).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import model_validator

from .v1alpha1.dataset import DatasetSpec
from .v1alpha1.enums import CausalFormat, MethodType, Metric, TaskType
from .v1alpha1.evaluation import EvaluationSpec
from .v1alpha1.job import FineTuneJob, FineTuneJobSpec
from .v1alpha1.method import MethodSpec, QuantizationSpec
from .v1alpha1.model import ModelSource
from .v1alpha1.output import OutputSpec
from .v1alpha1.resources import ResourcesSpec
from .v1alpha1.task import TaskSpec
from .v1alpha1.training import TrainingSpec


# The task: which columns feed the model, by shape.
class ClassificationTask(TaskSpec):
    type: Literal[TaskType.SEQUENCE_CLASSIFICATION]
    text_column: str
    label_column: str


class PromptCompletionTask(TaskSpec):
    type: Literal[TaskType.CAUSAL_LM]
    format: Literal[CausalFormat.PROMPT_COMPLETION]
    prompt_column: str
    completion_column: str


class ChatTask(TaskSpec):
    type: Literal[TaskType.CAUSAL_LM]
    format: Literal[CausalFormat.CHAT]
    messages_column: str


class TextTask(TaskSpec):
    type: Literal[TaskType.CAUSAL_LM]
    format: Literal[CausalFormat.TEXT]
    text_column: str


CausalTask = PromptCompletionTask | ChatTask | TextTask
ResolvedTask = ClassificationTask | CausalTask


# The method: one class per family, holding that family's parameters as set.
class WholeModelMethod(MethodSpec):
    """full and feature-extraction: no parameters beyond the type."""

    type: Literal[MethodType.FULL, MethodType.FEATURE_EXTRACTION]


class LoraMethod(MethodSpec):
    type: Literal[MethodType.LORA]
    r: int
    alpha: float
    dropout: float


class QloraMethod(MethodSpec):
    type: Literal[MethodType.QLORA]
    r: int
    alpha: float
    dropout: float
    quantization: QuantizationSpec


class Ia3Method(MethodSpec):
    type: Literal[MethodType.IA3]


class PartialMethod(MethodSpec):
    type: Literal[MethodType.PARTIAL]
    layers: int


class LayerwiseMethod(MethodSpec):
    type: Literal[MethodType.LAYERWISE_LR]
    decay: float


class SoftPromptMethod(MethodSpec):
    type: Literal[MethodType.PROMPT_TUNING, MethodType.PREFIX_TUNING]
    virtual_tokens: int


AdapterMethod = LoraMethod | QloraMethod
ResolvedMethod = (
    WholeModelMethod | LoraMethod | QloraMethod | Ia3Method | PartialMethod | LayerwiseMethod | SoftPromptMethod
)


@dataclass(frozen=True)
class Steps:
    count: int


@dataclass(frozen=True)
class Epochs:
    count: float


@dataclass(frozen=True)
class EvalFile:
    uri: str


@dataclass(frozen=True)
class EvalSplit:
    fraction: float


class ResolvedModel(ModelSource):
    tokenizer_uri: str


class ResolvedDataset(DatasetSpec):
    max_length: int

    @model_validator(mode="after")
    def _one_eval_source(self) -> ResolvedDataset:
        if (self.eval is None) == (self.eval_split is None):
            raise ValueError("spec.dataset: a resolved dataset has exactly one of eval and evalSplit")
        return self


class ResolvedTraining(TrainingSpec):
    learning_rate: float

    @model_validator(mode="after")
    def _one_length_and_warmup(self) -> ResolvedTraining:
        if (self.epochs is None) == (self.max_steps is None):
            raise ValueError("spec.training: a resolved loop has exactly one of epochs and maxSteps")
        if (self.warmup_ratio is None) == (self.warmup_steps is None):
            raise ValueError("spec.training: a resolved loop has exactly one of warmupRatio and warmupSteps")
        return self

    @property
    def length(self) -> Steps | Epochs:
        if self.max_steps is not None:
            return Steps(self.max_steps)
        return Epochs(self.epochs or 0.0)  # the validator guarantees it is set

    def warmup(self, total_steps: int) -> int:
        """Warmup in optimizer steps: warmupSteps, or warmupRatio of the run."""
        if self.warmup_steps is not None:
            return self.warmup_steps
        return round((self.warmup_ratio or 0.0) * total_steps)  # the validator guarantees one is set


class ResolvedEvaluation(EvaluationSpec):
    metric: Metric


class ResolvedOutput(OutputSpec):
    checkpoint_uri: str


class ResolvedResources(ResourcesSpec):
    cpu: str
    memory: str


class ResolvedSpec(FineTuneJobSpec):
    model: ResolvedModel
    task: ResolvedTask
    dataset: ResolvedDataset
    method: ResolvedMethod
    training: ResolvedTraining
    evaluation: ResolvedEvaluation
    output: ResolvedOutput
    resources: ResolvedResources
    image: str


class ResolvedJob(FineTuneJob):
    spec: ResolvedSpec
