"""spec.scheduling: where the trainer pods may run, and under which queue."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field, StringConstraints

from .base import DNS_LABEL, DNS_SUBDOMAIN, NAME_MAX, CelRule, SpecModel

LABEL_KEY = (
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"
)


LabelKey = Annotated[str, StringConstraints(min_length=1, max_length=316, pattern=LABEL_KEY)]
LabelValue = Annotated[str, StringConstraints(max_length=63, pattern=r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")]


class Toleration(SpecModel):
    """A pod toleration, as in the core Pod API."""

    key: str | None = Field(
        default=None,
        max_length=316,
        pattern=LABEL_KEY,
        description="Taint key; empty with operator Exists matches every taint.",
    )
    operator: Literal["Exists", "Equal"] = Field(default="Equal", description="Exists or Equal.")
    value: LabelValue | None = Field(default=None, description="Taint value, for Equal.")
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = Field(
        default=None, description="Taint effect to match; empty matches all."
    )
    toleration_seconds: int | None = Field(
        default=None, ge=0, description="For NoExecute: how long the pod stays after the taint appears."
    )


class SchedulingSpec(SpecModel):
    """Placement of the trainer pods."""

    node_selector: dict[LabelKey, LabelValue] | None = Field(
        default=None, max_length=32, description="Node labels the pods require."
    )
    tolerations: list[Toleration] | None = Field(
        default=None, max_length=32, description="Tolerations, e.g. for tainted GPU nodes."
    )
    affinity: dict[str, Any] | None = Field(
        default=None,
        description="Pod affinity and anti-affinity, as in the core Pod API (validated by the API server when the Job is created).",
        json_schema_extra={"x-kubernetes-preserve-unknown-fields": True},
    )
    priority_class_name: str | None = Field(
        default=None, max_length=NAME_MAX, pattern=DNS_SUBDOMAIN, description="PriorityClass of the pods."
    )
    queue_name: str | None = Field(
        default=None,
        max_length=63,
        pattern=DNS_LABEL,
        description="Kueue LocalQueue: the Job is created suspended with the kueue.x-k8s.io/queue-name label, and runs when Kueue admits it.",
    )
    workload_priority_class: str | None = Field(
        default=None,
        max_length=NAME_MAX,
        pattern=DNS_SUBDOMAIN,
        description="Kueue WorkloadPriorityClass of the job within its queue (the kueue.x-k8s.io/priority-class "
        "label): a higher one is admitted first and may preempt a lower one, which saves a checkpoint and resumes "
        "from it when admitted again. Needs queueName.",
    )

    cel_rules: ClassVar[tuple[CelRule, ...]] = (
        CelRule(
            rule="!has(self.workloadPriorityClass) || has(self.queueName)",
            message="spec.scheduling.workloadPriorityClass is Kueue's: set spec.scheduling.queueName too",
            field="workloadPriorityClass",
        ),
    )
