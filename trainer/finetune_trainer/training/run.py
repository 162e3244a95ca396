"""One FineTuneJob, start to finish: data -> model -> baseline -> train -> evaluate -> gate -> publish."""

from __future__ import annotations

import json
import logging
import math
import os
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import yaml

from finetune_api.pod_contract import ENV_IMAGE
from finetune_api.resolve import need, resolve_job
from finetune_api.spec.enums import Metric, Optimizer, SaveMode, TaskType
from finetune_api.spec.job import FineTuneJob, FineTuneJobSpec

from ..artifacts import publish
from ..artifacts.manifest import build_manifest
from ..artifacts.report import loss_curve, model_card
from ..errors import DataError, GateNotMet, OutOfMemory, Preempted
from ..evaluation.gate import GateResult, judge
from ..evaluation.metrics import add_perplexity, argmax_logits, classification_metrics, metric_key
from ..methods import get_method
from ..methods.base import MethodContext, count_parameters
from ..observability.progress import Reporter
from ..storage import open_store
from ..storage.store import check_output_location
from .callbacks import CheckpointSyncCallback, PreemptionCallback, ProgressCallback
from .checkpoints import CheckpointStore
from .data_plan import PreparedData, load_records, tokenize
from .model_loading import fetch_model, load_model, load_tokenizer, model_facts
from .ownership import claim_run
from .precision import plan_precision

log = logging.getLogger(__name__)
SCHEDULERS = {
    "linear": "linear",
    "cosine": "cosine",
    "constant": "constant",
    "constant-with-warmup": "constant_with_warmup",
    "cosine-with-restarts": "cosine_with_restarts",
    "polynomial": "polynomial",
}


@dataclass
class RunResult:
    output_uri: str
    manifest_uri: str | None
    metrics: dict[str, Any]
    gate: GateResult | None = None
    local_output: Path | None = None
    hygiene: list[str] = field(default_factory=list)


def resolved_spec(job: FineTuneJob) -> dict[str, Any]:
    """The resolved spec as recorded in metrics.json and the manifest (camelCase, as written in YAML)."""
    spec: dict[str, Any] = job.spec.model_dump(by_alias=True, exclude_none=True, mode="json")
    return spec


def plan_total_steps(spec: FineTuneJobSpec, n_train: int, world_size: int) -> int:
    t = spec.training
    if t.max_steps:
        return t.max_steps
    batches = math.ceil(n_train / (t.batch_size * world_size))
    per_epoch = max(1, math.ceil(batches / t.gradient_accumulation_steps))
    return max(1, math.ceil((t.epochs or 1.0) * per_epoch))


def _optimizer(groups: list[dict[str, Any]], spec: FineTuneJobSpec, lr: float, on_gpu: bool) -> torch.optim.Optimizer:
    kind = spec.training.optimizer
    if kind == Optimizer.SGD:
        return torch.optim.SGD(groups, lr=lr, momentum=0.9)
    if kind == Optimizer.ADAFACTOR:
        from transformers.optimization import Adafactor

        return Adafactor(  # type: ignore[no-untyped-call]
            groups, lr=lr, scale_parameter=False, relative_step=False, warmup_init=False
        )
    # Fused AdamW runs one kernel for all parameters on GPUs; foreach is the fast path on CPU.
    return torch.optim.AdamW(groups, lr=lr, fused=on_gpu, foreach=None if on_gpu else True)


def _trainer_class() -> type:
    from transformers import Trainer

    class EvalUnpackedTrainer(Trainer):
        """Evaluates with plain padded batches even when training packs, so eval losses stay comparable."""

        def __init__(self, *args: Any, eval_collator: Any = None, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.eval_collator = eval_collator

        def evaluate(self, *args: Any, **kwargs: Any) -> dict[str, float]:
            train_collator, self.data_collator = self.data_collator, self.eval_collator or self.data_collator
            try:
                return super().evaluate(*args, **kwargs)
            finally:
                self.data_collator = train_collator

    return EvalUnpackedTrainer


def _Trainer(**kwargs: Any) -> Any:  # noqa: N802 - reads as the class it builds
    return _trainer_class()(**kwargs)


def _checkpointing_args(enabled: bool) -> dict[str, Any]:
    """Activation (gradient) checkpointing, under the argument name this transformers version uses."""
    if not enabled:
        return {}
    from transformers import TrainingArguments

    name = (
        "activation_checkpointing"
        if "activation_checkpointing" in TrainingArguments.__dataclass_fields__
        else "gradient_checkpointing"
    )
    return {name: True, f"{name}_kwargs": {"use_reentrant": False}}


class JobRunner:
    def __init__(self, job: FineTuneJob, work_dir: Path, reporter: Reporter, downloads: Path | None = None) -> None:
        self.job = resolve_job(job)
        self.spec = self.job.spec
        self.work = work_dir
        # Data and model land here; runs of one experiment share it, so each is fetched once.
        self.downloads = downloads or work_dir
        self.reporter = reporter
        self.name = job.metadata.name
        self.loss_points: list[dict[str, float]] = []
        self.packed = False
        self.fingerprint: str | None = None

    def run(self) -> RunResult:
        from accelerate import PartialState
        from transformers import set_seed

        # Under `accelerate launch` several processes run this; one per node downloads, one publishes.
        self.dist = dist = PartialState()
        spec = self.spec
        set_seed(spec.training.seed)
        check_output_location("spec.output.uri", spec.output.uri)
        precision = plan_precision(spec.training.precision)
        method = get_method(spec.method.type)
        metric = need(spec.evaluation.metric, "spec.evaluation.metric")
        key = metric_key(metric)
        self.reporter.update(phase="Initializing", metric_name=str(metric))

        with dist.local_main_process_first():
            data = load_records(spec, self.downloads)
            model_dir, etags = fetch_model(spec, self.downloads / "model")
        tokenizer = load_tokenizer(model_dir, spec)
        self.job = resolve_job(self.job, model_facts(model_dir, spec, tokenizer))
        self.spec = spec = self.job.spec
        tokenize(data, spec, tokenizer)
        if data.train is None or data.eval is None:
            raise DataError("tokenization produced no datasets")
        for line in data.report.lines():
            log.info("data: %s", line)

        dtype = torch.bfloat16 if precision.bf16 else torch.float32
        model = load_model(model_dir, spec, data.labels, dtype, tokenizer)
        world = int(os.environ.get("WORLD_SIZE", "1"))
        total_steps = plan_total_steps(spec, len(data.train), world)
        lr = need(spec.training.learning_rate, "spec.training.learningRate")

        checkpoints = claim_run(self.job, data.hashes, etags)  # refuses another run's checkpoints
        self.fingerprint = checkpoints.fingerprint
        args = self._training_args(total_steps, lr, precision, key, metric)

        baseline = self._baseline(model, args, data, checkpoints, tokenizer) if spec.evaluation.baseline else {}
        if baseline:
            self.reporter.update(baseline_metric=baseline.get(key), eval_loss=baseline.get("eval_loss"))
            log.info("baseline: %s", {k: round(v, 4) for k, v in baseline.items() if isinstance(v, float)})

        ctx = MethodContext(
            task=spec.task.type, model_dir=model_dir, learning_rate=lr, weight_decay=spec.training.weight_decay
        )
        model = method.prepare(model, spec.method, ctx)
        trainable, total = count_parameters(model)
        self.reporter.update(trainable_parameters=trainable)
        log.info(
            "parameters: %s trainable of %s (%.2f%%)", f"{trainable:,}", f"{total:,}", 100 * trainable / max(total, 1)
        )
        optimizer = _optimizer(method.parameter_groups(model, spec.method, ctx), spec, lr, precision.on_gpu)

        preemption = PreemptionCallback()
        trainer = self._trainer(model, args, data, optimizer, key, checkpoints, preemption, tokenizer)
        with dist.local_main_process_first():
            restored = checkpoints.restore_newest(Path(args.output_dir))
        started = time.time()
        try:
            trainer.train(resume_from_checkpoint=str(restored[0]) if restored else None)
        except torch.cuda.OutOfMemoryError as exc:
            raise OutOfMemory(
                f"out of GPU memory at batch size {spec.training.batch_size}: lower spec.training.batchSize and raise "
                "gradientAccumulationSteps, enable gradientCheckpointing, or use lora/qlora"
            ) from exc
        if preemption.requested:
            raise Preempted(f"stopped by SIGTERM at step {trainer.state.global_step}; checkpoint saved for resume")
        runtime = time.time() - started
        self.reporter.update(train_seconds=runtime)

        self.reporter.update(phase="Evaluating")
        progress = next(c for c in trainer.callback_handler.callbacks if isinstance(c, ProgressCallback))
        if (
            progress.last_eval
            and progress.last_eval[0] == trainer.state.global_step
            and not args.load_best_model_at_end
        ):
            tuned = add_perplexity(progress.last_eval[1])  # the loop just evaluated this very model
        else:
            tuned = add_perplexity(trainer.evaluate())
        self.reporter.update(eval_metric=tuned.get(key), eval_loss=tuned.get("eval_loss"))
        gate = judge(spec.evaluation.gate, baseline[key], tuned[key]) if spec.evaluation.gate and baseline else None
        metrics: dict[str, Any] = {
            "metric": str(metric),
            "baseline": baseline,
            "tuned": tuned,
            "steps": trainer.state.global_step,
            "train_runtime_s": runtime,
            "parameters": {"trainable": trainable, "total": total},
            "tokens_per_second": self.reporter.state.tokens_per_second,
            "peak_memory_bytes": self.reporter.state.peak_memory_bytes,
            "precision": precision.name,
            "packed": self.packed,
            "hygiene": data.report.as_dict(),
            "spec": resolved_spec(self.job),
            "loss_history": self.loss_points,
        }
        if gate:
            metrics["gate"] = {**gate.__dict__, "passed": gate.passed, "explanation": gate.explain()}

        self.reporter.update(phase="Publishing")
        if not dist.is_main_process:
            dist.wait_for_everyone()
            return RunResult(spec.output.uri, None, metrics, gate)
        out_dir = self.work / "output"
        self._save(model, tokenizer, out_dir, method.produces_adapter, metrics, data, (trainable, total))
        result = self._publish(out_dir, metrics, gate, data, etags)
        result.hygiene = data.report.lines()
        self.reporter.update(phase="Succeeded")
        dist.wait_for_everyone()
        return result

    def _training_args(self, total_steps: int, lr: float, precision: Any, key: str, metric: Metric) -> Any:
        from transformers import TrainingArguments

        t, spec = self.spec.training, self.spec
        ratio = need(t.warmup_ratio, "spec.training.warmupRatio") if t.warmup_steps is None else 0.0
        warmup = t.warmup_steps if t.warmup_steps is not None else round(ratio * total_steps)
        eval_strategy = "steps" if t.eval_steps else ("epoch" if t.epochs else "no")
        early = t.early_stopping is not None and eval_strategy != "no"
        return TrainingArguments(
            output_dir=str(self.work / "checkpoints"),
            per_device_train_batch_size=t.batch_size,
            per_device_eval_batch_size=t.batch_size * 2,
            gradient_accumulation_steps=t.gradient_accumulation_steps,
            learning_rate=lr,
            max_steps=total_steps,
            lr_scheduler_type=SCHEDULERS[t.scheduler.value],
            warmup_steps=warmup,
            weight_decay=t.weight_decay,
            max_grad_norm=t.max_grad_norm,
            seed=t.seed,
            data_seed=t.seed,
            bf16=precision.bf16,
            fp16=precision.fp16,
            use_cpu=not precision.on_gpu,
            **_checkpointing_args(t.gradient_checkpointing),
            train_sampling_strategy="group_by_length" if t.group_by_length else "random",
            logging_steps=t.logging_steps,
            eval_strategy=eval_strategy,
            eval_steps=t.eval_steps,
            save_strategy=eval_strategy if early else "steps",
            save_steps=t.eval_steps if early and t.eval_steps else spec.output.checkpoint_every,
            save_total_limit=spec.output.keep_checkpoints,
            load_best_model_at_end=early,
            metric_for_best_model=key.removeprefix("eval_") if early else None,
            greater_is_better=metric.higher_is_better if early else None,
            label_names=["labels"],
            remove_unused_columns=False,
            report_to="none",
            disable_tqdm=True,
            dataloader_num_workers=2 if precision.on_gpu else 0,
            dataloader_pin_memory=precision.on_gpu,
        )

    def _compute(self) -> tuple[Any, Any]:
        if self.spec.task.type == TaskType.SEQUENCE_CLASSIFICATION:
            return classification_metrics, argmax_logits
        return None, None

    def _collator(self, tokenizer: Any, on_gpu: bool, model: Any = None) -> Any:
        from ..data.collate import PackFlat, PadToLongest, prepare_for_packing

        if model is not None and self.spec.training.packing:
            if prepare_for_packing(model):
                log.info("packing: each batch is one padding-free row; attention stays within each example")
                self.packed = True
                return PackFlat()
            log.warning("packing: %s cannot keep packed examples apart; training unpacked", type(model).__name__)
        return PadToLongest(tokenizer.pad_token_id, pad_to_multiple_of=8 if on_gpu else None)

    def _baseline(
        self, model: Any, args: Any, data: PreparedData, checkpoints: CheckpointStore, tokenizer: Any
    ) -> dict[str, float]:
        """The untouched model on the eval set; kept beside the checkpoints so a resumed run reuses it."""
        from transformers import Trainer
        from transformers.trainer_callback import PrinterCallback

        cached = "baseline.json"
        found = checkpoints.store.exists(cached)
        self.dist.wait_for_everyone()  # every rank decides before any rank writes it
        if found:
            stored: dict[str, float] = json.loads(checkpoints.store.read_bytes(cached))
            return stored
        self.reporter.update(phase="Baseline")
        compute, preprocess = self._compute()
        trainer = Trainer(
            model=model,
            args=args,
            eval_dataset=data.eval,
            data_collator=self._collator(tokenizer, not args.use_cpu),
            compute_metrics=compute,
            preprocess_logits_for_metrics=preprocess,
        )
        trainer.remove_callback(PrinterCallback)
        metrics = add_perplexity(trainer.evaluate())
        if self.dist.is_main_process:
            checkpoints.store.write_bytes(cached, json.dumps(metrics).encode())
        return metrics

    def _trainer(
        self,
        model: Any,
        args: Any,
        data: PreparedData,
        optimizer: Any,
        key: str,
        checkpoints: CheckpointStore,
        preemption: PreemptionCallback,
        tokenizer: Any,
    ) -> Any:
        from transformers import EarlyStoppingCallback
        from transformers.trainer_callback import PrinterCallback

        compute, preprocess = self._compute()
        if data.train is None:
            raise DataError("no tokenized training data")
        tokens_per_sample = data.train.tokens / max(len(data.train), 1)
        callbacks = [
            ProgressCallback(self.reporter, tokens_per_sample, key, self.loss_points),
            CheckpointSyncCallback(checkpoints, self.reporter),
            preemption,
        ]
        if self.spec.training.early_stopping and args.load_best_model_at_end:
            es = self.spec.training.early_stopping
            callbacks.append(EarlyStoppingCallback(es.patience, es.threshold))
        trainer = _Trainer(
            model=model,
            args=args,
            train_dataset=data.train,
            eval_dataset=data.eval,
            data_collator=self._collator(tokenizer, not args.use_cpu, model),
            eval_collator=self._collator(tokenizer, not args.use_cpu),
            compute_metrics=compute,
            preprocess_logits_for_metrics=preprocess,
            optimizers=(optimizer, None),
            callbacks=callbacks,
        )
        # Our progress bar and metrics replace the loop's own printing of every log dict.
        trainer.remove_callback(PrinterCallback)
        return trainer

    def _save(
        self,
        model: Any,
        tokenizer: Any,
        out: Path,
        adapter: bool,
        metrics: dict[str, Any],
        data: PreparedData,
        params: tuple[int, int],
    ) -> None:
        out.mkdir(parents=True, exist_ok=True)
        save = self.spec.output.save
        if adapter:
            if save in (SaveMode.ADAPTER, SaveMode.BOTH):
                model.save_pretrained(out / "adapter")
                tokenizer.save_pretrained(out / "adapter")
            if save in (SaveMode.MERGED, SaveMode.BOTH):
                merged = model.merge_and_unload()
                merged.save_pretrained(out / "model")
                tokenizer.save_pretrained(out / "model")
        else:
            model.save_pretrained(out / "model")
            tokenizer.save_pretrained(out / "model")
        (out / "metrics.json").write_text(json.dumps(metrics, indent=2, default=str))
        spec_yaml = yaml.safe_dump(
            self.job.model_dump(by_alias=True, exclude_none=True, mode="json", exclude={"status"}), sort_keys=False
        )  # the resolved job: what this run used, defaults included
        (out / "finetunejob.yaml").write_text(spec_yaml)
        loss_curve(
            self.loss_points, out / "loss_curve.png", f"{self.name}: {self.spec.method.type} on {self.spec.task.type}"
        )
        (out / "README.md").write_text(
            model_card(
                self.name,
                spec_yaml,
                metrics,
                data.report.lines(),
                {"trainable": params[0], "total": params[1]},
                self.spec.model.uri,
            )
        )

    def _publish(
        self, out: Path, metrics: dict[str, Any], gate: GateResult | None, data: PreparedData, etags: dict[str, str]
    ) -> RunResult:
        store = open_store(self.spec.output.uri, self.spec.s3)
        lineage = {
            "job": {"name": self.name, "namespace": self.job.metadata.namespace},
            "baseModel": {"uri": self.spec.model.uri, "revision": self.spec.model.revision, "etags": etags},
            "datasets": data.hashes,
            "seed": self.spec.training.seed,
            "method": str(self.spec.method.type),
            "metrics": {"baseline": metrics["baseline"], "tuned": metrics["tuned"], "gate": metrics.get("gate")},
            "image": os.environ.get(ENV_IMAGE, ""),
            "fingerprint": self.fingerprint,  # whose output this is (training/ownership.py)
            "spec": resolved_spec(self.job),
        }
        manifest = build_manifest(out, lineage)
        run_id = f"{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:6]}"
        staging = publish.stage(store, out, run_id)
        if gate is not None and not gate.passed:
            store.write_bytes(f"{staging}/{publish.GATE_NOTE}", json.dumps(metrics["gate"], indent=2).encode())
            raise GateNotMet(f"{gate.explain()}; artifacts kept at {store.uri.join(staging)} without a manifest")
        manifest_uri = publish.promote(store, staging, manifest)
        return RunResult(self.spec.output.uri, manifest_uri, metrics, gate, out)
