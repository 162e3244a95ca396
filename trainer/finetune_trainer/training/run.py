"""One FineTuneJob, start to finish: data -> model -> baseline -> method -> train -> evaluate -> gate -> publish.

`run_job` is the path; each step below it is a function of what the steps before it returned. Under
torchrun (finetune_trainer.launch) every process runs this: one per node downloads, the main process publishes.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import time
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import torch

from finetune_api.measurements import RunMeasurements, metric_key
from finetune_api.pod_contract import collective_timeout_seconds
from finetune_api.resolve import resolve_job
from finetune_api.resolved import ResolvedSpec
from finetune_api.v1alpha1.enums import Metric
from finetune_api.v1alpha1.job import FineTuneJob

from ..errors import DataError, OutOfMemory, Preempted
from ..evaluation.metrics import add_perplexity
from ..methods import get_method
from ..methods.base import MethodContext, count_parameters
from ..observability.kube_status import own_queue_cost
from ..observability.progress import Reporter
from ..storage.store import check_output_location
from ..tracking.job_run import ending, final_metrics, open_tracker, track_output
from . import comparisons, loop
from .callbacks import (
    CheckpointSyncCallback,
    PreemptionCallback,
    ProgressCallback,
    TrackingCallback,
    history_points,
)
from .checkpoints import CheckpointStore
from .context import RunContext
from .data_plan import PreparedData, load_records, tokenize
from .gating import refuse_inapplicable_gate, verdict
from .model_loading import fetch_model, fetch_tokenizer, load_model, load_tokenizer, model_facts
from .ownership import claim_run
from .precision import PrecisionPlan, plan_precision
from .results import RunResult, publish_output, resolved_spec, save_output

log = logging.getLogger(__name__)
BASELINE = "baseline.json"  # beside the checkpoints, so a resumed run reuses its baseline


def run_job(job: FineTuneJob, work: Path, reporter: Reporter, downloads: Path | None = None) -> RunResult:
    """`downloads`: where data and model land (an experiment's runs share it, so each is fetched once)."""
    from accelerate import PartialState
    from accelerate.utils import parse_flag_from_env
    from transformers import set_seed

    # The first state made fixes the group: without ACCELERATE_USE_CPU (launch.py sets it) CPU ranks train alone.
    # Its timeout bounds every collective: a rank whose peer is gone fails instead of waiting (issue 20).
    timeout = timedelta(seconds=collective_timeout_seconds(os.environ))
    dist = PartialState(cpu=parse_flag_from_env("ACCELERATE_USE_CPU"), timeout=timeout)
    # Each rank says who it is: the first line to read when a multi-node job misbehaves.
    log.info("rank %d of %d (%s)", dist.process_index, dist.num_processes, dist.distributed_type.value)
    set_seed(job.spec.training.seed)
    check_output_location("spec.output.uri", job.spec.output.uri)
    reporter.update(phase="Initializing")

    with dist.local_main_process_first():
        data = load_records(job.spec, downloads or work)
        model_dir, etags = fetch_model(job.spec, (downloads or work) / "model")
        tokenizer_dir, tokenizer_etags = fetch_tokenizer(job.spec, (downloads or work) / "tokenizer")
    etags = {**etags, **tokenizer_etags}  # lineage covers a tokenizer kept apart from the model
    tokenizer = load_tokenizer(tokenizer_dir or model_dir, job.spec)
    # Resolved once, now that the model's facts (adapter targets, length limit) are known: every stage
    # from here reads this and nothing else (`finetune run` skips the operator, so its defaults apply here too).
    job = resolve_job(job, model_facts(model_dir, job.spec, tokenizer))
    metric = job.spec.evaluation.metric
    reporter.update(measured=RunMeasurements(metric=metric))  # from here on, a refusal reports what was measured
    refuse_inapplicable_gate(job.spec, model_dir)
    tokenize_data(data, job.spec, tokenizer, reporter)
    checkpoints = claim_run(job, data.hashes, etags)  # refuses another run's checkpoints and output
    run = plan_run(job.spec, len(data.train or ()), metric, checkpoints, work)
    model = load_model(model_dir, job.spec, data.labels, run.dtype, tokenizer)
    tracker = open_tracker(job, checkpoints.store, reporter) if dist.is_main_process else None
    ctx = RunContext(job, data, tokenizer, model_dir, run.dtype, downloads or work, reporter, dist, tracker)
    with ending(tracker):
        return measure_train_publish(ctx, model, run, etags, work / "output")


def measure_train_publish(ctx: RunContext, model: Any, run: RunPlan, etags: dict[str, str], out: Path) -> RunResult:
    """From the loaded model to the published output: untouched, adapted, trained, evaluated, gated, published."""
    job, reporter, dist, tokenizer = ctx.job, ctx.reporter, ctx.dist, ctx.tokenizer
    if job.spec.evaluation.baseline:
        measure_baseline(ctx, model, run)
    as_is = functools.partial(evaluate_as_is, model, run, tokenizer=tokenizer)
    comparisons.untouched(ctx, model, as_is, run.checkpoints, run.eval_batch)
    adapted = apply_method(model, run, ctx.model_dir, reporter)
    if ctx.tracker:
        ctx.tracker.params(resolved_spec(job))
    trained = train(ctx, adapted, run)
    evaluate_tuned(trained, run, reporter)
    comparisons.forgotten(ctx, trained.trainer.model, run.eval_batch)
    gate = verdict(job.spec.evaluation, reporter.measure(loss_history=trained.loss_history))
    measured = reporter.measure(gate=gate.record() if gate else None)

    reporter.update(phase="Publishing")
    if not dist.is_main_process:
        log.info("rank %d of %d: trained; rank 0 publishes", dist.process_index, dist.num_processes)
        dist.wait_for_everyone()
        return RunResult(job.spec.output.uri, None, measured)
    if queue_cost := own_queue_cost(job.metadata.namespace or "default", job.metadata.name):
        reporter.update(cost=queue_cost)
        measured = reporter.measure()
    saved = save_output(ctx, adapted.model, adapted.produces_adapter, measured, out)
    if ctx.tracker:
        ctx.tracker.metrics(final_metrics(measured), measured.steps or 0)
    result = publish_output(ctx, saved, measured, etags, run.checkpoints.fingerprint)
    if ctx.tracker:
        track_output(ctx.tracker, job, saved.folder)
    log.info("rank %d of %d published %s", dist.process_index, dist.num_processes, result.manifest_uri)
    reporter.update(phase="Succeeded")
    dist.wait_for_everyone()
    return result


@dataclass(frozen=True)
class RunPlan:
    """What the run decided before training: precision, steps, the headline metric, the loop's arguments."""

    precision: PrecisionPlan
    metric: Metric
    key: str  # the metric's key in the loop's evaluation output
    total_steps: int
    args: Any  # transformers.TrainingArguments
    checkpoints: CheckpointStore
    spec: ResolvedSpec

    @property
    def dtype(self) -> torch.dtype:
        return torch.bfloat16 if self.precision.bf16 else torch.float32

    @property
    def eval_batch(self) -> int:
        batch: int = self.args.per_device_eval_batch_size
        return batch


def tokenize_data(data: PreparedData, spec: ResolvedSpec, tokenizer: Any, reporter: Reporter) -> None:
    tokenize(data, spec, tokenizer)
    if data.train is None or data.eval is None:
        raise DataError("tokenization produced no datasets")
    reporter.measure(hygiene=data.report)
    for line in data.report.lines():
        log.info("data: %s", line)


def plan_run(spec: ResolvedSpec, n_train: int, metric: Metric, checkpoints: CheckpointStore, work: Path) -> RunPlan:
    precision = plan_precision(spec.training.precision)
    total = loop.plan_total_steps(spec, n_train, int(os.environ.get("WORLD_SIZE", "1")))
    key = metric_key(metric)
    args = loop.training_arguments(spec, total, precision, metric, work)
    return RunPlan(precision, metric, key, total, args, checkpoints, spec)


def measure_baseline(ctx: RunContext, model: Any, run: RunPlan) -> None:
    """The untouched model on the eval set, before any method touches it."""
    store, dist, reporter = run.checkpoints.store, ctx.dist, ctx.reporter
    found = store.exists(BASELINE)
    dist.wait_for_everyone()  # every rank decides before any rank writes it
    if found:
        baseline: dict[str, float] = json.loads(store.read_bytes(BASELINE))
    else:
        reporter.update(phase="Baseline")
        baseline = add_perplexity(evaluate_as_is(model, run, ctx.data.eval, ctx.tokenizer))
        if dist.is_main_process:
            store.write_bytes(BASELINE, json.dumps(baseline).encode())
    reporter.measure(baseline=baseline)
    reporter.update(eval_loss=baseline.get("eval_loss"))
    log.info("baseline: %s", {k: round(v, 4) for k, v in baseline.items() if isinstance(v, float)})


def evaluate_as_is(model: Any, run: RunPlan, rows: Any, tokenizer: Any) -> dict[str, float]:
    """One evaluation pass of the model as it is, batched like the loop's (each batch padded to its longest row)."""
    from transformers import Trainer
    from transformers.trainer_callback import PrinterCallback

    trainer = Trainer(
        model=model,
        args=run.args,
        eval_dataset=rows,
        data_collator=loop.padded_collator(tokenizer, run.precision.on_gpu),
        **loop.metric_functions(run.spec),
    )
    trainer.remove_callback(PrinterCallback)
    metrics: dict[str, float] = trainer.evaluate()
    return metrics


@dataclass(frozen=True)
class Adapted:
    """The model as the method prepared it, and the optimizer over the parameters it trains."""

    model: Any
    optimizer: torch.optim.Optimizer
    produces_adapter: bool


def apply_method(model: Any, run: RunPlan, model_dir: str, reporter: Reporter) -> Adapted:
    spec = run.spec
    method = get_method(spec.method.type)
    lr = spec.training.learning_rate
    ctx = MethodContext(spec.task.type, model_dir, learning_rate=lr, weight_decay=spec.training.weight_decay)
    model = method.prepare(model, spec.method, ctx)
    trainable, total = count_parameters(model)
    log.info("parameters: %s trainable of %s (%.2f%%)", f"{trainable:,}", f"{total:,}", 100 * trainable / max(total, 1))
    optimizer = loop.build_optimizer(method.parameter_groups(model, spec.method, ctx), spec, run.precision.on_gpu)
    reporter.update(
        cost={"trainable_parameters": trainable, "total_parameters": total, "precision": run.precision.name}
    )
    return Adapted(model, optimizer, method.produces_adapter)


@dataclass
class Trained:
    """The loop after training: its state and what its progress hook saw (its cost is in the measurements)."""

    trainer: Any
    progress: ProgressCallback
    loss_history: list[dict[str, float]] = field(default_factory=list)


def train(ctx: RunContext, adapted: Adapted, run: RunPlan) -> Trained:
    from transformers.trainer_callback import PrinterCallback

    spec, data, tokenizer, reporter, dist = run.spec, ctx.data, ctx.tokenizer, ctx.reporter, ctx.dist
    train_set = data.train
    if train_set is None:
        raise DataError("no tokenized training data")
    collators = loop.choose_collators(spec, tokenizer, adapted.model, run.precision.on_gpu)
    losses: list[dict[str, float]] = []
    progress = ProgressCallback(reporter, train_set.tokens / max(len(train_set), 1), run.key, losses)
    preemption = PreemptionCallback()
    trainer = loop.trainer_class()(
        model=adapted.model,
        args=run.args,
        train_dataset=train_set,
        eval_dataset=data.eval,
        data_collator=collators.train,
        eval_collator=collators.eval,
        optimizers=(adapted.optimizer, None),
        callbacks=[
            progress,
            CheckpointSyncCallback(run.checkpoints, reporter),
            preemption,
            *_early_stopping(run),
            *([TrackingCallback(ctx.tracker)] if ctx.tracker else []),
        ],
        **loop.metric_functions(spec),
    )
    trainer.remove_callback(PrinterCallback)  # our progress bar and metrics replace its printing
    with dist.local_main_process_first():
        restored = run.checkpoints.restore_newest(Path(run.args.output_dir))
    if restored and restored[1] >= run.args.max_steps:
        # A run stopped after its last step (while evaluating or publishing): resuming would have
        # transformers train one step past the end. Load the finished state and go on to evaluation.
        finished_state(trainer, restored[0], progress)
        log.info("checkpoint step %d is the last step: evaluating and publishing without training", restored[1])
        return _trained(trainer, progress, 0.0, collators.packed, losses)
    started = time.time()
    try:
        trainer.train(resume_from_checkpoint=str(restored[0]) if restored else None)
    except torch.cuda.OutOfMemoryError as exc:
        raise OutOfMemory(
            f"out of GPU memory at batch size {spec.training.batch_size}: lower spec.training.batchSize and raise "
            "gradientAccumulationSteps, enable gradientCheckpointing, or use lora/qlora"
        ) from exc
    if preemption.requested:
        step = trainer.state.global_step
        if reporter.state.checkpoints_failing:
            raise Preempted(f"stopped by SIGTERM at step {step}; {reporter.state.checkpoints_failing}")
        raise Preempted(f"stopped by SIGTERM at step {step}; checkpoint saved for resume")
    return _trained(trainer, progress, time.time() - started, collators.packed, losses)


def _trained(trainer: Any, progress: ProgressCallback, seconds: float, packed: bool, losses: list[Any]) -> Trained:
    padding = getattr(trainer.data_collator, "padding_fraction", None)
    progress.reporter.update(cost={"train_seconds": seconds, "padding_fraction": padding, "packed": packed})
    return Trained(trainer, progress, losses)


def finished_state(trainer: Any, checkpoint: Path, progress: ProgressCallback) -> None:
    """The model weights (adapter or full) and the trainer state of a checkpoint taken at the last step."""
    from transformers import TrainerState

    trainer._load_from_checkpoint(str(checkpoint))
    trainer.state = TrainerState.load_from_json(str(checkpoint / "trainer_state.json"))
    progress.loss_log.extend(history_points(trainer.state.log_history))
    progress.reporter.update(step=trainer.state.global_step, total_steps=trainer.state.max_steps)


def _early_stopping(run: RunPlan) -> list[Any]:
    from transformers import EarlyStoppingCallback

    early = run.spec.training.early_stopping
    return [EarlyStoppingCallback(early.patience, early.threshold)] if early and run.args.load_best_model_at_end else []


def evaluate_tuned(trained: Trained, run: RunPlan, reporter: Reporter) -> None:
    reporter.update(phase="Evaluating")
    last = trained.progress.last_eval
    if last and last[0] == trained.trainer.state.global_step and not run.args.load_best_model_at_end:
        tuned = add_perplexity(last[1])  # the loop just evaluated this very model
    else:
        tuned = add_perplexity(trained.trainer.evaluate())
    reporter.measure(tuned=tuned, steps=trained.trainer.state.global_step)
    reporter.update(eval_metric=tuned.get(run.key), eval_loss=tuned.get("eval_loss"))
