"""Which checks the job's gate makes, from the spec and the measured numbers."""

from __future__ import annotations

from typing import Any

from finetune_api.spec.enums import GateAgainst
from finetune_api.spec.evaluation import EvaluationSpec

from ..errors import ConfigError
from ..evaluation.gate import GateResult, Verdict, judge, judge_forgetting
from ..evaluation.metrics import metric_key


def verdict(
    spec: EvaluationSpec,
    baseline: dict[str, Any],
    few_shot: dict[str, Any],
    tuned: dict[str, Any],
    forgetting: dict[str, Any],
) -> Verdict | None:
    checks: list[GateResult] = []
    gate = spec.gate
    if gate is not None and baseline:
        reference = baseline
        if gate.against == GateAgainst.FEW_SHOT:
            if "not_applicable" in few_shot:
                why = few_shot["not_applicable"]
                raise ConfigError(
                    f"spec.evaluation.gate.against fewShot: few-shot does not apply ({why}); use baseline"
                )
            reference = few_shot
        gate_key = metric_key(gate.metric)
        if gate_key not in reference or gate_key not in tuned:
            raise ConfigError(f"spec.evaluation.gate.metric {gate.metric} was not measured against {gate.against}")
        checks.append(judge(gate, reference[gate_key], tuned[gate_key]))
    limit = spec.forgetting.max_increase if spec.forgetting else None
    if limit is not None and forgetting.get("after") is not None:
        checks.append(judge_forgetting(forgetting["before"], forgetting["after"], limit))
    return Verdict(tuple(checks)) if checks else None
