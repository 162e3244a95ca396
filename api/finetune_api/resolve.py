"""Every default, applied in one place: a FineTuneJob's spec becomes a ResolvedSpec (finetune_api.resolved).

The operator resolves once per reconcile, with its pod defaults (image, cpu, memory), and writes the result
into the trainer's ConfigMap. The trainer resolves once per process, after it has fetched the model and
knows its facts (architecture for adapter targets, the tokenizer's length limit). Resolving is idempotent
and a resolved spec is valid: it passes `finetune validate` exactly as the original did.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

from pydantic import BaseModel

from .resolved import (
    ChatTask,
    ClassificationTask,
    EvalFile,
    EvalSplit,
    Ia3Method,
    LayerwiseMethod,
    LoraMethod,
    PartialMethod,
    PromptCompletionTask,
    QloraMethod,
    ResolvedDataset,
    ResolvedEvaluation,
    ResolvedJob,
    ResolvedMethod,
    ResolvedModel,
    ResolvedOutput,
    ResolvedResources,
    ResolvedSpec,
    ResolvedTask,
    ResolvedTraining,
    SoftPromptMethod,
    TextTask,
    WholeModelMethod,
)
from .storage_uri import parse_uri
from .v1alpha1 import defaults
from .v1alpha1.dataset import DatasetSpec
from .v1alpha1.enums import CausalFormat, MethodType, Metric, TaskType
from .v1alpha1.job import FineTuneJob, FineTuneJobSpec
from .v1alpha1.method import MethodSpec, QuantizationSpec
from .v1alpha1.task import TaskSpec

M = MethodType


@dataclass(frozen=True)
class ModelFacts:
    """What is known about the model only once it is at hand (the operator resolves without them)."""

    model_type: str | None = None  # config.json's model_type, e.g. bert or llama
    max_length: int | None = None  # the tokenizer's model_max_length


@dataclass(frozen=True)
class PodDefaults:
    """What a trainer pod gets when the spec does not say: the operator's settings, else the api's defaults."""

    image: str = defaults.TRAINER_IMAGE
    cpu: str = defaults.POD_CPU
    memory: str = defaults.POD_MEMORY


def headline_metric(spec: FineTuneJobSpec) -> Metric:
    """spec.evaluation.metric, else the gate's metric, else the task's (defaults.HEADLINE_METRIC)."""
    if spec.evaluation.metric:
        return spec.evaluation.metric
    if spec.evaluation.gate:
        return spec.evaluation.gate.metric
    return defaults.HEADLINE_METRIC[spec.task.type]


def resolve(spec: FineTuneJobSpec, facts: ModelFacts | None = None, pod: PodDefaults | None = None) -> ResolvedSpec:
    facts, pod = facts or ModelFacts(), pod or PodDefaults()
    dataset = _fill(spec.dataset, max_length=defaults.MAX_LENGTH_CAP)
    source = eval_source(dataset)
    if isinstance(source, EvalSplit):
        dataset = _fill(dataset, eval_split=source.fraction)
    if facts.max_length is not None and dataset.max_length is not None and dataset.max_length > facts.max_length:
        # Positions past the model's limit have no embedding: the tokenizer's limit bounds any request.
        dataset = dataset.model_copy(update={"max_length": facts.max_length})
    training = _fill(spec.training, learning_rate=defaults.LEARNING_RATES[spec.method.type])
    if training.warmup_steps is None:
        training = _fill(training, warmup_ratio=defaults.WARMUP_RATIO)
    return ResolvedSpec.model_validate(
        {
            **dict(spec),
            "model": _as(ResolvedModel, _fill(spec.model, tokenizer_uri=spec.model.uri)),
            "task": resolve_task(spec.task),
            "dataset": _as(ResolvedDataset, dataset),
            "method": _method(spec.method, facts.model_type),
            "training": _as(ResolvedTraining, training),
            "evaluation": _as(ResolvedEvaluation, _fill(spec.evaluation, metric=headline_metric(spec))),
            "output": _as(ResolvedOutput, _fill(spec.output, checkpoint_uri=default_checkpoint_uri(spec.output.uri))),
            "resources": _as(ResolvedResources, _fill(spec.resources, cpu=pod.cpu, memory=pod.memory)),
            "image": spec.image or pod.image,
        }
    )


def default_checkpoint_uri(output_uri: str) -> str:
    return str(parse_uri(output_uri).join(defaults.CHECKPOINTS)) + "/"


def resolve_job(job: FineTuneJob, facts: ModelFacts | None = None, pod: PodDefaults | None = None) -> ResolvedJob:
    return ResolvedJob.model_validate({**dict(job), "spec": resolve(job.spec, facts, pod)})


def eval_source(dataset: DatasetSpec) -> EvalFile | EvalSplit:
    """Where the evaluation rows come from: the eval file, else a held-out split (defaults.EVAL_SPLIT)."""
    if dataset.eval is not None:
        return EvalFile(dataset.eval)
    return EvalSplit(dataset.eval_split if dataset.eval_split is not None else defaults.EVAL_SPLIT)


def resolve_task(task: TaskSpec) -> ResolvedTask:
    """The task with the columns (and the causal format) it reads filled in."""
    if task.type == TaskType.SEQUENCE_CLASSIFICATION:
        return _as(
            ClassificationTask, _fill(task, text_column=defaults.TEXT_COLUMN, label_column=defaults.LABEL_COLUMN)
        )
    task = _fill(task, format=defaults.CAUSAL_FORMAT)
    if task.format == CausalFormat.PROMPT_COMPLETION:
        filled = _fill(task, prompt_column=defaults.PROMPT_COLUMN, completion_column=defaults.COMPLETION_COLUMN)
        return _as(PromptCompletionTask, filled)
    if task.format == CausalFormat.CHAT:
        return _as(ChatTask, _fill(task, messages_column=defaults.MESSAGES_COLUMN))
    return _as(TextTask, _fill(task, text_column=defaults.TEXT_COLUMN))


def _method(method: MethodSpec, model_type: str | None) -> ResolvedMethod:
    kind = method.type
    if kind in (M.LORA, M.QLORA):
        r = method.r or defaults.LORA_R
        method = _fill(method, r=r, alpha=float(defaults.LORA_ALPHA_PER_R * r), dropout=defaults.LORA_DROPOUT)
        method = _fill(method, target_modules=_listed(defaults.LORA_TARGETS.get(model_type or "")))
        if kind == M.LORA:
            return _as(LoraMethod, method)
        return _as(QloraMethod, _fill(method, quantization=QuantizationSpec()))
    if kind == M.IA3:
        if method.target_modules is None and model_type in defaults.IA3_TARGETS:
            targets, feedforward = defaults.IA3_TARGETS[model_type]
            method = _fill(method, target_modules=list(targets), feedforward_modules=list(feedforward))
        return _as(Ia3Method, method)
    if kind == M.PARTIAL:
        return _as(PartialMethod, _fill(method, layers=defaults.PARTIAL_LAYERS))
    if kind == M.LAYERWISE_LR:
        return _as(LayerwiseMethod, _fill(method, decay=defaults.LAYERWISE_DECAY))
    if kind in (M.PROMPT_TUNING, M.PREFIX_TUNING):
        return _as(SoftPromptMethod, _fill(method, virtual_tokens=defaults.VIRTUAL_TOKENS))
    return _as(WholeModelMethod, method)


def _listed(names: tuple[str, ...] | None) -> list[str] | None:
    return list(names) if names else None


ModelT = TypeVar("ModelT", bound=BaseModel)
R = TypeVar("R", bound=BaseModel)


def _fill(model: ModelT, **values: object) -> ModelT:
    """Set the fields that are unset (None); a value of None leaves the field as it is."""
    missing = {k: v for k, v in values.items() if getattr(model, k) is None and v is not None}
    return model.model_copy(update=missing) if missing else model


def _as(resolved: type[R], section: BaseModel) -> R:
    """A spec section as its resolved type; a field still unset fails here, naming it."""
    return resolved.model_validate(dict(section))
