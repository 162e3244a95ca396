"""status: what the operator observed, for `kubectl get ftj` and for automation."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from .base import URI_MAX, SpecModel
from .enums import FailureClass, Phase


class Condition(SpecModel):
    """A condition per the Kubernetes API conventions."""

    type: str = Field(
        max_length=64,
        description="Condition type: Validated, Queued, Preempted, Initialized, Running, Complete, Failed, "
        "Suspended, GatePassed.",
    )
    status: Literal["True", "False", "Unknown"] = Field(description="True, False or Unknown.")
    reason: str = Field(
        max_length=128,
        pattern=r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$",
        description="A CamelCase machine-readable reason.",
    )
    message: str = Field(default="", max_length=4096, description="A human-readable explanation.")
    last_transition_time: datetime = Field(description="When status last changed.")
    observed_generation: int | None = Field(
        default=None, ge=0, description="The .metadata.generation this condition was computed from."
    )


class Progress(SpecModel):
    """Training progress, reported by the trainer."""

    step: int = Field(default=0, ge=0, description="Optimizer steps completed.")
    total_steps: int | None = Field(default=None, ge=0, description="Planned optimizer steps.")
    epoch: float | None = Field(default=None, ge=0, description="Epochs completed (fractional).")
    percent: int = Field(default=0, ge=0, le=100, description="Completion in percent.")
    eta: str | None = Field(default=None, max_length=32, description="Estimated time left, e.g. 12m30s.")
    summary: str | None = Field(default=None, max_length=64, description="The printer column text, e.g. '42% 84/200'.")


class Metrics(SpecModel):
    """The latest metrics."""

    train_loss: float | None = Field(
        default=None, description="Latest training loss (smoothed over the logging interval)."
    )
    eval_loss: float | None = Field(default=None, description="Latest evaluation loss.")
    metric_name: str | None = Field(
        default=None, max_length=32, description="Name of the headline metric (spec.evaluation.metric)."
    )
    eval_metric: float | None = Field(default=None, description="Latest value of the headline metric.")
    baseline_metric: float | None = Field(default=None, description="The headline metric of the untouched model.")
    few_shot_metric: float | None = Field(
        default=None,
        description="The headline metric of the untouched model with spec.evaluation.fewShot demonstrations.",
    )
    reference_perplexity_before: float | None = Field(
        default=None, description="Perplexity on the forgetting check's reference text before training."
    )
    reference_perplexity_after: float | None = Field(
        default=None, description="Perplexity on the same reference text after training (forgetting when it rose)."
    )
    # The cost side of a comparison (FineTuneExperiment): what the method trained, how long and how fast.
    trainable_parameters: int | None = Field(default=None, ge=0, description="Parameters the method trains.")
    train_seconds: float | None = Field(default=None, ge=0, description="Wall-clock time of the training loop so far.")
    tokens_per_second: float | None = Field(default=None, ge=0, description="Training throughput (tokens per second).")
    peak_memory_bytes: int | None = Field(
        default=None,
        ge=0,
        description="Peak memory during training: CUDA memory allocated on GPUs, resident memory on CPU.",
    )


class OutputStatus(SpecModel):
    """Where the published model is. Set only after its manifest was written."""

    uri: str = Field(max_length=URI_MAX, description="The output prefix.")
    manifest: str = Field(
        max_length=URI_MAX, description="The manifest.json object: file list with sha256, lineage, metrics."
    )


class QueueStatus(SpecModel):
    """What sharing the cluster through Kueue cost this job: time waiting for quota, and preemptions."""

    name: str = Field(max_length=63, description="The Kueue LocalQueue (spec.scheduling.queueName).")
    queued_seconds: float = Field(
        default=0.0,
        ge=0,
        description="Seconds spent waiting for admission, every finished wait included (after a preemption "
        "too); a wait under way counts from waitingSince.",
    )
    preemptions: int = Field(default=0, ge=0, description="How often Kueue preempted the job so far.")
    waiting_since: datetime | None = Field(
        default=None, description="When the latest wait for admission began (under way while phase is Queued)."
    )


class Failure(SpecModel):
    """Why the job failed."""

    reason: FailureClass = Field(description="The failure class; decides whether a retry can help.")
    message: str = Field(default="", max_length=4096, description="What happened and how to fix it.")
    exit_code: int | None = Field(default=None, description="The trainer's exit code, when it exited.")


class StorageHealth(SpecModel):
    """How the trainer's object storage is faring, reported by the trainer; the operator turns it into the
    StorageRetrying and CheckpointsFailing conditions."""

    retries: int = Field(default=0, ge=0, description="S3 requests and transfers retried so far in this attempt.")
    retrying: str | None = Field(
        default=None, max_length=1024, description="Set while an operation is being retried: which, and why."
    )
    checkpoints_failing: str | None = Field(
        default=None,
        max_length=1024,
        description="Set while checkpoints cannot be saved (training goes on; publishing needs the store back).",
    )


class TrackingStatus(SpecModel):
    """Where the run is recorded (MLflow), reported by the trainer; the operator shows `failing` as the
    TrackingFailing condition."""

    run_id: str | None = Field(default=None, max_length=64, description="The MLflow run (a resumed job continues it).")
    url: str | None = Field(default=None, max_length=URI_MAX, description="The run's page on the tracking server.")
    failing: str | None = Field(
        default=None,
        max_length=1024,
        description="Set while the tracking server cannot be reached or is too slow; training goes on without it.",
    )


class FineTuneJobStatus(SpecModel):
    """Observed state of a FineTuneJob."""

    phase: Phase | None = Field(
        default=None,
        description="Pending, Queued, Preempted, Initializing, Running, Succeeded, Failed or Suspended.",
    )
    conditions: list[Condition] | None = Field(default=None, max_length=16, description="Conditions, one per type.")
    observed_generation: int | None = Field(default=None, ge=0, description="The .metadata.generation last acted on.")
    start_time: datetime | None = Field(default=None, description="When the trainer Job was created.")
    completion_time: datetime | None = Field(default=None, description="When the job reached Succeeded or Failed.")
    job_name: str | None = Field(default=None, max_length=63, description="The batch/v1 Job running the trainer.")
    attempts: int | None = Field(default=None, ge=0, description="Trainer pod attempts so far.")
    progress: Progress | None = Field(default=None, description="Training progress.")
    metrics: Metrics | None = Field(default=None, description="Training and evaluation metrics.")
    output: OutputStatus | None = Field(default=None, description="The published output.")
    queue: QueueStatus | None = Field(default=None, description="Kueue: time queued and preemptions (queued jobs).")
    failure: Failure | None = Field(default=None, description="Set when phase is Failed.")
    last_checkpoint: str | None = Field(default=None, max_length=URI_MAX, description="The newest complete checkpoint.")
    storage: StorageHealth | None = Field(default=None, description="Object storage health, from the trainer.")
    tracking: TrackingStatus | None = Field(default=None, description="The MLflow run, from the trainer.")
