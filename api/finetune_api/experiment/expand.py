"""From a FineTuneExperiment to the FineTuneJob manifests of its variants: pure, deterministic, ordered.

Everything works on the wire form (camelCase dicts), so each variant can be validated exactly as a
FineTuneJob file would be, and the operator creates precisely what `finetune validate` checked.
"""

from __future__ import annotations

import copy
import itertools
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from pydantic import TypeAdapter, ValidationError

from .. import API_VERSION, KIND
from ..resolve import headline_metric
from ..v1alpha1.experiment import MAX_VARIANTS, REPORT_NAME, SECTIONS, FineTuneExperiment
from ..v1alpha1.method import METHOD_FIELDS

EXPERIMENT_LABEL = "finetune.dev/experiment"
VARIANT_LABEL = "finetune.dev/variant"
# Fields of spec.training where setting one means the template's other one no longer applies.
EXCLUSIVE = {"epochs": "maxSteps", "maxSteps": "epochs", "warmupRatio": "warmupSteps", "warmupSteps": "warmupRatio"}


class ExpansionError(ValueError):
    """A grid value that does not read as its field's type, or too many variants."""

    def __init__(self, path: str, message: str, fix: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path, self.message, self.fix = path, message, fix


@dataclass(frozen=True)
class Variant:
    name: str
    job_name: str
    changes: dict[str, dict[str, Any]]  # section -> camelCase field -> value, as the variant states them
    document: dict[str, Any]  # the FineTuneJob manifest this variant becomes

    @property
    def summary(self) -> str:
        """What the variant changes, for tables: 'method.type=lora method.r=16 training.learningRate=0.0003'."""
        return " ".join(f"{s}.{k}={v}" for s, fields in self.changes.items() for k, v in fields.items())[:512]

    @property
    def method(self) -> str:
        return str(self.document["spec"]["method"]["type"])


def variant_job_name(experiment: str, variant: str) -> str:
    return f"{experiment}-{variant}"


def report_uri(experiment: FineTuneExperiment) -> str:
    """The report is published beside the variants' outputs: <template output>/comparison/."""
    return _under(experiment.spec.template.output.uri, REPORT_NAME)


def _under(prefix: str, name: str) -> str:
    return f"{prefix.rstrip('/')}/{name}/"


@lru_cache(maxsize=64)
def _adapter(section: str, field: str) -> TypeAdapter[Any]:
    model = SECTIONS[section]
    info = next(i for n, i in model.model_fields.items() if (i.alias or n) == field)
    return TypeAdapter(info.annotation or str)


def read_grid_value(path: str, text: str) -> Any:
    """'3e-4' for training.learningRate -> 0.0003, in the wire form (enums as their strings)."""
    section, field = path.split(".", 1)
    value = _adapter(section, field).validate_strings(text)
    return _adapter(section, field).dump_python(value, mode="json")


def grid_changes(experiment: FineTuneExperiment) -> list[dict[str, dict[str, Any]]]:
    axes = experiment.spec.grid or []
    count = 1
    for axis in axes:
        count *= len(axis.values)
    if count > MAX_VARIANTS:
        raise ExpansionError(
            "spec.grid", f"the product of its values is {count} variants", f"keep it at most {MAX_VARIANTS}"
        )
    columns = []
    for i, axis in enumerate(axes):
        values = []
        for j, text in enumerate(axis.values):
            try:
                values.append((str(axis.path), read_grid_value(str(axis.path), text)))
            except ValidationError as exc:
                raise ExpansionError(
                    f"spec.grid[{i}].values[{j}]",
                    f"{text!r} is not a valid {axis.path}: {exc.errors(include_url=False)[0]['msg']}",
                    "write the value as the field takes it, e.g. '3e-4', '16', 'true' or 'lora'",
                ) from None
        columns.append(values)
    out = []
    for combo in itertools.product(*columns):
        changes: dict[str, dict[str, Any]] = {}
        for path, value in combo:
            section, field = path.split(".", 1)
            changes.setdefault(section, {})[field] = value
        out.append(changes)
    return out


def _merge_method(base: dict[str, Any], changes: dict[str, Any], replace: bool) -> dict[str, Any]:
    if replace:
        return dict(changes)
    out = {**base, **changes}
    if "type" in changes:
        # A grid over method.type keeps only the template's parameters that the new method has.
        out = {k: v for k, v in out.items() if k == "type" or changes.get(k) is not None or _applies(k, out["type"])}
    return out


def _applies(field: str, method: str) -> bool:
    return field not in METHOD_FIELDS or method in METHOD_FIELDS[field]


def _merge_fields(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in changes.items():
        if key in EXCLUSIVE:
            out.pop(EXCLUSIVE[key], None)
        out[key] = value
    return out


def _job_document(
    experiment: FineTuneExperiment, name: str, changes: dict[str, dict[str, Any]], replace_method: bool
) -> dict[str, Any]:
    exp_name = experiment.metadata.name
    spec = copy.deepcopy(experiment.spec.template.model_dump(by_alias=True, exclude_none=True, mode="json"))
    if "method" in changes:
        spec["method"] = _merge_method(spec["method"], changes["method"], replace_method)
    for section in ("training", "evaluation"):
        if section in changes:
            spec[section] = _merge_fields(spec.get(section, {}), changes[section])
    metric = experiment.spec.select.metric
    if metric is not None:
        spec.setdefault("evaluation", {})["metric"] = str(metric)
    spec["output"]["uri"] = _under(spec["output"]["uri"], name)
    if spec["output"].get("checkpointUri"):
        spec["output"]["checkpointUri"] = _under(spec["output"]["checkpointUri"], name)
    labels = {**(experiment.metadata.labels or {}), EXPERIMENT_LABEL: exp_name, VARIANT_LABEL: name}
    metadata: dict[str, Any] = {"name": variant_job_name(exp_name, name), "labels": labels}
    if experiment.metadata.namespace:
        metadata["namespace"] = experiment.metadata.namespace
    return {"apiVersion": API_VERSION, "kind": KIND, "metadata": metadata, "spec": spec}


def expand(experiment: FineTuneExperiment) -> list[Variant]:
    """The variants in order: as listed, or the grid's product with the first axis varying slowest."""
    if experiment.spec.variants is not None:
        named = []
        for v in experiment.spec.variants:
            changes = {
                s: getattr(v, s).model_dump(by_alias=True, exclude_none=True, mode="json")
                for s in SECTIONS
                if getattr(v, s) is not None
            }
            named.append((v.name, changes, True))
    else:
        named = [(f"g{i}", changes, False) for i, changes in enumerate(grid_changes(experiment))]
    return [
        Variant(
            name,
            variant_job_name(experiment.metadata.name, name),
            changes,
            _job_document(experiment, name, changes, replace),
        )
        for name, changes, replace in named
    ]


def compared_metric(experiment: FineTuneExperiment) -> str:
    """spec.select.metric, else the template's headline metric."""
    return str(experiment.spec.select.metric or headline_metric(experiment.spec.template))
