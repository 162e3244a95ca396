"""A spec with every default filled in: what a job actually runs with, and what its output records.

`resolve` is the only place a default is applied. The operator resolves before writing the trainer's
ConfigMap; the trainer resolves again once it has the model (ModelFacts: per-architecture adapter
targets, the tokenizer's length limit) and reads nothing but the result. Resolving is idempotent and a
resolved spec is valid: it passes `finetune validate` exactly as the original did.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

from .storage_uri import parse_uri
from .v1alpha1 import defaults
from .v1alpha1.enums import CausalFormat, MethodType, Metric, TaskType
from .v1alpha1.job import FineTuneJob, FineTuneJobSpec
from .v1alpha1.method import MethodSpec, QuantizationSpec
from .v1alpha1.task import TaskSpec

T = TypeVar("T")
M = MethodType


@dataclass(frozen=True)
class ModelFacts:
    """What is known about the model only once it is at hand (the operator resolves without them)."""

    model_type: str | None = None  # config.json's model_type, e.g. bert or llama
    max_length: int | None = None  # the tokenizer's model_max_length


def headline_metric(spec: FineTuneJobSpec) -> Metric:
    """spec.evaluation.metric, else the gate's metric, else the task's (defaults.HEADLINE_METRIC)."""
    if spec.evaluation.metric:
        return spec.evaluation.metric
    if spec.evaluation.gate:
        return spec.evaluation.gate.metric
    return defaults.HEADLINE_METRIC[spec.task.type]


def resolve(spec: FineTuneJobSpec, facts: ModelFacts | None = None) -> FineTuneJobSpec:
    facts = facts or ModelFacts()
    dataset = spec.dataset
    if dataset.eval is None and dataset.eval_split is None:
        dataset = dataset.model_copy(update={"eval_split": defaults.EVAL_SPLIT})
    if dataset.max_length is None and facts.max_length is not None:
        dataset = dataset.model_copy(update={"max_length": min(facts.max_length, defaults.MAX_LENGTH_CAP)})
    training = spec.training
    fill = {"learning_rate": training.learning_rate or defaults.LEARNING_RATES[spec.method.type]}
    if training.warmup_steps is None and training.warmup_ratio is None:
        fill["warmup_ratio"] = defaults.WARMUP_RATIO
    evaluation = spec.evaluation
    if evaluation.metric is None:
        evaluation = evaluation.model_copy(update={"metric": headline_metric(spec)})
    model = spec.model
    if model.tokenizer_uri is None:
        model = model.model_copy(update={"tokenizer_uri": model.uri})
    output = spec.output
    if output.checkpoint_uri is None:
        output = output.model_copy(update={"checkpoint_uri": default_checkpoint_uri(output.uri)})
    return spec.model_copy(
        update={
            "model": model,
            "task": resolve_task(spec.task),
            "dataset": dataset,
            "method": _method(spec.method, facts.model_type),
            "training": training.model_copy(update=fill),
            "evaluation": evaluation,
            "output": output,
        }
    )


def default_checkpoint_uri(output_uri: str) -> str:
    return str(parse_uri(output_uri).join(defaults.CHECKPOINTS)) + "/"


def resolve_job(job: FineTuneJob, facts: ModelFacts | None = None) -> FineTuneJob:
    return job.model_copy(update={"spec": resolve(job.spec, facts)})


def resolve_task(task: TaskSpec) -> TaskSpec:
    """The task with the columns (and the causal format) it reads filled in."""
    if task.type == TaskType.SEQUENCE_CLASSIFICATION:
        return _fill(task, text_column=defaults.TEXT_COLUMN, label_column=defaults.LABEL_COLUMN)
    task = _fill(task, format=defaults.CAUSAL_FORMAT)
    if task.format == CausalFormat.PROMPT_COMPLETION:
        return _fill(task, prompt_column=defaults.PROMPT_COLUMN, completion_column=defaults.COMPLETION_COLUMN)
    if task.format == CausalFormat.CHAT:
        return _fill(task, messages_column=defaults.MESSAGES_COLUMN)
    return _fill(task, text_column=defaults.TEXT_COLUMN)


def _method(method: MethodSpec, model_type: str | None) -> MethodSpec:
    kind = method.type
    if kind in (M.LORA, M.QLORA):
        r = method.r or defaults.LORA_R
        method = _fill(method, r=r, alpha=float(defaults.LORA_ALPHA_PER_R * r), dropout=defaults.LORA_DROPOUT)
        method = _fill(method, target_modules=_listed(defaults.LORA_TARGETS.get(model_type or "")))
    if kind == M.QLORA:
        method = _fill(method, quantization=QuantizationSpec())
    if kind == M.IA3 and method.target_modules is None and model_type in defaults.IA3_TARGETS:
        targets, feedforward = defaults.IA3_TARGETS[model_type]
        method = _fill(method, target_modules=list(targets), feedforward_modules=list(feedforward))
    if kind == M.PARTIAL:
        method = _fill(method, layers=defaults.PARTIAL_LAYERS)
    if kind == M.LAYERWISE_LR:
        method = _fill(method, decay=defaults.LAYERWISE_DECAY)
    if kind in (M.PROMPT_TUNING, M.PREFIX_TUNING):
        method = _fill(method, virtual_tokens=defaults.VIRTUAL_TOKENS)
    return method


def _listed(names: tuple[str, ...] | None) -> list[str] | None:
    return list(names) if names else None


ModelT = TypeVar("ModelT", TaskSpec, MethodSpec)


def _fill(model: ModelT, **values: object) -> ModelT:
    """Set the fields that are unset (None); a value of None leaves the field as it is."""
    missing = {k: v for k, v in values.items() if getattr(model, k) is None and v is not None}
    return model.model_copy(update=missing) if missing else model


def need(value: T | None, field: str) -> T:
    """A resolved field's value; None means the caller read a spec that was never resolved."""
    if value is None:
        raise ValueError(f"{field} is unset: resolve the spec (finetune_api.resolve) before reading it")
    return value
