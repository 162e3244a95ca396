"""The FineTuneExperiment resource: one FineTuneJob template, several variants, compared side by side."""

from __future__ import annotations

import enum
import typing
from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field, StringConstraints

from .base import NO_PARENT_SEGMENTS, STORAGE_URI, URI_MAX, CelRule, SpecModel, cel
from .enums import Metric
from .evaluation import EvaluationSpec
from .experiment_status import FineTuneExperimentStatus
from .job import FineTuneJobSpec, ObjectMeta
from .method import MethodSpec
from .partial import partial
from .training import TrainingSpec

MAX_VARIANTS = 32
# `<experiment>-<variant>` names a FineTuneJob, whose names stop at 50 characters.
JOB_NAME_MAX = 50
EXPERIMENT_NAME_MAX = 46  # leaves "-g31", the longest grid variant name
VARIANT_NAME_MAX = 24
VARIANT_NAME = r"^[a-z]([-a-z0-9]*[a-z0-9])?$"
GridValue = Annotated[str, StringConstraints(min_length=1, max_length=256, pattern=r"^[^\x00-\x1f\x7f]+$")]
# The report of an experiment is published under <output>/comparison/ and its Job is <experiment>-comparison.
REPORT_NAME = "comparison"
# The sections a variant may change; everything else (model, data, task, output, resources) stays shared.
SECTIONS: dict[str, type[SpecModel]] = {"method": MethodSpec, "training": TrainingSpec, "evaluation": EvaluationSpec}

TrainingOverride = partial(
    TrainingSpec, "TrainingOverride", "Fields of spec.template.training this variant changes; the rest are kept."
)
EvaluationOverride = partial(
    EvaluationSpec,
    "EvaluationOverride",
    "Fields of spec.template.evaluation this variant changes; the rest are kept.",
    # One metric is compared across all variants: spec.select.metric, never a variant's own.
    exclude=frozenset({"metric"}),
)


def _is_scalar(annotation: Any) -> bool:
    args = [a for a in typing.get_args(annotation) if a is not type(None)] or [annotation]
    return all(
        (isinstance(a, type) and (issubclass(a, enum.Enum) or a in (int, float, str, bool)))
        or typing.get_origin(a) is Literal
        for a in args
    )


def grid_paths() -> tuple[str, ...]:
    """Every scalar field a grid may vary, as `section.field` (camelCase), e.g. training.learningRate."""
    out = []
    for section, model in SECTIONS.items():
        hints = typing.get_type_hints(model, include_extras=False)
        for name, info in model.model_fields.items():
            alias = info.alias or name
            # The compared metric is experiment-wide (spec.select.metric), never a variable.
            if _is_scalar(hints[name]) and (section, alias) != ("evaluation", "metric"):
                out.append(f"{section}.{alias}")
    return tuple(out)


GridPath = enum.StrEnum("GridPath", {p.replace(".", "_").upper(): p for p in grid_paths()})  # type: ignore[misc]


class VariantSpec(SpecModel):
    """One variant: a name and the sections of the template it changes."""

    name: str = Field(
        min_length=1,
        max_length=VARIANT_NAME_MAX,
        pattern=VARIANT_NAME,
        description="The variant's name; its FineTuneJob is <experiment>-<name>, its output <template output>/<name>/.",
    )
    method: MethodSpec | None = Field(
        default=None, description="Replaces spec.template.method as a whole (parameters belong to one method)."
    )
    training: TrainingOverride | None = Field(  # type: ignore[valid-type]
        default=None,
        description="Changes these fields of spec.template.training. Setting epochs drops the template's maxSteps and the other way round (likewise warmupRatio and warmupSteps).",
    )
    evaluation: EvaluationOverride | None = Field(  # type: ignore[valid-type]
        default=None,
        description="Changes these fields of spec.template.evaluation (metric is spec.select.metric, for all variants).",
    )

    cel_rules: ClassVar[tuple[CelRule, ...]] = (
        CelRule(
            rule=f"self.name != '{REPORT_NAME}'",
            message=f"spec.variants[].name '{REPORT_NAME}' is taken by the experiment's report; choose another name",
            field="name",
        ),
    )


class GridAxis(SpecModel):
    """One field and the values it takes; the grid's variants are the product of all axes."""

    path: GridPath = Field(description="The field varied, as section.field, e.g. training.learningRate or method.r.")
    values: list[GridValue] = Field(
        min_length=1,
        max_length=16,
        description="The values, written as strings and read as the field's type: ['1e-4', '3e-4'], ['8', '16'], ['lora', 'ia3'].",
    )


class SelectSpec(SpecModel):
    """How the best variant is chosen."""

    metric: Metric | None = Field(
        default=None,
        description="The metric compared (and every variant's headline metric). Default: the template's headline metric. Higher wins for accuracy and macro-f1, lower for eval-loss and perplexity; only Succeeded variants compete.",
    )


class PromoteSpec(SpecModel):
    """Where the best variant's output is copied once every variant has finished."""

    uri: str = Field(
        max_length=URI_MAX,
        pattern=STORAGE_URI,
        json_schema_extra=cel(NO_PARENT_SEGMENTS),
        description="A prefix (s3://bucket/prefix/ or a path): the best variant's published files, then its manifest.json last.",
    )


class FineTuneExperimentSpec(SpecModel):
    """Desired state of a FineTuneExperiment: a template, its variants, how many run at once, how the best is chosen."""

    template: FineTuneJobSpec = Field(
        description="The FineTuneJob spec every variant starts from. Its output.uri is the experiment's prefix: variant <v> publishes to <uri>/<v>/, the comparison report to <uri>/comparison/."
    )
    variants: list[VariantSpec] | None = Field(
        default=None, min_length=1, max_length=MAX_VARIANTS, description="Named variants. Give this or grid."
    )
    grid: list[GridAxis] | None = Field(
        default=None,
        min_length=1,
        max_length=4,
        description=f"Fields and values whose product are the variants (named g0, g1, ...; at most {MAX_VARIANTS}). Give this or variants.",
    )
    max_parallel: int = Field(default=1, ge=1, le=MAX_VARIANTS, description="Variants whose FineTuneJobs run at once.")
    select: SelectSpec = Field(default_factory=SelectSpec, description="How the best variant is chosen.")
    promote: PromoteSpec | None = Field(default=None, description="Copy the best variant's output here.")

    cel_rules: ClassVar[tuple[CelRule, ...]] = (
        CelRule(
            rule="has(self.variants) != has(self.grid)",
            message="set exactly one of spec.variants or spec.grid",
            field="variants",
        ),
    )


class ExperimentMeta(ObjectMeta):
    name: str = Field(
        max_length=EXPERIMENT_NAME_MAX,
        pattern=r"^[a-z]([-a-z0-9]*[a-z0-9])?$",
        description="Name of the FineTuneExperiment.",
    )


class FineTuneExperiment(SpecModel):
    """A FineTuneExperiment as written in a manifest file."""

    api_version: Literal["finetune.dev/v1alpha1"] = Field(default="finetune.dev/v1alpha1", alias="apiVersion")
    kind: Literal["FineTuneExperiment"] = "FineTuneExperiment"
    metadata: ExperimentMeta
    spec: FineTuneExperimentSpec
    status: FineTuneExperimentStatus | None = None


def experiment_resource_rules() -> tuple[CelRule, ...]:
    """Rules on the whole object: names that fit their FineTuneJobs, and a spec fixed once variants started."""
    budget = JOB_NAME_MAX - 1
    return (
        CelRule(
            rule=f"self.metadata.name.size() <= {EXPERIMENT_NAME_MAX}",
            message=f"metadata.name must be at most {EXPERIMENT_NAME_MAX} characters: its FineTuneJobs are named <experiment>-<variant>",
        ),
        CelRule(
            rule=f"!has(self.spec.variants) || self.spec.variants.all(v, self.metadata.name.size() + v.name.size() <= {budget})",
            message=f"metadata.name and each spec.variants[].name together must stay within {budget} characters: <experiment>-<variant> names a FineTuneJob (at most {JOB_NAME_MAX})",
        ),
        CelRule(
            rule="!has(oldSelf.status) || !has(oldSelf.status.startTime) || self.spec == oldSelf.spec",
            message="spec is immutable once the experiment has started (status.startTime is set); create a new FineTuneExperiment instead",
        ),
    )
