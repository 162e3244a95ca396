"""Validate a FineTuneExperiment: its own schema and rules, then every variant as the FineTuneJob it becomes.

Nothing is created for an experiment with one bad variant; the problem names the variant and the field.
A problem every variant shares comes from the template and is reported once, at spec.template.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Any

from pydantic import ValidationError

from .. import API_VERSION, EXPERIMENT_KIND
from ..experiment.expand import ExpansionError, Variant, expand
from ..storage_uri import parse_uri
from ..v1alpha1.experiment import FineTuneExperiment
from .cel_rules import evaluate
from .job import check_job
from .problems import Problem, Severity, shown
from .schema_errors import problems_from


@dataclass
class ExperimentValidation:
    experiment: FineTuneExperiment | None = None
    variants: list[Variant] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)


@lru_cache(maxsize=1)
def _crd_schema() -> dict[str, Any]:
    from ..crd.generate import build_experiment_crd

    schema: dict[str, Any] = build_experiment_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema


def check_experiment(doc: dict[str, Any]) -> ExperimentValidation:
    out = ExperimentValidation()
    if doc.get("apiVersion") != API_VERSION:
        out.problems.append(Problem("apiVersion", f"is {doc.get('apiVersion')!r}", f"set apiVersion: {API_VERSION}"))
        return out
    try:
        experiment = FineTuneExperiment.model_validate_json(json.dumps(doc, default=str), strict=True)
    except ValidationError as exc:
        out.problems.extend(_named(problems_from(exc, FineTuneExperiment), doc))
        return out
    defaulted = experiment.model_dump(by_alias=True, exclude_none=True, mode="json")
    out.problems.extend(_named(list(evaluate(_crd_schema(), defaulted, "")), doc))
    if out.problems:
        return out
    out.experiment = experiment
    try:
        out.variants = expand(experiment)
    except ExpansionError as exc:
        out.problems.append(Problem(exc.path, exc.message, exc.fix, source="check"))
        return out
    out.problems.extend(_variant_problems(out.variants, experiment.spec.grid is not None))
    out.problems.extend(_promote_problems(experiment))
    return out


def _named(problems: list[Problem], doc: dict[str, Any]) -> list[Problem]:
    """spec.variants[2].method.decay -> spec.variants[2](lora).method.decay: name the variant, not its index."""
    listed = (doc.get("spec") or {}).get("variants")
    if not isinstance(listed, list):
        return problems
    out = []
    for problem in problems:
        named = problem
        for i, item in enumerate(listed):
            prefix = f"spec.variants[{i}]"
            name = item.get("name") if isinstance(item, dict) else None
            if name and problem.path.startswith(prefix + "."):
                named = replace(problem, path=f"{prefix}({shown(name, 40)})" + problem.path[len(prefix) :])
        out.append(named)
    return out


def _variant_problems(variants: list[Variant], grid: bool) -> list[Problem]:
    found: dict[str, list[Problem]] = {}
    for v in variants:
        found[v.name] = check_job(v.document).problems
    texts = [{p.render() for p in problems} for problems in found.values()]
    shared = set.intersection(*texts) if len(texts) > 1 else set()
    out, reported = [], set()
    for v in variants:
        for p in found[v.name]:
            text = p.render()
            if text in shared:
                if text not in reported:
                    reported.add(text)
                    out.append(Problem("spec.template", text, severity=p.severity, source=p.source))
                continue
            # A grid variant's name says nothing by itself; its values do.
            label = f"variant {v.name}" + (f" ({v.summary})" if grid else "")
            out.append(Problem(label, f"FineTuneJob {v.job_name}: {text}", severity=p.severity, source=p.source))
    return out


def _promote_problems(experiment: FineTuneExperiment) -> list[Problem]:
    if experiment.spec.promote is None:
        return []
    target = parse_uri(experiment.spec.promote.uri)
    template = experiment.spec.template
    out = []
    for where, uri in (
        ("spec.template.output.uri", template.output.uri),
        ("spec.template.model.uri", template.model.uri),
    ):
        other = parse_uri(uri)
        if target.kind == other.kind and (target.contains(other) or other.contains(target)):
            out.append(
                Problem(
                    "spec.promote.uri",
                    f"overlaps {where} ({uri!r}); promoting would overwrite the variants' outputs or the base model",
                    "choose a prefix of its own, e.g. s3://models/serving/<name>/",
                    source="check",
                )
            )
    return out


def is_experiment(doc: Any) -> bool:
    return isinstance(doc, dict) and doc.get("kind") == EXPERIMENT_KIND


def rendered_errors(result: ExperimentValidation) -> list[str]:
    return [p.render() for p in result.problems if p.severity == Severity.ERROR]
