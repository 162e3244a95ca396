"""The runner's extra measurements of the untouched model: few-shot prompting and reference perplexity.

Each result is stored beside the checkpoints like the zero-shot baseline, so a resumed run reuses it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from finetune_api.resolve import need
from finetune_api.v1alpha1.enums import TaskType
from finetune_api.v1alpha1.job import FineTuneJobSpec

from ..errors import ConfigError
from ..evaluation import forgetting
from ..evaluation.few_shot import NotApplicable, causal_applicability, causal_few_shot_set, select_demonstrations
from ..evaluation.label_scoring import decoder_applicability, in_context_classification
from ..evaluation.metrics import add_perplexity, metric_key
from ..observability.progress import Reporter
from .checkpoints import CheckpointStore
from .data_plan import PreparedData, fetch_file

log = logging.getLogger(__name__)
FEW_SHOT_FILE = "few_shot.json"
FORGETTING_FILE = "forgetting_before.json"


def stored(checkpoints: CheckpointStore, name: str, dist: Any, compute: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """The result kept beside the checkpoints, else computed now and kept (by the main process)."""
    found = checkpoints.store.exists(name)
    dist.wait_for_everyone()  # every rank decides before any rank writes it
    if found:
        result: dict[str, Any] = json.loads(checkpoints.store.read_bytes(name))
        log.info("%s: reused from an earlier attempt of this run", name)
        return result
    result = compute()
    if dist.is_main_process:
        checkpoints.store.write_bytes(name, json.dumps(result).encode())
    return result


def few_shot(
    spec: FineTuneJobSpec,
    data: PreparedData,
    tokenizer: Any,
    model_dir: str,
    evaluate: Callable[[Any], dict[str, float]],
    dtype: torch.dtype,
) -> dict[str, Any]:
    """The untouched model with k demonstrations per eval row: metrics, or `not_applicable` with the reason."""
    if spec.evaluation.few_shot is None:
        return {}
    shots = spec.evaluation.few_shot.shots
    if skip := few_shot_applicability(spec, model_dir):
        return {"shots": shots, "not_applicable": skip.reason}
    demos = select_demonstrations(data.train_records, data.eval_records, shots, spec.training.seed)
    max_length = need(spec.dataset.max_length, "spec.dataset.maxLength")
    if spec.task.type == TaskType.SEQUENCE_CLASSIFICATION:
        lm = _causal_lm(model_dir, spec, dtype)
        try:
            result: dict[str, Any] = in_context_classification(
                lm, tokenizer, data.eval_records, demos, data.labels or [], max_length
            )
        finally:
            del lm
        return {"shots": shots, **result}
    fmt = need(spec.task.format, "spec.task.format")
    eval_set, mean_used = causal_few_shot_set(data.eval_records, demos, tokenizer, fmt, max_length)
    return {"shots": shots, **add_perplexity(evaluate(eval_set)), "demonstrations": mean_used}


def few_shot_applicability(spec: FineTuneJobSpec, model_dir: str) -> NotApplicable | None:
    """Why few-shot prompting cannot be measured for this task and model, or None where it can."""
    if spec.task.type == TaskType.SEQUENCE_CLASSIFICATION:
        return decoder_applicability(model_dir)
    return causal_applicability(need(spec.task.format, "spec.task.format"))


def _causal_lm(model_dir: str, spec: FineTuneJobSpec, dtype: torch.dtype) -> Any:
    """The base checkpoint with its language-model head (the classification model's head is new and untrained)."""
    from transformers import AutoModelForCausalLM

    model: Any = AutoModelForCausalLM.from_pretrained(
        model_dir,
        revision=spec.model.revision,
        trust_remote_code=spec.model.trust_remote_code,
        use_safetensors=not spec.model.allow_pickle,
        dtype=dtype,
    )
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model.to(device)
    return model.eval()


def reference_windows(
    spec: FineTuneJobSpec, data: PreparedData, tokenizer: Any, work: Path
) -> tuple[str, list[list[int]]]:
    cfg = spec.evaluation.forgetting
    if cfg is None:
        raise ConfigError("spec.evaluation.forgetting is not set")
    if cfg.reference:
        ref = forgetting.Reference(fetch_file(cfg.reference, spec, work / "reference"), cfg.reference)
    else:
        ref = forgetting.builtin_reference()
    text = forgetting.read_reference(ref, cfg.max_tokens, list(data.hashes.values()))
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    window = min(forgetting.WINDOW, need(spec.dataset.max_length, "spec.dataset.maxLength"))
    return ref.description, forgetting.windows(ids, cfg.max_tokens, window)


def forgetting_before(
    spec: FineTuneJobSpec, data: PreparedData, tokenizer: Any, work: Path, model: Any, batch_size: int
) -> dict[str, Any]:
    description, chunks = reference_windows(spec, data, tokenizer, work)
    tokens = sum(len(c) for c in chunks)
    return forgetting.summary(description, tokens, forgetting.perplexity(model, chunks, batch_size), None)


def forgetting_after(
    before: dict[str, Any],
    spec: FineTuneJobSpec,
    data: PreparedData,
    tokenizer: Any,
    work: Path,
    model: Any,
    batch_size: int,
) -> dict[str, Any]:
    _description, chunks = reference_windows(spec, data, tokenizer, work)
    after = forgetting.perplexity(model, chunks, batch_size)
    return forgetting.summary(before["reference"], before["tokens"], before["before"], after)


@dataclass(frozen=True)
class Untouched:
    """What the comparisons of the untouched model need from the run."""

    spec: FineTuneJobSpec
    data: PreparedData
    tokenizer: Any
    model_dir: str
    dtype: torch.dtype
    work: Path
    reporter: Reporter
    dist: Any


def untouched(
    run: Untouched,
    model: Any,
    evaluate: Callable[[Any], dict[str, float]],
    checkpoints: CheckpointStore,
    batch_size: int,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Few-shot prompting and reference perplexity of the untouched model (each only when the spec asks)."""
    spec, few, forgot = run.spec, {}, {}
    if spec.evaluation.few_shot:

        def shots() -> dict[str, Any]:
            run.reporter.update(phase="Baseline")
            return few_shot(spec, run.data, run.tokenizer, run.model_dir, evaluate, run.dtype)

        few = stored(checkpoints, FEW_SHOT_FILE, run.dist, shots)
        run.reporter.update(few_shot_metric=few.get(metric_key(need(spec.evaluation.metric, "spec.evaluation.metric"))))
        log.info("few-shot: %s", {k: round(v, 4) if isinstance(v, float) else v for k, v in few.items()})
    if spec.evaluation.forgetting:

        def before() -> dict[str, Any]:
            run.reporter.update(phase="Baseline")
            return forgetting_before(spec, run.data, run.tokenizer, run.work, model, batch_size)

        forgot = stored(checkpoints, FORGETTING_FILE, run.dist, before)
        run.reporter.update(forgetting_before=forgot["before"])
        log.info("forgetting: reference perplexity before training %.4f (%s)", forgot["before"], forgot["reference"])
    return few, forgot


def forgotten(run: Untouched, before: dict[str, Any], tuned_model: Any, batch_size: int) -> dict[str, Any]:
    """The reference perplexity of the tuned model (with its adapter) beside the one before training."""
    if not before:
        return {}
    forgot = forgetting_after(before, run.spec, run.data, run.tokenizer, run.work, tuned_model, batch_size)
    run.reporter.update(forgetting_after=forgot["after"])
    log.info("forgetting: reference perplexity %.4f -> %.4f", forgot["before"], forgot["after"])
    return forgot
