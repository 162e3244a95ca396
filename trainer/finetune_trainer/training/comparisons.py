"""The runner's extra measurements of the untouched model: few-shot prompting and reference perplexity.

Each result is stored beside the checkpoints like the zero-shot baseline, so a resumed run reuses it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar

import torch
from pydantic import BaseModel, ValidationError

from finetune_api.measurements import FewShot, Forgetting
from finetune_api.resolved import ClassificationTask, ResolvedSpec
from finetune_api.v1alpha1.job import FineTuneJobSpec

from ..errors import ConfigError
from ..evaluation import forgetting
from ..evaluation.few_shot import NotApplicable, causal_applicability, causal_few_shot_set, select_demonstrations
from ..evaluation.label_scoring import decoder_applicability, in_context_classification
from ..evaluation.metrics import add_perplexity
from .checkpoints import CheckpointStore
from .context import RunContext
from .data_plan import fetch_file

log = logging.getLogger(__name__)
FEW_SHOT_FILE = "few_shot.json"
FORGETTING_FILE = "forgetting_before.json"
R = TypeVar("R", bound=BaseModel)


def stored(checkpoints: CheckpointStore, name: str, dist: Any, compute: Callable[[], R], model: type[R]) -> R:
    """The result kept beside the checkpoints, else computed now and kept (by the main process)."""
    found = checkpoints.store.exists(name)
    dist.wait_for_everyone()  # every rank decides before any rank writes it
    if found:
        try:
            kept = model.model_validate_json(checkpoints.store.read_bytes(name))
        except ValidationError as exc:
            # Written by another version of the trainer: measured again rather than misread.
            log.warning("%s: kept in another form (%s); measuring again", name, exc.errors(include_url=False)[:1])
        else:
            log.info("%s: reused from an earlier attempt of this run", name)
            return kept
    result = compute()
    if dist.is_main_process:
        checkpoints.store.write_bytes(name, result.model_dump_json().encode())
    return result


def few_shot(ctx: RunContext, evaluate: Callable[[Any], dict[str, float]]) -> FewShot:
    """The untouched model with k demonstrations per eval row: scores, or `not_applicable` with the reason."""
    spec, data, tokenizer = ctx.spec, ctx.data, ctx.tokenizer
    if spec.evaluation.few_shot is None:
        raise ConfigError("spec.evaluation.fewShot is not set")
    shots = spec.evaluation.few_shot.shots
    if skip := few_shot_applicability(spec, ctx.model_dir):
        return FewShot(shots=shots, not_applicable=skip.reason)
    demos = select_demonstrations(data.train_records, data.eval_records, shots, spec.training.seed)
    max_length, task = spec.dataset.max_length, spec.task
    if isinstance(task, ClassificationTask):
        lm = _causal_lm(ctx.model_dir, spec, ctx.dtype)
        try:
            prompts = list(zip(data.eval_records, demos, strict=True))
            scores, used = in_context_classification(lm, tokenizer, prompts, data.labels or [], max_length)
        finally:
            del lm
        return FewShot(shots=shots, scores=scores, demonstrations=used)
    eval_set, mean_used = causal_few_shot_set(data.eval_records, demos, tokenizer, task.format, max_length)
    return FewShot(shots=shots, scores=add_perplexity(evaluate(eval_set)), demonstrations=mean_used)


def few_shot_applicability(spec: ResolvedSpec, model_dir: str) -> NotApplicable | None:
    """Why few-shot prompting cannot be measured for this task and model, or None where it can."""
    if isinstance(spec.task, ClassificationTask):
        return decoder_applicability(model_dir)
    return causal_applicability(spec.task.format)


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


def reference_windows(ctx: RunContext) -> tuple[str, list[list[int]]]:
    spec = ctx.spec
    cfg = spec.evaluation.forgetting
    if cfg is None:
        raise ConfigError("spec.evaluation.forgetting is not set")
    if cfg.reference:
        ref = forgetting.Reference(fetch_file(cfg.reference, spec, ctx.work / "reference"), cfg.reference)
    else:
        ref = forgetting.builtin_reference()
    text = forgetting.read_reference(ref, cfg.max_tokens, list(ctx.data.hashes.values()))
    ids = ctx.tokenizer(text, add_special_tokens=False)["input_ids"]
    window = min(forgetting.WINDOW, spec.dataset.max_length)
    return ref.description, forgetting.windows(ids, cfg.max_tokens, window)


def forgetting_before(ctx: RunContext, model: Any, batch_size: int) -> Forgetting:
    description, chunks = reference_windows(ctx)
    tokens = sum(len(c) for c in chunks)
    return forgetting.summary(description, tokens, forgetting.perplexity(model, chunks, batch_size), None)


def forgetting_after(ctx: RunContext, before: Forgetting, model: Any, batch_size: int) -> Forgetting:
    _description, chunks = reference_windows(ctx)
    return before.model_copy(update={"after": forgetting.perplexity(model, chunks, batch_size)})


def untouched(
    run: RunContext,
    model: Any,
    evaluate: Callable[[Any], dict[str, float]],
    checkpoints: CheckpointStore,
    batch_size: int,
) -> None:
    """Few-shot prompting and reference perplexity of the untouched model (each only when the spec asks)."""
    spec = run.spec
    if spec.evaluation.few_shot:

        def shots() -> FewShot:
            run.reporter.update(phase="Baseline")
            return few_shot(run, evaluate)

        few = stored(checkpoints, FEW_SHOT_FILE, run.dist, shots, FewShot)
        run.reporter.measure(few_shot=few)
        log.info("few-shot: %s", few.not_applicable or {k: round(v, 4) for k, v in few.scores.items()})
    if spec.evaluation.forgetting:

        def before() -> Forgetting:
            run.reporter.update(phase="Baseline")
            return forgetting_before(run, model, batch_size)

        forgot = stored(checkpoints, FORGETTING_FILE, run.dist, before, Forgetting)
        run.reporter.measure(forgetting=forgot)
        log.info("forgetting: reference perplexity before training %.4f (%s)", forgot.before, forgot.reference)


def forgotten(run: RunContext, tuned_model: Any, batch_size: int) -> None:
    """The reference perplexity of the tuned model (with its adapter) beside the one before training."""
    measured = run.reporter.state.measured
    before = measured.forgetting if measured else None
    if before is None:
        return
    forgot = forgetting_after(run, before, tuned_model, batch_size)
    run.reporter.measure(forgetting=forgot)
    log.info("forgetting: reference perplexity %.4f -> %.4f", forgot.before, forgot.after)
