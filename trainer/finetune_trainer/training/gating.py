"""Which checks the job's gate makes, from the spec and the measured numbers."""

from __future__ import annotations

from finetune_api.measurements import GateCheck, RunMeasurements, metric_key
from finetune_api.resolved import ResolvedSpec
from finetune_api.v1alpha1.enums import GateAgainst
from finetune_api.v1alpha1.evaluation import EvaluationSpec

from ..errors import ConfigError
from ..evaluation.gate import Verdict, judge, judge_forgetting


def refuse_inapplicable_gate(spec: ResolvedSpec, model_dir: str) -> None:
    """A gate against few-shot where few-shot cannot be measured, refused as soon as the model's config is
    read: before the baseline and before any step, not after the training it would have judged."""
    from .comparisons import few_shot_applicability

    gate = spec.evaluation.gate
    if gate is None or gate.against != GateAgainst.FEW_SHOT:
        return
    if skip := few_shot_applicability(spec, model_dir):
        raise _no_few_shot(skip.reason)


def _no_few_shot(why: str) -> ConfigError:
    return ConfigError(f"spec.evaluation.gate.against fewShot: few-shot does not apply ({why}); use baseline")


def verdict(spec: EvaluationSpec, m: RunMeasurements) -> Verdict | None:
    checks: list[GateCheck] = []
    gate = spec.gate
    if gate is not None and m.baseline:
        reference = m.baseline
        if gate.against == GateAgainst.FEW_SHOT:
            if m.few_shot is None:
                raise _no_few_shot("spec.evaluation.fewShot is not set")
            if m.few_shot.not_applicable:
                raise _no_few_shot(m.few_shot.not_applicable)
            reference = m.few_shot.scores
        gate_key = metric_key(gate.metric)
        if gate_key not in reference or gate_key not in m.tuned:
            raise ConfigError(f"spec.evaluation.gate.metric {gate.metric} was not measured against {gate.against}")
        checks.append(judge(gate, reference[gate_key], m.tuned[gate_key]))
    limit = spec.forgetting.max_increase if spec.forgetting else None
    if limit is not None and m.forgetting is not None and m.forgetting.after is not None:
        checks.append(judge_forgetting(m.forgetting.before, m.forgetting.after, limit))
    return Verdict(tuple(checks)) if checks else None
