"""Malformed FineTuneJobs, each one mutation away from the README example.

`layer` says who must reject it: `schema` and `cel` are enforced by the API server itself (the
operator's control-plane tests apply them for real); `check` only by `finetune validate` and the
operator's pre-flight checks, since no schema can express them.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "tweets-lora.yaml"
DELETE = object()


@dataclass(frozen=True)
class Case:
    id: str
    changes: dict[str, Any]  # dotted path -> new value (DELETE removes the key)
    field: str  # the field the error must name
    layer: str  # schema | cel | check

    def document(self) -> dict[str, Any]:
        doc: dict[str, Any] = copy.deepcopy(yaml.safe_load(EXAMPLE.read_text()))
        for path, value in self.changes.items():
            *parents, leaf = path.split(".")
            node = doc
            for key in parents:
                node = node.setdefault(key, {})
            if value is DELETE:
                node.pop(leaf, None)
            else:
                node[leaf] = value
        return doc

    @property
    def server_rejects(self) -> bool:
        return self.layer in ("schema", "cel")


def _many(n: int, prefix: str = "k") -> dict[str, str]:
    return {f"{prefix}{i}": "v" for i in range(n)}


CASES = [
    # wrong types
    Case("epochs-string", {"spec.training.epochs": "one"}, "spec.training.epochs", "schema"),
    Case("batch-size-float", {"spec.training.batchSize": 3.5}, "spec.training.batchSize", "schema"),
    Case("rank-string", {"spec.method.r": "16"}, "spec.method.r", "schema"),
    Case("suspend-string", {"spec.suspend": "yes"}, "spec.suspend", "schema"),
    Case("model-not-object", {"spec.model": "s3://models/x/"}, "spec.model", "schema"),
    Case("target-modules-string", {"spec.method.targetModules": "query"}, "spec.method.targetModules", "schema"),
    Case(
        "node-selector-int", {"spec.scheduling": {"nodeSelector": {"gpu": 1}}}, "spec.scheduling.nodeSelector", "schema"
    ),
    Case(
        "eval-split-percent",
        {"spec.dataset.eval": DELETE, "spec.dataset.evalSplit": "10%"},
        "spec.dataset.evalSplit",
        "schema",
    ),
    # unknown fields
    Case("unknown-spec-field", {"spec.foo": 1}, "spec.foo", "schema"),
    Case("unknown-method-rank", {"spec.method.rank": 8}, "spec.method.rank", "schema"),
    Case("unknown-training-lr", {"spec.training.lr": 0.1}, "spec.training.lr", "schema"),
    Case("credentials-in-spec", {"spec.s3.accessKeyId": "AKIAEXAMPLE"}, "spec.s3.accessKeyId", "schema"),
    Case("password-in-secret-ref", {"spec.s3.secretRef.password": "hunter2"}, "spec.s3.secretRef.password", "schema"),
    # out of range
    Case("rank-zero", {"spec.method.r": 0}, "spec.method.r", "schema"),
    Case("dropout-above-one", {"spec.method.dropout": 1.5}, "spec.method.dropout", "schema"),
    Case("learning-rate-zero", {"spec.training.learningRate": 0}, "spec.training.learningRate", "schema"),
    Case("learning-rate-huge", {"spec.training.learningRate": 5}, "spec.training.learningRate", "schema"),
    Case("gpus-too-many", {"spec.resources.gpus": 17}, "spec.resources.gpus", "schema"),
    Case("gpus-negative", {"spec.resources.gpus": -1}, "spec.resources.gpus", "schema"),
    Case(
        "eval-split-too-big",
        {"spec.dataset.eval": DELETE, "spec.dataset.evalSplit": 0.9},
        "spec.dataset.evalSplit",
        "schema",
    ),
    Case("keep-zero-checkpoints", {"spec.output.keepCheckpoints": 0}, "spec.output.keepCheckpoints", "schema"),
    Case("retries-too-many", {"spec.retries": 100}, "spec.retries", "schema"),
    Case("decay-above-one", {"spec.method": {"type": "layerwise-lr", "decay": 1.5}}, "spec.method.decay", "schema"),
    # missing required fields
    Case("no-spec", {"spec": DELETE}, "spec", "schema"),
    Case("no-model", {"spec.model": DELETE}, "spec.model", "schema"),
    Case("no-model-uri", {"spec.model": {"revision": "main"}}, "spec.model.uri", "schema"),
    Case("no-task-type", {"spec.task.type": DELETE}, "spec.task.type", "schema"),
    Case("no-train-data", {"spec.dataset.train": DELETE}, "spec.dataset.train", "schema"),
    Case("no-output", {"spec.output": DELETE}, "spec.output", "schema"),
    Case("no-method-type", {"spec.method.type": DELETE}, "spec.method.type", "schema"),
    Case(
        "gate-without-metric",
        {"spec.evaluation.gate": {"minImprovement": 0.1}},
        "spec.evaluation.gate.metric",
        "schema",
    ),
    # contradicting fields
    Case("epochs-and-max-steps", {"spec.training.maxSteps": 100}, "spec.training.maxSteps", "cel"),
    Case("neither-epochs-nor-steps", {"spec.training.epochs": DELETE}, "spec.training.maxSteps", "cel"),
    Case("eval-and-eval-split", {"spec.dataset.evalSplit": 0.1}, "spec.dataset.evalSplit", "cel"),
    Case("qlora-on-cpu", {"spec.method.type": "qlora", "spec.resources.gpus": 0}, "spec.method", "cel"),
    Case("lora-with-layers", {"spec.method.layers": 2}, "spec.method.layers", "cel"),
    Case("gate-without-baseline", {"spec.evaluation.baseline": False}, "spec.evaluation.gate", "cel"),
    Case("packing-for-classification", {"spec.training.packing": True}, "spec.training", "cel"),
    Case(
        "feature-extraction-causal",
        {
            "spec.method": {"type": "feature-extraction"},
            "spec.task": {"type": "causal-lm"},
            "spec.evaluation.gate.metric": "eval-loss",
        },
        "spec.method",
        "cel",
    ),
    Case(
        "label-column-causal",
        {"spec.task.type": "causal-lm", "spec.task.textColumn": DELETE, "spec.evaluation.gate.metric": "eval-loss"},
        "spec.task.labelColumn",
        "cel",
    ),
    Case("fp16-on-cpu", {"spec.training.precision": "fp16", "spec.resources.gpus": 0}, "spec.training", "cel"),
    Case(
        "merge-prompt-tuning",
        {"spec.method": {"type": "prompt-tuning"}, "spec.output.save": "merged"},
        "spec.output",
        "cel",
    ),
    Case(
        "two-warmups",
        {"spec.training.warmupRatio": 0.1, "spec.training.warmupSteps": 10},
        "spec.training.warmupSteps",
        "cel",
    ),
    Case("perplexity-gate-classifier", {"spec.evaluation.gate.metric": "perplexity"}, "spec.evaluation", "cel"),
    Case("prompt-column-classifier", {"spec.task.promptColumn": "q"}, "spec.task.promptColumn", "cel"),
    # hostile strings
    Case("name-traversal", {"metadata.name": "x..etc"}, "metadata.name", "cel"),
    Case("name-too-long", {"metadata.name": "a" * 60}, "metadata.name", "cel"),
    Case("uri-file-scheme", {"spec.model.uri": "file:///etc/passwd"}, "spec.model.uri", "schema"),
    Case("uri-parent-segments", {"spec.dataset.train": "s3://data/../../secret.csv"}, "spec.dataset.train", "cel"),
    Case("column-shell-newline", {"spec.task.textColumn": "text\n$(rm -rf /)"}, "spec.task.textColumn", "schema"),
    Case("column-oversized", {"spec.task.labelColumn": "l" * 200}, "spec.task.labelColumn", "schema"),
    Case("output-http-uri", {"spec.output.uri": "http://evil.example/x"}, "spec.output.uri", "schema"),
    # Admitted by the patterns so that the CEL rule, which never echoes the value, is what refuses it.
    Case("endpoint-with-credentials", {"spec.s3.endpoint": "http://user:pw@minio:9000"}, "spec.s3.endpoint", "cel"),
    Case("output-uri-with-credentials", {"spec.output.uri": "s3://ak:sk@models/x/"}, "spec.output.uri", "cel"),
    Case("secret-name-spaces", {"spec.s3.secretRef.name": "Bad Name!"}, "spec.s3.secretRef.name", "schema"),
    Case("image-shell", {"spec.image": "evil image; rm -rf /"}, "spec.image", "schema"),
    Case("queue-name-upper", {"spec.scheduling": {"queueName": "GPU_Team"}}, "spec.scheduling.queueName", "schema"),
    Case(
        "priority-without-queue",
        {"spec.scheduling": {"workloadPriorityClass": "production"}},
        "spec.scheduling.workloadPriorityClass",
        "cel",
    ),
    Case(
        "node-selector-oversized",
        {"spec.scheduling": {"nodeSelector": _many(40)}},
        "spec.scheduling.nodeSelector",
        "schema",
    ),
    Case(
        "target-modules-oversized",
        {"spec.method.targetModules": [f"m{i}" for i in range(100)]},
        "spec.method.targetModules",
        "schema",
    ),
    Case(
        "init-text-oversized",
        {"spec.method": {"type": "prompt-tuning", "initText": "x" * 5000}},
        "spec.method.initText",
        "schema",
    ),
    Case("runtime-forever", {"spec.maxRuntime": "forever"}, "spec.maxRuntime", "schema"),
    Case("cpu-lots", {"spec.resources.cpu": "lots"}, "spec.resources.cpu", "schema"),
    Case("uri-oversized", {"spec.model.uri": "s3://models/" + "a" * 3000}, "spec.model.uri", "schema"),
    Case("uri-control-char", {"spec.output.uri": "s3://models/out\x07/"}, "spec.output.uri", "schema"),
    # only the deeper checks can see these
    Case("output-overlaps-data", {"spec.output.uri": "s3://data/tweets/"}, "spec.output.uri", "check"),
    Case("train-without-extension", {"spec.dataset.train": "s3://data/tweets/train"}, "spec.dataset.train", "check"),
    Case(
        "accuracy-gate-impossible",
        {"spec.evaluation.gate.minImprovement": 2},
        "spec.evaluation.gate.minImprovement",
        "check",
    ),
    Case(
        "prefix-tuning-checkpointing",
        {"spec.method": {"type": "prefix-tuning"}, "spec.training.gradientCheckpointing": True},
        "spec.training.gradientCheckpointing",
        "check",
    ),
    Case("zero-runtime", {"spec.maxRuntime": "0h"}, "spec.maxRuntime", "check"),
    Case("headline-metric-mismatch", {"spec.evaluation.metric": "perplexity"}, "spec.evaluation.metric", "check"),
    Case("duplicate-labels", {"spec.task.labels": ["a", "b", "a"]}, "spec.task.labels", "check"),
    Case(
        "tracking-uri-with-password",
        {"spec.tracking": {"mlflow": {"uri": "http://ml:secret@mlflow:5000"}}},
        "spec.tracking.mlflow.uri",
        "cel",
    ),
    Case("vllm-serving-classifier", {"spec.output.serving": "vllm"}, "spec.output.serving", "check"),
    Case(
        "vllm-serving-rank-24",
        {
            "spec.task": {"type": "causal-lm", "textColumn": "text"},
            "spec.evaluation.gate.metric": "eval-loss",
            "spec.method.r": 24,
            "spec.output.serving": "vllm",
        },
        "spec.method.r",
        "check",
    ),
]
