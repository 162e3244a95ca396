"""The FineTuneJob resource: spec, status and the rules that span sections."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field

from ..durations import DURATION
from .base import DNS_SUBDOMAIN, NAME_MAX, CelRule, SpecModel
from .dataset import DatasetSpec
from .enums import METRICS_BY_TASK, MethodType, TaskType
from .evaluation import EvaluationSpec
from .method import MethodSpec
from .model import ModelSource
from .output import OutputSpec
from .resources import ResourcesSpec
from .scheduling import SchedulingSpec
from .status import FineTuneJobStatus
from .storage import S3Spec
from .task import TaskSpec
from .tracking import TrackingSpec
from .training import TrainingSpec

IMAGE = r"^[a-z0-9]+([._-][a-z0-9]+)*(:[0-9]+)?(/[a-z0-9]+([._-][a-z0-9]+)*)*(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(@sha256:[a-f0-9]{64})?$"
MERGEABLE = (MethodType.LORA.value, MethodType.QLORA.value, MethodType.IA3.value)


def _metrics_rule() -> CelRule:
    cls = ", ".join(f"'{m}'" for m in METRICS_BY_TASK[TaskType.SEQUENCE_CLASSIFICATION])
    lm = ", ".join(f"'{m}'" for m in METRICS_BY_TASK[TaskType.CAUSAL_LM])
    return CelRule(
        rule=(
            "!has(self.evaluation.gate) || (self.task.type == 'causal-lm' ? "
            f"self.evaluation.gate.metric in [{lm}] : self.evaluation.gate.metric in [{cls}])"
        ),
        message=(
            "spec.evaluation.gate.metric must fit spec.task.type: accuracy, macro-f1 or eval-loss for "
            "sequence-classification; eval-loss or perplexity for causal-lm"
        ),
        field="evaluation",
    )


class FineTuneJobSpec(SpecModel):
    """Desired state of a FineTuneJob: which model to adapt, on what data, how, and where the result goes."""

    model: ModelSource = Field(description="The pretrained model to start from.")
    task: TaskSpec = Field(description="The task and the column mapping.")
    dataset: DatasetSpec = Field(description="Training and evaluation data.")
    method: MethodSpec = Field(description="The adaptation method and its parameters.")
    training: TrainingSpec = Field(description="The training loop.")
    evaluation: EvaluationSpec = Field(
        default_factory=EvaluationSpec, description="Baseline and final evaluation, and the publishing gate."
    )
    output: OutputSpec = Field(description="Where the tuned model, manifest and checkpoints go.")
    s3: S3Spec | None = Field(default=None, description="The S3-compatible store for s3:// URIs.")
    tracking: TrackingSpec | None = Field(
        default=None, description="Experiment tracking (MLflow): parameters, metrics, artifacts, a model version."
    )
    resources: ResourcesSpec = Field(default_factory=ResourcesSpec, description="GPUs, nodes, CPU and memory per pod.")
    scheduling: SchedulingSpec | None = Field(
        default=None, description="Node selection, tolerations, priority and Kueue queue."
    )
    service_account_name: str | None = Field(
        default=None,
        max_length=NAME_MAX,
        pattern=DNS_SUBDOMAIN,
        description="ServiceAccount of the trainer pods, e.g. one bound to an IAM role (IRSA / workload identity) for S3 access.",
    )
    image: str | None = Field(
        default=None,
        max_length=512,
        pattern=IMAGE,
        description="Trainer image. Default: the one the operator was installed with.",
    )
    max_runtime: str | None = Field(
        default=None,
        min_length=2,
        max_length=24,
        pattern=DURATION,
        description="Wall-clock limit of the whole job, e.g. 6h or 90m (the Job's activeDeadlineSeconds).",
    )
    ttl_after_finished: str | None = Field(
        default=None,
        min_length=2,
        max_length=24,
        pattern=DURATION,
        description="Delete the FineTuneJob (and what it created) this long after it finished, e.g. 24h. The output in S3 is kept.",
    )
    suspend: bool = Field(
        default=False,
        description="Suspend the job: running pods are stopped (a checkpoint is saved) and none start until it is false again.",
    )
    retries: int = Field(
        default=3,
        ge=0,
        le=20,
        description="Retries after infrastructure failures (preemption, node loss, OOM kill). Config, data and gate failures never retry.",
    )

    cel_rules: ClassVar[tuple[CelRule, ...]] = (
        CelRule(
            rule="self.method.type != 'qlora' || self.resources.gpus > 0",
            message="spec.method.type qlora quantizes with CUDA kernels: set spec.resources.gpus to 1 or more, or use lora",
            field="method",
        ),
        CelRule(
            rule="self.training.precision != 'fp16' || self.resources.gpus > 0",
            message="spec.training.precision fp16 needs a GPU: set spec.resources.gpus, or use auto, bf16 or fp32",
            field="training",
        ),
        CelRule(
            rule="self.method.type != 'feature-extraction' || self.task.type == 'sequence-classification'",
            message="spec.method.type feature-extraction trains a new classification head: use it with sequence-classification, or use partial (layers: 1) for causal-lm",
            field="method",
        ),
        CelRule(
            rule="!self.training.packing || self.task.type == 'causal-lm'",
            message="spec.training.packing applies to causal-lm only; set it to false for sequence-classification",
            field="training",
        ),
        CelRule(
            rule="self.output.save == 'adapter' || self.method.type in ["
            + ", ".join(f"'{m}'" for m in MERGEABLE)
            + "]",
            message="spec.output.save merged or both needs an adapter that merges into the weights (lora, qlora, ia3); use save: adapter",
            field="output",
        ),
        CelRule(
            rule="!has(self.evaluation.forgetting) || self.task.type == 'causal-lm'",
            message="spec.evaluation.forgetting measures language-model perplexity: use it with causal-lm only",
            field="evaluation",
        ),
        _metrics_rule(),
    )

    @property
    def queue_name(self) -> str | None:
        """The Kueue LocalQueue the job waits in, if any: the one place "is it queued" is decided."""
        return self.scheduling.queue_name if self.scheduling else None


class ObjectMeta(SpecModel):
    """The parts of metadata a manifest file carries (the API server owns the rest)."""

    model_config = SpecModel.model_config | {"extra": "allow"}
    name: str = Field(max_length=50, pattern=r"^[a-z]([-a-z0-9]*[a-z0-9])?$", description="Name of the FineTuneJob.")
    namespace: str | None = Field(default=None, max_length=63, description="Namespace.")
    labels: dict[str, str] | None = None
    annotations: dict[str, str] | None = None


class FineTuneJob(SpecModel):
    """A FineTuneJob as written in a manifest file."""

    api_version: Literal["finetune.dev/v1alpha1"] = Field(default="finetune.dev/v1alpha1", alias="apiVersion")
    kind: Literal["FineTuneJob"] = "FineTuneJob"
    metadata: ObjectMeta
    spec: FineTuneJobSpec
    status: FineTuneJobStatus | None = None


def resource_rules(spec_fields: dict[str, Any] | None = None) -> tuple[CelRule, ...]:
    """Rules on the whole object: the name (it prefixes every child object) and immutability once started."""
    fields = spec_fields if spec_fields is not None else FineTuneJobSpec.model_fields
    clauses = []
    for name, info in fields.items():
        alias = info.alias or name
        if alias == "suspend":
            continue
        if info.is_required():
            clauses.append(f"self.spec.{alias} == oldSelf.spec.{alias}")
        else:
            clauses.append(
                f"(has(self.spec.{alias}) ? (has(oldSelf.spec.{alias}) && self.spec.{alias} == oldSelf.spec.{alias})"
                f" : !has(oldSelf.spec.{alias}))"
            )
    return (
        CelRule(
            rule="self.metadata.name.size() <= 50",
            message="metadata.name must be at most 50 characters: the trainer's Job, Service and pods are named after it",
        ),
        CelRule(
            rule="self.metadata.name.matches('^[a-z]([-a-z0-9]*[a-z0-9])?$')",
            message="metadata.name must be a DNS-1035 label (lowercase letters, digits and '-', starting with a letter): it names a headless Service",
        ),
        CelRule(
            rule="!has(oldSelf.status) || !has(oldSelf.status.startTime) || (" + " && ".join(clauses) + ")",
            message="spec is immutable once the job has started (status.startTime is set); only spec.suspend may change. Create a new FineTuneJob instead",
        ),
    )
