"""One source for each default: what a field's description says is what `resolve` fills in.

The descriptions are generated from finetune_api.v1alpha1.defaults; these tests read the *rendered* text
(what `kubectl explain` shows), so a description typed by hand, or a default changed in one place
only, fails here.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from finetune_api.crd import build_crd
from finetune_api.resolve import ModelFacts, PodDefaults, eval_source, resolve, resolve_job
from finetune_api.resolved import (
    ChatTask,
    ClassificationTask,
    Epochs,
    EvalSplit,
    Ia3Method,
    LayerwiseMethod,
    LoraMethod,
    PartialMethod,
    PromptCompletionTask,
    QloraMethod,
    ResolvedSpec,
    SoftPromptMethod,
    TextTask,
    WholeModelMethod,
)
from finetune_api.v1alpha1 import defaults
from finetune_api.v1alpha1.enums import MethodType
from finetune_api.v1alpha1.job import FineTuneJobSpec
from finetune_api.validation import validate_document, validate_file
from finetune_operator.settings import OperatorSettings
from tests.conftest import merge

EXAMPLES = sorted(
    p
    for p in (Path(__file__).resolve().parents[2] / "examples").glob("*.yaml")
    if "kind: FineTuneJob\n" in p.read_text()
)
BASE: dict[str, Any] = {
    "model": {"uri": "s3://models/m/"},
    "task": {"type": "sequence-classification"},
    "dataset": {"train": "s3://data/train.csv"},
    "method": {"type": "full"},
    "training": {"epochs": 1},
    "output": {"uri": "s3://models/out/j/"},
}
CAUSAL = {"task": {"type": "causal-lm"}}
BASE_SPEC = FineTuneJobSpec.model_validate(BASE)
TEXT_TASK = {"type": "causal-lm", "format": "text"}
Spec = FineTuneJobSpec


def _descriptions() -> dict[str, str]:
    out: dict[str, str] = {}

    def walk(node: dict[str, Any], path: str) -> None:
        out[path] = node.get("description", "")
        for name, sub in node.get("properties", {}).items():
            walk(sub, f"{path}.{name}")

    walk(build_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"], "spec")
    return out


def _resolved(changes: dict[str, Any] | None = None) -> ResolvedSpec:
    return resolve(FineTuneJobSpec.model_validate(merge(BASE, changes or {})))


def _literal(text: str) -> Any:
    return yaml.safe_load(text.strip("'"))


# field -> (how its description states the default, a spec where it applies, the value resolve used)
STATED: dict[str, tuple[str, dict[str, Any], Callable[[Spec], Any]]] = {
    "spec.task.textColumn": (r"Default ('[^']+')", {}, lambda s: s.task.text_column),
    "spec.task.labelColumn": (r"Default ('[^']+')", {}, lambda s: s.task.label_column),
    "spec.task.format": (r"Default ([a-z-]+)\.", CAUSAL, lambda s: s.task.format),
    "spec.task.promptColumn": (r"Default ('[^']+')", CAUSAL, lambda s: s.task.prompt_column),
    "spec.task.completionColumn": (r"Default ('[^']+')", CAUSAL, lambda s: s.task.completion_column),
    "spec.task.messagesColumn": (
        r"Default ('[^']+')",
        {"task": {"type": "causal-lm", "format": "chat"}},
        lambda s: s.task.messages_column,
    ),
    "spec.dataset.eval": (r"evalSplit ([0-9.]+) is used", {}, lambda s: s.dataset.eval_split),
    "spec.method.r": (r"Default ([0-9]+)\.", {"method": {"type": "lora"}}, lambda s: s.method.r),
    "spec.method.alpha": (
        r"Default ([0-9]+) x r",
        {"method": {"type": "lora", "r": 8}},
        lambda s: s.method.alpha / s.method.r,
    ),
    "spec.method.dropout": (r"Default ([0-9.]+)\.", {"method": {"type": "qlora"}}, lambda s: s.method.dropout),
    "spec.method.layers": (r"Default ([0-9]+)\.", {"method": {"type": "partial"}}, lambda s: s.method.layers),
    "spec.method.decay": (r"Default ([0-9.]+)\.", {"method": {"type": "layerwise-lr"}}, lambda s: s.method.decay),
    "spec.method.virtualTokens": (
        r"Default ([0-9]+)\.",
        {"method": {"type": "prefix-tuning"}},
        lambda s: s.method.virtual_tokens,
    ),
    "spec.training.warmupRatio": (r"Default ([0-9.]+)\.", {}, lambda s: s.training.warmup_ratio),
    "spec.output.checkpointUri": (
        r"Default <uri>/([a-z]+)/",
        {},
        lambda s: s.output.checkpoint_uri.removeprefix(s.output.uri).strip("/"),  # type: ignore[union-attr]
    ),
}
# Defaults stated in prose because they depend on more than the spec; each is covered by a test below.
PROSE = {
    "spec.dataset.maxLength",
    "spec.method.targetModules",
    "spec.method.feedforwardModules",
    "spec.training.learningRate",
    "spec.training.evalSteps",
    "spec.evaluation.metric",
    "spec.model.tokenizerUri",
    "spec.s3.endpoint",
    "spec.image",
    "spec.tracking.mlflow.uri",  # the operator's setting (test_render_tracking_env)
    "spec.tracking.mlflow.experiment",  # test_tracking_names_default_to_the_namespace_and_the_job
    "spec.tracking.mlflow.registeredModel",
}


@pytest.mark.parametrize("field", sorted(STATED))
def test_the_stated_default_is_the_resolved_one(field: str) -> None:
    pattern, changes, read = STATED[field]
    found = re.search(pattern, _descriptions()[field])
    assert found, f"{field}: the description no longer states its default as {pattern!r}"
    assert _literal(found.group(1)) == read(_resolved(changes)), f"{field}: description and resolve disagree"


def test_every_stated_default_is_checked() -> None:
    stating = {p for p, d in _descriptions().items() if re.search(r"\bDefault\b|evalSplit [0-9.]+ is used", d)}
    assert stating - set(STATED) - PROSE == set(), "a description states a default no test compares: add it above"


def _rates(description: str) -> Iterator[tuple[str, float]]:
    for rate, methods in re.findall(r"([0-9]e-[0-9]+) for ([a-z0-9/-]+)", description):
        for method in methods.split("/"):
            yield method, float(rate)


def test_learning_rates_stated_per_method_are_the_ones_used() -> None:
    stated = dict(_rates(_descriptions()["spec.training.learningRate"]))
    assert set(stated) == {str(m) for m in MethodType}, "every method's learning rate is stated"
    for method, rate in stated.items():
        spec = _resolved({"method": {"type": method}, "resources": {"gpus": 1}})
        assert spec.training.learning_rate == rate, method
    # The drift this replaced: descriptions said 2e-5 and 3e-2, the trainer used 5e-5 and 1e-2.
    assert (stated["partial"], stated["layerwise-lr"], stated["prefix-tuning"]) == (5e-5, 5e-5, 1e-2)


def test_headline_metric_default_follows_the_gate_then_the_task() -> None:
    text = _descriptions()["spec.evaluation.metric"]
    assert "gate's metric" in text and "accuracy (sequence-classification)" in text and "perplexity (causal-lm)" in text
    assert _resolved().evaluation.metric == "accuracy"
    assert _resolved(CAUSAL).evaluation.metric == "perplexity"
    gated = _resolved({"evaluation": {"gate": {"metric": "macro-f1"}}})
    assert gated.evaluation.metric == "macro-f1"


def test_model_facts_fill_length_and_adapter_targets() -> None:
    text = _descriptions()["spec.dataset.maxLength"]
    cap = int(re.search(r"Default ([0-9]+)\.", text).group(1))  # type: ignore[union-attr]
    assert _resolved().dataset.max_length == cap, "without the model's facts (the operator) the cap applies"
    facts = ModelFacts(model_type="bert", max_length=512)
    lora = resolve(_resolved({"method": {"type": "lora"}}), facts)
    assert lora.dataset.max_length == 512 and lora.method.target_modules == ["query", "value"]
    assert resolve(_resolved(), ModelFacts(max_length=10**30)).dataset.max_length == cap
    asked = _resolved({"dataset": {"maxLength": 4096}})
    assert asked.dataset.max_length == 4096
    assert resolve(asked, facts).dataset.max_length == 512, "no length past the model's positions"
    assert resolve(_resolved({"dataset": {"maxLength": 128}}), facts).dataset.max_length == 128
    ia3 = resolve(_resolved({"method": {"type": "ia3"}}), ModelFacts(model_type="llama"))
    assert ia3.method.target_modules == ["k_proj", "v_proj", "down_proj"]
    assert ia3.method.feedforward_modules == ["down_proj"]
    unknown = resolve(_resolved({"method": {"type": "lora"}}), ModelFacts(model_type="an-unknown-arch"))
    assert unknown.method.target_modules is None, "an architecture we do not list keeps PEFT's own choice"
    mine = resolve(_resolved({"method": {"type": "lora", "targetModules": ["all-linear"]}}), facts)
    assert mine.method.target_modules == ["all-linear"], "what the user wrote always wins"


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_a_resolved_example_is_valid_and_resolving_is_idempotent(path: Path) -> None:
    job = validate_file(path)[0].job
    assert job is not None
    facts = ModelFacts(model_type="llama", max_length=2048)
    resolved = resolve_job(job, facts)
    assert resolve_job(resolved, facts) == resolved
    doc = resolved.model_dump(by_alias=True, exclude_none=True, mode="json")
    result = validate_document(doc)
    assert result.ok, [p.render() for p in result.errors]
    assert resolved.spec.training.learning_rate is not None and resolved.spec.evaluation.metric is not None


def test_pod_defaults_come_from_the_operator_else_the_api() -> None:
    spec = _resolved()
    assert (spec.image, spec.resources.cpu, spec.resources.memory) == (
        defaults.TRAINER_IMAGE,
        defaults.POD_CPU,
        defaults.POD_MEMORY,
    )
    chart = PodDefaults(image="registry.local/trainer:1.2.3", cpu="8", memory="64Gi")
    mine = resolve(FineTuneJobSpec.model_validate(merge(BASE, {"resources": {"cpu": "2"}})), pod=chart)
    assert (mine.image, mine.resources.cpu, mine.resources.memory) == ("registry.local/trainer:1.2.3", "2", "64Gi")
    assert OperatorSettings().pod_defaults == PodDefaults(), "the operator's own defaults are the api's"


@pytest.mark.parametrize(
    ("changes", "task", "method"),
    [
        ({}, ClassificationTask, WholeModelMethod),
        ({**CAUSAL, "method": {"type": "lora"}}, PromptCompletionTask, LoraMethod),
        ({"task": {"type": "causal-lm", "format": "chat"}, "method": {"type": "qlora"}}, ChatTask, QloraMethod),
        (
            {"task": {"type": "causal-lm", "format": "text"}, "method": {"type": "prefix-tuning"}},
            TextTask,
            SoftPromptMethod,
        ),
        ({"method": {"type": "partial"}}, ClassificationTask, PartialMethod),
        ({"method": {"type": "layerwise-lr"}}, ClassificationTask, LayerwiseMethod),
        ({"method": {"type": "ia3"}}, ClassificationTask, Ia3Method),
    ],
)
def test_the_resolved_task_and_method_are_typed_by_shape(changes: dict[str, Any], task: type, method: type) -> None:
    spec = _resolved(changes)
    assert type(spec.task) is task and type(spec.method) is method
    assert isinstance(spec.training.length, Epochs) and spec.training.warmup(100) == 0
    assert eval_source(spec.dataset) == EvalSplit(defaults.EVAL_SPLIT) == eval_source(BASE_SPEC.dataset)


def test_a_resolved_spec_refuses_a_field_left_unset() -> None:
    spec = _resolved()
    doc = spec.model_dump()
    doc["dataset"]["max_length"] = None
    with pytest.raises(ValidationError, match="max_length"):
        ResolvedSpec.model_validate(doc)
    doc = spec.model_dump()
    doc["training"]["warmup_ratio"] = None
    with pytest.raises(ValidationError, match="exactly one of warmupRatio and warmupSteps"):
        ResolvedSpec.model_validate(doc)
