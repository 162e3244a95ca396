"""vLLM's rules for what it serves (finetune_api.serving), each on its own, and how `finetune validate` (the
operator runs the same checks) warns by default and refuses with spec.output.serving: vllm (issue 24)."""

from __future__ import annotations

from typing import Any

import pytest

from finetune_api.serving import (
    VLLM_MAX_LORA_RANKS,
    AdapterFacts,
    Form,
    max_lora_rank,
    serving_plan,
    vllm_lora_rules,
)
from finetune_api.v1alpha1.enums import MethodType, SaveMode, TaskType
from finetune_api.validation import validate_document
from finetune_api.validation.problems import Severity

CAUSAL, CLASSIFY = TaskType.CAUSAL_LM, TaskType.SEQUENCE_CLASSIFICATION


@pytest.mark.parametrize("r", VLLM_MAX_LORA_RANKS)
def test_an_allowed_rank_breaks_no_rule(r: int) -> None:
    assert vllm_lora_rules(AdapterFacts(r=r)) == []
    assert max_lora_rank(r) == r


def test_rank_24_is_not_an_allowed_max_lora_rank_and_the_fix_names_both_neighbours() -> None:
    (broken,) = vllm_lora_rules(AdapterFacts(r=24))
    assert not broken.blocks
    assert "rank 24 is not an allowed --max-lora-rank" in broken.rule and "pad every adapter slot to 32" in broken.rule
    assert broken.fix == "set spec.method.r to 16 or 32"
    assert max_lora_rank(24) == 32


def test_a_rank_above_the_largest_cannot_be_loaded() -> None:
    (broken,) = vllm_lora_rules(AdapterFacts(r=600))
    assert broken.blocks and "cannot load it" in broken.rule and broken.fix == "set spec.method.r to 512"
    assert max_lora_rank(600) is None


def test_modules_to_save_is_refused() -> None:
    (broken,) = vllm_lora_rules(AdapterFacts(r=16, modules_to_save=("score",)))
    assert "modules_to_save ['score'] is not empty" in broken.rule and "first request" in broken.rule


def test_dora_is_refused() -> None:
    (broken,) = vllm_lora_rules(AdapterFacts(r=16, use_dora=True))
    assert "use_dora" in broken.rule


@pytest.mark.parametrize("bias", ["all", "lora_only"])
def test_a_bias_other_than_none_is_refused(bias: str) -> None:
    (broken,) = vllm_lora_rules(AdapterFacts(r=16, bias=bias))
    assert f"bias is {bias!r}" in broken.rule


def test_facts_read_from_adapter_config_json() -> None:
    config = {"r": 8, "modules_to_save": None, "use_dora": False, "bias": "none", "peft_type": "LORA"}
    assert AdapterFacts.from_config(config) == AdapterFacts(r=8)
    broken = vllm_lora_rules(AdapterFacts.from_config({**config, "r": 12, "modules_to_save": ["classifier"]}))
    assert len(broken) == 2


def test_plan_for_a_causal_lora_adapter_and_its_merged_model() -> None:
    plan = serving_plan(MethodType.LORA, SaveMode.BOTH, CAUSAL, AdapterFacts(r=8))
    assert [(s.folder, s.form, s.max_lora_rank) for s in plan] == [
        ("adapter", Form.VLLM_LORA, 8),
        ("model", Form.VLLM_MODEL, None),
    ]
    assert plan[0].record() == {"path": "adapter/", "form": "vllm-lora", "maxLoraRank": 8}


def test_a_padded_rank_is_still_served_and_says_what_it_costs() -> None:
    (adapter,) = serving_plan(MethodType.LORA, SaveMode.ADAPTER, CAUSAL, AdapterFacts(r=24))
    assert adapter.form == Form.VLLM_LORA and adapter.max_lora_rank == 32 and "pad" in adapter.reason
    (refused,) = serving_plan(MethodType.LORA, SaveMode.ADAPTER, CAUSAL, AdapterFacts(r=24, use_dora=True))
    assert refused.form == Form.NOT_SERVABLE and "use_dora" in refused.reason and "pad" not in refused.reason


def test_plan_for_ia3_and_soft_prompts_says_why_not() -> None:
    (ia3,) = serving_plan(MethodType.IA3, SaveMode.ADAPTER, CAUSAL, None)
    assert ia3.form == Form.NOT_SERVABLE and "IA3" in ia3.reason and "save: both" in ia3.reason
    assert serving_plan(MethodType.IA3, SaveMode.MERGED, CAUSAL, None)[0].form == Form.VLLM_MODEL
    for method in (MethodType.PROMPT_TUNING, MethodType.PREFIX_TUNING):
        (soft,) = serving_plan(method, SaveMode.ADAPTER, CAUSAL, None)
        assert soft.form == Form.NOT_SERVABLE and "do not merge" in soft.reason, soft


@pytest.mark.parametrize("method", [MethodType.FULL, MethodType.PARTIAL, MethodType.LAYERWISE_LR])
def test_whole_model_methods_write_a_model_vllm_serves(method: MethodType) -> None:
    assert [s.form for s in serving_plan(method, SaveMode.ADAPTER, CAUSAL, None)] == [Form.VLLM_MODEL]


def test_a_classifier_is_not_for_vllm_whatever_the_method() -> None:
    for plan in (
        serving_plan(MethodType.LORA, SaveMode.BOTH, CLASSIFY, AdapterFacts(r=16, modules_to_save=("score",))),
        serving_plan(MethodType.FULL, SaveMode.ADAPTER, CLASSIFY, None),
    ):
        assert {s.form for s in plan} == {Form.NOT_SERVABLE} and all("AutoModelFor" in s.reason for s in plan)


def _sft(method: dict[str, Any], output: dict[str, Any] | None = None, task: str = "causal-lm") -> dict[str, Any]:
    task_spec = (
        {"type": task, "promptColumn": "prompt", "completionColumn": "completion"}
        if task == "causal-lm"
        else {"type": task, "textColumn": "text", "labelColumn": "label"}
    )
    return {
        "apiVersion": "finetune.dev/v1alpha1",
        "kind": "FineTuneJob",
        "metadata": {"name": "sft"},
        "spec": {
            "model": {"uri": "s3://models/smollm2-135m/"},
            "task": task_spec,
            "dataset": {"train": "s3://data/a/train.jsonl", "eval": "s3://data/a/eval.jsonl"},
            "method": method,
            "training": {"maxSteps": 10},
            "output": {"uri": "s3://models/out/sft/", **(output or {})},
        },
    }


def _serving(doc: dict[str, Any]) -> list[tuple[Severity, str]]:
    found = validate_document(doc).problems
    return [(p.severity, p.render()) for p in found if "vLLM" in p.render() or "serving" in p.path]


def test_validate_warns_about_rank_24_and_refuses_it_when_vllm_is_asked_for() -> None:
    ((severity, text),) = _serving(_sft({"type": "lora", "r": 24}))
    assert severity == Severity.WARNING and text.startswith("spec.method.r: vLLM: rank 24"), text
    assert "fix: set spec.method.r to 16 or 32" in text
    refused = validate_document(_sft({"type": "lora", "r": 24}, {"serving": "vllm"}))
    assert not refused.ok and [p.severity for p in refused.problems] == [Severity.ERROR], refused.problems
    assert validate_document(_sft({"type": "lora", "r": 32}, {"serving": "vllm"})).ok


def test_validate_refuses_vllm_serving_for_what_vllm_cannot_serve() -> None:
    for method, output in (({"type": "prompt-tuning"}, {}), ({"type": "ia3"}, {})):
        ((severity, text),) = _serving(_sft(method, {"serving": "vllm", **output}))
        assert severity == Severity.ERROR and "vllm cannot serve this output" in text, text
    assert validate_document(_sft({"type": "ia3"}, {"serving": "vllm", "save": "both"})).ok
    ((severity, text),) = _serving(_sft({"type": "lora"}, {"serving": "vllm"}, task="sequence-classification"))
    assert severity == Severity.ERROR and "sequence-classification" in text, text


def test_a_default_causal_lora_says_nothing() -> None:
    assert _serving(_sft({"type": "lora"})) == []
    assert _serving(_sft({"type": "prompt-tuning"})) == [], "not asked for vLLM: the card says it, no warning"


def test_the_operator_refuses_a_vllm_output_it_cannot_serve_before_any_object() -> None:
    from finetune_operator.reconcile import preflight
    from finetune_operator.settings import OperatorSettings

    pod = OperatorSettings().pod_defaults
    job, problems = preflight(_sft({"type": "lora", "r": 24}, {"serving": "vllm"}), pod)
    assert job is None and len(problems) == 1 and "rank 24 is not an allowed --max-lora-rank" in problems[0]
    job, problems = preflight(_sft({"type": "lora", "r": 24}), pod)
    assert job is not None and problems == [], "a warning never stops the job"


def test_the_operator_shows_a_warning_as_an_event_at_the_first_reconcile_only() -> None:
    from finetune_operator.reconcile import parse, warn_once
    from finetune_operator.resource import Observed

    class Events:
        def __init__(self) -> None:
            self.events: list[tuple[str, str, str]] = []

        def record_event(self, body: dict[str, Any], kind: str, reason: str, message: str) -> None:
            self.events.append((kind, reason, message))

    doc = {**_sft({"type": "lora", "r": 24}), "status": {}}
    doc["metadata"] = {**doc["metadata"], "namespace": "default", "uid": "u1"}
    api = Events()
    warn_once(api, Observed.of(doc), parse(doc))  # type: ignore[arg-type]
    ((kind, reason, message),) = api.events
    assert (kind, reason) == ("Warning", "SpecWarning") and "rank 24" in message and "fix: set spec.method.r" in message
    warn_once(api, Observed.of({**doc, "status": {"jobName": "sft"}}), parse(doc))  # type: ignore[arg-type]
    assert len(api.events) == 1, "once: a later reconcile says nothing again"
