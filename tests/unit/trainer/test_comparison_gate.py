"""The gate against the few-shot baseline and the forgetting limit; the reference-text windows."""

from __future__ import annotations

import pytest

from finetune_api.measurements import FewShot, Forgetting, RunMeasurements
from finetune_api.v1alpha1.enums import Metric
from finetune_api.v1alpha1.evaluation import EvaluationSpec
from finetune_trainer.errors import ConfigError
from finetune_trainer.evaluation.forgetting import windows
from finetune_trainer.training.gating import verdict

MEASURED = RunMeasurements(
    metric=Metric.EVAL_LOSS,
    baseline={"eval_loss": 2.0, "eval_perplexity": 7.39},
    few_shot=FewShot(shots=3, scores={"eval_loss": 1.5, "eval_perplexity": 4.48}),
    tuned={"eval_loss": 1.7, "eval_perplexity": 5.47},
)


def _spec(**evaluation: object) -> EvaluationSpec:
    return EvaluationSpec.model_validate(evaluation)


def test_beating_the_zero_shot_baseline_is_not_enough_against_few_shot() -> None:
    against_base = verdict(_spec(gate={"metric": "eval-loss"}), MEASURED)
    against_few = verdict(_spec(fewShot={"shots": 3}, gate={"metric": "eval-loss", "against": "fewShot"}), MEASURED)
    assert against_base is not None and against_base.passed
    assert against_few is not None and not against_few.passed
    assert "few-shot prompting" in against_few.explain()


def test_forgetting_more_than_allowed_fails_the_gate() -> None:
    spec = _spec(forgetting={"maxIncrease": 0.1})
    small = verdict(
        spec, MEASURED.model_copy(update={"forgetting": Forgetting(reference="r", tokens=9, before=10.0, after=10.5)})
    )
    large = verdict(
        spec, MEASURED.model_copy(update={"forgetting": Forgetting(reference="r", tokens=9, before=10.0, after=11.5)})
    )
    assert small is not None and small.passed
    assert large is not None and not large.passed and "reference-perplexity" in large.explain()


def test_gate_against_an_inapplicable_few_shot_is_a_config_error() -> None:
    spec = _spec(fewShot={"shots": 3}, gate={"metric": "accuracy", "against": "fewShot"})
    with pytest.raises(ConfigError, match="encoder"):
        verdict(
            spec,
            RunMeasurements(
                metric=Metric.ACCURACY,
                baseline={"eval_accuracy": 0.3},
                few_shot=FewShot(shots=3, not_applicable="bert is an encoder"),
                tuned={"eval_accuracy": 0.9},
            ),
        )


def test_reference_windows_cover_at_most_max_tokens() -> None:
    chunks = windows(list(range(1000)), max_tokens=700, window=256)
    assert [len(c) for c in chunks] == [256, 256, 188]
    assert [t for c in chunks for t in c] == list(range(700))
