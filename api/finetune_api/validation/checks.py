"""The checks a schema cannot express. Each takes the typed spec and yields Problems.

Add a check by writing a function and decorating it with @check; `run_checks` runs them all.
"""

from __future__ import annotations

import codecs
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path

from ..durations import duration_seconds
from ..resolve import resolve_task
from ..resolved import ClassificationTask, PromptCompletionTask
from ..serving import Form, adapter_facts_of_spec, serving_plan, vllm_lora_rules
from ..storage_uri import DATA_EXTENSIONS, StorageUri, parse_uri
from ..v1alpha1.enums import (
    METRICS_BY_TASK,
    CausalFormat,
    GateAgainst,
    MethodType,
    Metric,
    SaveMode,
    ServingTarget,
    TaskType,
)
from ..v1alpha1.job import FineTuneJobSpec
from .problems import Problem, Severity

Check = Callable[[FineTuneJobSpec], Iterator[Problem]]
CHECKS: list[Check] = []


def check(fn: Check) -> Check:
    CHECKS.append(fn)
    return fn


def run_checks(spec: FineTuneJobSpec) -> list[Problem]:
    return [p for fn in CHECKS for p in fn(spec)]


@check
def dataset_formats_are_known(spec: FineTuneJobSpec) -> Iterator[Problem]:
    if spec.dataset.format is not None:
        return
    for field in ("train", "eval"):
        uri = getattr(spec.dataset, field)
        if uri is None:
            continue
        parsed = parse_uri(uri)
        if parsed.is_prefix or parsed.extension not in DATA_EXTENSIONS:
            yield Problem(
                f"spec.dataset.{field}",
                f"cannot tell the file format of {uri!r} from its extension",
                "name a file ending in .jsonl, .json, .csv or .parquet, or set spec.dataset.format",
                source="check",
            )


@check
def dataset_encoding_is_known(spec: FineTuneJobSpec) -> Iterator[Problem]:
    try:
        # base64, rot13 and friends are codecs too, but not ways to read text.
        known = getattr(codecs.lookup(spec.dataset.encoding), "_is_text_encoding", True)
    except LookupError:
        known = False
    if not known:
        yield Problem(
            "spec.dataset.encoding",
            f"{spec.dataset.encoding!r} is not a known text encoding",
            "use a Python codec name such as utf-8, utf-16, latin-1 or cp1252",
            source="check",
        )


@check
def model_uri_is_unambiguous(spec: FineTuneJobSpec) -> Iterator[Problem]:
    for field, uri in (("uri", spec.model.uri), ("tokenizerUri", spec.model.tokenizer_uri)):
        if uri is not None and parse_uri(uri).kind == "ambiguous":
            yield Problem(
                f"spec.model.{field}",
                f"{uri!r} is neither an s3:// prefix, a path, nor a Hub id of the form org/name",
                "write s3://bucket/prefix/, /abs/path, ./relative/path, or org/name",
                source="check",
            )


@check
def output_does_not_overwrite_inputs(spec: FineTuneJobSpec) -> Iterator[Problem]:
    out = parse_uri(spec.output.uri)
    inputs = {"spec.model.uri": spec.model.uri, "spec.dataset.train": spec.dataset.train}
    if spec.dataset.eval:
        inputs["spec.dataset.eval"] = spec.dataset.eval
    for where, uri in inputs.items():
        src = parse_uri(uri)
        # An output at or above a data file would write beside it or over it (the file's own folder included); one
        # in a subfolder next to it (s3://b/tweets/runs/x/ beside s3://b/tweets/train.csv) mixes with nothing. A
        # model, or data given as a folder, is read whole: no output may lie inside it either.
        read_whole = where == "spec.model.uri" or src.is_prefix
        if out.contains(src) or (read_whole and src.contains(out)):
            yield Problem(
                "spec.output.uri",
                f"overlaps {where} ({uri!r}); publishing would overwrite or mix with the input",
                "choose an output prefix outside the model and dataset locations",
                source="check",
            )


@check
def output_is_a_prefix(spec: FineTuneJobSpec) -> Iterator[Problem]:
    if parse_uri(spec.output.uri).extension in DATA_EXTENSIONS | {".safetensors", ".bin"}:
        yield Problem(
            "spec.output.uri",
            "looks like a file, but the output is a folder (prefix) holding the model and manifest.json",
            "end the URI with '/', e.g. s3://models/out/my-job/",
            source="check",
        )


@check
def columns_are_distinct(spec: FineTuneJobSpec) -> Iterator[Problem]:
    task = resolve_task(spec.task)  # the columns the trainer will read, defaults included
    if isinstance(task, ClassificationTask):
        text, label = task.text_column, task.label_column
        if text == label:
            yield Problem(
                "spec.task.labelColumn",
                f"is the same column as the text ({text!r})",
                "name the label column",
                source="check",
            )
        if task.labels is not None and len(set(task.labels)) != len(task.labels):
            dup = sorted({x for x in task.labels if task.labels.count(x) > 1})
            yield Problem("spec.task.labels", f"lists {dup} more than once", "list each label once", source="check")
    elif isinstance(task, PromptCompletionTask):
        prompt, completion = task.prompt_column, task.completion_column
        if prompt == completion:
            yield Problem(
                "spec.task.completionColumn",
                f"is the same column as the prompt ({prompt!r})",
                "name the completion column",
                source="check",
            )


@check
def headline_metric_fits_task(spec: FineTuneJobSpec) -> Iterator[Problem]:
    metric = spec.evaluation.metric
    if metric is not None and metric not in METRICS_BY_TASK[spec.task.type]:
        allowed = ", ".join(METRICS_BY_TASK[spec.task.type])
        yield Problem(
            "spec.evaluation.metric",
            f"{metric} is not measured for {spec.task.type}",
            f"use one of {allowed}",
            source="check",
        )


@check
def gate_improvement_is_possible(spec: FineTuneJobSpec) -> Iterator[Problem]:
    gate = spec.evaluation.gate
    if gate and gate.metric in (Metric.ACCURACY, Metric.MACRO_F1) and gate.min_improvement >= 1:
        yield Problem(
            "spec.evaluation.gate.minImprovement",
            f"{gate.metric} lies between 0 and 1, so an improvement of {gate.min_improvement} can never be met",
            "give the improvement as a fraction, e.g. 0.02 for two points",
            source="check",
        )


# Model families with no next-token head (config.json's model_type): few-shot prompting cannot score them.
# The trainer decides from transformers' own mappings once it has the model; this is the answer before that.
ENCODER_MODEL_TYPES = frozenset(
    {"bert", "roberta", "distilbert", "albert", "electra", "deberta", "deberta-v2", "mpnet", "xlm-roberta",
     "camembert", "modernbert"}
)  # fmt: skip


def _local_model_type(uri: str) -> str | None:
    parsed = parse_uri(uri)
    config = Path(os.path.expanduser(parsed.key)) / "config.json" if parsed.kind == "path" else None
    if config is None or not config.is_file():
        return None  # remote, or a mount only the trainer sees: the trainer checks once it has the model
    try:
        kind = json.loads(config.read_text(encoding="utf-8")).get("model_type")
    except (OSError, ValueError, AttributeError):
        return None  # the trainer's model-folder check names what is wrong with it
    return kind if isinstance(kind, str) else None


@check
def gate_against_few_shot_can_apply(spec: FineTuneJobSpec) -> Iterator[Problem]:
    gate = spec.evaluation.gate
    if gate is None or gate.against != GateAgainst.FEW_SHOT:
        return
    why = None
    if spec.task.type == TaskType.CAUSAL_LM and spec.task.format == CausalFormat.TEXT:
        why = "task.format text has no prompt to put demonstrations in front of"
    elif spec.task.type == TaskType.SEQUENCE_CLASSIFICATION:
        kind = _local_model_type(spec.model.uri)
        if kind in ENCODER_MODEL_TYPES:
            why = f"{kind} is an encoder model, with no next-token head to score label text after demonstrations"
    if why:
        yield Problem(
            "spec.evaluation.gate.against",
            f"fewShot cannot be measured: {why}",
            "gate against baseline, or use a decoder model (GPT-2, SmolLM2, Llama) for few-shot",
            source="check",
        )


@check
def prefix_tuning_without_checkpointing(spec: FineTuneJobSpec) -> Iterator[Problem]:
    if spec.method.type == MethodType.PREFIX_TUNING and spec.training.gradient_checkpointing:
        yield Problem(
            "spec.training.gradientCheckpointing",
            "prefix tuning feeds learned key/value caches that gradient checkpointing cannot recompute",
            "set gradientCheckpointing to false, or use prompt-tuning or lora",
            source="check",
        )


@check
def durations_are_positive(spec: FineTuneJobSpec) -> Iterator[Problem]:
    for field, value in (("maxRuntime", spec.max_runtime), ("ttlAfterFinished", spec.ttl_after_finished)):
        if value is not None and duration_seconds(value) == 0:
            yield Problem(f"spec.{field}", f"{value!r} is zero", "give a positive duration such as 6h", source="check")


@check
def remote_code_is_a_conscious_choice(spec: FineTuneJobSpec) -> Iterator[Problem]:
    if spec.model.trust_remote_code:
        yield Problem(
            "spec.model.trustRemoteCode",
            "the model folder's Python code will run inside the trainer pod",
            "use only with models whose code you have reviewed",
            Severity.WARNING,
            source="check",
        )
    if spec.model.allow_pickle:
        yield Problem(
            "spec.model.allowPickle",
            "pickle weight files can execute code when loaded",
            "convert the weights to safetensors and leave allowPickle false",
            Severity.WARNING,
            source="check",
        )


@check
def image_is_pinned(spec: FineTuneJobSpec) -> Iterator[Problem]:
    image = spec.image
    if image is None:
        return
    last = image.rsplit("/", 1)[-1]
    if "@sha256:" not in image and (":" not in last or last.endswith(":latest")):
        yield Problem(
            "spec.image",
            f"{image!r} has no fixed tag or digest, so a retry may run different code",
            "pin a version tag or an @sha256: digest",
            Severity.WARNING,
            source="check",
        )


@check
def local_paths_in_cluster_need_a_mount(spec: FineTuneJobSpec) -> Iterator[Problem]:
    uris: list[tuple[str, StorageUri]] = [("spec.output.uri", parse_uri(spec.output.uri))]
    uris += [("spec.dataset.train", parse_uri(spec.dataset.train)), ("spec.model.uri", parse_uri(spec.model.uri))]
    for where, parsed in uris:
        if parsed.kind == "path" and not parsed.is_absolute:
            yield Problem(
                where,
                "is a relative path: fine for `finetune run`, but a trainer pod cannot see your working directory",
                "use s3:// (or an absolute path on a mounted volume) when applying to a cluster",
                Severity.WARNING,
                source="check",
            )


@check
def output_is_servable(spec: FineTuneJobSpec) -> Iterator[Problem]:
    """vLLM's rules (finetune_api.serving): warnings by default, errors when spec.output.serving asks for vLLM."""
    method, task, asked = spec.method.type, spec.task.type, spec.output.serving == ServingTarget.VLLM
    if asked and task != TaskType.CAUSAL_LM:
        yield Problem(
            "spec.output.serving",
            "vllm serves text generation, and this is a sequence-classification job",
            "use task causal-lm, or leave spec.output.serving unset and load the classifier with transformers",
            source="check",
        )
        return
    lora = method in (MethodType.LORA, MethodType.QLORA) and spec.output.save != SaveMode.MERGED
    severity = Severity.ERROR if asked else Severity.WARNING
    if lora and task == TaskType.CAUSAL_LM:
        for broken in vllm_lora_rules(adapter_facts_of_spec(spec.method.r, task)):
            yield Problem("spec.method.r", f"vLLM: {broken.rule}", broken.fix, severity, source="check")
    plan = serving_plan(method, spec.output.save, task, adapter_facts_of_spec(spec.method.r, task))
    if asked and not lora and all(s.form == Form.NOT_SERVABLE for s in plan):
        yield Problem(
            "spec.output.serving",
            f"vllm cannot serve this output: {'; '.join(s.reason for s in plan)}",
            "leave spec.output.serving unset, or pick a method whose output vLLM serves",
            source="check",
        )
